// Command packed compares a model's packed file (python -m s2s_export pack)
// with its directory: size on disk, load time and peak RSS at load (each
// form loaded in a process of its own), and the time of a decoder step
// (both forms loaded in one process, timed in turn, so that the machine's
// noise falls on both alike), and checks that both give the same logits.
//
//	go run ./bench/packed -dir testdata/t5-tiny -file testdata/t5-tiny.onnx
//	go run ./bench/packed -dir ~/.cache/s2s-bench/marian/onnx -file marian.onnx -rows 4 -steps 32 -reps 7
//
// Step time: rows source rows (random ids, 12 to 40 tokens, seeded), one
// encode, then -steps forced decoder steps, timed as a whole and divided by
// the steps; the median of -reps runs per form. Load: the median of -loads
// processes per form (directory, file, bytes), each printing the time from
// reading the model to a loaded runtime.Model and its VmHWM after it.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/s2s-dev/s2s/models"
	"github.com/s2s-dev/s2s/runtime"
)

// ortConfig is -ort-config, passed on to the load processes.
var ortConfig string

func main() {
	dir := flag.String("dir", "", "model directory (required)")
	file := flag.String("file", "", "its packed file (required)")
	rows := flag.Int("rows", 1, "source rows")
	steps := flag.Int("steps", 32, "decoder steps per run")
	reps := flag.Int("reps", 7, "timed runs per form")
	loads := flag.Int("loads", 3, "load processes per form")
	threads := flag.Int("threads", 1, "intra-op threads")
	graphs := flag.String("graphs", "auto", "the directory's decoder graphs: auto, split or merged")
	cfg := flag.String("ort-config", "", "ONNX Runtime session config entries for every form, key=value[,key=value...]")
	also := flag.String("also", "", "other packed files to time beside -file (comma-separated; variants of the packer)")
	child := flag.String("child", "", "internal: load the model in this form (dir, file, bytes) and print the time and VmHWM")
	flag.Parse()
	if *dir == "" || *file == "" {
		fmt.Fprintln(os.Stderr, "packed: -dir and -file are required")
		os.Exit(2)
	}
	opts := runtime.Options{IntraOpThreads: *threads, InterOpThreads: 1, DecoderGraphs: *graphs}
	ortConfig = *cfg
	if *cfg != "" {
		opts.SessionConfig = map[string]string{}
		for _, kv := range strings.Split(*cfg, ",") {
			k, v, _ := strings.Cut(kv, "=")
			opts.SessionConfig[k] = v
		}
	}
	if *child != "" {
		if err := loadOnce(*child, *dir, *file, opts); err != nil {
			fmt.Fprintln(os.Stderr, "packed:", err)
			os.Exit(1)
		}
		return
	}
	var others []string
	if *also != "" {
		others = strings.Split(*also, ",")
	}
	if err := compare(*dir, *file, others, opts, *rows, *steps, *reps, *loads); err != nil {
		fmt.Fprintln(os.Stderr, "packed:", err)
		os.Exit(1)
	}
}

// open loads the model in form: its directory, its file, or its file's
// bytes read into memory.
func open(form, dir, file string, opts runtime.Options) (*models.Manifest, *runtime.Model, error) {
	switch form {
	case "dir":
		m, err := models.Load(dir)
		if err != nil {
			return nil, nil, err
		}
		model, err := runtime.Load(m, opts)
		return m, model, err
	case "file", "bytes":
		var p *models.Packed
		var err error
		if form == "file" {
			p, err = models.ReadPackedFile(file)
		} else {
			var data []byte
			if data, err = os.ReadFile(file); err == nil {
				p, err = models.ReadPacked(data)
			}
		}
		if err != nil {
			return nil, nil, err
		}
		model, err := runtime.LoadPacked(p, opts)
		return p.Manifest, model, err
	}
	return nil, nil, fmt.Errorf("unknown form %q", form)
}

// loadOnce is the child: ONNX Runtime is initialized first (not timed, the
// same for both forms), then the model is loaded.
func loadOnce(form, dir, file string, opts runtime.Options) error {
	if _, err := runtime.Init(""); err != nil {
		return err
	}
	before := status("VmHWM")
	t0 := time.Now()
	_, m, err := open(form, dir, file, opts)
	if err != nil {
		return err
	}
	d := time.Since(t0)
	fmt.Printf("%d %d %d %d\n", d.Microseconds(), status("VmHWM"), status("VmRSS"), before)
	return m.Close()
}

// status returns a /proc/self/status field in kB.
func status(field string) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}

// size returns the bytes of the directory's files the host reads (every
// graph and the files a packed model holds) and of the whole directory.
func size(dir string) (model, all int64, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	read := map[string]bool{models.ManifestFile: true, "config.json": true, "generation_config.json": true, "tokenizer.json": true, "tokenizer_target.json": true}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		all += info.Size()
		n := e.Name()
		if read[n] || strings.Contains(n, ".onnx") || strings.HasPrefix(strings.ToUpper(n), "LICENSE") {
			model += info.Size()
		}
	}
	return model, all, nil
}

func compare(dir, file string, others []string, opts runtime.Options, rows, steps, reps, loads int) error {
	dirModel, dirAll, err := size(dir)
	if err != nil {
		return err
	}
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	fmt.Printf("model: %s\nsize: file %.2f MB; directory %.2f MB (its graphs and the files the host reads), %.2f MB in all; file/directory %.3f\n",
		filepath.Base(dir), mb(st.Size()), mb(dirModel), mb(dirAll), float64(st.Size())/float64(dirModel))

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("load (median of %d processes): %-6s %10s %12s %12s\n", loads, "form", "time", "peak RSS", "RSS after")
	for _, form := range []string{"dir", "file", "bytes"}[:min(3, loads*3)] {
		var ts, hwm, rss []float64
		for range loads {
			cmd := exec.Command(exe, "-child", form, "-dir", dir, "-file", file, "-threads", strconv.Itoa(opts.IntraOpThreads), "-graphs", opts.DecoderGraphs, "-ort-config", ortConfig)
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("loading the %s form: %v", form, err)
			}
			var us, h, r, before int64
			if _, err := fmt.Sscan(string(out), &us, &h, &r, &before); err != nil {
				return fmt.Errorf("child output %q: %v", out, err)
			}
			ts, hwm, rss = append(ts, float64(us)/1e3), append(hwm, float64(h)/1024), append(rss, float64(r)/1024)
		}
		fmt.Printf("load: %-6s %8.1f ms %9.1f MB %9.1f MB\n", form, median(ts), median(hwm), median(rss))
	}

	// The step is timed on the directory's split pair and merged graph
	// (when it has one) and on the file, all loaded at once.
	type loaded struct {
		name string
		m    *runtime.Model
		t    []float64
	}
	var forms []*loaded
	var man *models.Manifest
	graphs := []string{runtime.GraphsSplit, runtime.GraphsMerged}
	if m, err := models.Load(dir); err != nil {
		return err
	} else if m.Architecture == models.ArchRNN || m.Files.DecoderMerged == "" {
		graphs = graphs[:1] // one step graph
	}
	for _, g := range graphs {
		o := opts
		o.DecoderGraphs = g
		m, model, err := open("dir", dir, file, o)
		if err != nil {
			return err
		}
		defer model.Close()
		man = m
		forms = append(forms, &loaded{name: "directory " + g, m: model})
	}
	_, pm, err := open("file", dir, file, opts)
	if err != nil {
		return err
	}
	defer pm.Close()
	forms = append(forms, &loaded{name: "file", m: pm})
	for i, other := range others {
		_, om, err := open("file", dir, other, opts)
		if err != nil {
			return err
		}
		defer om.Close()
		forms = append(forms, &loaded{name: fmt.Sprintf("other%d", i+1), m: om})
	}
	rng := rand.New(rand.NewPCG(5, 5))
	hi := 24 // inside g2p-en's 30 source characters
	if man.Architecture == models.ArchTransformer {
		hi = max(4, min(man.VocabSize-4, 30000))
	}
	src := make([][]int64, rows)
	for i := range src {
		n := 12 + rng.IntN(29)
		for range n {
			src[i] = append(src[i], int64(3+rng.IntN(hi)))
		}
		src[i] = append(src[i], man.EOSTokenIDs[0])
	}
	ctx := context.Background()
	// run encodes src and feeds steps forced tokens; it returns the time
	// per step and the last step's logits.
	run := func(m *runtime.Model) (time.Duration, []float32, error) {
		d, err := m.Encode(ctx, src, man.PadTokenID)
		if err != nil {
			return 0, nil, err
		}
		defer d.Close()
		tok := make([]int64, rows)
		var logits []float32
		// The thread's CPU time, not the wall clock: with one intra-op
		// thread ONNX Runtime runs on the calling thread, and the time
		// other processes take the core from it is left out.
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
		c0 := threadCPU()
		for s := range steps {
			for r := range tok {
				tok[r] = man.DecoderStartTokenID
				if s > 0 {
					tok[r] = 3 + int64(r*11+s*5)%int64(m.VocabSize()-4)
				}
			}
			if logits, err = d.Step(ctx, tok); err != nil {
				return 0, nil, err
			}
		}
		return (threadCPU() - c0) / time.Duration(steps), slices.Clone(logits), nil
	}
	worst := 0.0 // between the split pair and the file
	for i := range reps + 1 {
		var first []float32
		for _, f := range forms {
			d, logits, err := run(f.m)
			if err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
			if first == nil {
				first = logits
			} else if f.m == pm || len(f.name) > 5 && f.name[:5] == "other" {
				for j := range first {
					worst = max(worst, math.Abs(float64(first[j]-logits[j])))
				}
			}
			if i > 0 { // the first run of each warms up
				f.t = append(f.t, float64(d.Nanoseconds())/1e3)
			}
		}
	}
	pf := forms[len(forms)-1-len(others)]
	fmt.Printf("step (%d rows, %d steps, thread CPU time, fastest of %d):", rows, steps, reps)
	for _, f := range forms {
		fmt.Printf(" %s %.1f us;", f.name, slices.Min(f.t))
	}
	for _, f := range forms[:len(forms)-1-len(others)] {
		fmt.Printf(" file/%s %.3f;", f.name, slices.Min(pf.t)/slices.Min(f.t))
		for _, o := range forms[len(forms)-len(others):] {
			fmt.Printf(" %s/%s %.3f;", o.name, f.name, slices.Min(o.t)/slices.Min(f.t))
		}
	}
	fmt.Printf(" largest logit difference file vs split %.3g\n", worst)
	return nil
}

// threadCPU returns the CPU time the calling OS thread has used
// (CLOCK_THREAD_CPUTIME_ID).
func threadCPU() time.Duration {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}

func mb(n int64) float64 { return float64(n) / 1e6 }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
