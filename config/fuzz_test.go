package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzFlags parses arbitrary command lines (arguments split at NUL) after
// -model and loads them: an error or a configuration whose options pass
// the limits and Validate; never a panic.
func FuzzFlags(f *testing.F) {
	for _, args := range []string{
		"-max-new-tokens\x009223372036854775807",
		"-num-beams\x004\x00-num-return-sequences\x002\x00-length-penalty\x00-1e308",
		"-do-sample\x00-temperature\x001e-40\x00-top-p\x00NaN",
		"-bad-words-ids\x00[[1,2],[99999999999999999999]]\x00-eos-token-id\x00-1",
		"-seed\x00-5\x00-batch-size\x000",
		"-ort-config\x00a=b,,=\x00-intra-op-threads\x00-1",
	} {
		f.Add(args)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
		fs.SetOutput(discard{})
		RegisterFlags(fs)
		if err := fs.Parse(append([]string{"-model", model}, strings.Split(line, "\x00")...)); err != nil {
			return
		}
		c, err := Load(fs)
		if err != nil {
			return
		}
		if err := c.Limits.WithDefaults().CheckOptions(c.Generation, 256); err != nil {
			t.Fatalf("Load accepted options over the limits: %v", err)
		}
		if err := c.Generation.Validate(800); err != nil {
			t.Fatalf("Load accepted invalid options: %v", err)
		}
	})
}

// FuzzConfigFile loads arbitrary YAML as the -config file, and arbitrary
// values through the environment: an error or a valid configuration;
// never a panic.
func FuzzConfigFile(f *testing.F) {
	f.Add("max_new_tokens: 1e300\nnum_beams: .nan\n", "99999999999999999999")
	f.Add("eos_token_id: [1, 2]\nbad_words_ids: [[4], [6, 7]]\ntemperature: 0.5\n", "3")
	f.Add("top_k: [1, [2]]\nseed: -1\nmax_rows: 1073741824\n", "-1")
	f.Add("model: /etc\nconfig: x\n", "NaN")
	f.Fuzz(func(t *testing.T, yaml, env string) {
		file := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("S2S_TOP_K", strings.ReplaceAll(env, "\x00", "")) // no NUL in the environment
		fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
		RegisterFlags(fs)
		if err := fs.Parse([]string{"-model", model, "-config", file}); err != nil {
			t.Fatal(err)
		}
		c, err := Load(fs)
		if err != nil {
			return
		}
		if err := c.Generation.Validate(800); err != nil {
			t.Fatalf("Load accepted invalid options: %v", err)
		}
	})
}
