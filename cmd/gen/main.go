// Command gen generates text with a sequence-to-sequence model directory.
//
//	gen -model DIR "text"         print the output for one input
//	gen -model DIR < inputs.txt   one output line per input line
//	gen -model DIR -json "text"   JSON lines: input, output, tokens, score
//
// Flags are named after the Hugging Face generate() parameters; gen -h lists
// them all. Each flag can also come from an S2S_* environment variable or a
// YAML file given with -config.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
