package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/beamsearch"
)

// family is a route family: the shape its errors take and the status of
// a request over a limit.
type family int

const (
	famTGI family = iota
	famOpenAI
	famV2
	famPlain // metadata routes: v2's error object
)

// invalidStatus is the status of an invalid request or one over a limit:
// TGI answers 422, OpenAI and v2 400.
func (f family) invalidStatus() int {
	if f == famTGI {
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadRequest
}

// Error kinds, as TGI's error_type names them where it has one.
const (
	kindValidation = "validation"
	kindOverloaded = "overloaded"
	kindShutdown   = "unavailable"
	kindGeneration = "generation"
	kindNotFound   = "not_found"
	kindCanceled   = "canceled"
	kindTimeout    = "timeout"
)

// apiError is a request the server refuses or could not serve: the HTTP
// status, the message, and the parameter and limit at fault if any.
type apiError struct {
	status int
	kind   string
	msg    string
	param  string // the request parameter at fault (OpenAI's param)
	limit  string // the limit broken (LimitError.Limit, max_body_bytes, ...)
	retry  bool   // answer with Retry-After
}

func (e *apiError) Error() string { return e.msg }

// invalid is a request whose parameter is wrong.
func invalid(f family, param, format string, args ...any) *apiError {
	return &apiError{status: f.invalidStatus(), kind: kindValidation, param: param, msg: fmt.Sprintf(format, args...)}
}

// overLimit is a request over the limit named limit.
func overLimit(f family, limit, param string, value, max int64, what string) *apiError {
	return &apiError{status: f.invalidStatus(), kind: kindValidation, param: param, limit: limit,
		msg: fmt.Sprintf("%s is %d, over the limit %s = %d", what, value, limit, max)}
}

// limitParam maps an s2s limit to the request parameter it bounds.
var limitParam = map[string]string{
	"max_inputs": "inputs", "max_input_bytes": "inputs", "max_input_tokens": "inputs", "max_position_embeddings": "inputs", "limit_max_new_tokens": "max_new_tokens",
	"max_beams": "num_beams", "max_return_sequences": "num_return_sequences", "max_rows": "num_beams",
}

// toAPIError turns an error of the batcher or the Generator into the
// answer of family f.
func toAPIError(f family, err error) *apiError {
	var ae *apiError
	var le *s2s.LimitError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &le):
		return &apiError{status: f.invalidStatus(), kind: kindValidation, limit: le.Limit, param: limitParam[le.Limit],
			msg: fmt.Sprintf("%s, over the limit %s = %d", le.What, le.Limit, le.Max)}
	case errors.Is(err, beamsearch.ErrInvalidOptions):
		return &apiError{status: f.invalidStatus(), kind: kindValidation, msg: trimPrefix(err.Error())}
	case errors.Is(err, ErrQueueFull):
		return &apiError{status: http.StatusServiceUnavailable, kind: kindOverloaded, retry: true, limit: "max_queue",
			msg: "the request queue is full (max_queue); retry later"}
	case errors.Is(err, ErrDraining), errors.Is(err, s2s.ErrClosed):
		return &apiError{status: http.StatusServiceUnavailable, kind: kindShutdown, retry: true,
			msg: "the server is shutting down; retry on another replica"}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusGatewayTimeout, kind: kindTimeout, limit: "request_timeout",
			msg: "the request ran past request_timeout"}
	case errors.Is(err, context.Canceled):
		// The client left; nobody reads this answer (499 in the log).
		return &apiError{status: 499, kind: kindCanceled, msg: "the client closed the request"}
	}
	return &apiError{status: http.StatusInternalServerError, kind: kindGeneration, msg: trimPrefix(err.Error())}
}

// trimPrefix drops the package prefixes ("s2s: beamsearch: ") of an
// error message meant for a client.
func trimPrefix(msg string) string {
	for _, p := range []string{"s2s: ", "beamsearch: ", "server: ", "config: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

// body is the JSON error object of family f.
func (e *apiError) body(f family) any {
	switch f {
	case famTGI:
		return map[string]string{"error": e.msg, "error_type": e.kind}
	case famOpenAI:
		typ := "invalid_request_error"
		switch {
		case e.status == http.StatusNotFound:
			typ = "not_found_error"
		case e.status >= 500:
			typ = "server_error"
		}
		var param, code any
		if e.param != "" {
			param = e.param
		}
		if e.limit != "" {
			code = e.limit
		} else if e.status == http.StatusNotFound {
			code = "model_not_found"
		}
		return map[string]any{"error": map[string]any{"message": e.msg, "type": typ, "param": param, "code": code}}
	}
	return map[string]string{"error": e.msg}
}
