package ortinstall

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// tarball returns a gzip tarball holding files (name -> contents).
func tarball(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}

// wheel returns a zip (a wheel) holding files.
func wheel(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeTools puts fake npm and pip first on PATH. Each copies the files of
// dist (the test's "registry") into where the real tool would write, and
// appends its arguments to dist/args-npm or dist/args-pip. With
// FAKE_FAIL set it fails the way a refusing registry does.
func fakeTools(t *testing.T) (dist string) {
	t.Helper()
	bin := t.TempDir()
	dist = t.TempDir()
	npm := `#!/bin/sh
echo "$@" >> "` + dist + `/args-npm"
if [ -n "$FAKE_FAIL" ]; then echo "npm error code E404" >&2; echo "npm error 404 Not Found - GET https://registry.npmjs.org/onnxruntime-node" >&2; exit 1; fi
cp "` + dist + `"/*.tgz .
echo onnxruntime-node-1.30.0.tgz
`
	pip := `#!/bin/sh
echo "$@" >> "` + dist + `/args-pip"
if [ -n "$FAKE_FAIL" ]; then echo "ERROR: No matching distribution found for onnxruntime-gpu==1.30.0" >&2; exit 1; fi
while [ $# -gt 0 ]; do if [ "$1" = "-d" ]; then dest=$2; fi; shift; done
cp "` + dist + `"/*.whl "$dest"/
`
	for name, body := range map[string]string{"npm": npm, "pip": pip} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dist
}

const memberX64 = "package/bin/napi-v6/linux/x64/libonnxruntime.so.1"

// cpuFixture writes a fake onnxruntime-node tarball into dist and returns
// the pin table for it and the tarball's bytes.
func cpuFixture(t *testing.T, dist string) (*Table, []byte) {
	t.Helper()
	lib := []byte("\x7fELF not really a library, but pinned\n")
	tgz := tarball(t, map[string][]byte{memberX64: lib, "package/README.md": []byte("readme")})
	if err := os.WriteFile(filepath.Join(dist, "onnxruntime-node-1.30.0.tgz"), tgz, 0o644); err != nil {
		t.Fatal(err)
	}
	pins, err := ParseTable(fmt.Sprintf(`default cpu 1.30.0
dist 1.30.0 cpu x64 npm onnxruntime-node 1.30.0 onnxruntime-node-1.30.0.tgz %s
file 1.30.0 cpu x64 onnxruntime-node-1.30.0.tgz %s libonnxruntime.so.1 %s
`, sum(tgz), memberX64, sum(lib)))
	if err != nil {
		t.Fatal(err)
	}
	return pins, tgz
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// noStaging fails when an install left a staging directory behind.
func noStaging(t *testing.T, root string) {
	t.Helper()
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".install-") {
			t.Errorf("staging directory %s left behind", e.Name())
		}
	}
}

func TestInstallCPU(t *testing.T) {
	dist := fakeTools(t)
	pins, _ := cpuFixture(t, dist)
	root := filepath.Join(t.TempDir(), "cache")
	inst, err := Install(ctx(t), Options{Root: root, Pins: pins, Arch: "x64"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "1.30.0", "lib"); inst.Dir != want || inst.Version != "1.30.0" || inst.Variant != VariantCPU {
		t.Fatalf("installed %+v, want 1.30.0/cpu in %s", inst, want)
	}
	if data, err := os.ReadFile(inst.Library()); err != nil || !strings.Contains(string(data), "pinned") {
		t.Fatalf("library: %q, %v", data, err)
	}
	args, _ := os.ReadFile(filepath.Join(dist, "args-npm"))
	if !strings.Contains(string(args), "pack --silent onnxruntime-node@1.30.0") {
		t.Errorf("npm ran with %q", args)
	}
	noStaging(t, root)

	list, err := Installed(root)
	if err != nil || len(list) != 1 || list[0] != inst {
		t.Fatalf("Installed = %+v, %v; want [%+v]", list, err, inst)
	}
	if got, ok, err := Preferred(root, VariantCPU, pins); !ok || err != nil || got != inst {
		t.Fatalf("Preferred = %+v, %v, %v", got, ok, err)
	}
	if _, ok, _ := Preferred(root, VariantCUDA, pins); ok {
		t.Fatal("a CUDA installation where there is none")
	}

	// Installed again: nothing fetched.
	os.Remove(filepath.Join(dist, "args-npm"))
	if _, err := Install(ctx(t), Options{Root: root, Pins: pins, Arch: "x64"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dist, "args-npm")); err == nil {
		t.Error("npm ran for a build already installed")
	}
	// Forced: fetched again and replaced.
	if _, err := Install(ctx(t), Options{Root: root, Pins: pins, Arch: "x64", Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dist, "args-npm")); err != nil {
		t.Error("npm did not run for --force")
	}
	noStaging(t, root)

	// A library changed after installation is no longer listed.
	if err := os.WriteFile(inst.Library(), []byte("short"), 0o755); err != nil {
		t.Fatal(err)
	}
	if list, _ := Installed(root); len(list) != 0 {
		t.Fatalf("a changed installation is still listed: %+v", list)
	}
}

func TestInstallRefusesTamperedDownload(t *testing.T) {
	dist := fakeTools(t)
	pins, tgz := cpuFixture(t, dist)
	tampered := bytes.Clone(tgz)
	tampered[len(tampered)/2] ^= 1 // one byte changed
	if err := os.WriteFile(filepath.Join(dist, "onnxruntime-node-1.30.0.tgz"), tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	_, err := Install(ctx(t), Options{Root: root, Pins: pins, Arch: "x64"})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("got %v, want ErrChecksum", err)
	}
	if !strings.Contains(err.Error(), "onnxruntime-node-1.30.0.tgz") || !strings.Contains(err.Error(), sum(tgz)) {
		t.Errorf("message %q should name the file and its pinned sha256", err)
	}
	if _, err := os.Stat(filepath.Join(root, "1.30.0")); err == nil {
		t.Error("a tampered download left an installation")
	}
	if list, _ := Installed(root); len(list) != 0 {
		t.Errorf("Installed = %+v after a refused download", list)
	}
	noStaging(t, root)
}

func TestInstallRefusesTamperedMember(t *testing.T) {
	dist := fakeTools(t)
	lib := []byte("the library")
	tgz := tarball(t, map[string][]byte{memberX64: lib})
	os.WriteFile(filepath.Join(dist, "onnxruntime-node-1.30.0.tgz"), tgz, 0o644)
	wrong := sum([]byte("the library, as pinned"))
	pins, err := ParseTable(fmt.Sprintf("dist 1.30.0 cpu x64 npm onnxruntime-node 1.30.0 onnxruntime-node-1.30.0.tgz %s\nfile 1.30.0 cpu x64 onnxruntime-node-1.30.0.tgz %s libonnxruntime.so.1 %s\n", sum(tgz), memberX64, wrong))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	_, err = Install(ctx(t), Options{Root: root, Pins: pins, Arch: "x64", Version: "1.30.0"})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), memberX64) {
		t.Fatalf("got %v, want ErrChecksum naming %s", err, memberX64)
	}
	if list, _ := Installed(root); len(list) != 0 {
		t.Errorf("Installed = %+v after a refused member", list)
	}
	noStaging(t, root)
}

func TestInstallCUDA(t *testing.T) {
	dist := fakeTools(t)
	ortFiles := map[string][]byte{
		"onnxruntime/capi/libonnxruntime.so.1.30.0":           []byte("ort"),
		"onnxruntime/capi/libonnxruntime_providers_cuda.so":   []byte("cuda provider"),
		"onnxruntime/capi/libonnxruntime_providers_shared.so": []byte("shared provider"),
		"onnxruntime/__init__.py":                             []byte(""),
	}
	ortWheel := wheel(t, ortFiles)
	rtWheel := wheel(t, map[string][]byte{"nvidia/cu13/lib/libcudart.so.13": []byte("cudart")})
	ortName := "onnxruntime_gpu-1.30.0-cp312-cp312-manylinux_2_28_x86_64.whl"
	rtName := "nvidia_cuda_runtime-13.0.88-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
	os.WriteFile(filepath.Join(dist, ortName), ortWheel, 0o644)
	os.WriteFile(filepath.Join(dist, rtName), rtWheel, 0o644)
	table := fmt.Sprintf(`default cuda 1.30.0
dist 1.30.0 cuda x64 pip onnxruntime-gpu 1.30.0 %[1]s %[2]s
file 1.30.0 cuda x64 %[1]s onnxruntime/capi/libonnxruntime.so.1.30.0 libonnxruntime.so.1 %[3]s
file 1.30.0 cuda x64 %[1]s onnxruntime/capi/libonnxruntime_providers_cuda.so libonnxruntime_providers_cuda.so %[4]s
file 1.30.0 cuda x64 %[1]s onnxruntime/capi/libonnxruntime_providers_shared.so libonnxruntime_providers_shared.so %[5]s
dist 1.30.0 cuda x64 pip nvidia-cuda-runtime 13.0.88 %[6]s %[7]s
file 1.30.0 cuda x64 %[6]s nvidia/cu13/lib/libcudart.so.13 libcudart.so.13 %[8]s
`, ortName, sum(ortWheel), sum([]byte("ort")), sum([]byte("cuda provider")), sum([]byte("shared provider")),
		rtName, sum(rtWheel), sum([]byte("cudart")))
	pins, err := ParseTable(table)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	inst, err := Install(ctx(t), Options{Root: root, Pins: pins, Arch: "x64", CUDA: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "1.30.0", "cuda", "lib"); inst.Dir != want || inst.Variant != VariantCUDA {
		t.Fatalf("installed %+v, want the CUDA build in %s", inst, want)
	}
	for _, f := range []string{"libonnxruntime.so.1", "libonnxruntime_providers_cuda.so", "libonnxruntime_providers_shared.so", "libcudart.so.13"} {
		if _, err := os.Stat(filepath.Join(inst.Dir, f)); err != nil {
			t.Errorf("%s not installed: %v", f, err)
		}
	}
	args, _ := os.ReadFile(filepath.Join(dist, "args-pip"))
	for _, want := range []string{"download", "--no-deps", "--require-hashes", "--only-binary=:all:",
		"--platform manylinux_2_28_x86_64", "--platform manylinux2014_x86_64", "--platform manylinux_2_17_x86_64",
		"--python-version 3.12", "--abi cp312"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("pip ran with %q, without %q", args, want)
		}
	}
	noStaging(t, root)

	// A wheel with one byte changed is refused, naming the wheel.
	bad := bytes.Clone(rtWheel)
	bad[len(bad)/3] ^= 0x20
	os.WriteFile(filepath.Join(dist, rtName), bad, 0o644)
	_, err = Install(ctx(t), Options{Root: t.TempDir(), Pins: pins, Arch: "x64", CUDA: true})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), rtName) {
		t.Fatalf("got %v, want ErrChecksum naming %s", err, rtName)
	}
}

func TestInstallErrors(t *testing.T) {
	t.Run("npm missing", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		pins, _ := cpuFixture(t, t.TempDir())
		_, err := Install(ctx(t), Options{Root: t.TempDir(), Pins: pins, Arch: "x64"})
		if !errors.Is(err, ErrToolMissing) || !strings.Contains(err.Error(), "npm") || !strings.Contains(err.Error(), "ONNXRUNTIME_LIB") {
			t.Fatalf("got %v, want ErrToolMissing naming npm and ONNXRUNTIME_LIB", err)
		}
	})
	t.Run("pip missing", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		_, err := Install(ctx(t), Options{Root: t.TempDir(), Arch: "x64", CUDA: true})
		if !errors.Is(err, ErrToolMissing) || !strings.Contains(err.Error(), "pip") {
			t.Fatalf("got %v, want ErrToolMissing naming pip", err)
		}
	})
	t.Run("registry refuses", func(t *testing.T) {
		dist := fakeTools(t)
		pins, _ := cpuFixture(t, dist)
		t.Setenv("FAKE_FAIL", "1")
		root := t.TempDir()
		_, err := Install(ctx(t), Options{Root: root, Pins: pins, Arch: "x64"})
		if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), "404 Not Found") || !strings.Contains(err.Error(), "registry") {
			t.Fatalf("got %v, want ErrFetch quoting npm and naming the registry", err)
		}
		noStaging(t, root)
	})
	t.Run("version not pinned", func(t *testing.T) {
		_, err := Install(ctx(t), Options{Root: t.TempDir(), Version: "1.2.3", Arch: "x64"})
		if !errors.Is(err, ErrNotPinned) || !strings.Contains(err.Error(), "1.2.3") || !strings.Contains(err.Error(), Pins().Default(VariantCPU)) {
			t.Fatalf("got %v, want ErrNotPinned naming 1.2.3 and the pinned versions", err)
		}
	})
	t.Run("architecture not pinned", func(t *testing.T) {
		_, err := Install(ctx(t), Options{Root: t.TempDir(), Arch: "arm64", CUDA: true})
		if !errors.Is(err, ErrNotPinned) {
			t.Fatalf("got %v, want ErrNotPinned", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		bin := t.TempDir()
		os.WriteFile(filepath.Join(bin, "npm"), []byte("#!/bin/sh\nexec sleep 30\n"), 0o755)
		t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		pins, _ := cpuFixture(t, t.TempDir())
		c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := Install(c, Options{Root: t.TempDir(), Pins: pins, Arch: "x64"})
		if !errors.Is(err, ErrFetch) || time.Since(start) > 10*time.Second {
			t.Fatalf("got %v after %v, want ErrFetch soon", err, time.Since(start))
		}
	})
}

func TestEmbeddedPins(t *testing.T) {
	pins := Pins()
	for _, tc := range []struct{ variant, arch string }{{VariantCPU, "x64"}, {VariantCPU, "arm64"}, {VariantCUDA, "x64"}} {
		v := pins.Default(tc.variant)
		b, err := pins.Build(v, tc.variant, tc.arch)
		if err != nil {
			t.Fatalf("default %s %s: %v", tc.variant, tc.arch, err)
		}
		tools := map[string]bool{}
		for _, d := range b.Dists {
			tools[d.Tool] = true
		}
		want := map[string]string{VariantCPU: "npm", VariantCUDA: "pip"}[tc.variant]
		if len(tools) != 1 || !tools[want] {
			t.Errorf("%s/%s fetches with %v, want %s only", tc.variant, tc.arch, tools, want)
		}
	}
	b, _ := pins.Build(pins.Default(VariantCUDA), VariantCUDA, "x64")
	var names []string
	for _, f := range b.Files {
		names = append(names, f.Name)
	}
	// The libraries the CUDA provider of onnxruntime-gpu 1.30 links
	// (readelf -d libonnxruntime_providers_cuda.so), and cuDNN, which it
	// opens by name when an operator needs it.
	for _, want := range []string{"libonnxruntime.so.1", "libonnxruntime_providers_cuda.so", "libonnxruntime_providers_shared.so",
		"libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libcudnn.so.9"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("the CUDA build does not install %s", want)
		}
	}
}

func TestParseTableErrors(t *testing.T) {
	good := strings.Repeat("a", 64)
	for name, text := range map[string]string{
		"short sha":     "dist 1.0.0 cpu x64 npm p 1.0.0 p.tgz abc\n",
		"bad variant":   "dist 1.0.0 gpu x64 npm p 1.0.0 p.tgz " + good + "\n",
		"bad tool":      "dist 1.0.0 cpu x64 curl p 1.0.0 p.tgz " + good + "\n",
		"path in name":  "dist 1.0.0 cpu x64 npm p 1.0.0 p.tgz " + good + "\nfile 1.0.0 cpu x64 p.tgz a/lib ../libonnxruntime.so.1 " + good + "\n",
		"unknown from":  "dist 1.0.0 cpu x64 npm p 1.0.0 p.tgz " + good + "\nfile 1.0.0 cpu x64 q.tgz a/lib libonnxruntime.so.1 " + good + "\n",
		"no library":    "dist 1.0.0 cpu x64 npm p 1.0.0 p.tgz " + good + "\nfile 1.0.0 cpu x64 p.tgz a/lib libother.so " + good + "\n",
		"dotdot member": "dist 1.0.0 cpu x64 npm p 1.0.0 p.tgz " + good + "\nfile 1.0.0 cpu x64 p.tgz ../lib libonnxruntime.so.1 " + good + "\n",
		"bad default":   "default cpu 9.9.9\n",
		"unknown kind":  "frobnicate\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseTable(text); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"1.9.0", "1.30.0", -1}, {"1.30.0", "1.30.0", 0}, {"1.31.1", "1.31.0", 1}, {"2.0", "1.99.9", 1}} {
		got := compareVersions(tc.a, tc.b)
		if got < 0 {
			got = -1
		} else if got > 0 {
			got = 1
		}
		if got != tc.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestSetupReadsTheSamePins checks that scripts/setup.sh takes its files
// and checksums from pins.txt: what its pins step prints is the table's
// build for each variant.
func TestSetupReadsTheSamePins(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to run scripts/setup.sh")
	}
	pins := Pins()
	for _, tc := range []struct{ variant, arch string }{{VariantCPU, "x64"}, {VariantCPU, "arm64"}, {VariantCUDA, "x64"}} {
		out, err := exec.Command("bash", "../../scripts/setup.sh", "pins", tc.variant, tc.arch).CombinedOutput()
		if err != nil {
			t.Fatalf("setup.sh pins %s %s: %v\n%s", tc.variant, tc.arch, err, out)
		}
		b, err := pins.Build(pins.Default(tc.variant), tc.variant, tc.arch)
		if err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for _, d := range b.Dists {
			fmt.Fprintf(&want, "dist %s %s %s %s %s\n", d.Tool, d.Package, d.PackageVersion, d.File, d.SHA256)
		}
		for _, f := range b.Files {
			fmt.Fprintf(&want, "file %s %s %s %s\n", f.From, f.Member, f.Name, f.SHA256)
		}
		if string(out) != want.String() {
			t.Errorf("setup.sh pins %s %s printed\n%s\nwant\n%s", tc.variant, tc.arch, out, want.String())
		}
	}
}
