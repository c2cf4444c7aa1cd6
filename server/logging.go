package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// reqInfo is what one request's log line says; handlers fill it in.
type reqInfo struct {
	mu          sync.Mutex
	id          string
	inputs      int
	inputTokens int
	generated   int
	queueWait   time.Duration
	ttft        time.Duration
	batchReqs   int
	outcome     string
	errMsg      string
}

type infoKey struct{}

// info returns the request's reqInfo (a throwaway one outside the
// middleware).
func info(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// setCall records a finished call's sizes and timings.
func (ri *reqInfo) setCall(req *genRequest, c *call, generated int) {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	ri.inputs, ri.inputTokens, ri.generated = len(req.ids), req.inputTokens(), generated
	if c != nil && c.ticket != nil {
		ri.queueWait = c.ticket.QueueWait()
		ri.ttft = c.ttft()
		ri.batchReqs, _ = c.ticket.Batch()
	}
}

func (ri *reqInfo) fail(e *apiError) {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	ri.outcome, ri.errMsg = outcomeOf(e), e.msg
}

// outcomeOf names an error's outcome for the log and the metrics.
func outcomeOf(e *apiError) string {
	switch {
	case e.kind == kindOverloaded:
		return "overloaded"
	case e.kind == kindShutdown:
		return "unavailable"
	case e.kind == kindCanceled:
		return "canceled"
	case e.kind == kindTimeout:
		return "timeout"
	case e.status < 500:
		return "invalid"
	}
	return "error"
}

// requestID returns the client's X-Request-Id when it is a sane token,
// else a fresh one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 128 && !strings.ContainsFunc(id, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
		return id
	}
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recorder keeps a response's status and size.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and SetWriteDeadline.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// countingBody counts the bytes of a request body read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// observe wraps the mux: request id, body limit, one log line and the
// request metrics per request.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{id: requestID(r)}
		w.Header().Set("X-Request-Id", ri.id)
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		body := &countingBody{ReadCloser: http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)}
		r.Body = body
		rec := &recorder{ResponseWriter: w}
		s.metrics.inFlightReqs.Inc()
		defer s.metrics.inFlightReqs.Dec()
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
		next.ServeHTTP(rec, r)

		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		total := time.Since(start)
		ri.mu.Lock()
		defer ri.mu.Unlock()
		outcome := ri.outcome
		if outcome == "" {
			outcome = "ok"
			if rec.status >= 400 {
				outcome = "invalid"
			}
		}
		s.metrics.requests.WithLabelValues(route, outcome).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(total.Seconds())
		if ri.inputs == 0 && outcome == "ok" && !strings.HasPrefix(route, "POST") {
			// Probes and metadata: counted, logged at debug level only.
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "request", slog.String("id", ri.id), slog.String("route", route),
				slog.Int("status", rec.status), slog.Duration("total", total))
			return
		}
		status := rec.status
		if outcome == "canceled" {
			status = 499
		}
		attrs := []slog.Attr{
			slog.String("id", ri.id), slog.String("route", route), slog.Int("status", status),
			slog.Int64("in_bytes", body.n), slog.Int64("out_bytes", rec.bytes),
			slog.Int("inputs", ri.inputs), slog.Int("input_tokens", ri.inputTokens), slog.Int("generated_tokens", ri.generated),
			slog.Int("batch_requests", ri.batchReqs),
			slog.Duration("queue_wait", ri.queueWait), slog.Duration("ttft", ri.ttft), slog.Duration("total", total),
			slog.String("outcome", outcome),
		}
		if ri.errMsg != "" {
			attrs = append(attrs, slog.String("error", ri.errMsg))
		}
		level := slog.LevelInfo
		if outcome == "error" {
			level = slog.LevelError
		}
		s.log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}
