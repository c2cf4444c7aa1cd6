package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/s2s-dev/s2s/runtime"
	"github.com/s2s-dev/s2s/runtime/ortinstall"
)

func init() {
	register(command{name: "ort", summary: "install, list and locate ONNX Runtime (gen ort install|list|path)", run: runORT})
}

const ortUsage = `Usage:
  gen ort install [-version V] [-cuda] [-force]   fetch the pinned ONNX Runtime into the per-user cache
  gen ort list                                    what the cache holds, and which library gen loads
  gen ort path [-cuda] [-ort-lib P]               print the library gen loads (for ONNXRUNTIME_LIB)

install fetches the CPU library from npm (npm pack onnxruntime-node, no install
scripts run) or, with -cuda, the CUDA build from PyPI (pip download --no-deps:
onnxruntime-gpu and NVIDIA's CUDA 13 and cuDNN wheels, ~1.2 GB), checks the
pinned sha256 of every file, and installs it into $XDG_CACHE_HOME/s2s/ort/VERSION
(else ~/.cache/s2s/ort/VERSION) in one rename. Programs built with s2s find it
there by themselves.
`

// runORT runs gen ort SUBCOMMAND.
func runORT(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, ortUsage)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("gen ort "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, ortUsage+"\nFlags:\n"); fs.PrintDefaults() }
	parse := func() error {
		if err := fs.Parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "gen ort %s: unexpected argument %q\n", args[0], fs.Arg(0))
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "install":
		version := fs.String("version", "", "ONNX Runtime version (default: the pinned one)")
		cuda := fs.Bool("cuda", false, "the CUDA build (onnxruntime-gpu, CUDA 13, cuDNN 9; x86-64)")
		force := fs.Bool("force", false, "fetch again even when installed")
		timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
		if err := parse(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		inst, err := ortinstall.Install(ctx, ortinstall.Options{Version: *version, CUDA: *cuda, Force: *force, Log: stderr})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, inst.Library())
		return nil
	case "list":
		if err := parse(); err != nil {
			return err
		}
		return ortList(stdout)
	case "path":
		cuda := fs.Bool("cuda", false, "the library -provider cuda loads")
		lib := fs.String("ort-lib", "", "explicit library path, as gen's -ort-lib")
		if err := parse(); err != nil {
			return err
		}
		provider := runtime.ProviderCPU
		if *cuda {
			provider = runtime.ProviderCUDA
		}
		path, err := runtime.FindLibraryFor(*lib, provider)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, path)
		return nil
	}
	fmt.Fprintf(stderr, "gen ort: unknown subcommand %q\n%s", args[0], ortUsage)
	return errUsage
}

// ortList prints the cache's installations and the library gen loads for
// each provider.
func ortList(w io.Writer) error {
	root, err := ortinstall.CacheRoot()
	if err != nil {
		return err
	}
	insts, err := ortinstall.Installed(root)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "cache %s:\n", root)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(insts) == 0 {
		fmt.Fprintln(tw, "  (empty: gen ort install, or gen ort install -cuda)")
	}
	for _, inst := range insts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", inst.Version, inst.Variant, inst.Arch, inst.Dir)
	}
	tw.Flush()
	fmt.Fprintln(w, "gen loads:")
	for _, provider := range []string{runtime.ProviderCPU, runtime.ProviderCUDA} {
		path, places, err := runtime.SearchLibrary("", provider)
		if err != nil {
			fmt.Fprintf(w, "  -provider %s: nothing found (%s)\n", provider, oneLine(err.Error()))
			continue
		}
		where := ""
		for _, p := range places {
			if p.Chosen {
				where = p.Where
			}
		}
		fmt.Fprintf(w, "  -provider %s: %s (%s)\n", provider, path, where)
	}
	return nil
}
