package server

import (
	"net/http"
	"sort"
	"strings"
	"time"
)

// OpenAI's completion shapes (the openai Python client's
// types/completion.py, completion_choice.py, completion_usage.py and
// model.py; errors {"error": {"message", "type", "param", "code"}}).

type oaChoice struct {
	Index        int     `json:"index"`
	Text         string  `json:"text"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type oaUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type oaCompletion struct {
	ID                string     `json:"id"`
	Object            string     `json:"object"`
	Created           int64      `json:"created"`
	Model             string     `json:"model"`
	SystemFingerprint string     `json:"system_fingerprint"`
	Choices           []oaChoice `json:"choices"`
	Usage             *oaUsage   `json:"usage,omitempty"`
}

type oaModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// oaFinish names a finish reason as OpenAI does: "stop" for EOS and stop
// strings, "length" for max_tokens.
func oaFinish(reason string) *string {
	r := "stop"
	if reason == "length" {
		r = "length"
	}
	return &r
}

// oaCall is a validated completion request.
type oaCall struct {
	req          *genRequest
	n            int  // choices per prompt
	byScore      bool // sampled best_of > n: keep the n best scores
	echo         bool
	stream       bool
	includeUsage bool
}

// validateOpenAI turns a completion request into a genRequest. Unset
// temperature, top_p and max_tokens take the model's defaults (as vLLM
// does with the model's generation config); temperature 0 is greedy,
// above 0 samples; n > 1 without sampling returns the n best of beam
// search. Any Hugging Face generate() parameter may be added by its own
// name (extra_body in the openai client).
func (s *Server) validateOpenAI(p params) (*oaCall, *apiError) {
	const f = famOpenAI
	model, ok := p.take("model")
	if !ok {
		return nil, invalid(f, "model", "model is missing; use %q (GET /v1/models)", s.cfg.ModelName)
	}
	if name, _ := model.(string); name != s.cfg.ModelName {
		return nil, &apiError{status: http.StatusNotFound, kind: kindNotFound, param: "model",
			msg: "the model `" + name + "` does not exist; this server serves `" + s.cfg.ModelName + "`"}
	}
	oc := &oaCall{n: 1}
	var e *apiError
	if oc.stream, _, e = p.boolean(f, "stream"); e != nil {
		return nil, e
	}
	if so, ok := p.take("stream_options"); ok {
		m, isObj := so.(map[string]any)
		if !isObj {
			return nil, invalid(f, "stream_options", "stream_options must be an object")
		}
		oc.includeUsage, _ = m["include_usage"].(bool)
	}
	if oc.echo, _, e = p.boolean(f, "echo"); e != nil {
		return nil, e
	}
	for _, key := range []string{"logprobs", "suffix"} {
		if e := p.unsupported(f, key); e != nil {
			return nil, e
		}
	}
	for _, key := range []string{"presence_penalty", "frequency_penalty"} {
		if e := p.unsupported(f, key, 0); e != nil {
			return nil, e
		}
	}
	if e := p.unsupported(f, "logit_bias", map[string]any{}); e != nil {
		return nil, e
	}
	p.take("user")
	stops, e := p.stops(f, "stop")
	if e != nil {
		return nil, e
	}
	whole := func(key string, least float64) (int, bool, *apiError) {
		x, ok, e := p.number(f, key)
		if e != nil || !ok {
			return 0, ok, e
		}
		if x < least || x != float64(int(x)) {
			return 0, false, invalid(f, key, "%s must be a whole number of %v or more", key, least)
		}
		return int(x), true, nil
	}
	maxTokens, hasMax, e := whole("max_tokens", 1)
	if e != nil {
		return nil, e
	}
	n, hasN, e := whole("n", 1)
	if e != nil {
		return nil, e
	}
	bestOf, hasBest, e := whole("best_of", 1)
	if e != nil {
		return nil, e
	}
	seed, hasSeed, e := whole("seed", 0)
	if e != nil {
		return nil, e
	}
	temp, hasTemp, e := p.number(f, "temperature")
	if e != nil {
		return nil, e
	}
	topP, hasTopP, e := p.number(f, "top_p")
	if e != nil {
		return nil, e
	}
	prompt, ok := p.take("prompt")
	if !ok {
		return nil, invalid(f, "prompt", "prompt is missing")
	}
	inputs, ids, e := oaPrompt(prompt)
	if e != nil {
		return nil, e
	}
	opts, e := p.apply(f, s.cfg.Generation)
	if e != nil {
		return nil, e
	}
	if hasMax {
		opts.MaxNewTokens = maxTokens
		opts.MinNewTokens = min(opts.MinNewTokens, maxTokens)
	}
	switch {
	case hasTemp && temp < 0:
		return nil, invalid(f, "temperature", "temperature must be 0 or more")
	case hasTemp && temp == 0:
		opts.DoSample = false
	case hasTemp:
		opts.DoSample, opts.Temperature = true, temp
	}
	if hasTopP {
		opts.TopP = topP
		if topP < 1 && !(hasTemp && temp == 0) {
			opts.DoSample = true
		}
	}
	if hasSeed {
		opts.Seed = uint64(seed)
	}
	if hasN {
		oc.n = n
	}
	if !hasBest {
		bestOf = oc.n
	}
	if bestOf < oc.n {
		return nil, invalid(f, "best_of", "best_of (%d) must be at least n (%d)", bestOf, oc.n)
	}
	if oc.stream && bestOf > oc.n {
		return nil, invalid(f, "best_of", "best_of above n cannot be streamed")
	}
	if opts.DoSample {
		opts.NumReturnSequences = bestOf
		oc.byScore = bestOf > oc.n
	} else if bestOf > 1 || oc.n > 1 {
		opts.NumBeams = max(opts.NumBeams, bestOf)
		opts.NumReturnSequences = oc.n
	}
	sampling(&opts, hasSeed)
	req, e := s.prepare(f, inputs, ids, opts, stops)
	if e != nil {
		return nil, e
	}
	if ids != nil {
		for i, seq := range ids {
			req.inputs[i] = s.g.Tokenizer().Decode(seq, false)
		}
	}
	oc.req = req
	return oc, nil
}

// oaPrompt reads a prompt: a string, a list of strings, a list of token
// ids or a list of lists of token ids.
func oaPrompt(v any) ([]string, [][]int64, *apiError) {
	const f = famOpenAI
	bad := invalid(f, "prompt", "prompt must be a string, a list of strings, a list of token ids or a list of lists of token ids")
	ids := func(x []any) ([]int64, bool) {
		out := make([]int64, len(x))
		for i, e := range x {
			n, ok := e.(float64)
			if !ok || n != float64(int64(n)) {
				return nil, false
			}
			out[i] = int64(n)
		}
		return out, true
	}
	switch x := v.(type) {
	case string:
		return []string{x}, nil, nil
	case []any:
		if len(x) == 0 {
			return nil, nil, invalid(f, "prompt", "prompt is an empty list")
		}
		switch x[0].(type) {
		case string:
			out := make([]string, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, nil, bad
				}
				out[i] = s
			}
			return out, nil, nil
		case float64:
			seq, ok := ids(x)
			if !ok {
				return nil, nil, bad
			}
			return nil, [][]int64{seq}, nil
		case []any:
			out := make([][]int64, len(x))
			for i, e := range x {
				l, ok := e.([]any)
				if !ok {
					return nil, nil, bad
				}
				if out[i], ok = ids(l); !ok {
					return nil, nil, bad
				}
			}
			return nil, out, nil
		}
	}
	return nil, nil, bad
}

// choices lays results out as OpenAI choices: prompt i's k-th is
// choice i*n+k.
func (oc *oaCall) choices(res [][]seqResult) ([]oaChoice, int) {
	var out []oaChoice
	generated := 0
	for i, seqs := range res {
		if oc.byScore {
			sort.SliceStable(seqs, func(a, b int) bool { return seqs[a].Score > seqs[b].Score })
		}
		for k := 0; k < oc.n && k < len(seqs); k++ {
			text := seqs[k].Text
			if oc.echo {
				text = oc.req.inputs[i] + text
			}
			out = append(out, oaChoice{Index: i*oc.n + k, Text: text, FinishReason: oaFinish(seqs[k].Finish)})
		}
		for _, q := range seqs {
			generated += q.N
		}
	}
	return out, generated
}

func (s *Server) openaiCompletions(w http.ResponseWriter, r *http.Request) {
	const f = famOpenAI
	if s.refuse(w, r, f) {
		return
	}
	var p params
	if e := s.decodeBody(f, r, &p); e != nil {
		s.fail(w, r, f, e)
		return
	}
	if p == nil {
		s.fail(w, r, f, invalid(f, "", "the request body must be a JSON object"))
		return
	}
	oc, e := s.validateOpenAI(p)
	if e != nil {
		s.fail(w, r, f, e)
		return
	}
	head := oaCompletion{ID: "cmpl-" + info(r.Context()).id, Object: "text_completion", Created: time.Now().Unix(),
		Model: s.cfg.ModelName, SystemFingerprint: "s2s-" + s.cfg.Version}
	if oc.stream {
		s.openaiStream(w, r, oc, head)
		return
	}
	res, e := s.generate(r.Context(), f, oc.req, nil)
	if e != nil {
		s.fail(w, r, f, e)
		return
	}
	ch, generated := oc.choices(res)
	prompt := oc.req.inputTokens()
	head.Choices = ch
	head.Usage = &oaUsage{PromptTokens: prompt, CompletionTokens: generated, TotalTokens: prompt + generated}
	s.ok(w, head)
}

// openaiStream streams a completion: a chunk per piece of text (finish
// reason null), a last chunk per choice with its finish reason, a usage
// chunk when stream_options.include_usage is set, then [DONE].
func (s *Server) openaiStream(w http.ResponseWriter, r *http.Request, oc *oaCall, head oaCompletion) {
	const f = famOpenAI
	sse := newSSE(w, s.cfg.WriteTimeout)
	streamed := map[int]*strings.Builder{}
	chunkOf := func(c oaChoice) oaCompletion {
		h := head
		h.Choices = []oaChoice{c}
		return h
	}
	if oc.echo {
		for i, in := range oc.req.inputs {
			if err := sse.event("", chunkOf(oaChoice{Index: i * oc.n, Text: in})); err != nil {
				return
			}
		}
	}
	emit := func(chunks []chunk) error {
		for _, c := range chunks {
			if c.text == "" || c.seq >= oc.n {
				continue
			}
			idx := c.input*oc.n + c.seq
			if streamed[idx] == nil {
				streamed[idx] = &strings.Builder{}
			}
			streamed[idx].WriteString(c.text)
			if err := sse.event("", chunkOf(oaChoice{Index: idx, Text: c.text})); err != nil {
				return err
			}
		}
		return nil
	}
	res, e := s.generate(r.Context(), f, oc.req, emit)
	if e != nil {
		if !sse.started {
			s.fail(w, r, f, e)
			return
		}
		info(r.Context()).fail(e)
		sse.event("", e.body(f))
		return
	}
	generated := 0
	for i, seqs := range res {
		for k, q := range seqs {
			generated += q.N
			if k >= oc.n {
				continue
			}
			idx := i*oc.n + k
			// Beam search streams the best sequence only: the others
			// (and anything held back) come whole at the end.
			sent := ""
			if b := streamed[idx]; b != nil {
				sent = b.String()
			}
			if rest, ok := strings.CutPrefix(q.Text, sent); ok && rest != "" {
				if err := sse.event("", chunkOf(oaChoice{Index: idx, Text: rest})); err != nil {
					return
				}
			}
			if err := sse.event("", chunkOf(oaChoice{Index: idx, Text: "", FinishReason: oaFinish(q.Finish)})); err != nil {
				return
			}
		}
	}
	if oc.includeUsage {
		h := head
		h.Choices = []oaChoice{}
		prompt := oc.req.inputTokens()
		h.Usage = &oaUsage{PromptTokens: prompt, CompletionTokens: generated, TotalTokens: prompt + generated}
		if err := sse.event("", h); err != nil {
			return
		}
	}
	sse.event("", "[DONE]")
}

func (s *Server) openaiModels(w http.ResponseWriter, r *http.Request) {
	s.ok(w, map[string]any{"object": "list", "data": []oaModel{s.oaModel()}})
}

func (s *Server) openaiModel(w http.ResponseWriter, r *http.Request) {
	if name := r.PathValue("model"); name != s.cfg.ModelName {
		s.fail(w, r, famOpenAI, &apiError{status: http.StatusNotFound, kind: kindNotFound, param: "model",
			msg: "the model `" + name + "` does not exist; this server serves `" + s.cfg.ModelName + "`"})
		return
	}
	s.ok(w, s.oaModel())
}

func (s *Server) oaModel() oaModel {
	return oaModel{ID: s.cfg.ModelName, Object: "model", Created: startTime.Unix(), OwnedBy: "s2s"}
}

// startTime is when the process started (the models' "created").
var startTime = time.Now()
