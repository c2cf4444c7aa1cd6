// Package deploy holds gen serve's Dockerfile and Kubernetes manifests;
// its test parses every manifest into the real Kubernetes API types. It is
// a module of its own, so k8s.io/api stays out of the library's go.mod.
package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// KServe's Go module is not served by the Go module proxy, so its types
// are mirrored here from kserve/kserve pkg/apis/serving (v1beta1
// InferenceService, PredictorSpec, ComponentExtensionSpec, ModelSpec,
// PredictorExtensionSpec; v1alpha1 ServingRuntimeSpec), field for field
// for what these manifests use, over the real core/v1 types.

type inferenceService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Predictor predictorSpec `json:"predictor"`
	} `json:"spec"`
}

type predictorSpec struct {
	Model          *modelSpec `json:"model,omitempty"`
	corev1.PodSpec `json:",inline"`
	// ComponentExtensionSpec
	MinReplicas          *int32  `json:"minReplicas,omitempty"`
	MaxReplicas          int32   `json:"maxReplicas,omitempty"`
	ScaleTarget          *int32  `json:"scaleTarget,omitempty"`
	ScaleMetric          *string `json:"scaleMetric,omitempty"`
	ScaleMetricType      *string `json:"scaleMetricType,omitempty"`
	ContainerConcurrency *int64  `json:"containerConcurrency,omitempty"`
	TimeoutSeconds       *int64  `json:"timeout,omitempty"`
	CanaryTrafficPercent *int64  `json:"canaryTrafficPercent,omitempty"`
}

type modelSpec struct {
	ModelFormat struct {
		Name    string  `json:"name"`
		Version *string `json:"version,omitempty"`
	} `json:"modelFormat"`
	Runtime *string `json:"runtime,omitempty"`
	// PredictorExtensionSpec
	StorageURI       *string `json:"storageUri,omitempty"`
	RuntimeVersion   *string `json:"runtimeVersion,omitempty"`
	ProtocolVersion  *string `json:"protocolVersion,omitempty"`
	corev1.Container `json:",inline"`
}

type servingRuntime struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		SupportedModelFormats []struct {
			Name       string  `json:"name"`
			Version    *string `json:"version,omitempty"`
			AutoSelect *bool   `json:"autoSelect,omitempty"`
			Priority   *int32  `json:"priority,omitempty"`
		} `json:"supportedModelFormats,omitempty"`
		MultiModel       *bool              `json:"multiModel,omitempty"`
		Disabled         *bool              `json:"disabled,omitempty"`
		ProtocolVersions []string           `json:"protocolVersions,omitempty"`
		Containers       []corev1.Container `json:"containers"`
		Volumes          []corev1.Volume    `json:"volumes,omitempty"`
		NodeSelector     map[string]string  `json:"nodeSelector,omitempty"`
	} `json:"spec"`
}

// decode reads path strictly: an unknown or misspelt field fails.
func decode(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestStrictDecodingCatchesTypos guards the test itself: a misspelt field
// must fail.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	data, _ := os.ReadFile(filepath.Join("k8s", "deployment.yaml"))
	bad := bytes.Replace(data, []byte("readinessProbe:"), []byte("readynessProbe:"), 1)
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(bad, &d); err == nil {
		t.Fatal("a misspelt readinessProbe decoded without error")
	}
}

// TestEveryManifestIsKnown: every YAML file here is decoded by a test.
func TestEveryManifestIsKnown(t *testing.T) {
	known := []string{"k8s/deployment.yaml", "k8s/service.yaml", "k8s/hpa.yaml",
		"kserve/inferenceservice.yaml", "kserve/inferenceservice-runtime.yaml", "kserve/servingruntime.yaml"}
	files, _ := filepath.Glob("*/*.yaml")
	for _, f := range files {
		if !slices.Contains(known, filepath.ToSlash(f)) {
			t.Errorf("%s is not decoded by any test; add it to manifests_test.go", f)
		}
	}
}

// container finds the container named name.
func container(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func env(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func TestDeployment(t *testing.T) {
	var d appsv1.Deployment
	decode(t, filepath.Join("k8s", "deployment.yaml"), &d)
	if d.Kind != "Deployment" || d.APIVersion != "apps/v1" {
		t.Errorf("kind %s %s", d.APIVersion, d.Kind)
	}
	c := container(t, d.Spec.Template.Spec.Containers, "gen")
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/v2/health/ready" {
		t.Errorf("readiness probe %+v, want GET /v2/health/ready", c.ReadinessProbe)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/v2/health/live" {
		t.Errorf("liveness probe %+v, want GET /v2/health/live", c.LivenessProbe)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v: want maxUnavailable 0", ru)
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || *grace < 35 || env(c, "S2S_DRAIN_TIMEOUT") != "30s" {
		t.Errorf("terminationGracePeriodSeconds %v must outlast the preStop sleep and S2S_DRAIN_TIMEOUT %q", grace, env(c, "S2S_DRAIN_TIMEOUT"))
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Error("no preStop sleep: SIGTERM would come before the endpoints are gone")
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the template's labels %v", k, v, d.Spec.Template.Labels)
		}
	}
	if len(c.Args) < 2 || c.Args[0] != "-model" {
		t.Errorf("args %v: want -model DIR first", c.Args)
	}
}

func TestServiceAndHPA(t *testing.T) {
	var d appsv1.Deployment
	decode(t, filepath.Join("k8s", "deployment.yaml"), &d)
	var s corev1.Service
	decode(t, filepath.Join("k8s", "service.yaml"), &s)
	for k, v := range s.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("the Service selects %s=%s, which the Deployment's pods lack", k, v)
		}
	}
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("service ports %+v: want one, to the named port http", s.Spec.Ports)
	}
	var h autoscalingv2.HorizontalPodAutoscaler
	decode(t, filepath.Join("k8s", "hpa.yaml"), &h)
	if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name {
		t.Errorf("the HPA scales %+v, not the Deployment %s", h.Spec.ScaleTargetRef, d.Name)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas <= *h.Spec.MinReplicas || len(h.Spec.Metrics) == 0 {
		t.Errorf("HPA bounds %v..%d, metrics %d", h.Spec.MinReplicas, h.Spec.MaxReplicas, len(h.Spec.Metrics))
	}
}

func TestKServe(t *testing.T) {
	var is inferenceService
	decode(t, filepath.Join("kserve", "inferenceservice.yaml"), &is)
	if is.APIVersion != "serving.kserve.io/v1beta1" || is.Kind != "InferenceService" {
		t.Errorf("kind %s %s", is.APIVersion, is.Kind)
	}
	c := container(t, is.Spec.Predictor.Containers, "kserve-container")
	if env(c, "PROTOCOL") != "v2" {
		t.Errorf("the custom predictor's PROTOCOL is %q, want v2", env(c, "PROTOCOL"))
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/v2/health/ready" {
		t.Errorf("readiness probe %+v", c.ReadinessProbe)
	}
	if i := slices.Index(c.Args, "-model-name"); i < 0 || c.Args[i+1] != is.Name {
		t.Errorf("args %v: the v2 model name must be the InferenceService's name %s", c.Args, is.Name)
	}

	var rt servingRuntime
	decode(t, filepath.Join("kserve", "servingruntime.yaml"), &rt)
	if rt.Kind != "ClusterServingRuntime" || !slices.Equal(rt.Spec.ProtocolVersions, []string{"v2"}) || len(rt.Spec.Containers) != 1 {
		t.Errorf("serving runtime %+v", rt.Spec)
	}
	var ism inferenceService
	decode(t, filepath.Join("kserve", "inferenceservice-runtime.yaml"), &ism)
	m := ism.Spec.Predictor.Model
	if m == nil || m.ProtocolVersion == nil || *m.ProtocolVersion != "v2" || m.Runtime == nil || *m.Runtime != rt.Name ||
		m.ModelFormat.Name != rt.Spec.SupportedModelFormats[0].Name || m.StorageURI == nil || !strings.Contains(*m.StorageURI, "://") {
		t.Errorf("model spec %+v: want protocolVersion v2 on runtime %s", m, rt.Name)
	}
}
