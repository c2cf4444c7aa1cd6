package server

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"time"
)

// sseWriter writes server-sent events to one response: one writer per
// stream (the handler's goroutine), each event flushed, each write bounded
// by a deadline so a client that stops reading cannot hold the handler.
type sseWriter struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	deadline time.Duration
	started  bool
	buf      bytes.Buffer
}

func newSSE(w http.ResponseWriter, writeTimeout time.Duration) *sseWriter {
	return &sseWriter{w: w, rc: http.NewResponseController(w), deadline: writeTimeout}
}

// begin writes the stream's headers.
func (s *sseWriter) begin() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	s.w.WriteHeader(http.StatusOK)
}

// event writes one "data:" event holding v as JSON (a string as it is),
// with an "event:" line when name is set, and flushes it.
func (s *sseWriter) event(name string, v any) error {
	s.begin()
	s.buf.Reset()
	if name != "" {
		s.buf.WriteString("event: " + name + "\n")
	}
	s.buf.WriteString("data: ")
	if str, ok := v.(string); ok {
		s.buf.WriteString(str)
	} else {
		enc := json.NewEncoder(&s.buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
		s.buf.Truncate(s.buf.Len() - 1) // Encode's newline
	}
	s.buf.WriteString("\n\n")
	if s.deadline > 0 {
		s.rc.SetWriteDeadline(time.Now().Add(s.deadline))
	}
	if _, err := s.w.Write(s.buf.Bytes()); err != nil {
		return err
	}
	return s.rc.Flush()
}

// writeJSON writes v as a JSON answer with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"the answer could not be encoded"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// score is a sequence score as JSON: nil when unknown (NaN), infinities
// as the largest float64s (JSON has neither).
func score(x float64) *float64 {
	switch {
	case math.IsNaN(x):
		return nil
	case math.IsInf(x, -1):
		x = -math.MaxFloat64
	case math.IsInf(x, 1):
		x = math.MaxFloat64
	}
	return &x
}
