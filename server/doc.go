// Package server is gen serve's HTTP front end: Hugging Face TGI routes
// (/generate, /generate_stream, /info, /health), OpenAI's /v1/completions
// and /v1/models, the KServe / Open Inference Protocol v2 routes
// (/v2/health/*, /v2/models/{name}[/ready|/infer]), Prometheus metrics at
// /metrics and a playground page at /.
//
// Handlers are thin: each route family decodes and validates its request
// into s2s.GenerateOptions (one validate function per family, returning an
// apiError that carries the HTTP status and the limit broken), hands a Job
// to a Scheduler and encodes the answer. The Scheduler in use is the
// Batcher, a dynamic batcher with a bounded queue and nothing of HTTP in
// it: jobs with equal options that arrive within a window share one
// Generate call, each result the same as decoding it alone.
//
// Every size is bounded: the body (http.MaxBytesReader), the header, the
// inputs and their tokens, max_new_tokens, beams, returned sequences and
// rows (s2s.Limits, checked per request), the queue (a full queue answers
// 503 with Retry-After at once), the jobs and batches running, and each
// stream's buffer (at most the tokens its request may generate).
//
// Shutdown drains: readiness turns 503 at once, new requests get 503,
// requests in flight finish within the drain window, then those left are
// stopped and their streams end with an error event.
package server
