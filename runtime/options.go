package runtime

import (
	"fmt"
	goruntime "runtime"
	"strings"
)

// Providers that Options.Provider accepts.
const (
	ProviderCPU  = "cpu"
	ProviderCUDA = "cuda"
)

// Graph optimization levels that Options.GraphOptimization accepts.
const (
	OptimizeDisable  = "disable"
	OptimizeBasic    = "basic"
	OptimizeExtended = "extended"
	OptimizeAll      = "all"
)

// Decoder graph choices that Options.DecoderGraphs accepts.
const (
	GraphsAuto   = "auto"
	GraphsSplit  = "split"
	GraphsMerged = "merged"
)

// Options are load-time options of the ONNX Runtime sessions.
type Options struct {
	LibraryPath       string // explicit libonnxruntime path ("" = search, see FindLibrary)
	Provider          string // "cpu" (default) or "cuda"
	DeviceID          int    // CUDA device
	IntraOpThreads    int    // 0 = ONNX Runtime's default
	InterOpThreads    int    // 0 = ONNX Runtime's default
	GraphOptimization string // "disable", "basic", "extended", "all" (default "all")
	DecoderGraphs     string // "auto" (default: CPU the merged graph when present, CUDA the split pair when present), "split", "merged"; Transformers only

	// DisableMemArena turns ONNX Runtime's CPU memory arena off: memory a
	// run frees goes back to the allocator instead of staying reserved for
	// the next run of that size (less peak memory across batch sizes, some
	// cost per run).
	DisableMemArena bool

	// SessionConfig holds ONNX Runtime session configuration entries
	// (AddSessionConfigEntry; Python's add_session_config_entry), e.g.
	// "session.intra_op.allow_spinning": "0". ONNX Runtime refuses keys
	// over 1024 bytes, ignores keys it does not know and reads each value
	// only where it uses it: check the spelling against its
	// onnxruntime_session_options_config_keys.h.
	SessionConfig map[string]string
}

// threadsPerCPU bounds the thread counts: more threads than this many per
// CPU only wait on each other (and 100,000 of them made no progress while
// memory grew).
const threadsPerCPU = 4

// MaxThreads is the most intra-op or inter-op threads Validate accepts:
// threadsPerCPU per CPU the process may run on, at least 16.
func MaxThreads() int { return max(16, threadsPerCPU*goruntime.NumCPU()) }

// WithDefaults returns o with empty fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.Provider == "" {
		o.Provider = ProviderCPU
	}
	if o.GraphOptimization == "" {
		o.GraphOptimization = OptimizeAll
	}
	if o.DecoderGraphs == "" {
		o.DecoderGraphs = GraphsAuto
	}
	return o
}

// Validate reports the first option that has a value the runtime does not
// know. Empty fields are valid (they take their defaults).
func (o Options) Validate() error {
	oneOf := func(field, v string, allowed ...string) error {
		if v == "" {
			return nil
		}
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("runtime: %s %q is unknown; use one of %s", field, v, strings.Join(allowed, ", "))
	}
	if err := oneOf("provider", o.Provider, ProviderCPU, ProviderCUDA); err != nil {
		return err
	}
	if err := oneOf("graph optimization", o.GraphOptimization, OptimizeDisable, OptimizeBasic, OptimizeExtended, OptimizeAll); err != nil {
		return err
	}
	if err := oneOf("decoder graphs", o.DecoderGraphs, GraphsAuto, GraphsSplit, GraphsMerged); err != nil {
		return err
	}
	if o.DeviceID < 0 {
		return fmt.Errorf("runtime: device id %d is negative; use 0 for the first GPU", o.DeviceID)
	}
	if o.DeviceID != 0 && o.Provider != ProviderCUDA {
		return fmt.Errorf("runtime: device id %d needs provider %q; set the provider or drop the device id", o.DeviceID, ProviderCUDA)
	}
	for k := range o.SessionConfig {
		if strings.TrimSpace(k) == "" {
			return fmt.Errorf("runtime: session config has an empty key; use ONNX Runtime's key names, e.g. session.intra_op.allow_spinning")
		}
	}
	if o.IntraOpThreads < 0 || o.InterOpThreads < 0 {
		return fmt.Errorf("runtime: thread counts must be 0 (ONNX Runtime's default) or more, not %d/%d", o.IntraOpThreads, o.InterOpThreads)
	}
	limit := MaxThreads()
	for _, t := range []struct {
		flag string
		n    int
	}{{"intra-op-threads", o.IntraOpThreads}, {"inter-op-threads", o.InterOpThreads}} {
		if t.n > limit {
			return fmt.Errorf("runtime: %s %d is over the limit of %d threads (%d per CPU, %d CPUs); use 0 for ONNX Runtime's default or at most %d (-%s, S2S_%s)",
				t.flag, t.n, limit, threadsPerCPU, goruntime.NumCPU(), limit, t.flag, strings.ToUpper(strings.ReplaceAll(t.flag, "-", "_")))
		}
	}
	return nil
}
