package server

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/s2s-dev/s2s"
)

// Config is what a Server is made with: plain values, filled by package
// config from a file, the environment and flags.
type Config struct {
	// ModelName is the name the routes serve the model under (OpenAI's
	// model, the v2 {name}); Defaults takes the model directory's name.
	ModelName string
	// Generation are the options a request starts from; the zero value
	// takes the Generator's Defaults().
	Generation s2s.GenerateOptions
	// Limits bound each request (zero fields: s2s.DefaultLimits).
	Limits s2s.Limits
	// MaxStopSequences is the most stop strings of a request, and
	// MaxStopBytes the longest.
	MaxStopSequences int
	MaxStopBytes     int
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64
	// Batcher configures the queue and the batching.
	Batcher BatcherOptions

	// The http.Server's timeouts and header limit. WriteTimeout bounds
	// each write (a whole answer, or one event of a stream), so a stream
	// may last longer than it.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
	// RequestTimeout bounds one request's generation (0: none but the
	// limits).
	RequestTimeout time.Duration
	// RetryAfter is the Retry-After of a 503.
	RetryAfter time.Duration
	// Playground serves the playground page at GET /.
	Playground bool

	// Logger takes one line per request (nil: slog.Default()).
	Logger *slog.Logger
	// Engine runs the batches (nil: the Generator); tests wrap it.
	Engine Engine
	// Version is reported by /info and /v2.
	Version string
}

// DefaultConfig returns the defaults gen serve starts from.
func DefaultConfig() Config {
	return Config{
		MaxStopSequences: 4,
		MaxStopBytes:     256,
		MaxBodyBytes:     1 << 20,
		Batcher: BatcherOptions{
			MaxQueue:      256,
			MaxConcurrent: 64,
			MaxBatches:    2,
			MaxBatchRows:  64,
			Window:        5 * time.Millisecond,
			Batching:      true,
		},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		RequestTimeout:    5 * time.Minute,
		RetryAfter:        time.Second,
		Playground:        true,
		Version:           "dev",
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if err := c.Batcher.Validate(); err != nil {
		return err
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	pos := []struct {
		name string
		v    int64
	}{
		{"max_body_bytes", c.MaxBodyBytes}, {"max_header_bytes", int64(c.MaxHeaderBytes)},
		{"max_stop_bytes", int64(c.MaxStopBytes)},
		{"read_header_timeout", int64(c.ReadHeaderTimeout)}, {"read_timeout", int64(c.ReadTimeout)},
		{"write_timeout", int64(c.WriteTimeout)}, {"idle_timeout", int64(c.IdleTimeout)},
	}
	for _, f := range pos {
		if f.v <= 0 {
			return fmt.Errorf("server: %s is %d; set it above 0", f.name, f.v)
		}
	}
	if c.MaxStopSequences < 0 || c.RequestTimeout < 0 || c.RetryAfter < 0 {
		return fmt.Errorf("server: max_stop_sequences, request_timeout and retry_after cannot be negative")
	}
	return nil
}
