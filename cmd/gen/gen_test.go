package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var model = filepath.Join("..", "..", "testdata", "t5-tiny")

func gen(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Execute(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestHelpListsEveryFlag(t *testing.T) {
	_, help, err := gen(t, "", "-h")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h gave %v", err)
	}
	for _, name := range []string{"model", "config", "json", "max-new-tokens", "min-new-tokens", "num-beams",
		"num-return-sequences", "length-penalty", "early-stopping", "do-sample", "temperature", "top-k", "top-p",
		"seed", "repetition-penalty", "no-repeat-ngram-size", "bad-words-ids", "suppress-tokens",
		"forced-bos-token-id", "forced-eos-token-id", "eos-token-id", "pad-token-id", "decoder-start-token-id",
		"ort-lib", "provider", "device-id", "intra-op-threads", "inter-op-threads", "graph-optimization",
		"decoder-graphs", "batch-size", "stream"} {
		if !strings.Contains(help, "-"+name+" ") && !strings.Contains(help, "-"+name+"\n") {
			t.Errorf("-h does not document -%s", name)
		}
	}
}

func TestTextArgument(t *testing.T) {
	out, _, err := gen(t, "", "-model", model, "-max-new-tokens", "8", "hello world")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want one output line, got %q", out)
	}
	// The same input from stdin gives the same line.
	out2, _, err := gen(t, "hello world\n", "-model="+model, "-max-new-tokens=8")
	if err != nil {
		t.Fatal(err)
	}
	if out2 != out {
		t.Fatalf("stdin gave %q, argument gave %q", out2, out)
	}
}

func TestStdinOneLinePerInput(t *testing.T) {
	in := "first line\n\nthird line, after an empty one\nlast without newline"
	for _, bs := range []string{"1", "3"} {
		out, _, err := gen(t, in, "-model", model, "-batch-size", bs, "-max-new-tokens", "6")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out, "\n"); n != 4 {
			t.Fatalf("batch %s: %d output lines for 4 inputs: %q", bs, n, out)
		}
	}
}

func TestJSONLines(t *testing.T) {
	out, _, err := gen(t, "a b c\nd e\n", "-model", model, "-json", "-max-new-tokens", "5")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 JSON lines, got %q", out)
	}
	for i, l := range lines {
		var j jsonLine
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if j.Input != []string{"a b c", "d e"}[i] || len(j.Tokens) == 0 || len(j.Tokens) > 5 || j.FinishReason == "" {
			t.Errorf("line %d: %+v", i, j)
		}
	}
}

func TestPrecedence(t *testing.T) {
	count := func(env map[string]string, args ...string) int {
		for k, v := range env {
			t.Setenv(k, v)
		}
		out, _, err := gen(t, "", append(append([]string{"-model", model, "-json", "-min-new-tokens", "0"}, args...), "some input text")...)
		if err != nil {
			t.Fatal(err)
		}
		var j jsonLine
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatal(err)
		}
		return len(j.Tokens)
	}
	file := filepath.Join(t.TempDir(), "s2s.yaml")
	if err := os.WriteFile(file, []byte("max_new_tokens: 3\nmin_new_tokens: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// min_new_tokens from the file is overridden by the flag (0); max from the file holds.
	if n := count(nil, "-config", file); n > 3 {
		t.Errorf("file max_new_tokens 3 gave %d tokens", n)
	}
	if n := count(map[string]string{"S2S_MAX_NEW_TOKENS": "2"}, "-config", file); n > 2 {
		t.Errorf("env S2S_MAX_NEW_TOKENS=2 over file 3 gave %d tokens", n)
	}
	if n := count(map[string]string{"S2S_MAX_NEW_TOKENS": "2"}, "-config", file, "-max-new-tokens", "1"); n != 1 {
		t.Errorf("flag 1 over env 2 gave %d tokens", n)
	}
}

func TestBadInput(t *testing.T) {
	cases := map[string][]string{
		"no model":        {"hello"},
		"missing model":   {"-model", "/nonexistent/model", "hello"},
		"bad number":      {"-model", model, "-max-new-tokens", "many", "hello"},
		"bad option":      {"-model", model, "-num-beams", "0", "hello"},
		"unknown flag":    {"-model", model, "-frobnicate", "hello"},
		"bad provider":    {"-model", model, "-provider", "tpu", "hello"},
		"bad early stop":  {"-model", model, "-early-stopping", "sometimes", "hello"},
		"bad bad-words":   {"-model", model, "-bad-words-ids", "[[1,", "hello"},
		"eos outside voc": {"-model", model, "-eos-token-id", "99999999", "hello"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			_, stderr, err := gen(t, "", args...)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err, stderr)
		})
	}
}
