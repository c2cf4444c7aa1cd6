package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/server"
)

// TestLimits sends a request over each limit to each route family: TGI
// answers 422 with {"error", "error_type"}, OpenAI 400 with its error
// object (code: the limit), v2 400 with {"error"}; every message names the
// limit and the value.
func TestLimits(t *testing.T) {
	g := openGen(t, t5Tiny)
	ts := start(t, g, func(c *server.Config) {
		c.Limits = s2s.Limits{MaxInputs: 2, MaxInputTokens: 16, MaxNewTokens: 32, MaxBeams: 4, MaxReturnSequences: 2, MaxRows: 6}
		c.MaxBodyBytes = 2048
		c.MaxStopSequences, c.MaxStopBytes = 2, 8
	})
	long := strings.Repeat("many words here ", 10)
	cases := []struct {
		limit, value string
		tgi, openai  map[string]any
		v2Params     map[string]any
		v2Inputs     []string
	}{
		{"max_input_tokens", "tokens", map[string]any{"inputs": long}, map[string]any{"prompt": long}, nil, []string{long}},
		{"limit_max_new_tokens", "33", map[string]any{"inputs": "x", "parameters": map[string]any{"max_new_tokens": 33}},
			map[string]any{"prompt": "x", "max_tokens": 33}, map[string]any{"max_new_tokens": 33}, nil},
		{"max_beams", "5", map[string]any{"inputs": "x", "parameters": map[string]any{"num_beams": 5}},
			map[string]any{"prompt": "x", "num_beams": 5}, map[string]any{"num_beams": 5}, nil},
		{"max_return_sequences", "3", map[string]any{"inputs": "x", "parameters": map[string]any{"num_beams": 4, "num_return_sequences": 3}},
			map[string]any{"prompt": "x", "n": 3, "temperature": 0}, map[string]any{"num_beams": 4, "num_return_sequences": 3}, nil},
		{"max_rows", "8", nil, map[string]any{"prompt": []string{"a", "b"}, "num_beams": 4}, map[string]any{"num_beams": 4}, []string{"a", "b"}},
		{"max_inputs", "3", nil, map[string]any{"prompt": []string{"a", "b", "c"}}, nil, []string{"a", "b", "c"}},
		{"max_stop_sequences", "3", map[string]any{"inputs": "x", "parameters": map[string]any{"stop": []string{"a", "b", "c"}}},
			map[string]any{"prompt": "x", "stop": []string{"a", "b", "c"}}, nil, nil},
		{"max_stop_bytes", "9", map[string]any{"inputs": "x", "parameters": map[string]any{"stop": []string{"123456789"}}},
			map[string]any{"prompt": "x", "stop": "123456789"}, nil, nil},
		{"max_body_bytes", "2048", map[string]any{"inputs": strings.Repeat("y", 3000)},
			map[string]any{"prompt": strings.Repeat("y", 3000)}, nil, []string{strings.Repeat("y", 3000)}},
	}
	check := func(t *testing.T, route string, status, want int, body []byte, msg, limit, value string) {
		t.Helper()
		if status != want || !strings.Contains(msg, limit) || !strings.Contains(msg, value) {
			t.Errorf("%s: %d %s; want %d naming %s and %s", route, status, body, want, limit, value)
		}
	}
	for _, c := range cases {
		t.Run(c.limit, func(t *testing.T) {
			if c.tgi != nil {
				status, _, body := ts.post(t, "/generate", c.tgi)
				m := decode(t, body)
				msg, _ := m["error"].(string)
				check(t, "TGI", status, 422, body, msg, c.limit, c.value)
				if m["error_type"] != "validation" {
					t.Errorf("TGI error_type %v, want validation", m["error_type"])
				}
				status, _, body = ts.post(t, "/generate_stream", c.tgi)
				msg, _ = decode(t, body)["error"].(string)
				check(t, "TGI stream", status, 422, body, msg, c.limit, c.value)
			}
			if c.openai != nil {
				req := map[string]any{"model": "t5-tiny"}
				for k, v := range c.openai {
					req[k] = v
				}
				status, _, body := ts.post(t, "/v1/completions", req)
				e, _ := decode(t, body)["error"].(map[string]any)
				msg, _ := e["message"].(string)
				check(t, "OpenAI", status, 400, body, msg, c.limit, c.value)
				if e["type"] != "invalid_request_error" || (c.limit != "max_body_bytes" && e["code"] != c.limit) {
					t.Errorf("OpenAI error object %v: want type invalid_request_error, code %s", e, c.limit)
				}
			}
			if c.v2Params != nil || c.v2Inputs != nil {
				in := c.v2Inputs
				if in == nil {
					in = []string{"x"}
				}
				status, _, body := ts.post(t, "/v2/models/t5-tiny/infer", map[string]any{"parameters": c.v2Params,
					"inputs": []map[string]any{{"name": "text_input", "shape": []int{len(in)}, "datatype": "BYTES", "data": in}}})
				msg, _ := decode(t, body)["error"].(string)
				check(t, "v2", status, 400, body, msg, c.limit, c.value)
			}
		})
	}

	t.Run("max_header_bytes", func(t *testing.T) {
		g := openGen(t, t5Tiny)
		ts := start(t, g, func(c *server.Config) { c.MaxHeaderBytes = 1024 })
		req, _ := http.NewRequest("GET", ts.url+"/health", nil)
		req.Header.Set("X-Big", strings.Repeat("z", 8192))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("an 8 KiB header past max_header_bytes 1024: %d, want 431", resp.StatusCode)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		for _, c := range []struct {
			path, body string
			status     int
		}{
			{"/generate", `{"inputs": "x", "parameters": {"num_beams": 0}}`, 422},
			{"/generate", `{"inputs": "x", "parameters": {"frobnicate": 1}}`, 422},
			{"/generate", `{"inputs": "x", "parameters": {"watermark": true}}`, 422},
			{"/generate", `{"parameters": {}}`, 422},
			{"/generate", `not json`, 422},
			{"/v1/completions", `{"model": "t5-tiny"}`, 400},
			{"/v1/completions", `{"model": "t5-tiny", "prompt": "x", "logprobs": 2}`, 400},
			{"/v1/completions", `{"model": "t5-tiny", "prompt": [1, -5]}`, 400},
			{"/v1/completions", `{"model": "t5-tiny", "prompt": "x", "max_tokens": "lots"}`, 400},
			{"/v2/models/t5-tiny/infer", `{"inputs": [{"name": "text_input", "shape": [2], "datatype": "BYTES", "data": ["one"]}]}`, 400},
			{"/v2/models/t5-tiny/infer", `{"inputs": [{"name": "text_input", "shape": [1], "datatype": "FP32", "data": [1.5]}]}`, 400},
			{"/v2/models/t5-tiny/infer", `{"inputs": [{"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["x"]}], "outputs": [{"name": "logits"}]}`, 400},
		} {
			status, _, body := ts.post(t, c.path, c.body)
			if status != c.status || len(body) == 0 {
				t.Errorf("%s %s: %d %s, want %d", c.path, c.body, status, body, c.status)
			}
		}
	})
}

// blockingEngine holds every batch until release is closed.
type blockingEngine struct {
	g       *s2s.Generator
	started chan struct{}
	release chan struct{}
}

func (e *blockingEngine) GenerateIDs(ctx context.Context, ids [][]int64, opts s2s.GenerateOptions, stream s2s.StreamFunc) ([]s2s.Output, error) {
	e.started <- struct{}{}
	select {
	case <-e.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return e.g.GenerateIDs(ctx, ids, opts, stream)
}

// TestQueueFull fills the one running slot and the queue of 2: the next
// request gets 503 with Retry-After at once, on every route family; the
// others then finish.
func TestQueueFull(t *testing.T) {
	g := openGen(t, t5Tiny)
	eng := &blockingEngine{g: g, started: make(chan struct{}, 8), release: make(chan struct{})}
	ts := start(t, g, func(c *server.Config) {
		c.Engine = eng
		c.Batcher.MaxConcurrent, c.Batcher.MaxBatches, c.Batcher.MaxQueue, c.Batcher.Batching = 1, 1, 2, false
		c.RetryAfter = 3 * time.Second
	})
	done := make(chan int, 3)
	send := func() {
		go func() {
			status, _, _ := ts.post(t, "/generate", map[string]any{"inputs": "wait", "parameters": map[string]any{"max_new_tokens": 3}})
			done <- status
		}()
	}
	// The first must be running before the other two arrive: three at once
	// could find it still queued, and the third would be refused.
	send()
	<-eng.started
	send()
	send()
	deadline := time.Now().Add(10 * time.Second)
	for ts.Scheduler().Load().Queued < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the queue never filled: %+v", ts.Scheduler().Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for path, body := range map[string]any{
		"/generate":                map[string]any{"inputs": "refused"},
		"/v1/completions":          map[string]any{"model": "t5-tiny", "prompt": "refused"},
		"/v2/models/t5-tiny/infer": map[string]any{"inputs": []map[string]any{{"name": "text_input", "shape": []int{1}, "datatype": "BYTES", "data": []string{"x"}}}},
	} {
		began := time.Now()
		status, h, b := ts.post(t, path, body)
		if status != http.StatusServiceUnavailable || h.Get("Retry-After") != "3" || !strings.Contains(string(b), "queue") {
			t.Errorf("%s with the queue full: %d Retry-After %q %s; want 503, Retry-After 3", path, status, h.Get("Retry-After"), b)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("%s: the refusal took %v; it must come at once", path, took)
		}
	}
	close(eng.release)
	for range 3 {
		if s := <-done; s != 200 {
			t.Errorf("a queued request got %d after the queue drained", s)
		}
	}
}

// TestRequestIDAndLog wants X-Request-Id honoured and one log line per
// request with its id, route, sizes, queue wait, time to first token,
// total time and outcome.
func TestRequestIDAndLog(t *testing.T) {
	g := openGen(t, t5Tiny)
	ts := start(t, g, nil)
	req, _ := http.NewRequest("POST", ts.url+"/generate", strings.NewReader(`{"inputs": "log me", "parameters": {"max_new_tokens": 4}}`))
	req.Header.Set("X-Request-Id", "req-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "req-42" {
		t.Errorf("X-Request-Id answered %q, want req-42", resp.Header.Get("X-Request-Id"))
	}
	var line map[string]any
	sc := bufio.NewScanner(strings.NewReader(ts.logs.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["id"] == "req-42" {
			if line != nil {
				t.Errorf("two log lines for one request")
			}
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no log line with id req-42 in:\n%s", ts.logs.String())
	}
	for _, k := range []string{"route", "status", "in_bytes", "out_bytes", "inputs", "input_tokens", "generated_tokens", "queue_wait", "ttft", "total", "outcome"} {
		if _, ok := line[k]; !ok {
			t.Errorf("the log line lacks %s: %v", k, line)
		}
	}
	if line["route"] != "POST /generate" || line["outcome"] != "ok" || line["input_tokens"].(float64) == 0 || line["ttft"].(float64) <= 0 {
		t.Errorf("log line %v", line)
	}
}
