package server

import (
	"encoding/json"
	"net/http"
)

// The KServe / Open Inference Protocol v2 shapes (open-inference-protocol
// specification/protocol/inference_rest.md), with Triton's text-model
// convention: a BYTES tensor "text_input" in, a BYTES tensor
// "text_output" out, generation parameters in "parameters" by their
// Hugging Face names. Also Triton's generate extension
// (/generate, /generate_stream: {"text_input", "parameters"} in,
// {"text_output"} out).

const (
	v2Input  = "text_input"
	v2Output = "text_output"
)

type v2Tensor struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters params          `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

type v2OutTensor struct {
	Name       string         `json:"name"`
	Shape      []int64        `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       []string       `json:"data"`
}

type v2Request struct {
	ID         string     `json:"id"`
	Parameters params     `json:"parameters"`
	Inputs     []v2Tensor `json:"inputs"`
	Outputs    []struct {
		Name string `json:"name"`
	} `json:"outputs"`
}

type v2Response struct {
	ModelName    string         `json:"model_name"`
	ModelVersion string         `json:"model_version,omitempty"`
	ID           string         `json:"id"`
	Parameters   map[string]any `json:"parameters,omitempty"`
	Outputs      []v2OutTensor  `json:"outputs"`
}

type v2MetaTensor struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// v2Name checks the route's model name (and version, which must be
// absent or "1"); it answers 404 and reports false when it is not ours.
func (s *Server) v2Name(w http.ResponseWriter, r *http.Request) bool {
	name, version := r.PathValue("name"), r.PathValue("version")
	if name == s.cfg.ModelName && (version == "" || version == "1") {
		return true
	}
	msg := "model " + name + " is not served here; this server serves " + s.cfg.ModelName
	if name == s.cfg.ModelName {
		msg = "model " + name + " has version 1 only, not " + version
	}
	s.fail(w, r, famV2, &apiError{status: http.StatusNotFound, kind: kindNotFound, msg: msg})
	return false
}

func (s *Server) v2Server(w http.ResponseWriter, r *http.Request) {
	s.ok(w, map[string]any{"name": "s2s", "version": s.cfg.Version, "extensions": []string{"generate"}})
}

func (s *Server) v2Live(w http.ResponseWriter, r *http.Request) {
	s.ok(w, map[string]bool{"live": true})
}

func (s *Server) v2Ready(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]bool{"ready": false})
		return
	}
	s.ok(w, map[string]bool{"ready": true})
}

func (s *Server) v2Model(w http.ResponseWriter, r *http.Request) {
	if !s.v2Name(w, r) {
		return
	}
	s.ok(w, map[string]any{
		"name": s.cfg.ModelName, "versions": []string{"1"}, "platform": "onnx_onnxv1",
		"inputs":  []v2MetaTensor{{Name: v2Input, Datatype: "BYTES", Shape: []int64{-1}}},
		"outputs": []v2MetaTensor{{Name: v2Output, Datatype: "BYTES", Shape: []int64{-1}}},
	})
}

func (s *Server) v2ModelReady(w http.ResponseWriter, r *http.Request) {
	if !s.v2Name(w, r) {
		return
	}
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"name": s.cfg.ModelName, "ready": false})
		return
	}
	s.ok(w, map[string]any{"name": s.cfg.ModelName, "ready": true})
}

// validateV2 turns an infer request into a genRequest and the shape of
// its text_input tensor.
func (s *Server) validateV2(in *v2Request) (*genRequest, []int64, *apiError) {
	const f = famV2
	if len(in.Inputs) != 1 || in.Inputs[0].Name != v2Input {
		return nil, nil, invalid(f, "inputs", "give one input tensor named %s (BYTES), not %d", v2Input, len(in.Inputs))
	}
	for _, o := range in.Outputs {
		if o.Name != v2Output {
			return nil, nil, invalid(f, "outputs", "output %q does not exist; the model has %s", o.Name, v2Output)
		}
	}
	t := in.Inputs[0]
	if t.Datatype != "BYTES" {
		return nil, nil, invalid(f, "datatype", "%s must be BYTES, not %s", v2Input, t.Datatype)
	}
	texts, ok := flatStrings(t.Data)
	if !ok {
		return nil, nil, invalid(f, "data", "%s data must be strings (flat or nested lists)", v2Input)
	}
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 {
			return nil, nil, invalid(f, "shape", "%s shape %v has a negative dimension", v2Input, t.Shape)
		}
		n *= d
		if n > int64(s.limits.MaxInputs) {
			break
		}
	}
	if len(t.Shape) == 0 || n != int64(len(texts)) {
		return nil, nil, invalid(f, "shape", "%s shape %v does not hold its %d strings", v2Input, t.Shape, len(texts))
	}
	p := in.Parameters
	if p == nil {
		p = params{}
	}
	for k, v := range t.Parameters { // per-tensor parameters count too
		if _, set := p[k]; !set {
			p[k] = v
		}
	}
	delete(p, "content_type")
	delete(p, "headers")
	opts, e := p.apply(f, s.cfg.Generation)
	if e != nil {
		return nil, nil, e
	}
	_, seedGiven := in.Parameters["seed"]
	sampling(&opts, seedGiven)
	req, e := s.prepare(f, texts, nil, opts, nil)
	if e != nil {
		return nil, nil, e
	}
	return req, t.Shape, nil
}

// flatStrings reads tensor data of strings, flat or nested.
func flatStrings(raw json.RawMessage) ([]string, bool) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, false
	}
	var out []string
	var walk func(any) bool
	walk = func(x any) bool {
		switch e := x.(type) {
		case string:
			out = append(out, e)
			return true
		case []any:
			for _, y := range e {
				if !walk(y) {
					return false
				}
			}
			return true
		}
		return false
	}
	if !walk(v) {
		return nil, false
	}
	return out, true
}

func (s *Server) v2Infer(w http.ResponseWriter, r *http.Request) {
	const f = famV2
	if !s.v2Name(w, r) || s.refuse(w, r, f) {
		return
	}
	var in v2Request
	if e := s.decodeBody(f, r, &in); e != nil {
		s.fail(w, r, f, e)
		return
	}
	req, shape, e := s.validateV2(&in)
	if e != nil {
		s.fail(w, r, f, e)
		return
	}
	res, e := s.generate(r.Context(), f, req, nil)
	if e != nil {
		s.fail(w, r, f, e)
		return
	}
	k := req.sequences()
	out := v2OutTensor{Name: v2Output, Datatype: "BYTES", Shape: append([]int64(nil), shape...)}
	if k > 1 {
		out.Shape = append(out.Shape, int64(k))
	}
	var finish []string
	for _, seqs := range res {
		for _, q := range seqs {
			out.Data = append(out.Data, q.Text)
			finish = append(finish, q.Finish)
		}
	}
	resp := v2Response{ModelName: s.cfg.ModelName, ModelVersion: "1", ID: in.ID, Outputs: []v2OutTensor{out}}
	if len(finish) == 1 { // v2 parameters are scalars
		resp.Parameters = map[string]any{"finish_reason": finish[0]}
	}
	s.ok(w, resp)
}

// v2GenRequest is Triton's generate extension request.
type v2GenRequest struct {
	TextInput  *string `json:"text_input"`
	Parameters params  `json:"parameters"`
}

func (s *Server) v2GenPrepare(w http.ResponseWriter, r *http.Request) (*genRequest, bool) {
	const f = famV2
	if !s.v2Name(w, r) || s.refuse(w, r, f) {
		return nil, false
	}
	var in v2GenRequest
	if e := s.decodeBody(f, r, &in); e != nil {
		s.fail(w, r, f, e)
		return nil, false
	}
	if in.TextInput == nil {
		s.fail(w, r, f, invalid(f, v2Input, "%s is missing", v2Input))
		return nil, false
	}
	p := in.Parameters
	if p == nil {
		p = params{}
	}
	delete(p, "stream")
	stops, e := p.stops(f, "stop")
	if e != nil {
		s.fail(w, r, f, e)
		return nil, false
	}
	_, seedGiven := p["seed"]
	opts, e := p.apply(f, s.cfg.Generation)
	if e != nil {
		s.fail(w, r, f, e)
		return nil, false
	}
	sampling(&opts, seedGiven)
	req, e := s.prepare(f, []string{*in.TextInput}, nil, opts, stops)
	if e != nil {
		s.fail(w, r, f, e)
		return nil, false
	}
	return req, true
}

func (s *Server) v2Generate(w http.ResponseWriter, r *http.Request) {
	req, ok := s.v2GenPrepare(w, r)
	if !ok {
		return
	}
	res, e := s.generate(r.Context(), famV2, req, nil)
	if e != nil {
		s.fail(w, r, famV2, e)
		return
	}
	s.ok(w, map[string]any{"model_name": s.cfg.ModelName, "model_version": "1", v2Output: res[0][0].Text,
		"finish_reason": res[0][0].Finish})
}

// v2GenerateStream streams {"text_output": piece} events, the last with
// finish_reason; an error after the stream began is an {"error"} event.
func (s *Server) v2GenerateStream(w http.ResponseWriter, r *http.Request) {
	req, ok := s.v2GenPrepare(w, r)
	if !ok {
		return
	}
	sse := newSSE(w, s.cfg.WriteTimeout)
	sent := ""
	emit := func(chunks []chunk) error {
		for _, c := range chunks {
			if c.seq != 0 || c.text == "" {
				continue
			}
			sent += c.text
			if err := sse.event("", map[string]any{"model_name": s.cfg.ModelName, "model_version": "1", v2Output: c.text}); err != nil {
				return err
			}
		}
		return nil
	}
	res, e := s.generate(r.Context(), famV2, req, emit)
	if e != nil {
		if !sse.started {
			s.fail(w, r, famV2, e)
			return
		}
		info(r.Context()).fail(e)
		sse.event("", e.body(famV2))
		return
	}
	best := res[0][0]
	rest := best.Text[min(len(sent), len(best.Text)):]
	sse.event("", map[string]any{"model_name": s.cfg.ModelName, "model_version": "1", v2Output: rest, "finish_reason": best.Finish})
}
