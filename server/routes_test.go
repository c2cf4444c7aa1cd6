package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s/server"
)

// TestG2PAnswers wants every route family to give the shipped model's
// pronunciations: the same text the library gives.
func TestG2PAnswers(t *testing.T) {
	g := openGen(t, g2pEn)
	ts := start(t, g, nil)
	want := map[string]string{"hello": "HH EH L OW", "world": "W ER L D"}
	for in, out := range want {
		if got := direct(t, g, g.Defaults(), in)[0].Text(); got != out {
			t.Fatalf("the library gives %q for %q, the test expects %q", got, in, out)
		}
	}

	status, _, body := ts.post(t, "/generate", map[string]any{"inputs": "hello"})
	if status != 200 || decode(t, body)["generated_text"] != want["hello"] {
		t.Errorf("TGI /generate: %d %s", status, body)
	}
	status, _, body = ts.post(t, "/v1/completions", map[string]any{"model": "g2p-en", "prompt": []string{"hello", "world"}})
	if status != 200 {
		t.Fatalf("OpenAI /v1/completions: %d %s", status, body)
	}
	var c struct {
		Choices []struct {
			Index        int
			Text         string
			FinishReason string `json:"finish_reason"`
		}
	}
	json.Unmarshal(body, &c)
	if len(c.Choices) != 2 || c.Choices[0].Text != want["hello"] || c.Choices[1].Text != want["world"] || c.Choices[1].Index != 1 || c.Choices[0].FinishReason != "stop" {
		t.Errorf("OpenAI /v1/completions: %s", body)
	}
	status, _, body = ts.post(t, "/v2/models/g2p-en/infer", map[string]any{"id": "x1",
		"inputs": []map[string]any{{"name": "text_input", "shape": []int{2, 1}, "datatype": "BYTES", "data": [][]string{{"hello"}, {"world"}}}}})
	var v struct {
		ModelName string `json:"model_name"`
		ID        string
		Outputs   []struct {
			Name, Datatype string
			Shape          []int
			Data           []string
		}
	}
	json.Unmarshal(body, &v)
	if status != 200 || v.ID != "x1" || v.ModelName != "g2p-en" || len(v.Outputs) != 1 || v.Outputs[0].Name != "text_output" ||
		v.Outputs[0].Datatype != "BYTES" || len(v.Outputs[0].Shape) != 2 || strings.Join(v.Outputs[0].Data, "|") != "HH EH L OW|W ER L D" {
		t.Errorf("v2 infer: %d %s", status, body)
	}
}

// TestTGIRoutes checks TGI's shapes on t5-tiny against the library.
func TestTGIRoutes(t *testing.T) {
	g := openGen(t, t5Tiny)
	ts := start(t, g, nil)
	opts := g.Defaults()
	opts.MaxNewTokens = 12
	want := direct(t, g, opts, "The quick brown fox")[0]

	t.Run("generate", func(t *testing.T) {
		status, _, body := ts.post(t, "/generate", map[string]any{"inputs": "The quick brown fox", "parameters": map[string]any{"max_new_tokens": 12, "details": true}})
		var r struct {
			GeneratedText string `json:"generated_text"`
			Details       struct {
				FinishReason    string `json:"finish_reason"`
				GeneratedTokens int    `json:"generated_tokens"`
				Seed            *uint64
				Prefill         []any
				Tokens          []struct {
					ID      int64
					Text    string
					Logprob *float64
					Special bool
				}
			}
		}
		if err := json.Unmarshal(body, &r); err != nil || status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		if r.GeneratedText != want.Text() || r.Details.GeneratedTokens != len(want.Sequences[0].Tokens) || len(r.Details.Tokens) != r.Details.GeneratedTokens ||
			r.Details.Seed != nil || r.Details.Prefill == nil {
			t.Errorf("got %s; the library gives %q (%d tokens)", body, want.Text(), len(want.Sequences[0].Tokens))
		}
		for i, tok := range r.Details.Tokens {
			if tok.ID != want.Sequences[0].Tokens[i] {
				t.Errorf("token %d is %d, the library's %d", i, tok.ID, want.Sequences[0].Tokens[i])
			}
		}
		wantFinish := map[string]string{"eos": "eos_token", "length": "length"}[string(want.Sequences[0].FinishReason)]
		if r.Details.FinishReason != wantFinish {
			t.Errorf("finish_reason %q, want %q", r.Details.FinishReason, wantFinish)
		}
		// Without details: generated_text only.
		_, _, body = ts.post(t, "/generate", map[string]any{"inputs": "The quick brown fox", "parameters": map[string]any{"max_new_tokens": 12}})
		if m := decode(t, body); m["details"] != nil || m["generated_text"] != want.Text() {
			t.Errorf("without details: %s", body)
		}
	})

	t.Run("generate_stream", func(t *testing.T) {
		status, ctype, events := ts.stream(t, "/generate_stream", map[string]any{"inputs": "The quick brown fox", "parameters": map[string]any{"max_new_tokens": 12, "details": true}})
		if status != 200 || ctype != "text/event-stream" {
			t.Fatalf("%d %s %v", status, ctype, events)
		}
		var text strings.Builder
		for i, e := range events {
			var ev struct {
				Index int
				Token struct {
					ID      int64
					Text    string
					Special bool
				}
				GeneratedText *string `json:"generated_text"`
				Details       *struct {
					FinishReason    string `json:"finish_reason"`
					GeneratedTokens int    `json:"generated_tokens"`
					InputLength     int    `json:"input_length"`
				}
			}
			if err := json.Unmarshal([]byte(e), &ev); err != nil {
				t.Fatalf("event %d: %v: %s", i, err, e)
			}
			if ev.Index != i+1 || ev.Token.ID != want.Sequences[0].Tokens[i] {
				t.Errorf("event %d: index %d token %d, want %d %d", i, ev.Index, ev.Token.ID, i+1, want.Sequences[0].Tokens[i])
			}
			text.WriteString(ev.Token.Text)
			last := i == len(events)-1
			if (ev.GeneratedText != nil) != last || (ev.Details != nil) != last {
				t.Errorf("event %d of %d: generated_text %v, details %v; only the last has them", i, len(events), ev.GeneratedText, ev.Details)
			}
			if last && (*ev.GeneratedText != want.Text() || ev.Details.GeneratedTokens != len(events) || ev.Details.InputLength == 0) {
				t.Errorf("last event %s; the library gives %q", e, want.Text())
			}
		}
		if len(events) != len(want.Sequences[0].Tokens) {
			t.Errorf("%d events for %d tokens", len(events), len(want.Sequences[0].Tokens))
		}
		if text.String() != want.Text() {
			t.Errorf("token texts add up to %q, generated_text is %q", text.String(), want.Text())
		}
	})

	t.Run("compat and HF beam parameters", func(t *testing.T) {
		bo := opts
		bo.NumBeams, bo.NumReturnSequences, bo.LengthPenalty, bo.EarlyStopping = 4, 3, 0.8, "true"
		want := direct(t, g, bo, "a beam search")[0]
		status, _, body := ts.post(t, "/", map[string]any{"inputs": "a beam search", "parameters": map[string]any{
			"max_new_tokens": 12, "num_beams": 4, "num_return_sequences": 3, "length_penalty": 0.8, "early_stopping": true, "details": true}})
		var r struct {
			GeneratedText string `json:"generated_text"`
			Details       struct {
				BestOf []struct {
					GeneratedText string `json:"generated_text"`
				} `json:"best_of_sequences"`
			}
		}
		json.Unmarshal(body, &r)
		if status != 200 || r.GeneratedText != want.Sequences[0].Text || len(r.Details.BestOf) != 2 ||
			r.Details.BestOf[0].GeneratedText != want.Sequences[1].Text || r.Details.BestOf[1].GeneratedText != want.Sequences[2].Text {
			t.Errorf("POST / with beams: %d %s; the library gives %+v", status, body, want.Sequences)
		}
		status, ctype, events := ts.stream(t, "/", map[string]any{"inputs": "a beam search", "stream": true, "parameters": map[string]any{"max_new_tokens": 12, "num_beams": 4}})
		if status != 200 || ctype != "text/event-stream" || !strings.Contains(events[len(events)-1], `"generated_text":`) {
			t.Errorf("POST / with stream: %d %v", status, events)
		}
	})

	t.Run("sampling reports its seed", func(t *testing.T) {
		p := map[string]any{"max_new_tokens": 12, "do_sample": true, "details": true}
		_, _, b1 := ts.post(t, "/generate", map[string]any{"inputs": "sample me", "parameters": p})
		seed := decode(t, b1)["details"].(map[string]any)["seed"]
		if seed == nil {
			t.Fatalf("a sampled answer without a seed: %s", b1)
		}
		p["seed"] = seed
		_, _, b2 := ts.post(t, "/generate", map[string]any{"inputs": "sample me", "parameters": p})
		if decode(t, b1)["generated_text"] != decode(t, b2)["generated_text"] {
			t.Errorf("the reported seed does not reproduce the answer: %s vs %s", b1, b2)
		}
	})

	t.Run("stop sequences", func(t *testing.T) {
		full := want.Text()
		words := strings.Fields(full)
		if len(words) < 3 {
			t.Skipf("t5-tiny's output %q is too short to cut", full)
		}
		stop := words[2]
		at := strings.Index(full, stop)
		status, _, body := ts.post(t, "/generate", map[string]any{"inputs": "The quick brown fox", "parameters": map[string]any{"max_new_tokens": 12, "stop": []string{stop}, "details": true}})
		m := decode(t, body)
		if status != 200 || m["generated_text"] != full[:at] || m["details"].(map[string]any)["finish_reason"] != "stop_sequence" {
			t.Errorf("stop %q: %s; want %q", stop, body, full[:at])
		}
		_, _, events := ts.stream(t, "/generate_stream", map[string]any{"inputs": "The quick brown fox", "parameters": map[string]any{"max_new_tokens": 12, "stop": []string{stop}}})
		var text strings.Builder
		for _, e := range events {
			var ev struct{ Token struct{ Text string } }
			json.Unmarshal([]byte(e), &ev)
			text.WriteString(ev.Token.Text)
		}
		if text.String() != full[:at] {
			t.Errorf("streamed with stop %q: %q, want %q", stop, text.String(), full[:at])
		}
	})

	t.Run("info and health", func(t *testing.T) {
		status, body := ts.get(t, "/info")
		m := decode(t, body)
		lim, _ := m["limits"].(map[string]any)
		if status != 200 || m["model_id"] != "t5-tiny" || m["max_input_tokens"] == nil || lim == nil || lim["max_new_tokens"] == nil ||
			lim["max_body_bytes"] == nil || lim["max_queue"] == nil || lim["max_concurrent_requests"] == nil || m["batching"] == nil {
			t.Errorf("/info: %d %s", status, body)
		}
		if status, _ := ts.get(t, "/health"); status != 200 {
			t.Errorf("/health: %d", status)
		}
	})
}

// TestOpenAIRoutes checks OpenAI's completion shapes against the library.
func TestOpenAIRoutes(t *testing.T) {
	g := openGen(t, t5Tiny)
	ts := start(t, g, nil)
	opts := g.Defaults()
	opts.MaxNewTokens = 10
	want := direct(t, g, opts, "first prompt", "second one")

	type completion struct {
		ID, Object, Model string
		Created           int64
		Choices           []struct {
			Index        int
			Text         string
			Logprobs     any
			FinishReason *string `json:"finish_reason"`
		}
		Usage *struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		}
	}
	status, _, body := ts.post(t, "/v1/completions", map[string]any{"model": "t5-tiny", "prompt": []string{"first prompt", "second one"}, "max_tokens": 10, "temperature": 0})
	var c completion
	if err := json.Unmarshal(body, &c); err != nil || status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	if c.Object != "text_completion" || !strings.HasPrefix(c.ID, "cmpl-") || c.Model != "t5-tiny" || c.Created == 0 || len(c.Choices) != 2 ||
		c.Choices[0].Text != want[0].Text() || c.Choices[1].Text != want[1].Text() || c.Usage == nil ||
		c.Usage.CompletionTokens != len(want[0].Sequences[0].Tokens)+len(want[1].Sequences[0].Tokens) ||
		c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens {
		t.Errorf("got %s; the library gives %q, %q", body, want[0].Text(), want[1].Text())
	}

	// Token ids as the prompt.
	ids, _ := g.Tokenizer().Encode("first prompt")
	_, _, body = ts.post(t, "/v1/completions", map[string]any{"model": "t5-tiny", "prompt": ids, "max_tokens": 10})
	json.Unmarshal(body, &c)
	if len(c.Choices) != 1 || c.Choices[0].Text != want[0].Text() {
		t.Errorf("token-id prompt: %s", body)
	}

	// Streaming, n = 2 sampled, with usage.
	status, _, events := ts.stream(t, "/v1/completions", map[string]any{"model": "t5-tiny", "prompt": "first prompt", "max_tokens": 10,
		"n": 2, "temperature": 0.9, "seed": 5, "stream": true, "stream_options": map[string]any{"include_usage": true}})
	if status != 200 || len(events) < 4 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream: %d %v", status, events)
	}
	texts, finished := map[int]string{}, map[int]string{}
	var usage bool
	for _, e := range events[:len(events)-1] {
		var ch completion
		if err := json.Unmarshal([]byte(e), &ch); err != nil {
			t.Fatalf("chunk %s: %v", e, err)
		}
		if ch.Usage != nil {
			usage = len(ch.Choices) == 0 && ch.Usage.CompletionTokens > 0
			continue
		}
		for _, cc := range ch.Choices {
			if _, done := finished[cc.Index]; done {
				t.Errorf("choice %d has a chunk after its finish_reason", cc.Index)
			}
			texts[cc.Index] += cc.Text
			if cc.FinishReason != nil {
				finished[cc.Index] = *cc.FinishReason
			}
		}
	}
	so := opts
	so.DoSample, so.Temperature, so.Seed, so.NumReturnSequences = true, 0.9, 5, 2
	sw := direct(t, g, so, "first prompt")[0]
	for k := range 2 {
		if texts[k] != sw.Sequences[k].Text || finished[k] == "" {
			t.Errorf("choice %d streamed %q (finish %q); the library samples %q", k, texts[k], finished[k], sw.Sequences[k].Text)
		}
	}
	if !usage {
		t.Error("include_usage gave no usage chunk with empty choices")
	}

	// n = 3 without sampling: the 3 best of beam search.
	bo := opts
	bo.NumBeams, bo.NumReturnSequences = 3, 3
	bw := direct(t, g, bo, "first prompt")[0]
	_, _, body = ts.post(t, "/v1/completions", map[string]any{"model": "t5-tiny", "prompt": "first prompt", "max_tokens": 10, "n": 3, "temperature": 0})
	json.Unmarshal(body, &c)
	if len(c.Choices) != 3 || c.Choices[2].Text != bw.Sequences[2].Text || c.Choices[2].Index != 2 {
		t.Errorf("n=3 greedy: %s; beam search gives %+v", body, bw.Sequences)
	}

	status, body = ts.get(t, "/v1/models")
	if m := decode(t, body); status != 200 || m["object"] != "list" || m["data"].([]any)[0].(map[string]any)["id"] != "t5-tiny" {
		t.Errorf("/v1/models: %d %s", status, body)
	}
	if status, _ = ts.get(t, "/v1/models/t5-tiny"); status != 200 {
		t.Errorf("/v1/models/t5-tiny: %d", status)
	}
	status, _, body = ts.post(t, "/v1/completions", map[string]any{"model": "gpt-4", "prompt": "x"})
	if e, _ := decode(t, body)["error"].(map[string]any); status != http.StatusNotFound || e["message"] == nil || e["type"] == nil {
		t.Errorf("unknown model: %d %s", status, body)
	}
}

// TestV2Routes checks the Open Inference Protocol routes and Triton's
// generate extension.
func TestV2Routes(t *testing.T) {
	g := openGen(t, t5Tiny)
	ts := start(t, g, func(c *server.Config) { c.ModelName = "tiny" })
	opts := g.Defaults()
	opts.MaxNewTokens, opts.NumBeams, opts.NumReturnSequences = 8, 2, 2
	want := direct(t, g, opts, "one", "two")

	for path, wantBody := range map[string]string{
		"/v2":                              `"extensions"`,
		"/v2/health/live":                  `"live":true`,
		"/v2/health/ready":                 `"ready":true`,
		"/v2/models/tiny":                  `"text_output"`,
		"/v2/models/tiny/ready":            `"ready":true`,
		"/v2/models/tiny/versions/1":       `"inputs"`,
		"/v2/models/tiny/versions/1/ready": `"name":"tiny"`,
	} {
		if status, body := ts.get(t, path); status != 200 || !strings.Contains(string(body), wantBody) {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
	}
	if status, body := ts.get(t, "/v2/models/other"); status != 404 || decode(t, body)["error"] == nil {
		t.Errorf("unknown model: %d %s", status, body)
	}

	status, _, body := ts.post(t, "/v2/models/tiny/infer", map[string]any{
		"inputs":     []map[string]any{{"name": "text_input", "shape": []int{2}, "datatype": "BYTES", "data": []string{"one", "two"}}},
		"outputs":    []map[string]any{{"name": "text_output"}},
		"parameters": map[string]any{"max_new_tokens": 8, "num_beams": 2, "num_return_sequences": 2}})
	var v struct {
		Outputs []struct {
			Shape []int
			Data  []string
		}
	}
	json.Unmarshal(body, &v)
	wantData := []string{want[0].Sequences[0].Text, want[0].Sequences[1].Text, want[1].Sequences[0].Text, want[1].Sequences[1].Text}
	if status != 200 || len(v.Outputs) != 1 || strings.Join(v.Outputs[0].Data, "|") != strings.Join(wantData, "|") ||
		len(v.Outputs[0].Shape) != 2 || v.Outputs[0].Shape[0] != 2 || v.Outputs[0].Shape[1] != 2 {
		t.Errorf("infer: %d %s; want data %q, shape [2 2]", status, body, wantData)
	}

	greedy := g.Defaults()
	greedy.MaxNewTokens = 8
	gw := direct(t, g, greedy, "one")[0].Text()
	status, _, body = ts.post(t, "/v2/models/tiny/generate", map[string]any{"text_input": "one", "parameters": map[string]any{"max_new_tokens": 8}})
	if m := decode(t, body); status != 200 || m["text_output"] != gw {
		t.Errorf("generate: %d %s; want %q", status, body, gw)
	}
	status, _, events := ts.stream(t, "/v2/models/tiny/generate_stream", map[string]any{"text_input": "one", "parameters": map[string]any{"max_new_tokens": 8}})
	var text string
	for _, e := range events {
		var ev struct {
			TextOutput string `json:"text_output"`
		}
		json.Unmarshal([]byte(e), &ev)
		text += ev.TextOutput
	}
	if status != 200 || text != gw || !strings.Contains(events[len(events)-1], "finish_reason") {
		t.Errorf("generate_stream: %d %v; want %q", status, events, gw)
	}
}

// TestMetricsAndPlayground wants the Prometheus text format with every
// family the server declares, and the embedded page at /.
func TestMetricsAndPlayground(t *testing.T) {
	g := openGen(t, t5Tiny)
	ts := start(t, g, nil)
	ts.post(t, "/generate", map[string]any{"inputs": "count me", "parameters": map[string]any{"max_new_tokens": 4}})
	ts.post(t, "/generate", map[string]any{"inputs": "count me", "parameters": map[string]any{"max_new_tokens": 99999}})
	status, body := ts.get(t, "/metrics")
	text := string(body)
	for _, name := range []string{
		`s2s_requests_total{outcome="ok",route="POST /generate"} 1`,
		`s2s_requests_total{outcome="invalid",route="POST /generate"} 1`,
		"s2s_request_duration_seconds_bucket", "s2s_queue_depth", "s2s_batch_size_bucket", "s2s_batch_rows_bucket",
		"s2s_generated_tokens_total", "s2s_time_per_output_token_seconds_bucket", "s2s_time_to_first_token_seconds_bucket",
		"s2s_queue_wait_seconds_bucket", "s2s_requests_running", "go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(text, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if status != 200 {
		t.Errorf("/metrics: %d", status)
	}
	status, body = ts.get(t, "/")
	if status != 200 || !strings.Contains(string(body), "/generate_stream") || !strings.Contains(string(body), "<textarea") {
		t.Errorf("playground: %d %.200s", status, body)
	}
	if status, _ := ts.get(t, "/nope"); status != 404 {
		t.Errorf("GET /nope: %d", status)
	}
}
