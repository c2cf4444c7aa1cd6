package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/server"
)

var t5TinyInplace = filepath.Join("..", "testdata", "t5-tiny-inplace")

// TestSchedulerChoice: auto takes continuous batching for a model in the
// inplace layout and the window for Optimum's layout, with batching off,
// or with a wrapped Engine; asking for continuous on a model that cannot
// join rows, or for an unknown scheduler, is refused at New.
func TestSchedulerChoice(t *testing.T) {
	inplace, optimum := openGen(t, t5TinyInplace), openGen(t, t5Tiny)
	for _, c := range []struct {
		g    *s2s.Generator
		edit func(*server.Config)
		want string
	}{
		{inplace, nil, server.SchedulerContinuous},
		{optimum, nil, server.SchedulerWindow},
		{inplace, func(c *server.Config) { c.Batcher.Batching = false }, server.SchedulerWindow},
		{inplace, func(c *server.Config) { c.Batcher.Scheduler = server.SchedulerWindow }, server.SchedulerWindow},
		{inplace, func(c *server.Config) { c.Engine = inplace }, server.SchedulerWindow},
	} {
		ts := start(t, c.g, c.edit)
		if got := ts.SchedulerKind(); got != c.want {
			t.Errorf("%s: scheduler %q, want %q", c.g.Manifest().Dir, got, c.want)
		}
		_, body := ts.get(t, "/info")
		if got := decode(t, body)["batching"].(map[string]any)["scheduler"]; got != c.want {
			t.Errorf("/info batching.scheduler %v, want %q", got, c.want)
		}
	}
	cfg := server.DefaultConfig()
	cfg.Batcher.Scheduler = server.SchedulerContinuous
	if _, err := server.New(optimum, cfg); !errors.Is(err, s2s.ErrNoContinuous) {
		t.Errorf("continuous on Optimum's layout: %v, want ErrNoContinuous", err)
	}
	cfg.Batcher.Scheduler = "fifo"
	if _, err := server.New(inplace, cfg); err == nil || !strings.Contains(err.Error(), "scheduler") {
		t.Errorf("an unknown scheduler: %v", err)
	}
}

// TestContinuousServedEqualAlone sends requests of different options
// (greedy, beams, seeded sampling, several lengths) over every route
// while a long request runs: they join its batch between steps (the
// batch's stats count the joins, the log the shared batches), and each
// answer is the one decoding it alone gives.
func TestContinuousServedEqualAlone(t *testing.T) {
	g := openGen(t, t5TinyInplace)
	ts := start(t, g, nil)
	cs, ok := ts.Scheduler().(*server.ContinuousScheduler)
	if !ok {
		t.Fatalf("scheduler %T, want the continuous one", ts.Scheduler())
	}
	type req struct {
		in     string
		params map[string]any
		opts   func(*s2s.GenerateOptions)
	}
	reqs := []req{
		{"hello", map[string]any{"max_new_tokens": 12}, func(o *s2s.GenerateOptions) { o.MaxNewTokens = 12 }},
		{"a much longer input than the others here", map[string]any{"max_new_tokens": 20, "num_beams": 3},
			func(o *s2s.GenerateOptions) { o.MaxNewTokens, o.NumBeams = 20, 3 }},
		{"x", map[string]any{"max_new_tokens": 5}, func(o *s2s.GenerateOptions) { o.MaxNewTokens = 5 }},
		{"world wide", map[string]any{"max_new_tokens": 16, "do_sample": true, "seed": 7, "top_k": 20},
			func(o *s2s.GenerateOptions) { o.MaxNewTokens, o.DoSample, o.Seed, o.TopK = 16, true, 7, 20 }},
		{"pronunciation", map[string]any{"max_new_tokens": 9, "num_beams": 2},
			func(o *s2s.GenerateOptions) { o.MaxNewTokens, o.NumBeams = 9, 2 }},
	}
	// The long one holds the batch open while the others arrive.
	longDone := make(chan string, 1)
	go func() {
		_, _, body := ts.post(t, "/generate", map[string]any{"inputs": "keep the batch running", "parameters": long(120)})
		text, _ := decode(t, body)["generated_text"].(string)
		longDone <- text
	}()
	for ts.Scheduler().Load().Running == 0 {
		time.Sleep(time.Millisecond)
	}
	got := make([]string, len(reqs))
	var wg sync.WaitGroup
	for round := range 2 {
		for i, r := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var status int
				var body []byte
				switch (i + round) % 3 {
				case 0:
					status, _, body = ts.post(t, "/generate", map[string]any{"inputs": r.in, "parameters": r.params})
					if status == 200 {
						got[i], _ = decode(t, body)["generated_text"].(string)
					}
				case 1:
					q := map[string]any{"model": ts.ModelName(), "prompt": r.in}
					for k, v := range r.params {
						if k == "max_new_tokens" {
							k = "max_tokens"
						}
						q[k] = v
					}
					status, _, body = ts.post(t, "/v1/completions", q)
					var c struct{ Choices []struct{ Text string } }
					json.Unmarshal(body, &c)
					if len(c.Choices) == 1 {
						got[i] = c.Choices[0].Text
					}
				default:
					_, _, events := ts.stream(t, "/generate_stream", map[string]any{"inputs": r.in, "parameters": r.params})
					var ev struct {
						GeneratedText string `json:"generated_text"`
					}
					status = 200
					if json.Unmarshal([]byte(events[len(events)-1]), &ev) != nil {
						status, body = 0, []byte(events[len(events)-1])
					}
					got[i] = ev.GeneratedText
				}
				if status != 200 {
					t.Errorf("%q: %d %s", r.in, status, body)
				}
			}()
		}
		wg.Wait()
		for i, r := range reqs {
			opts := g.Defaults()
			r.opts(&opts)
			if want := direct(t, g, opts, r.in)[0].Text(); got[i] != want {
				t.Errorf("round %d, %q: served %q, alone %q", round, r.in, got[i], want)
			}
		}
	}
	opts := g.Defaults()
	opts.MaxNewTokens, opts.MinNewTokens = 120, 120
	if text, want := <-longDone, direct(t, g, opts, "keep the batch running")[0].Text(); text != want {
		t.Errorf("the long request: %q, alone %q", text, want)
	}
	st := cs.Stats()
	if st.Joined < len(reqs) {
		t.Errorf("stats %+v: want at least %d requests joined into the running batch", st, len(reqs))
	}
	if l := ts.Scheduler().Load(); l.Queued != 0 || l.Running != 0 {
		t.Errorf("load after every request: %+v", l)
	}
	largest := 0
	for _, line := range strings.Split(ts.logs.String(), "\n") {
		var m struct {
			Msg           string
			BatchRequests int `json:"batch_requests"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "request" {
			largest = max(largest, m.BatchRequests)
		}
	}
	if largest < 2 {
		t.Errorf("no request log shows a shared batch:\n%s", ts.logs.String())
	}
	t.Logf("stats %+v", st)
}

// TestContinuousLeaveAndDrain: a client that hangs up leaves the batch
// (its rows dropped, the load back to zero) while another goes on; a full
// queue answers 503; a drain lets running requests finish and refuses
// new ones, and one whose window closes stops them with an error.
func TestContinuousLeaveAndDrain(t *testing.T) {
	g := openGen(t, t5TinyInplace)
	ts := start(t, g, func(c *server.Config) {
		c.Batcher.MaxQueue, c.Batcher.MaxConcurrent, c.Batcher.MaxBatchRows = 1, 2, 2
		// Steps of at least 2 ms: 300 tokens last long enough for the
		// others to arrive while they run.
		c.Batcher.BeforeStep = func(s2s.ContinuousStats) { time.Sleep(2 * time.Millisecond) }
	})
	opts := g.Defaults()
	opts.MaxNewTokens, opts.MinNewTokens = 300, 300
	want := direct(t, g, opts, "stay")[0].Text()

	ctx, cancel := context.WithCancel(t.Context())
	left := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"/generate_stream",
			strings.NewReader(`{"inputs":"leave","parameters":{"max_new_tokens":300,"min_new_tokens":300}}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var got []byte
			buf := make([]byte, 256)
			for {
				n, rerr := resp.Body.Read(buf)
				got = append(got, buf[:n]...)
				if rerr != nil {
					break
				}
			}
			resp.Body.Close()
			if ctx.Err() == nil {
				err = fmt.Errorf("the stream ended before the client left: %d %.300s", resp.StatusCode, got)
			}
		}
		left <- err
	}()
	for ts.Scheduler().Load().Running < 1 {
		if len(left) > 0 {
			t.Fatalf("the first request ended at once: %v", <-left)
		}
		time.Sleep(time.Millisecond)
	}
	stayed := make(chan string, 1)
	go func() {
		_, _, body := ts.post(t, "/generate", map[string]any{"inputs": "stay", "parameters": long(300)})
		text, _ := decode(t, body)["generated_text"].(string)
		stayed <- text
	}()
	for ts.Scheduler().Load().Running < 2 {
		if len(stayed) > 0 || len(left) > 0 {
			select {
			case err := <-left:
				t.Fatalf("the first request ended before the other joined it: %v", err)
			case text := <-stayed:
				t.Fatalf("the second request ended before the first left: %q", text)
			}
		}
		time.Sleep(time.Millisecond)
	}
	// Both rows are taken: one request waits, the next is refused.
	waiting := make(chan int, 1)
	go func() {
		status, _, _ := ts.post(t, "/generate", map[string]any{"inputs": "wait", "parameters": map[string]any{"max_new_tokens": 4}})
		waiting <- status
	}()
	for ts.Scheduler().Load().Queued < 1 {
		time.Sleep(time.Millisecond)
	}
	if status, h, body := ts.post(t, "/generate", map[string]any{"inputs": "refused"}); status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("past the queue: %d %s, want 503 with Retry-After", status, body)
	}
	cancel()
	<-left
	if status := <-waiting; status != 200 {
		t.Errorf("the waiting request: %d, want 200 once the client that left freed its row", status)
	}
	if got := <-stayed; got != want {
		t.Errorf("the request that stayed: %q, alone %q", got, want)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l := ts.Scheduler().Load(); l.Running != 0 || l.Queued != 0; l = ts.Scheduler().Load() {
		if time.Now().After(deadline) {
			t.Fatalf("the load never went back to zero: %+v", l)
		}
		time.Sleep(time.Millisecond)
	}

	// A drain window shorter than the request: it ends with an error.
	done := make(chan string, 1)
	go func() {
		status, _, body := ts.post(t, "/generate", map[string]any{"inputs": "cut", "parameters": long(1000)})
		done <- fmt.Sprintf("%d %s", status, body)
	}()
	for ts.Scheduler().Load().Running < 1 {
		time.Sleep(time.Millisecond)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer scancel()
	if err := ts.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a short window: %v, want the deadline", err)
	}
	if got := <-done; !strings.HasPrefix(got, "503") {
		t.Errorf("a request cut by the drain: %s, want 503", got)
	}
}
