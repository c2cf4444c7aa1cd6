package main

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s/config"
)

// FuzzParseArgs parses arbitrary command lines (arguments split at NUL):
// an error, or texts that are arguments of the line in their order, all of
// them after a "--" that ends the flags; never a panic.
func FuzzParseArgs(f *testing.F) {
	f.Add("-model\x00m\x00hello\x00-num-beams\x003")
	f.Add("a\x00--\x00-b\x00--\x00-c")
	f.Add("-eos-token-id\x00--\x00x\x00-json\x00y")
	f.Add("-\x00--x=1\x00---\x00-h")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		fs := flag.NewFlagSet("gen", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		config.RegisterFlags(fs)
		texts, err := parseArgs(fs, args)
		if err != nil {
			return
		}
		// The texts are a subsequence of the arguments.
		i := 0
		for _, a := range args {
			if i < len(texts) && a == texts[i] {
				i++
			}
		}
		if i != len(texts) {
			t.Fatalf("texts %q are not a subsequence of %q", texts, args)
		}
		// Arguments after the last "--" that is not a flag's value are
		// all texts, in order.
		if k := slices.Index(args, "--"); k >= 0 && (k == 0 || !takesValue(fs, args[k-1])) && !slices.Contains(args[:k], "--") {
			if rest := args[k+1:]; len(texts) < len(rest) || !slices.Equal(texts[len(texts)-len(rest):], rest) {
				t.Fatalf("after --: texts %q do not end with %q", texts, rest)
			}
		}
	})
}
