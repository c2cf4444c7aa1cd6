package s2s_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s2s-dev/s2s"
)

// TestContinuousMatchesAlone runs requests through a continuous batch, the
// later ones joining while the first runs (rows at different steps), on
// every family, greedy, beam and both mixed: each output must be the one
// Generate gives for the request alone.
func TestContinuousMatchesAlone(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			g := open(t, inplaceDir(family), s2s.Options{})
			goldens := readGoldens(t, filepath.Join("testdata", "goldens", "greedy-"+family+".jsonl"))
			var inputs []string
			for _, gd := range goldens[:8] {
				inputs = append(inputs, gd.Input)
			}
			greedy := g.Defaults()
			greedy.MaxNewTokens = 16
			beam := greedy
			beam.NumBeams, beam.NumReturnSequences = 4, 2
			for _, mode := range []string{"greedy", "beam", "mixed"} {
				t.Run(mode, func(t *testing.T) {
					// Request 0 starts alone (forced to 16 tokens); requests
					// 1-4 are sent before step 2, 5-7 before step 6, and the
					// batch waits a little there so that they are in the
					// queue at the next step boundary.
					wave := []chan struct{}{make(chan struct{}), make(chan struct{})}
					c, err := g.NewContinuous(s2s.ContinuousOptions{BeforeStep: func(st s2s.ContinuousStats) {
						if st.Steps == 2 || st.Steps == 6 {
							close(wave[st.Steps/6])
							time.Sleep(50 * time.Millisecond)
						}
					}})
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					optsOf := func(i int) s2s.GenerateOptions {
						if mode == "beam" || (mode == "mixed" && i%2 == 1) {
							return beam
						}
						return greedy
					}
					first := optsOf(0)
					first.MinNewTokens = first.MaxNewTokens
					outs := make([][]s2s.Output, len(inputs))
					errs := make([]error, len(inputs))
					var wg sync.WaitGroup
					wg.Add(1)
					go func() {
						defer wg.Done()
						outs[0], errs[0] = c.Generate(context.Background(), inputs[:1], first, nil)
					}()
					for i := 1; i < len(inputs); i++ {
						if i == 1 || i == 5 {
							<-wave[i/5]
						}
						wg.Add(1)
						go func() {
							defer wg.Done()
							outs[i], errs[i] = c.Generate(context.Background(), inputs[i:i+1], optsOf(i), nil)
						}()
					}
					wg.Wait()
					for i, in := range inputs {
						if errs[i] != nil {
							t.Fatalf("request %d: %v", i, errs[i])
						}
						o := optsOf(i)
						if i == 0 {
							o = first
						}
						alone, err := g.Generate(context.Background(), []string{in}, o, nil)
						if err != nil {
							t.Fatal(err)
						}
						for k, want := range alone[0].Sequences {
							got := outs[i][0].Sequences[k]
							if !slices.Equal(got.Tokens, want.Tokens) || got.FinishReason != want.FinishReason || got.Text != want.Text {
								t.Errorf("request %d seq %d: continuous %v %q, alone %v %q", i, k, got.Tokens, got.Text, want.Tokens, want.Text)
							}
							if d := got.Score - want.Score; d > 1e-4 || d < -1e-4 {
								t.Errorf("request %d seq %d: score %v, alone %v", i, k, got.Score, want.Score)
							}
						}
					}
					st := c.Stats()
					if st.Joined < len(inputs)-1 || st.Requests != len(inputs) {
						t.Fatalf("stats %+v: requests did not join the running batch", st)
					}
					t.Logf("%+v", st)
				})
			}
		})
	}
}

func TestContinuousNeedsTheInplaceLayout(t *testing.T) {
	g := open(t, filepath.Join("testdata", "t5-tiny"), s2s.Options{})
	if _, err := g.NewContinuous(s2s.ContinuousOptions{}); !errors.Is(err, s2s.ErrNoContinuous) {
		t.Fatalf("NewContinuous on Optimum's layout: %v", err)
	}
	if _, err := g.NewContinuous(s2s.ContinuousOptions{MaxRows: -1}); err == nil {
		t.Fatal("negative max rows accepted")
	}
}

// TestContinuousStopsOneRequest: a request whose context ends, or whose
// stream fails, stops alone; a bad request is refused; the batch goes on.
func TestContinuousStopsOneRequest(t *testing.T) {
	g := open(t, inplaceDir("bart"), s2s.Options{})
	c, err := g.NewContinuous(s2s.ContinuousOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := g.Defaults()
	opts.MaxNewTokens, opts.MinNewTokens = 20, 20
	ctx, cancel := context.WithCancel(context.Background())
	stop := fmt.Errorf("client gone")
	var wg sync.WaitGroup
	var cancelled, streamErr, good error
	var goodOut []s2s.Output
	wg.Add(3)
	go func() {
		defer wg.Done()
		n := 0
		_, cancelled = c.Generate(ctx, []string{"one two three"}, opts, func(s2s.Event) error {
			if n++; n == 3 {
				cancel()
			}
			return nil
		})
	}()
	go func() {
		defer wg.Done()
		n := 0
		_, streamErr = c.Generate(context.Background(), []string{"four five"}, opts, func(s2s.Event) error {
			if n++; n == 5 {
				return stop
			}
			return nil
		})
	}()
	go func() {
		defer wg.Done()
		goodOut, good = c.Generate(context.Background(), []string{"six seven eight"}, opts, nil)
	}()
	wg.Wait()
	if !errors.Is(cancelled, context.Canceled) {
		t.Errorf("cancelled request: %v", cancelled)
	}
	if !errors.Is(streamErr, stop) {
		t.Errorf("failing stream: %v", streamErr)
	}
	if good != nil {
		t.Fatal(good)
	}
	alone, err := g.Generate(context.Background(), []string{"six seven eight"}, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(goodOut[0].Sequences[0].Tokens, alone[0].Sequences[0].Tokens) {
		t.Fatalf("the request left running got %v, alone %v", goodOut[0].Sequences[0].Tokens, alone[0].Sequences[0].Tokens)
	}
	bad := opts
	bad.NumBeams = 0
	if _, err := c.Generate(context.Background(), []string{"x"}, bad, nil); err == nil {
		t.Fatal("num_beams 0 accepted")
	}
	over := opts
	over.MaxNewTokens = 1 << 20
	if _, err := c.Generate(context.Background(), []string{"x"}, over, nil); !errors.Is(err, s2s.ErrLimit) {
		t.Fatalf("a request over the limits: %v", err)
	}
	// A text over max_input_bytes is refused before it is tokenized, as
	// by the Generator.
	_, err = c.Generate(context.Background(), []string{strings.Repeat("x", 1<<20)}, opts, nil)
	wantLimit(t, err, "max_input_bytes")
}

func TestContinuousClose(t *testing.T) {
	g := open(t, inplaceDir("t5"), s2s.Options{})
	c, err := g.NewContinuous(s2s.ContinuousOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := g.Defaults()
	opts.MaxNewTokens, opts.MinNewTokens = 200, 200
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		_, err := c.Generate(context.Background(), []string{"a long one"}, opts, func(s2s.Event) error {
			once.Do(func() { close(started) })
			return nil
		})
		done <- err
	}()
	<-started
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, s2s.ErrClosed) {
		t.Fatalf("request running at Close: %v", err)
	}
	if _, err := c.Generate(context.Background(), []string{"after"}, opts, nil); !errors.Is(err, s2s.ErrClosed) {
		t.Fatalf("request after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	// The Generator is still open.
	if _, err := g.GenerateText(context.Background(), "still here", g.Defaults()); err != nil {
		t.Fatal(err)
	}
}

// TestContinuousJoinWait: requests that arrive while the batch runs are
// held back JoinWait steps, or until they number JoinRatio times the
// requests running, and then join together; the held ones count against
// MaxWaiting; every output is still the one decoding it alone gives.
func TestContinuousJoinWait(t *testing.T) {
	g := open(t, inplaceDir("t5"), s2s.Options{})
	opts := g.Defaults()
	opts.MaxNewTokens = 8
	long := opts
	long.MaxNewTokens, long.MinNewTokens = 24, 24
	for _, tc := range []struct {
		name  string
		copts s2s.ContinuousOptions
		waves map[int]int // requests sent before the step after this many steps
		want  []int       // the step count at which each joined, in order sent
		joins int
	}{
		// Three sent after step 2 are taken in after step 3 and held 5 steps.
		{"wait", s2s.ContinuousOptions{JoinWait: 5}, map[int]int{2: 3}, []int{8, 8, 8}, 1},
		// One running: the first arrival waits for a second (ratio 2).
		{"ratio", s2s.ContinuousOptions{JoinWait: 100, JoinRatio: 2}, map[int]int{2: 1, 6: 1}, []int{7, 7}, 1},
		// No hold: each joins at the next boundary.
		{"none", s2s.ContinuousOptions{}, map[int]int{2: 1, 6: 1}, []int{3, 7}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			waves := map[int]chan struct{}{}
			for s := range tc.waves {
				waves[s] = make(chan struct{})
			}
			copts := tc.copts
			copts.BeforeStep = func(st s2s.ContinuousStats) {
				if w, ok := waves[st.Steps]; ok {
					delete(waves, st.Steps)
					close(w)
					time.Sleep(50 * time.Millisecond)
				}
			}
			c, err := g.NewContinuous(copts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Generate(context.Background(), []string{"the first and longest"}, long, nil); err != nil {
					t.Error(err)
				}
			}()
			inputs := []string{"one", "two three", "four five six", "seven"}
			var mu sync.Mutex
			joinedAt := map[int]int{}
			outs := map[int][]s2s.Output{}
			n := 0
			steps := make([]int, 0, len(tc.waves))
			for s := range tc.waves {
				steps = append(steps, s)
			}
			slices.Sort(steps)
			for _, s := range steps {
				w := waves[s]
				<-w
				for range tc.waves[s] {
					i := n
					n++
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx := s2s.WithJoined(context.Background(), func(int, int) {
							mu.Lock()
							joinedAt[i] = c.Stats().Steps
							mu.Unlock()
						})
						out, err := c.Generate(ctx, inputs[i:i+1], opts, nil)
						if err != nil {
							t.Errorf("request %d: %v", i, err)
						}
						mu.Lock()
						outs[i] = out
						mu.Unlock()
					}()
				}
			}
			wg.Wait()
			for i, want := range tc.want {
				if joinedAt[i] != want {
					t.Errorf("request %d joined after %d steps, want %d", i, joinedAt[i], want)
				}
				alone, err := g.Generate(context.Background(), inputs[i:i+1], opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := outs[i]; len(got) != 1 || !slices.Equal(got[0].Sequences[0].Tokens, alone[0].Sequences[0].Tokens) {
					t.Errorf("request %d: %v, alone %v", i, got, alone[0].Sequences[0].Tokens)
				}
			}
			if st := c.Stats(); st.Joins != tc.joins || st.Joined != len(tc.want) {
				t.Errorf("stats %+v: want %d joins of %d requests", st, tc.joins, len(tc.want))
			}
		})
	}
	t.Run("held requests count against max waiting", func(t *testing.T) {
		started, atStep2, probed := make(chan struct{}), make(chan struct{}), make(chan struct{})
		c, err := g.NewContinuous(s2s.ContinuousOptions{MaxWaiting: 1, JoinWait: 1000, BeforeStep: func(st s2s.ContinuousStats) {
			switch st.Steps {
			case 1: // the held request arrives now
				close(started)
				time.Sleep(100 * time.Millisecond)
			case 2: // it is held: the probe runs now
				close(atStep2)
				select {
				case <-probed:
				case <-time.After(10 * time.Second):
				}
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		wg.Add(2)
		go func() { defer wg.Done(); _, errs[0] = c.Generate(context.Background(), []string{"long"}, long, nil) }()
		<-started
		go func() { defer wg.Done(); _, errs[1] = c.Generate(context.Background(), []string{"held"}, opts, nil) }()
		<-atStep2
		probe := make(chan error, 1)
		go func() { _, err := c.Generate(context.Background(), []string{"refused"}, opts, nil); probe <- err }()
		select {
		case err := <-probe:
			if !errors.Is(err, s2s.ErrBusy) {
				t.Errorf("a request past max_waiting: %v, want ErrBusy", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("a request past max_waiting was queued, not refused")
		}
		close(probed)
		wg.Wait()
		// Held past the batch's end: it ran when the batch emptied.
		if errs[0] != nil || errs[1] != nil {
			t.Fatal(errs)
		}
	})
}
