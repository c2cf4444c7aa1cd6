package runtime

import (
	"context"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s/models"
)

// rss returns the resident set size of the process in bytes.
func rss(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatalf("reading /proc/self/statm: %v", err)
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		t.Fatalf("/proc/self/statm: %q", data)
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// heap returns the live Go heap after a collection that also returns free
// pages to the system (so that the RSS read next counts live memory).
func heap() int64 {
	debug.FreeOSMemory()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// shortGeneration runs one small beam-like generation: two inputs, two rows
// each, beams shuffled within inputs, an input dropped half way, then
// closed.
func shortGeneration(t *testing.T, m *Model, man *models.Manifest, src [][]int64) {
	ctx := context.Background()
	d, err := m.Encode(ctx, src, man.PadTokenID)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Reorder([]int{0, 0, 1, 1}); err != nil {
		t.Fatal(err)
	}
	tok := make([]int64, 4)
	for s := range 8 {
		for r := range tok[:d.Rows()] {
			tok[r] = forced(man, r, s)
		}
		if _, err := d.Step(ctx, tok[:d.Rows()]); err != nil {
			t.Fatal(err)
		}
		switch {
		case s == 4:
			err = d.Reorder([]int{2, 3}) // the first input finished
		case d.Rows() == 4:
			err = d.Reorder([]int{1, 0, 2, 2})
		default:
			err = d.Reorder([]int{1, 1})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestMemoryFlat(t *testing.T) {
	const warmup, runs = 100, 1000
	const heapBound, rssBound = 1 << 20, 4 << 20
	for _, c := range []struct{ name, graphs string }{
		{testModels[0], GraphsSplit}, {testModels[0], GraphsMerged}, {inplaceModels[0], GraphsAuto}, {rnnModel, GraphsAuto},
	} {
		t.Run(c.name+"/"+c.graphs, func(t *testing.T) {
			// One OS thread for the C allocations, so that glibc does not
			// spread them over per-thread arenas (noise in the RSS).
			goruntime.LockOSThread()
			defer goruntime.UnlockOSThread()
			man, m := loadModel(t, c.name, c.graphs)
			src := sources(man)[:2]
			for range warmup {
				shortGeneration(t, m, man, src)
			}
			heap0, rss0 := heap(), rss(t)
			for range runs {
				shortGeneration(t, m, man, src)
			}
			heap1, rss1 := heap(), rss(t)
			t.Logf("%d generations: Go heap %d -> %d bytes (%+d), RSS %d -> %d KiB (%+d KiB)",
				runs, heap0, heap1, heap1-heap0, rss0>>10, rss1>>10, (rss1-rss0)>>10)
			if heap1-heap0 > heapBound {
				t.Errorf("the Go heap grew by %d bytes over %d generations (bound %d)", heap1-heap0, runs, heapBound)
			}
			if rss1-rss0 > rssBound {
				t.Errorf("RSS grew by %d KiB over %d generations (bound %d KiB)", (rss1-rss0)>>10, runs, rssBound>>10)
			}
		})
	}
}
