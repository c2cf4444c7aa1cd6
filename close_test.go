package s2s_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/runtime"
)

// longOptions makes a request of exactly tokens steps: it cannot end
// before max_new_tokens.
func longOptions(g *s2s.Generator, tokens int) s2s.GenerateOptions {
	o := g.Defaults()
	o.MaxNewTokens, o.MinNewTokens = tokens, tokens
	return o
}

// startRequests starts n requests of tokens steps, each stalling 50 ms in
// its stream callback at its first token, and returns their errors'
// channel once all have produced that token (so all are in flight).
func startRequests(t *testing.T, g *s2s.Generator, n, tokens int) <-chan error {
	t.Helper()
	errs := make(chan error, n)
	var started sync.WaitGroup
	started.Add(n)
	for range n {
		go func() {
			first := true
			_, err := g.Generate(context.Background(), []string{"a long request"}, longOptions(g, tokens), func(s2s.Event) error {
				if first {
					first = false
					started.Done()
					time.Sleep(50 * time.Millisecond)
				}
				return nil
			})
			if first { // it failed before its first token: do not wait for it
				started.Done()
			}
			errs <- err
		}()
	}
	started.Wait()
	return errs
}

// TestCloseStopsRunningRequests wants Close to stop the requests in flight
// (each error reports ErrClosed), to return only after they have, and
// to refuse requests after it. Run under -race it also checks that Close
// and the running decoders share no memory unguarded.
func TestCloseStopsRunningRequests(t *testing.T) {
	g := open(t, filepath.Join("testdata", "t5-tiny"), s2s.Options{Runtime: runtime.Options{IntraOpThreads: 1}})
	errs := startRequests(t, g, 3, 1000)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		select {
		case err := <-errs:
			if !errors.Is(err, s2s.ErrClosed) {
				t.Errorf("a request running at Close got %v, want an error wrapping s2s.ErrClosed", err)
			}
		default:
			t.Fatal("Close returned before a running request did")
		}
	}
	if _, err := g.Generate(context.Background(), []string{"x"}, g.Defaults(), nil); !errors.Is(err, s2s.ErrClosed) {
		t.Fatalf("a request after Close got %v, want s2s.ErrClosed", err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

// TestShutdownDrains wants Shutdown to let running requests finish when
// its context allows, and to stop them (ErrClosed) when it does not.
func TestShutdownDrains(t *testing.T) {
	dir := filepath.Join("testdata", "t5-tiny")
	t.Run("finish", func(t *testing.T) {
		g := open(t, dir, s2s.Options{Runtime: runtime.Options{IntraOpThreads: 1}})
		errs := startRequests(t, g, 2, 100)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("a request drained by Shutdown got %v, want it finished", err)
			}
		}
	})
	t.Run("stop", func(t *testing.T) {
		g := open(t, dir, s2s.Options{Runtime: runtime.Options{IntraOpThreads: 1}})
		errs := startRequests(t, g, 2, 1000)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if err := g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown past its deadline gave %v, want context.DeadlineExceeded", err)
		}
		for range 2 {
			if err := <-errs; !errors.Is(err, s2s.ErrClosed) {
				t.Errorf("a request stopped by Shutdown got %v, want s2s.ErrClosed", err)
			}
		}
	})
}
