// Command g2p-eval scores a grapheme-to-phoneme model directory through the
// Go host: it generates the pronunciation of every word of a test file with
// greedy search and beam search and prints the word error rate (a word is
// right when the output equals any of its reference pronunciations) and the
// phoneme error rate (edit distance to the closest reference over the
// references' length).
//
//	g2p-eval                                  models/g2p-en on its test.tsv, greedy and beam 5
//	g2p-eval -model DIR -words FILE -beams 1,5,10
//
// The test file has one word per line: word, a tab, and its pronunciations
// (phonemes separated by spaces) joined by " | ". docs/g2p.md describes the
// model and the numbers this prints.
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
	err := Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "g2p-eval:", err)
		os.Exit(1)
	}
}
