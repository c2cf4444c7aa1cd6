package config

import (
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s/beamsearch"
)

// t5 has no position limit: the request limits apply alone.
var t5 = filepath.Join("..", "testdata", "t5-tiny")

// TestIntegerOverflow: a number past int64 (or int) from a flag, the
// environment, a YAML file or JSON is an error, never a wrapped-around
// value; one within range reaches the limits (tested in s2s).
func TestIntegerOverflow(t *testing.T) {
	for _, env := range []bool{false, true} {
		var err error
		if env {
			t.Setenv("S2S_MAX_NEW_TOKENS", "9223372036854775807")
			_, err = load(t, "-model", t5)
			os.Unsetenv("S2S_MAX_NEW_TOKENS")
		} else {
			_, err = load(t, "-model", t5, "-max-new-tokens", "9223372036854775807")
		}
		if err == nil || !strings.Contains(err.Error(), "limit_max_new_tokens") || !strings.Contains(err.Error(), "-limit-max-new-tokens") {
			t.Errorf("max int (env %v): got %v, want the limit and its flag named", env, err)
		}
	}
	t.Run("env", func(t *testing.T) {
		t.Setenv("S2S_MAX_NEW_TOKENS", "99999999999999999999")
		_, err := load(t, "-model", model)
		if err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Fatalf("got %v, want out of range", err)
		}
	})
	t.Run("env seed negative", func(t *testing.T) {
		t.Setenv("S2S_SEED", "-1")
		if _, err := load(t, "-model", model); err == nil {
			t.Fatal("seed -1 accepted")
		}
	})
	t.Run("seed max", func(t *testing.T) {
		c, err := load(t, "-model", model, "-seed", "9223372036854775807")
		if err != nil || c.Generation.Seed != math.MaxInt64 {
			t.Fatalf("%v %v", c, err)
		}
	})
	for name, yaml := range map[string]string{
		"huge float":    "max_new_tokens: 1e300\n",
		"2^63":          "max_new_tokens: 9223372036854775808\n",
		"huge unsigned": "max_new_tokens: 18446744073709551615\n",
		"fraction":      "num_beams: 2.5\n",
		"nan":           "num_beams: .nan\n",
		"inf":           "top_k: .inf\n",
		"id overflow":   "eos_token_id: [1, 99999999999999999999]\n",
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			if c, err := load(t, "-model", model, "-config", file); err == nil {
				t.Fatalf("%q accepted: %+v", yaml, c.Generation)
			}
		})
	}
	for name, kw := range map[string]map[string]any{
		"json 1e19":  {"max_new_tokens": 1e19},
		"json -1e19": {"max_new_tokens": -1e19},
		"json nan":   {"num_beams": math.NaN()},
		"json inf":   {"top_k": math.Inf(1)},
		"json 2^63":  {"max_new_tokens": 9223372036854775808.0},
	} {
		if _, err := ApplyGenerateKwargs(beamsearch.Defaults(), kw); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// TestEveryOptionAtItsEdges gives each generation flag 0, -1, the largest
// int64, NaN and the infinities: Load accepts it or refuses it with an
// error naming it; none panics.
func TestEveryOptionAtItsEdges(t *testing.T) {
	for _, k := range keys[firstGenerationKey:] {
		for _, v := range []string{"0", "-1", "9223372036854775807", "-9223372036854775808", "NaN", "Inf", "-Inf", "1e-40", "1e308"} {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(discard{})
			RegisterFlags(fs)
			if err := fs.Parse([]string{"-model", model, "-" + flagName(k.name), v}); err != nil {
				continue // the flag package refuses it (an int flag given NaN)
			}
			_, err := Load(fs)
			if err != nil && !strings.Contains(err.Error(), k.name) && !strings.Contains(err.Error(), strings.Split(k.name, "_")[0]) {
				t.Errorf("-%s %s: %v does not name the option", flagName(k.name), v, err)
			}
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestLimitKeys: every limit has a flag, an environment variable and a
// YAML key; limit_max_new_tokens does not clash with max_new_tokens.
func TestLimitKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("max_rows: 64\nmax_new_tokens: 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("S2S_MAX_BEAMS", "4")
	c, err := load(t, "-model", model, "-config", file, "-max-inputs", "8", "-max-input-tokens", "100", "-max-input-bytes", "5000",
		"-limit-max-new-tokens", "50", "-max-return-sequences", "2")
	if err != nil {
		t.Fatal(err)
	}
	l := c.Limits
	if l.MaxInputs != 8 || l.MaxInputTokens != 100 || l.MaxInputBytes != 5000 || l.MaxNewTokens != 50 || l.MaxBeams != 4 ||
		l.MaxReturnSequences != 2 || l.MaxRows != 64 || c.Generation.MaxNewTokens != 9 {
		t.Errorf("limits %+v, max_new_tokens %d", l, c.Generation.MaxNewTokens)
	}
	if _, err := load(t, "-model", model, "-max-beams", "-1"); err == nil || !strings.Contains(err.Error(), "max_beams") {
		t.Errorf("negative limit: %v", err)
	}
	// batch_size cannot exceed max_inputs (every batch would be refused).
	if _, err := load(t, "-model", model, "-batch-size", "100000"); err == nil || !strings.Contains(err.Error(), "max_inputs") {
		t.Errorf("batch_size 100000: %v", err)
	}
	if _, err := ApplyGenerateKwargs(beamsearch.Defaults(), map[string]any{"max_beams": 3}); err == nil {
		t.Error("a limit accepted as a generation option")
	}
}

// TestModelDefaultCapped: the model's default max_new_tokens is capped to
// limit_max_new_tokens, as s2s.Open caps it; a flag's is not.
func TestModelDefaultCapped(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"config.json", "s2s.json", "tokenizer.json", "encoder_model.onnx", "decoder_model_merged.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx"} {
		data, err := os.ReadFile(filepath.Join(model, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"max_length": 200}`), 0o644)
	c, err := load(t, "-model", dir, "-limit-max-new-tokens", "64")
	if err != nil || c.Generation.MaxNewTokens != 64 {
		t.Fatalf("%v, %v", c, err)
	}
	// An explicit max_new_tokens is never changed: over the limit, refused.
	if _, err = load(t, "-model", dir, "-limit-max-new-tokens", "64", "-max-new-tokens", "100"); err == nil || !strings.Contains(err.Error(), "limit_max_new_tokens") {
		t.Fatalf("max_new_tokens 100 over the limit 64: %v", err)
	}
	if c, err = load(t, "-model", dir, "-limit-max-new-tokens", "64", "-max-new-tokens", "30"); err != nil || c.Generation.MaxNewTokens != 30 {
		t.Fatalf("max_new_tokens 30: %v, %v", c, err)
	}
	if _, err := load(t, "-model", dir); err != nil {
		t.Fatal(err)
	}
}
