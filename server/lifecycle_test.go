package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/server"
)

// countingEngine counts each batch's stream events, and how many came
// after the batch's context ended.
type countingEngine struct {
	g       *s2s.Generator
	delay   time.Duration // per event: makes requests long
	mu      sync.Mutex
	after   []int // events after the context ended, per finished batch
	running atomic.Int32
	done    chan struct{}
}

func (e *countingEngine) GenerateIDs(ctx context.Context, ids [][]int64, opts s2s.GenerateOptions, stream s2s.StreamFunc) ([]s2s.Output, error) {
	e.running.Add(1)
	defer e.running.Add(-1)
	// after counts the events the Generator delivers once ctx has ended:
	// those a batch makes after its client left.
	after := 0
	outs, err := e.g.GenerateIDs(ctx, ids, opts, func(ev s2s.Event) error {
		if ctx.Err() != nil {
			after++
		}
		if e.delay > 0 {
			time.Sleep(e.delay)
		}
		if stream != nil {
			return stream(ev)
		}
		return nil
	})
	if ctx.Err() != nil {
		e.mu.Lock()
		e.after = append(e.after, after)
		e.mu.Unlock()
	}
	if e.done != nil {
		e.done <- struct{}{}
	}
	return outs, err
}

// long asks for exactly n tokens.
func long(n int) map[string]any {
	return map[string]any{"max_new_tokens": n, "min_new_tokens": n}
}

// TestDisconnectFreesSlot holds the only slot with a long stream, reads a
// few events and hangs up: the batch stops within one decoder step (at
// most one event after its context ended), the slot is free again, and
// the next request is served. The same for a client that gives up on a
// non-streaming request.
func TestDisconnectFreesSlot(t *testing.T) {
	g := openGen(t, t5Tiny)
	eng := &countingEngine{g: g, done: make(chan struct{}, 4)}
	ts := start(t, g, func(c *server.Config) {
		c.Engine = eng
		c.Batcher.MaxConcurrent, c.Batcher.MaxBatches, c.Batcher.MaxQueue = 1, 1, 1
	})
	check := func(t *testing.T) {
		t.Helper()
		select {
		case <-eng.done:
		case <-time.After(20 * time.Second):
			t.Fatal("the batch of a client that left is still running after 20 s")
		}
		eng.mu.Lock()
		n := len(eng.after)
		after := 0
		if n > 0 {
			after = eng.after[n-1]
		}
		eng.mu.Unlock()
		if n == 0 {
			t.Fatal("the batch ended with its context still live: the client's leaving did not reach it")
		}
		if after > 1 {
			t.Errorf("%d events after the client left; the batch must stop within one step", after)
		}
		deadline := time.Now().Add(5 * time.Second)
		for ts.Scheduler().Load().Running != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the slot is still held: %+v", ts.Scheduler().Load())
			}
			time.Sleep(time.Millisecond)
		}
		status, _, body := ts.post(t, "/generate", map[string]any{"inputs": "next", "parameters": map[string]any{"max_new_tokens": 4}})
		if status != 200 {
			t.Errorf("the next request: %d %s", status, body)
		}
		t.Logf("events after the client left: %d", after)
	}

	t.Run("stream", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"inputs": "a very long answer", "parameters": long(1000)})
		resp, err := http.Post(ts.url+"/generate_stream", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(resp.Body)
		for events := 0; events < 5; {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("the stream ended after %d events: %v", events, err)
			}
			if strings.HasPrefix(line, "data:") {
				events++
			}
		}
		resp.Body.Close() // hangs up: the connection closes mid-stream
		check(t)
	})

	t.Run("non-stream", func(t *testing.T) {
		eng.delay = 2 * time.Millisecond // 1000 events take 2 s at least
		defer func() { eng.delay = 0 }()
		ctx, cancel := context.WithCancel(context.Background())
		body, _ := json.Marshal(map[string]any{"inputs": "a very long answer", "parameters": long(1000)})
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"/generate", bytes.NewReader(body))
		errc := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		for eng.running.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("the client's request ended with %v, want context.Canceled", err)
		}
		check(t)
	})
}

// TestShutdownDrains starts requests, then shuts down: readiness and new
// requests get 503 at once, and the requests in flight finish.
func TestShutdownDrains(t *testing.T) {
	g := openGen(t, t5Tiny)
	eng := &countingEngine{g: g, delay: time.Millisecond}
	ts := start(t, g, func(c *server.Config) { c.Engine = eng; c.Batcher.Batching, c.Batcher.MaxBatches = false, 4 })
	opts := g.Defaults()
	opts.MaxNewTokens, opts.MinNewTokens = 150, 150
	want := direct(t, g, opts, "drain me")[0].Text()

	var wg sync.WaitGroup
	results := make(chan string, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, _, events := ts.stream(t, "/generate_stream", map[string]any{"inputs": "drain me", "parameters": long(150)})
				var ev struct {
					GeneratedText *string `json:"generated_text"`
				}
				json.Unmarshal([]byte(events[len(events)-1]), &ev)
				if ev.GeneratedText == nil {
					results <- "stream ended without generated_text: " + events[len(events)-1]
					return
				}
				results <- *ev.GeneratedText
				return
			}
			status, _, body := ts.post(t, "/generate", map[string]any{"inputs": "drain me", "parameters": long(150)})
			if status != 200 {
				results <- fmt.Sprintf("%d %s", status, body)
				return
			}
			results <- decode(t, body)["generated_text"].(string)
		}()
	}
	for ts.Scheduler().Load().Running < 4 {
		time.Sleep(time.Millisecond)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shut <- ts.Shutdown(ctx)
	}()
	for !ts.Draining() {
		time.Sleep(time.Millisecond)
	}
	if status, _ := ts.get(t, "/v2/health/ready"); status != http.StatusServiceUnavailable {
		t.Errorf("readiness while draining: %d, want 503", status)
	}
	if status, _ := ts.get(t, "/v2/health/live"); status != http.StatusOK {
		t.Errorf("liveness while draining: %d, want 200", status)
	}
	status, h, _ := ts.post(t, "/generate", map[string]any{"inputs": "too late"})
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("a new request while draining: %d (Retry-After %q), want 503 with Retry-After", status, h.Get("Retry-After"))
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r != want {
			t.Errorf("a request in flight at shutdown gave %q, want %q", r, want)
		}
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestShutdownStopsLateRequests shuts down with a drain window shorter
// than the requests: streams end with an error event, other requests get
// 503, and Shutdown reports the deadline.
func TestShutdownStopsLateRequests(t *testing.T) {
	g := openGen(t, t5Tiny)
	eng := &countingEngine{g: g, delay: 10 * time.Millisecond}
	ts := start(t, g, func(c *server.Config) { c.Engine = eng; c.Batcher.Batching, c.Batcher.MaxBatches = false, 4 })
	type answer struct {
		status int
		last   string
	}
	answers := make(chan answer, 3)
	body, _ := json.Marshal(map[string]any{"inputs": "never finishes in time", "parameters": long(1000)})
	for _, path := range []string{"/generate_stream", "/generate", "/v1/completions"} {
		go func() {
			b := body
			if path == "/v1/completions" {
				b, _ = json.Marshal(map[string]any{"model": "t5-tiny", "prompt": "never", "max_tokens": 1000, "min_new_tokens": 1000, "stream": true})
			}
			resp, err := http.Post(ts.url+path, "application/json", bytes.NewReader(b))
			if err != nil {
				answers <- answer{last: err.Error()}
				return
			}
			defer resp.Body.Close()
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				events := sseEvents(t, resp.Body)
				answers <- answer{resp.StatusCode, events[len(events)-1]}
				return
			}
			data, _ := io.ReadAll(resp.Body)
			answers <- answer{resp.StatusCode, string(data)}
		}()
	}
	for ts.Scheduler().Load().Running < 3 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown past its window: %v, want context.DeadlineExceeded", err)
	}
	for range 3 {
		a := <-answers
		switch {
		case a.status == 200 && strings.Contains(a.last, `"error"`) && strings.Contains(a.last, "shutting down"):
		case a.status == http.StatusServiceUnavailable && strings.Contains(a.last, "shutting down"):
		default:
			t.Errorf("a request stopped by shutdown ended with %d %s; want a stream's error event or a 503", a.status, a.last)
		}
	}
}

// TestConcurrentClients runs many clients at once over every route family
// (run it with -race): every answer is the library's.
func TestConcurrentClients(t *testing.T) {
	g := openGen(t, t5Tiny)
	ts := start(t, g, func(c *server.Config) { c.Batcher.MaxQueue = 1024 })
	inputs := []string{"one", "two words", "three words here", "four"}
	opts := g.Defaults()
	opts.MaxNewTokens = 8
	want := map[string]string{}
	for _, in := range inputs {
		want[in] = direct(t, g, opts, in)[0].Text()
	}
	var wg sync.WaitGroup
	for c := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 3 {
				in := inputs[(c+r)%len(inputs)]
				var got string
				switch (c + r) % 4 {
				case 0:
					_, _, b := ts.post(t, "/generate", map[string]any{"inputs": in, "parameters": map[string]any{"max_new_tokens": 8}})
					got, _ = decode(t, b)["generated_text"].(string)
				case 1:
					_, _, events := ts.stream(t, "/generate_stream", map[string]any{"inputs": in, "parameters": map[string]any{"max_new_tokens": 8}})
					var ev struct {
						GeneratedText string `json:"generated_text"`
					}
					json.Unmarshal([]byte(events[len(events)-1]), &ev)
					got = ev.GeneratedText
				case 2:
					_, _, events := ts.stream(t, "/v1/completions", map[string]any{"model": "t5-tiny", "prompt": in, "max_tokens": 8, "stream": true})
					for _, e := range events[:len(events)-1] {
						var ch struct{ Choices []struct{ Text string } }
						json.Unmarshal([]byte(e), &ch)
						for _, cc := range ch.Choices {
							got += cc.Text
						}
					}
				default:
					_, _, b := ts.post(t, "/v2/models/t5-tiny/infer", map[string]any{"parameters": map[string]any{"max_new_tokens": 8},
						"inputs": []map[string]any{{"name": "text_input", "shape": []int{1}, "datatype": "BYTES", "data": []string{in}}}})
					var v struct{ Outputs []struct{ Data []string } }
					json.Unmarshal(b, &v)
					if len(v.Outputs) == 1 && len(v.Outputs[0].Data) == 1 {
						got = v.Outputs[0].Data[0]
					}
				}
				if got != want[in] {
					t.Errorf("client %d request %d (%q): %q, want %q", c, r, in, got, want[in])
				}
			}
		}()
	}
	wg.Wait()
}
