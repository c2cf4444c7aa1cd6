package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagsAmongTexts: flags after the first text are flags (Go's flag
// package stopped there and took "-num-beams" and "3" for inputs); after
// "--" every argument is a text.
func TestFlagsAmongTexts(t *testing.T) {
	out, _, err := gen(t, "", "-model", model, "hello", "-num-beams", "3", "-num-return-sequences", "3", "-max-new-tokens", "4")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Fatalf("%d lines, want 3 (one input, 3 sequences): %q", n, out)
	}
	out, _, err = gen(t, "", "-model", model, "one", "-max-new-tokens", "4", "two", "--", "-three", "-max-new-tokens", "9")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "\n"); n != 5 {
		t.Fatalf("%d lines, want 5 (one, two, and after --: -three, -max-new-tokens, 9): %q", n, out)
	}
	// "--" as the value of a flag is not the end of the flags.
	if _, _, err := gen(t, "", "-model", model, "-eos-token-id", "--", "x"); err == nil {
		t.Error("-eos-token-id -- accepted")
	}
}

// TestStreamPrintsEverySequence: -stream with -num-return-sequences N
// prints N lines per input, as without -stream (it printed one).
func TestStreamPrintsEverySequence(t *testing.T) {
	for _, args := range [][]string{
		{"-num-beams", "3", "-num-return-sequences", "2"},
		{"-do-sample", "-num-return-sequences", "3", "-seed", "4"},
	} {
		base := append([]string{"-model", model, "-max-new-tokens", "6"}, args...)
		plain, _, err := gen(t, "", append(base, "hello world")...)
		if err != nil {
			t.Fatal(err)
		}
		streamed, _, err := gen(t, "", append(append(base, "-stream"), "hello world")...)
		if err != nil {
			t.Fatal(err)
		}
		if streamed != plain || strings.Count(plain, "\n") < 2 {
			t.Errorf("%v: -stream printed %q, without it %q", args, streamed, plain)
		}
	}
}

// TestHelpShowsArgumentNames: back quotes in a usage text made -h show
// "-model python -m s2s_export".
func TestHelpShowsArgumentNames(t *testing.T) {
	_, help, err := gen(t, "", "-h")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	if !strings.Contains(help, "  -model string\n") || strings.Contains(help, "-model python") {
		t.Errorf("-h shows the model flag as %q", help[strings.Index(help, "  -model"):][:60])
	}
}

// TestStdinBadLines: a line longer than max_input_bytes (here past the
// 16 MB the scanner held, which ended the run), or not UTF-8, is reported
// with its number and skipped; the other lines still run.
func TestStdinBadLines(t *testing.T) {
	in := "first\n" + strings.Repeat("x", 17<<20) + "\nthird \xff\xfe\nfourth a\x00b\r\nfifth"
	out, stderr, err := gen(t, in, "-model", model, "-max-new-tokens", "4")
	if err == nil {
		t.Error("no error status for the skipped lines")
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("%d output lines, want 3 (lines 1, 4 and 5)", n)
	}
	for _, want := range []string{"line 2: ", "max_input_bytes", "-max-input-bytes", "line 3: ", "utf-8"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
	// With -json each skipped line has its JSON line with the error.
	out, _, _ = gen(t, "ok\n\xff\n", "-model", model, "-max-new-tokens", "4", "-json")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], `"error"`) {
		t.Errorf("-json output %q", out)
	}
}

// TestNumericExtremes: numbers past what the host allows give one clear
// error naming the option or limit (and its flag), never a panic.
func TestNumericExtremes(t *testing.T) {
	genCfg := filepath.Join(t.TempDir(), "model")
	copyDir(t, model, genCfg, map[string]string{"generation_config.json": `{"max_length": -9223372036854775808}`})
	beamsCfg := filepath.Join(t.TempDir(), "model")
	copyDir(t, model, beamsCfg, map[string]string{"generation_config.json": `{"num_beams": 100000000}`})
	for name, c := range map[string]struct {
		env  map[string]string
		args []string
		says []string
	}{
		"max-new-tokens max int": {nil, []string{"-max-new-tokens", "9223372036854775807"}, []string{"limit_max_new_tokens", "-limit-max-new-tokens"}},
		"env max int":            {map[string]string{"S2S_MAX_NEW_TOKENS": "9223372036854775807"}, nil, []string{"-limit-max-new-tokens"}},
		"env past int64":         {map[string]string{"S2S_MAX_NEW_TOKENS": "9223372036854775808"}, nil, []string{"max_new_tokens", "out of range"}},
		"generation config":      {nil, []string{"-model", genCfg}, []string{"generation_config.json", "max_length"}},
		"num_beams in config":    {nil, []string{"-model", beamsCfg}, []string{"generation_config.json", "max_beams"}},
		"sampled sequences":      {nil, []string{"-do-sample", "-num-return-sequences", "100000"}, []string{"max_return_sequences", "-max-return-sequences"}},
		"batch size":             {nil, []string{"-batch-size", "100000"}, []string{"batch_size", "max_inputs"}},
		"tiny temperature":       {nil, []string{"-do-sample", "-temperature", "1e-40"}, []string{"temperature"}},
		"length penalty":         {nil, []string{"-num-beams", "2", "-length-penalty", "-1e308"}, []string{"length_penalty"}},
		"nan top-p":              {nil, []string{"-do-sample", "-top-p", "NaN"}, []string{"top_p"}},
		"inf repetition":         {nil, []string{"-repetition-penalty", "Inf"}, []string{"repetition_penalty"}},
		"negative beams":         {nil, []string{"-num-beams", "-1"}, []string{"num_beams"}},
		"huge ngram":             {nil, []string{"-no-repeat-ngram-size", "9223372036854775807"}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := append([]string{"-model", model, "-max-new-tokens", "3"}, c.args...)
			if c.env != nil {
				args = append([]string{"-model", model}, c.args...)
			}
			_, _, err := gen(t, "", append(args, "hello")...)
			if c.says == nil {
				if err != nil {
					t.Fatalf("valid options failed: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%v does not say %q", err, s)
				}
			}
		})
	}
}

// copyDir copies a model directory's files and overwrites some.
func copyDir(t *testing.T, src, dst string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dst, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
