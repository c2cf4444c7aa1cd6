package runtime

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"

	ort "github.com/yalue/onnxruntime_go"
)

// sessionOptions turns o (defaults applied, validated) into ONNX Runtime
// session options. The caller destroys them.
func sessionOptions(o Options) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("runtime: session options: %w", err)
	}
	fail := func(err error) (*ort.SessionOptions, error) {
		so.Destroy()
		return nil, err
	}
	if o.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(o.IntraOpThreads); err != nil {
			return fail(fmt.Errorf("runtime: intra-op threads %d: %w", o.IntraOpThreads, err))
		}
	}
	if o.InterOpThreads > 0 {
		if err := so.SetInterOpNumThreads(o.InterOpThreads); err != nil {
			return fail(fmt.Errorf("runtime: inter-op threads %d: %w", o.InterOpThreads, err))
		}
	}
	if o.DisableMemArena {
		if err := so.SetCpuMemArena(false); err != nil {
			return fail(fmt.Errorf("runtime: disable the CPU memory arena: %w", err))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(o.SessionConfig)) {
		if err := so.AddSessionConfigEntry(k, o.SessionConfig[k]); err != nil {
			return fail(fmt.Errorf("runtime: session config %q = %q: %w; check the key against ONNX Runtime's onnxruntime_session_options_config_keys.h", k, o.SessionConfig[k], err))
		}
	}
	level := map[string]ort.GraphOptimizationLevel{
		OptimizeDisable:  ort.GraphOptimizationLevelDisableAll,
		OptimizeBasic:    ort.GraphOptimizationLevelEnableBasic,
		OptimizeExtended: ort.GraphOptimizationLevelEnableExtended,
		OptimizeAll:      ort.GraphOptimizationLevelEnableAll,
	}[o.GraphOptimization]
	if err := so.SetGraphOptimizationLevel(level); err != nil {
		return fail(fmt.Errorf("runtime: graph optimization %q: %w", o.GraphOptimization, err))
	}
	if o.Provider == ProviderCUDA {
		if err := appendCUDA(so, o.DeviceID); err != nil {
			return fail(err)
		}
	}
	return so, nil
}

// appendCUDA adds the CUDA execution provider on device id to so. What the
// provider needs (its libraries, the CUDA libraries, the driver, the
// device) is checked first, so that a missing piece is one clear error
// instead of ONNX Runtime's log or a crash.
func appendCUDA(so *ort.SessionOptions, id int) error {
	file := loadedLibraryFile()
	if _, err := checkCUDA(filepath.Dir(file), id, cudaDriver, true); err != nil {
		if errors.Is(err, ErrNoCUDA) {
			return fmt.Errorf("%w; ONNX Runtime is already loaded from %s, and a process loads one library", err, file)
		}
		return err
	}
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrNoCUDA, err)
	}
	defer co.Destroy()
	if err := co.Update(map[string]string{"device_id": strconv.Itoa(id)}); err != nil {
		return fmt.Errorf("runtime: cuda device %d: %v; check the GPU driver and the CUDA and cuDNN libraries (gen doctor -provider cuda), or use provider \"cpu\"", id, err)
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return fmt.Errorf("runtime: cuda device %d: %v; check the GPU driver and the CUDA and cuDNN libraries (gen doctor -provider cuda), or use provider \"cpu\"", id, err)
	}
	return nil
}
