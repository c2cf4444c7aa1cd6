package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/config"
)

// decodeBody reads r's JSON body into v. A body over max_body_bytes and a
// body that is not one JSON value are the client's errors.
func (s *Server) decodeBody(f family, r *http.Request, v any) *apiError {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return overLimit(f, "max_body_bytes", "", mbe.Limit+1, mbe.Limit, "the request body in bytes (at least)")
		}
		return invalid(f, "", "reading the request body: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return invalid(f, te.Field, "%s must be %s, not a JSON %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return invalid(f, "", "the request body is not valid JSON: %v", err)
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "map", "struct":
		return "an object"
	}
	return "a number"
}

// params is a JSON object of request parameters; a null value counts as
// absent, as TGI's and OpenAI's clients send nulls for unset parameters.
type params map[string]any

// take removes key and returns its value and whether it was set.
func (p params) take(key string) (any, bool) {
	v, ok := p[key]
	delete(p, key)
	return v, ok && v != nil
}

// number takes a numeric parameter.
func (p params) number(f family, key string) (float64, bool, *apiError) {
	v, ok := p.take(key)
	if !ok {
		return 0, false, nil
	}
	x, isNum := v.(float64)
	if !isNum {
		return 0, false, invalid(f, key, "%s must be a number", key)
	}
	return x, true, nil
}

// boolean takes a true/false parameter.
func (p params) boolean(f family, key string) (bool, bool, *apiError) {
	v, ok := p.take(key)
	if !ok {
		return false, false, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, false, invalid(f, key, "%s must be true or false", key)
	}
	return b, true, nil
}

// stops takes a stop parameter: a string or a list of strings.
func (p params) stops(f family, key string) ([]string, *apiError) {
	v, ok := p.take(key)
	if !ok {
		return nil, nil
	}
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, invalid(f, key, "%s must be a string or a list of strings", key)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, invalid(f, key, "%s must be a string or a list of strings", key)
}

// unsupported refuses a parameter the server cannot honour when it is set
// to anything but its neutral value.
func (p params) unsupported(f family, key string, neutral ...any) *apiError {
	v, ok := p.take(key)
	if !ok {
		return nil
	}
	for _, n := range neutral {
		if fmt.Sprint(v) == fmt.Sprint(n) {
			return nil
		}
	}
	return invalid(f, key, "%s is not supported by this server; leave it out", key)
}

// apply overlays the remaining parameters, by their Hugging Face
// generate() names, onto opts.
func (p params) apply(f family, opts s2s.GenerateOptions) (s2s.GenerateOptions, *apiError) {
	if len(p) == 0 {
		return opts, nil
	}
	kw := map[string]any{}
	for k, v := range p {
		if v != nil {
			kw[k] = v
		}
	}
	o, err := config.ApplyGenerateKwargs(opts, kw)
	if err != nil {
		param := ""
		for k := range kw {
			param = k
			if len(kw) == 1 {
				break
			}
		}
		return opts, invalid(f, param, "%s", trimPrefix(err.Error()))
	}
	return o, nil
}
