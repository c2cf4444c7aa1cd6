package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/config"
	"github.com/s2s-dev/s2s/models"
	"github.com/s2s-dev/s2s/runtime"
)

func init() {
	register(command{name: "doctor", summary: "check ONNX Runtime, CUDA and a model directory, and say what to fix", run: runDoctor})
}

const doctorUsage = `Usage:
  gen doctor [-model DIR] [-provider cpu|cuda] [-device-id N] [-ort-lib PATH]

Reports the ONNX Runtime library gen loads (path, version, providers) and why
each other place was passed over; the CUDA build, its libraries, the driver
and the device; with -model, the model directory (graphs, layout, tokenizer,
special ids, limits). It ends with what to fix, and exits 1 when there is
anything. The flags also come from S2S_MODEL, S2S_PROVIDER, S2S_DEVICE_ID and
S2S_ORT_LIB, as for gen.

Flags:
`

// doctor collects the report's sections and what to fix.
type doctor struct {
	w     io.Writer
	fixes []string
}

func (d *doctor) fix(format string, args ...any) {
	f := fmt.Sprintf(format, args...)
	if !slices.Contains(d.fixes, f) {
		d.fixes = append(d.fixes, f)
	}
}

// section prints a heading, rows of name and value, and then each of the
// blocks: a line of its own and its rows, indented.
func (d *doctor) section(title string, rows [][2]string, blocks ...block) {
	fmt.Fprintf(d.w, "%s\n", title)
	table := func(indent string, rows [][2]string) {
		tw := tabwriter.NewWriter(d.w, 0, 4, 2, ' ', 0)
		for _, r := range rows {
			fmt.Fprintf(tw, "%s%s\t%s\n", indent, r[0], r[1])
		}
		tw.Flush()
	}
	table("  ", rows)
	for _, b := range blocks {
		fmt.Fprintf(d.w, "  %s\n", b.title)
		table("    ", b.rows)
	}
	fmt.Fprintln(d.w)
}

// block is a titled part of a section.
type block struct {
	title string
	rows  [][2]string
}

// runDoctor runs gen doctor.
func runDoctor(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, doctorUsage); fs.PrintDefaults() }
	model := fs.String("model", os.Getenv(config.EnvName("model")), "model directory to check")
	provider := fs.String("provider", os.Getenv(config.EnvName("provider")), "execution provider gen will run: cpu or cuda (default cpu)")
	deviceEnv := os.Getenv(config.EnvName("device_id"))
	device := fs.Int("device-id", 0, "CUDA device id")
	ortLib := fs.String("ort-lib", os.Getenv(config.EnvName("ort_lib")), "explicit ONNX Runtime library, as gen's -ort-lib")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gen doctor: unexpected argument %q (the model is -model DIR)\n", fs.Arg(0))
		return errUsage
	}
	if deviceEnv != "" && !flagSet(fs, "device-id") {
		n, err := strconv.Atoi(deviceEnv)
		if err != nil {
			return fmt.Errorf("%w: %s=%q is not a number", errUsage, config.EnvName("device_id"), deviceEnv)
		}
		*device = n
	}
	if *provider == "" {
		*provider = runtime.ProviderCPU
	}
	if err := (runtime.Options{Provider: *provider, DeviceID: *device}).Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	d := &doctor{w: stdout}
	path, err := d.library(*ortLib, *provider)
	d.cuda(*ortLib, *provider, *device, path, err)
	if *model != "" {
		// The graphs are read with the library found for the provider (a
		// CUDA build reads them on the CPU as well), or the one named.
		lib := *ortLib
		if err == nil {
			lib = path
		}
		d.model(*model, lib)
	}
	if len(d.fixes) == 0 {
		fmt.Fprintln(stdout, "Nothing to fix.")
		return nil
	}
	fmt.Fprintln(stdout, "To fix:")
	for _, f := range d.fixes {
		fmt.Fprintf(stdout, "  - %s\n", f)
	}
	return fmt.Errorf("gen doctor found %d thing(s) to fix; see above", len(d.fixes))
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// library reports the library gen loads for provider and the places looked
// at, and returns the search's result.
func (d *doctor) library(explicit, provider string) (string, error) {
	title := "ONNX Runtime (-provider " + provider + ")"
	path, places, err := runtime.SearchLibrary(explicit, provider)
	var rows [][2]string
	if err != nil {
		rows = append(rows, [2]string{"library", "none: " + err.Error()})
		d.fix("%s", err.Error())
	} else {
		rows = append(rows, [2]string{"library", path})
		for _, p := range places {
			if p.Chosen {
				rows = append(rows, [2]string{"found in", p.Where})
			}
		}
		info, providers, perr := libraryFacts(path)
		if perr != nil {
			rows = append(rows, [2]string{"version", "unusable: " + perr.Error()})
			d.fix("%s", perr.Error())
		} else {
			if info.File != path {
				rows = append(rows, [2]string{"file", info.File})
			}
			rows = append(rows, [2]string{"version", info.Version}, [2]string{"providers", providerText(info.File, providers)})
		}
	}
	var searched [][2]string
	for _, p := range places {
		what := p.Skip
		if p.Chosen {
			what = "chosen: " + p.Path
		} else if p.Path != "" && !strings.Contains(p.Skip, p.Path) {
			what = p.Path + ": " + p.Skip
		}
		searched = append(searched, [2]string{p.Where, what})
	}
	d.section(title, rows, block{"places looked at, in order:", searched})
	return path, err
}

// providerText lists a library's providers, saying for those that need a
// provider library of their own whether it is beside the library.
func providerText(file string, providers []string) string {
	own := map[string]string{
		"CUDAExecutionProvider":     "libonnxruntime_providers_cuda.so",
		"TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so",
	}
	var parts []string
	for _, p := range providers {
		if lib, ok := own[p]; ok {
			if _, err := os.Stat(filepath.Join(filepath.Dir(file), lib)); err != nil {
				p += " (built in, but its " + lib + " is not beside the library: unusable)"
			}
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// libraryFacts reads a library's version, file and providers without
// creating its environment.
func libraryFacts(path string) (info runtime.LibraryInfo, providers []string, err error) {
	if info, err = runtime.ProbeLibrary(path); err != nil {
		return info, nil, err
	}
	providers, err = runtime.Providers(path)
	return info, providers, err
}

// cuda reports the CUDA build gen -provider cuda loads and whether it can
// run. When provider is cuda, path and searchErr are what library found
// (already reported); otherwise it looks for the CUDA build itself, and
// what it finds is for information only.
func (d *doctor) cuda(_, provider string, device int, path string, searchErr error) {
	wanted := provider == runtime.ProviderCUDA
	title := "CUDA (-provider cuda, device " + strconv.Itoa(device) + ")"
	var rows [][2]string
	if !wanted {
		var places []runtime.LibraryPlace
		path, places, searchErr = runtime.SearchLibrary("", runtime.ProviderCUDA)
		if searchErr != nil {
			d.section(title, [][2]string{{"library", "none (gen ort install -cuda, or scripts/setup.sh ort-cuda in the repository)"}})
			return
		}
		rows = append(rows, [2]string{"library", path})
		for _, p := range places {
			if p.Chosen {
				rows = append(rows, [2]string{"found in", p.Where})
			}
		}
	} else if searchErr != nil {
		d.section(title, [][2]string{{"library", "none (see above)"}})
		return
	}
	info, providers, err := libraryFacts(path)
	if err != nil {
		rows = append(rows, [2]string{"library", "unusable: " + err.Error()})
		d.section(title, rows)
		if wanted {
			d.fix("%s", err.Error())
		}
		return
	}
	if !wanted {
		rows = append(rows, [2]string{"version", info.Version}, [2]string{"providers", providerText(info.File, providers)})
	}
	report, err := runtime.CheckCUDA(filepath.Dir(info.File), device)
	for _, l := range report.Libraries {
		where := "beside ONNX Runtime"
		if l.Path == l.Name {
			where = "from the system's library paths"
		}
		if l.Optional {
			where += " (loaded when an operator needs it)"
		}
		rows = append(rows, [2]string{l.Name, where})
	}
	for _, m := range report.Missing {
		rows = append(rows, [2]string{m + "*", "not found: operators that need it fail on CUDA (cuDNN: LSTM, convolutions; NVRTC: kernels compiled at run time)"})
	}
	if report.Driver != "" && report.DriverVersion > 0 {
		rows = append(rows, [2]string{"driver", fmt.Sprintf("%s, CUDA %d.%d", report.Driver, report.DriverVersion/1000, report.DriverVersion%1000/10)})
	}
	if report.NeedVersion > 0 {
		rows = append(rows, [2]string{"needs", fmt.Sprintf("CUDA %d.x (driver R580 or newer for 13.x)", report.NeedVersion/1000)})
	}
	if err != nil {
		rows = append(rows, [2]string{"usable", "no: " + err.Error()})
		if wanted {
			d.fix("%s", err.Error())
		}
	} else {
		rows = append(rows, [2]string{"devices", strconv.Itoa(report.Devices)}, [2]string{"usable", fmt.Sprintf("yes, device %d", device)})
	}
	d.section(title, rows)
}

// model reports a model directory.
func (d *doctor) model(dir, ortLib string) {
	title := "Model " + dir
	m, err := models.Load(dir)
	if err != nil {
		d.section(title, [][2]string{{"manifest", "unreadable: " + err.Error()}})
		d.fix("%s", err.Error())
		return
	}
	var rows [][2]string
	manifest := models.ManifestFile
	if m.Packed {
		manifest = models.ManifestFile + " in the packed file's metadata"
	}
	if m.Derived {
		manifest = "derived from config.json (an Optimum directory, no " + models.ManifestFile + ")"
	}
	rows = append(rows, [2]string{"manifest", manifest}, [2]string{"architecture", m.Architecture + " (" + m.ModelType + ")"})

	spec, err := runtime.Inspect(m, ortLib)
	logits := 0
	if err != nil {
		rows = append(rows, [2]string{"graphs", "not read: " + err.Error()})
		d.fix("%s", err.Error())
	} else {
		for _, g := range spec.Graphs {
			state := fmt.Sprintf("%d inputs, %d outputs", len(g.Inputs), len(g.Outputs))
			if g.Size > 0 {
				state = sizeText(g.Size) + ", " + state
			}
			if g.Err != "" {
				state = "unusable: " + g.Err
				d.fix("%s", g.Err)
			}
			rows = append(rows, [2]string{g.Role, filepath.Base(g.File) + ": " + state})
		}
		usable := 0
		for _, l := range spec.Layouts {
			if l.Err != "" {
				rows = append(rows, [2]string{"layout " + l.Graphs, "unusable: " + l.Err})
				continue
			}
			usable++
			logits = l.Vocab
			cross := "cross-attention cache computed once, at the first step"
			if !l.CrossCache {
				cross = "cross-attention recomputed from encoder_hidden_states at each step"
			}
			rows = append(rows, [2]string{"layout " + l.Graphs, fmt.Sprintf("%d layers, %d heads x %d, hidden %d, %d logits; %s", l.Layers, l.Heads, l.HeadDim, l.Hidden, l.Vocab, cross)})
		}
		if m.Architecture == models.ArchTransformer {
			if usable == 0 {
				d.fix("%s: no decoder graphs the host can run; re-export the model (python -m s2s_export, or optimum-cli export onnx --task text2text-generation-with-past)", dir)
			} else {
				rows = append(rows, [2]string{"decoder graphs", fmt.Sprintf("auto runs %s on the CPU, %s on CUDA", orNone(spec.AutoCPU), orNone(spec.AutoCUDA))})
			}
		}
		if m.Architecture == models.ArchRNN {
			if spec.Err != "" {
				rows = append(rows, [2]string{"states", "unusable: " + spec.Err})
				d.fix("%s", spec.Err)
			} else {
				logits = spec.Vocab
				rows = append(rows, [2]string{"states", fmt.Sprintf("%d (%s), %d logits", len(m.States), stateNames(m.States), spec.Vocab)})
			}
		}
	}

	tok, err := s2s.LoadTokenizer(dir)
	if err != nil {
		rows = append(rows, [2]string{"tokenizer", "unusable: " + err.Error()})
		d.fix("%s", err.Error())
	} else {
		t := m.Tokenizer.Source
		if m.Tokenizer.Target != m.Tokenizer.Source {
			t += " (source), " + m.Tokenizer.Target + " (target)"
		}
		rows = append(rows, [2]string{"tokenizer", fmt.Sprintf("%s; target vocabulary %d, special ids %v", t, tok.VocabSize(), tok.SpecialIDs())})
		if logits > 0 && tok.VocabSize() > logits {
			d.fix("%s: the target tokenizer has %d ids but the decoder gives %d logits; ids from %d on can never be generated: the tokenizer and the graphs are from different models", dir, tok.VocabSize(), logits, logits)
		}
	}

	rows = append(rows, [2]string{"special ids", fmt.Sprintf("pad %d, eos %v, bos %d, decoder start %d", m.PadTokenID, m.EOSTokenIDs, m.BOSTokenID, m.DecoderStartTokenID)})
	vocab := m.VocabSize
	if logits > 0 {
		vocab = logits
		if m.VocabSize != logits {
			d.fix("%s: vocab_size is %d in the manifest but the decoder gives %d logits; re-export the model", dir, m.VocabSize, logits)
		}
	}
	for _, id := range append([]int64{m.DecoderStartTokenID}, m.EOSTokenIDs...) {
		if id < 0 || id >= int64(vocab) {
			d.fix("%s: special id %d is outside the vocabulary 0..%d; fix eos_token_id / decoder_start_token_id in the config", dir, id, vocab-1)
		}
	}
	gc, err := models.LoadGenerationConfig(dir)
	if err != nil {
		d.fix("%s", err.Error())
	} else {
		o := m.Options(gc)
		rows = append(rows, [2]string{"limits", fmt.Sprintf("vocabulary %d; generation defaults: max_new_tokens %d, num_beams %d (generation_config.json; override with -max-new-tokens, -num-beams)", vocab, o.MaxNewTokens, o.NumBeams)})
		if err := o.Validate(vocab); err != nil {
			d.fix("%s: generation_config.json: %v", dir, err)
		}
	}
	if n := m.MaxPositions; n > 0 {
		rows = append(rows, [2]string{"positions", fmt.Sprintf("max_position_embeddings %d (config.json): longer inputs or outputs are out of the model's range", n)})
	}
	d.section(title, rows)
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

func stateNames(states []models.State) string {
	var names []string
	for _, s := range states {
		names = append(names, s.Input)
	}
	return strings.Join(names, ", ")
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// maxPositions reads max_position_embeddings from dir/config.json (0 when
// absent).
