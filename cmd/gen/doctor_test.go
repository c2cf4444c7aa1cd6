package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s2s-dev/s2s/runtime"
)

func TestDoctor(t *testing.T) {
	t.Setenv("ONNXRUNTIME_LIB", "")
	t.Setenv("S2S_PROVIDER", "")
	out, _, err := gen(t, "", "doctor", "-model", filepath.Join("..", "..", "models", "g2p-en"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"library", filepath.Join(checkout(t), ".ort", "lib", "libonnxruntime.so.1"), "found in", runtime.PlaceBuild,
		"version", "1.30.0", "CPUExecutionProvider", "places looked at, in order:",
		runtime.PlaceExecutable, runtime.PlaceCache, runtime.PlaceSystem,
		"CUDA (-provider cuda", "Model ", "rnn (g2p-lstm-attention)", "encoder.onnx", "states", "special ids", "pad 0, eos [1]",
		"max_new_tokens", "Nothing to fix.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("gen doctor does not say %q:\n%s", want, out)
		}
	}
}

func TestDoctorReportsWorkingDirectoryLibrary(t *testing.T) {
	t.Setenv("ONNXRUNTIME_LIB", "")
	model, _ := filepath.Abs(filepath.Join("..", "..", "models", "g2p-en"))
	wd := t.TempDir()
	planted := filepath.Join(wd, ".ort", "lib", "libonnxruntime.so.1")
	os.MkdirAll(filepath.Dir(planted), 0o755)
	os.WriteFile(planted, []byte("whatever a downloaded directory holds"), 0o755)
	t.Chdir(wd)
	out, _, err := gen(t, "", "doctor", "-model", model)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, planted+": never loaded unless named") || !strings.Contains(out, "-ort-lib .ort/lib") {
		t.Errorf("the working directory's library is not reported as passed over:\n%s", out)
	}
	if strings.Contains(out, "chosen: "+planted) {
		t.Errorf("the working directory's library was chosen:\n%s", out)
	}
}

func TestDoctorModelProblems(t *testing.T) {
	// broken copies models/g2p-en with its manifest changed by edit.
	broken := func(edit func(m map[string]any)) string {
		dir := t.TempDir()
		src := filepath.Join("..", "..", "models", "g2p-en")
		entries, _ := os.ReadDir(src)
		for _, e := range entries {
			data, _ := os.ReadFile(filepath.Join(src, e.Name()))
			if e.Name() == "s2s.json" {
				var m map[string]any
				json.Unmarshal(data, &m)
				edit(m)
				data, _ = json.Marshal(m)
			}
			os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644)
		}
		return dir
	}
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		// The manifest's own checks (models.Load) come first...
		{"eos outside the vocabulary", func(m map[string]any) { m["eos_token_id"] = []int{4000}; m["vocab_size"] = 50 },
			"eos_token_id 4000 is outside the vocabulary [0, 50)"},
		// ...then doctor's checks of the manifest against the graphs.
		{"vocab against the graphs", func(m map[string]any) { m["vocab_size"] = 50 },
			"vocab_size is 50 in the manifest but the decoder gives 43 logits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := gen(t, "", "doctor", "-model", broken(tc.edit))
			if err == nil {
				t.Fatalf("no error for a broken model:\n%s", out)
			}
			for _, want := range []string{"To fix:", tc.want} {
				if !strings.Contains(out, want) {
					t.Errorf("gen doctor does not say %q:\n%s", want, out)
				}
			}
		})
	}
	out, _, err := gen(t, "", "doctor", "-model", "/nonexistent/model")
	if err == nil || !strings.Contains(out, "not a model directory") {
		t.Errorf("missing model: %v\n%s", err, out)
	}
}

func TestInspectCommand(t *testing.T) {
	out, _, err := gen(t, "", "inspect", model)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"encoder: encoder_model.onnx", "past_key_values.0.decoder.key", "self-attention cache, layer 0 key",
		"layout (split decoder graphs)", "layout (merged decoder graphs)", "decoder graphs auto: merged on the CPU, split on CUDA"} {
		if !strings.Contains(out, want) {
			t.Errorf("gen inspect does not say %q:\n%s", want, out)
		}
	}
	out, _, err = gen(t, "", "inspect", "-json", filepath.Join("..", "..", "models", "g2p-en"))
	if err != nil {
		t.Fatal(err)
	}
	var spec runtime.ModelSpec
	if err := json.Unmarshal([]byte(out), &spec); err != nil || spec.Architecture != "rnn" || len(spec.Graphs) != 2 || spec.Vocab != 43 {
		t.Fatalf("gen inspect -json: %v\n%s", err, out)
	}
	if _, _, err := gen(t, "", "inspect"); !errors.Is(err, errUsage) {
		t.Errorf("no model: %v", err)
	}
}

// TestDoctorAndInspectPacked: a packed model file is read part by part
// from its one graph, its tokenizers from its metadata.
func TestDoctorAndInspectPacked(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{filepath.Join("..", "..", "testdata", "t5-tiny.onnx"), []string{"t5-tiny.onnx:decoder_with_past", "layout split", "target vocabulary 824"}},
		{filepath.Join("..", "..", "models", "g2p-en.onnx"), []string{"g2p-en.onnx:encoder", "states        6", "target vocabulary 43"}},
	} {
		out, _, err := gen(t, "", "doctor", "-model", tc.file)
		if err != nil {
			t.Fatalf("gen doctor -model %s: %v\n%s", tc.file, err, out)
		}
		for _, want := range append(tc.want, "in the packed file's metadata", "Nothing to fix.") {
			if !strings.Contains(out, want) {
				t.Errorf("gen doctor -model %s does not say %q:\n%s", tc.file, want, out)
			}
		}
		out, _, err = gen(t, "", "inspect", tc.file)
		if err != nil || !strings.Contains(out, "in   input_ids") || strings.Contains(out, "unusable") {
			t.Errorf("gen inspect %s: %v\n%s", tc.file, err, out)
		}
	}
}

// cc returns the C compiler cgo uses.
func cc() string {
	if out, err := exec.Command("go", "env", "CC").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		return strings.Fields(strings.TrimSpace(string(out)))[0]
	}
	return "cc"
}

func compile(t *testing.T, out string, args ...string) {
	t.Helper()
	all := append([]string{"-shared", "-fPIC", "-o", out}, args...)
	if b, err := exec.Command(cc(), all...).CombinedOutput(); err != nil {
		t.Fatalf("compiling %s: %v\n%s", filepath.Base(out), err, b)
	}
}

// syntheticCUDA lays out root/.ort/cuda/lib as scripts/setup.sh ort-cuda
// does, with stand-ins: a fake ONNX Runtime 1.30 (runtime/testdata/fakeort.c,
// listing the CUDA provider), a CUDA provider library linking the CUDA 13
// libraries onnxruntime-gpu 1.30 links, and those libraries, but for the
// ones named in leaveOut.
func syntheticCUDA(t *testing.T, root string, leaveOut ...string) string {
	t.Helper()
	lib := filepath.Join(root, ".ort", "cuda", "lib")
	build := t.TempDir()
	os.MkdirAll(lib, 0o755)
	empty := filepath.Join(build, "empty.c")
	os.WriteFile(empty, []byte("int s2s_fake;\n"), 0o644)
	var linked []string
	for _, name := range []string{"libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10", "libcudart.so.13", "libcuda.so.1"} {
		p := filepath.Join(build, name)
		compile(t, p, empty, "-Wl,-soname,"+name)
		linked = append(linked, p)
		keep := name != "libcuda.so.1"
		for _, l := range leaveOut {
			keep = keep && l != name
		}
		if keep {
			data, _ := os.ReadFile(p)
			os.WriteFile(filepath.Join(lib, name), data, 0o755)
		}
	}
	compile(t, filepath.Join(lib, "libonnxruntime_providers_cuda.so"), append([]string{empty, "-Wl,--no-as-needed"}, linked...)...)
	compile(t, filepath.Join(lib, "libonnxruntime_providers_shared.so"), empty)
	compile(t, filepath.Join(lib, "libonnxruntime.so.1"), filepath.Join(checkout(t), "runtime", "testdata", "fakeort.c"),
		`-DFAKE_VERSION="1.30.0"`, "-DFAKE_MAX_API=24", `-DFAKE_PROVIDERS="CUDAExecutionProvider","CPUExecutionProvider"`)
	return lib
}

// TestProviderCUDAWithoutGPU builds gen into a directory laid out as
// scripts/setup.sh ort-cuda lays out .ort/cuda/lib, and runs it with
// -provider cuda (and S2S_PROVIDER=cuda): it picks that library by itself
// and stops with one error naming what is missing, never a crash.
func TestProviderCUDAWithoutGPU(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := t.TempDir()
	lib := syntheticCUDA(t, root)
	// What this machine lacks (CI: the driver, libcuda.so.1). On a machine
	// with a usable GPU the stand-ins would be loaded for real: there
	// scripts/gpu-check.sh checks the CUDA path.
	_, machine := runtime.CheckCUDA(lib, 0)
	if !errors.Is(machine, runtime.ErrNoCUDADriver) && !errors.Is(machine, runtime.ErrNoCUDADevice) {
		t.Skipf("this machine has a usable CUDA device (%v); scripts/gpu-check.sh checks the CUDA path here", machine)
	}
	exe := filepath.Join(root, "bin", "gen")
	if b, err := exec.CommandContext(ctx, "go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("building gen: %v\n%s", err, b)
	}
	model, _ := filepath.Abs(filepath.Join("..", "..", "models", "g2p-en"))
	run := func(env []string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "ONNXRUNTIME_LIB=", "XDG_CACHE_HOME="+t.TempDir())
		cmd.Env = append(cmd.Env, env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	missing := []string{machine.Error(), `use provider "cpu"`}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"flag", nil, []string{"-provider", "cuda", "-model", model, "hello"}},
		{"environment", []string{"S2S_PROVIDER=cuda"}, []string{"-model", model, "hello"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(tc.env, tc.args...)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("got %v, want exit status 1:\n%s", err, out)
			}
			for _, want := range missing {
				if !strings.Contains(out, want) {
					t.Errorf("error %q does not say %q", out, want)
				}
			}
			if strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.HasPrefix(out, "gen: runtime: ") {
				t.Errorf("want one error line, got:\n%s", out)
			}
		})
	}
	t.Run("doctor", func(t *testing.T) {
		out, err := run(nil, "doctor", "-provider", "cuda")
		if err == nil {
			t.Fatalf("gen doctor -provider cuda found nothing to fix:\n%s", out)
		}
		for _, want := range []string{"found in   next to the executable", "CUDAExecutionProvider, CPUExecutionProvider",
			"libcublas.so.13", "beside ONNX Runtime", "usable", "no: " + machine.Error(), "To fix:"} {
			if !strings.Contains(out, want) {
				t.Errorf("gen doctor -provider cuda does not say %q:\n%s", want, out)
			}
		}
	})
	t.Run("a CUDA library missing", func(t *testing.T) {
		os.Remove(filepath.Join(root, ".ort", "cuda", "lib", "libcublasLt.so.13"))
		out, err := run(nil, "-provider", "cuda", "-model", model, "hello")
		if err == nil || !strings.Contains(out, "libcublasLt.so.13, which the CUDA provider links, is neither in") || !strings.Contains(out, "scripts/setup.sh ort-cuda") {
			t.Fatalf("got %v:\n%s", err, out)
		}
	})
	t.Run("the CPU provider is not affected", func(t *testing.T) {
		// gen was built in this checkout: its .ort/lib serves the CPU.
		out, err := run(nil, "-model", model, "hello")
		if err != nil || strings.TrimSpace(out) != "HH EH L OW" {
			t.Fatalf("got %v: %s", err, out)
		}
	})
}
