package server

import (
	"net/http"
	"sort"
)

// TGI's request and answer shapes (text-generation-inference
// router/src/lib.rs: GenerateRequest, GenerateResponse, StreamResponse,
// Details, Token, ErrorResponse).

type tgiRequest struct {
	Inputs     *string `json:"inputs"`
	Parameters params  `json:"parameters"`
	Stream     bool    `json:"stream"` // POST / only
}

type tgiToken struct {
	ID      int64    `json:"id"`
	Text    string   `json:"text"`
	Logprob *float64 `json:"logprob"` // per-token log-probabilities are not kept: null, as TGI's schema allows
	Special bool     `json:"special"`
}

type tgiBestOf struct {
	GeneratedText   string     `json:"generated_text"`
	FinishReason    string     `json:"finish_reason"`
	GeneratedTokens int        `json:"generated_tokens"`
	Seed            *uint64    `json:"seed"`
	Prefill         []tgiToken `json:"prefill"`
	Tokens          []tgiToken `json:"tokens"`
	Score           *float64   `json:"score,omitempty"` // ours: the sequence's score
}

type tgiDetails struct {
	FinishReason    string      `json:"finish_reason"`
	GeneratedTokens int         `json:"generated_tokens"`
	Seed            *uint64     `json:"seed"`
	Prefill         []tgiToken  `json:"prefill"`
	Tokens          []tgiToken  `json:"tokens"`
	BestOfSequences []tgiBestOf `json:"best_of_sequences,omitempty"`
	Score           *float64    `json:"score,omitempty"` // ours: the sequence's score
}

type tgiResponse struct {
	GeneratedText string      `json:"generated_text"`
	Details       *tgiDetails `json:"details,omitempty"`
}

type tgiStreamDetails struct {
	FinishReason    string  `json:"finish_reason"`
	GeneratedTokens int     `json:"generated_tokens"`
	Seed            *uint64 `json:"seed"`
	InputLength     int     `json:"input_length"`
}

type tgiStreamEvent struct {
	Index         int               `json:"index"`
	Token         tgiToken          `json:"token"`
	GeneratedText *string           `json:"generated_text"`
	Details       *tgiStreamDetails `json:"details"`
}

// tgiFinish names a finish reason as TGI does.
func tgiFinish(reason string) string {
	switch reason {
	case "eos":
		return "eos_token"
	case finishStop:
		return "stop_sequence"
	}
	return reason
}

// tgiCall is a validated TGI request.
type tgiCall struct {
	req            *genRequest
	details        bool
	fullText       bool
	bestOf         int
	seed           *uint64
	returnedByBest bool // best_of: return the best-scoring sample first
}

// validateTGI turns a TGI request into a genRequest: TGI's parameters,
// then any Hugging Face generate() parameter by its own name (num_beams,
// length_penalty, early_stopping, num_return_sequences, ...).
func (s *Server) validateTGI(in *tgiRequest, stream bool) (*tgiCall, *apiError) {
	const f = famTGI
	if in.Inputs == nil {
		return nil, invalid(f, "inputs", "inputs is missing; give the text to generate from")
	}
	p := in.Parameters
	if p == nil {
		p = params{}
	}
	tc := &tgiCall{bestOf: 1}
	var e *apiError
	if tc.details, _, e = p.boolean(f, "details"); e != nil {
		return nil, e
	}
	if tc.fullText, _, e = p.boolean(f, "return_full_text"); e != nil {
		return nil, e
	}
	stops, e := p.stops(f, "stop")
	if e != nil {
		return nil, e
	}
	for _, key := range []string{"watermark", "decoder_input_details"} {
		if e := p.unsupported(f, key, false); e != nil {
			return nil, e
		}
	}
	for _, key := range []string{"typical_p", "grammar", "adapter_id", "top_n_tokens"} {
		if e := p.unsupported(f, key, 0); e != nil {
			return nil, e
		}
	}
	if e := p.unsupported(f, "frequency_penalty", 0); e != nil {
		return nil, e
	}
	truncate, hasTruncate, e := p.number(f, "truncate")
	if e != nil {
		return nil, e
	}
	bestOf, hasBestOf, e := p.number(f, "best_of")
	if e != nil {
		return nil, e
	}
	// TGI samples when do_sample is set or any sampling parameter is.
	_, hasT := p["temperature"]
	_, hasK := p["top_k"]
	_, hasP := p["top_p"]
	sample := (hasT && p["temperature"] != nil) || (hasK && p["top_k"] != nil) || (hasP && p["top_p"] != nil)
	if ds, ok := p["do_sample"].(bool); ok && ds {
		sample = true
	}
	_, seedGiven := p["seed"]
	seedGiven = seedGiven && p["seed"] != nil
	if sample {
		p["do_sample"] = true
	}
	opts, e := p.apply(f, s.cfg.Generation)
	if e != nil {
		return nil, e
	}
	if hasBestOf && bestOf != 1 {
		switch {
		case bestOf < 1 || bestOf != float64(int(bestOf)):
			return nil, invalid(f, "best_of", "best_of must be a whole number of 1 or more")
		case stream:
			return nil, invalid(f, "best_of", "best_of > 1 is not supported when streaming")
		case !opts.DoSample:
			return nil, invalid(f, "best_of", "best_of > 1 needs sampling: set do_sample or a sampling parameter")
		case seedGiven:
			return nil, invalid(f, "best_of", "best_of > 1 cannot take a seed (each sample needs its own)")
		}
		tc.bestOf = int(bestOf)
		opts.NumReturnSequences = tc.bestOf
		tc.returnedByBest = true
	}
	seed := sampling(&opts, seedGiven)
	if opts.DoSample {
		tc.seed = &seed
	}
	input := *in.Inputs
	var ids [][]int64
	if hasTruncate {
		if truncate < 1 || truncate != float64(int(truncate)) {
			return nil, invalid(f, "truncate", "truncate must be a whole number of 1 or more")
		}
		enc, err := s.g.Tokenizer().Encode(input)
		if err != nil {
			return nil, invalid(f, "inputs", "%s", trimPrefix(err.Error()))
		}
		if n := int(truncate); len(enc) > n {
			enc = enc[len(enc)-n:] // TGI keeps the last tokens
		}
		ids = [][]int64{enc}
	}
	req, e := s.prepare(f, []string{input}, ids, opts, stops)
	if e != nil {
		return nil, e
	}
	req.inputs = []string{input}
	tc.req = req
	return tc, nil
}

// tokens describes ids as TGI tokens.
func (s *Server) tokens(ids []int64) []tgiToken {
	out := make([]tgiToken, len(ids))
	tok := s.g.Tokenizer()
	for i, id := range ids {
		out[i] = tgiToken{ID: id, Text: tok.Decode([]int64{id}, false), Special: s.special[id]}
	}
	return out
}

func (s *Server) tgiGenerate(w http.ResponseWriter, r *http.Request) {
	if s.refuse(w, r, famTGI) {
		return
	}
	var in tgiRequest
	if e := s.decodeBody(famTGI, r, &in); e != nil {
		s.fail(w, r, famTGI, e)
		return
	}
	s.tgiRun(w, r, &in)
}

func (s *Server) tgiGenerateStream(w http.ResponseWriter, r *http.Request) {
	if s.refuse(w, r, famTGI) {
		return
	}
	var in tgiRequest
	if e := s.decodeBody(famTGI, r, &in); e != nil {
		s.fail(w, r, famTGI, e)
		return
	}
	s.tgiStream(w, r, &in)
}

// tgiCompat is TGI's POST /: generate or generate_stream by "stream".
func (s *Server) tgiCompat(w http.ResponseWriter, r *http.Request) {
	if s.refuse(w, r, famTGI) {
		return
	}
	var in tgiRequest
	if e := s.decodeBody(famTGI, r, &in); e != nil {
		s.fail(w, r, famTGI, e)
		return
	}
	if in.Stream {
		s.tgiStream(w, r, &in)
		return
	}
	s.tgiRun(w, r, &in)
}

func (s *Server) tgiRun(w http.ResponseWriter, r *http.Request, in *tgiRequest) {
	tc, e := s.validateTGI(in, false)
	if e != nil {
		s.fail(w, r, famTGI, e)
		return
	}
	res, e := s.generate(r.Context(), famTGI, tc.req, nil)
	if e != nil {
		s.fail(w, r, famTGI, e)
		return
	}
	seqs := res[0]
	if tc.returnedByBest { // best_of: the best-scoring sample first
		sort.SliceStable(seqs, func(i, j int) bool { return seqs[i].Score > seqs[j].Score })
	}
	prefix := ""
	if tc.fullText {
		prefix = tc.req.inputs[0]
	}
	out := tgiResponse{GeneratedText: prefix + seqs[0].Text}
	if tc.details {
		d := &tgiDetails{FinishReason: tgiFinish(seqs[0].Finish), GeneratedTokens: seqs[0].N, Seed: tc.seed,
			Prefill: []tgiToken{}, Tokens: s.tokens(seqs[0].Tokens), Score: score(seqs[0].Score)}
		for _, q := range seqs[1:] {
			d.BestOfSequences = append(d.BestOfSequences, tgiBestOf{GeneratedText: prefix + q.Text, FinishReason: tgiFinish(q.Finish),
				GeneratedTokens: q.N, Seed: tc.seed, Prefill: []tgiToken{}, Tokens: s.tokens(q.Tokens), Score: score(q.Score)})
		}
		out.Details = d
	}
	s.ok(w, out)
}

// tgiStream answers with server-sent events: one per token with
// generated_text null, then the last token's event with generated_text
// and (when asked) details. An error after the stream began is an event
// {"error", "error_type"}, as TGI sends.
func (s *Server) tgiStream(w http.ResponseWriter, r *http.Request, in *tgiRequest) {
	tc, e := s.validateTGI(in, true)
	if e != nil {
		s.fail(w, r, famTGI, e)
		return
	}
	sse := newSSE(w, s.cfg.WriteTimeout)
	index := 0
	var held *tgiToken // the last token is sent with the final event
	var lead string    // text that came before any token
	send := func(t tgiToken) error {
		index++
		return sse.event("", tgiStreamEvent{Index: index, Token: t})
	}
	emit := func(chunks []chunk) error {
		for _, ch := range chunks {
			if ch.input != 0 || ch.seq != 0 {
				continue
			}
			if len(ch.ids) == 0 {
				if held != nil {
					held.Text += ch.text
				} else {
					lead += ch.text
				}
				continue
			}
			for i, id := range ch.ids {
				t := tgiToken{ID: id, Special: s.special[id]}
				if i == len(ch.ids)-1 {
					t.Text, lead = lead+ch.text, ""
				}
				if held != nil {
					if err := send(*held); err != nil {
						return err
					}
				}
				held = &t
			}
		}
		return nil
	}
	res, e := s.generate(r.Context(), famTGI, tc.req, emit)
	if e != nil {
		if !sse.started {
			s.fail(w, r, famTGI, e)
			return
		}
		info(r.Context()).fail(e)
		sse.event("", e.body(famTGI))
		return
	}
	best := res[0][0]
	if held == nil {
		var id int64
		if n := len(best.Tokens); n > 0 {
			id = best.Tokens[n-1]
		}
		held = &tgiToken{ID: id, Special: s.special[id]}
	}
	held.Text += lead
	index++
	text := best.Text
	if tc.fullText {
		text = tc.req.inputs[0] + text
	}
	final := tgiStreamEvent{Index: index, Token: *held, GeneratedText: &text}
	if tc.details {
		final.Details = &tgiStreamDetails{FinishReason: tgiFinish(best.Finish), GeneratedTokens: best.N, Seed: tc.seed,
			InputLength: len(tc.req.ids[0])}
	}
	sse.event("", final)
}

// tgiInfoResponse is TGI's /info, with our limits and batching added.
type tgiInfoResponse struct {
	ModelID               string  `json:"model_id"`
	ModelSHA              *string `json:"model_sha"`
	ModelPipelineTag      string  `json:"model_pipeline_tag"`
	MaxConcurrentRequests int     `json:"max_concurrent_requests"`
	MaxBestOf             int     `json:"max_best_of"`
	MaxStopSequences      int     `json:"max_stop_sequences"`
	MaxInputTokens        int     `json:"max_input_tokens"`
	MaxTotalTokens        int     `json:"max_total_tokens"`
	ValidationWorkers     int     `json:"validation_workers"`
	MaxClientBatchSize    int     `json:"max_client_batch_size"`
	Router                string  `json:"router"`
	Version               string  `json:"version"`
	SHA                   *string `json:"sha"`
	DockerLabel           *string `json:"docker_label"`

	Limits   map[string]any `json:"limits"`
	Batching map[string]any `json:"batching"`
	Defaults map[string]any `json:"generation_defaults"`
}

func (s *Server) tgiInfo(w http.ResponseWriter, r *http.Request) {
	l, b := s.limits, s.cfg.Batcher
	d := s.cfg.Generation
	s.ok(w, tgiInfoResponse{
		ModelID: s.cfg.ModelName, ModelPipelineTag: "text2text-generation",
		MaxConcurrentRequests: b.MaxConcurrent, MaxBestOf: l.MaxReturnSequences, MaxStopSequences: s.cfg.MaxStopSequences,
		MaxInputTokens: l.MaxInputTokens, MaxTotalTokens: l.MaxInputTokens + l.MaxNewTokens, MaxClientBatchSize: l.MaxInputs,
		Router: "s2s", Version: s.cfg.Version,
		Limits: map[string]any{
			"max_inputs": l.MaxInputs, "max_input_tokens": l.MaxInputTokens, "max_new_tokens": l.MaxNewTokens,
			"max_beams": l.MaxBeams, "max_return_sequences": l.MaxReturnSequences, "max_rows": l.MaxRows,
			"max_body_bytes": s.cfg.MaxBodyBytes, "max_header_bytes": s.cfg.MaxHeaderBytes,
			"max_stop_sequences": s.cfg.MaxStopSequences, "max_stop_bytes": s.cfg.MaxStopBytes,
			"max_concurrent_requests": b.MaxConcurrent, "max_queue": b.MaxQueue,
			"request_timeout": s.cfg.RequestTimeout.String(),
		},
		Batching: map[string]any{
			"enabled": b.Batching, "scheduler": b.Scheduler, "join_wait_steps": b.JoinWait, "join_ratio": b.JoinRatio, "window": b.Window.String(), "max_batch_rows": b.MaxBatchRows, "max_batches": b.MaxBatches,
		},
		Defaults: map[string]any{
			"max_new_tokens": d.MaxNewTokens, "num_beams": d.NumBeams, "do_sample": d.DoSample,
			"temperature": d.Temperature, "top_k": d.TopK, "top_p": d.TopP, "length_penalty": d.LengthPenalty,
			"early_stopping": d.EarlyStopping, "num_return_sequences": d.NumReturnSequences,
		},
	})
}

func (s *Server) tgiHealth(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.fail(w, r, famTGI, &apiError{status: http.StatusServiceUnavailable, kind: kindShutdown, msg: "shutting down"})
		return
	}
	w.WriteHeader(http.StatusOK)
}
