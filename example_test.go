package s2s_test

import (
	"context"
	"fmt"
	"log"

	"github.com/s2s-dev/s2s"
)

// Example opens the shipped G2P model, generates two pronunciations as one
// batch, then streams one.
func Example() {
	g, err := s2s.Open("models/g2p-en", s2s.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	ctx := context.Background()
	opts := g.Defaults() // generate() defaults + the model's generation_config.json
	opts.MaxNewTokens = 32
	outs, err := g.Generate(ctx, []string{"hello", "world"}, opts, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range outs {
		fmt.Printf("%s: %s (%s)\n", o.Input, o.Text(), o.Sequences[0].FinishReason)
	}

	opts.NumBeams = 5
	_, err = g.Generate(ctx, []string{"pronunciation"}, opts, func(ev s2s.Event) error {
		fmt.Print(ev.Text) // text as it settles; returning an error stops generation
		if ev.Final {
			fmt.Println()
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// hello: HH EH L OW (eos)
	// world: W ER L D (eos)
	// P R AH N AH N S IY EY SH AH N
}
