package ortinstall

import (
	_ "embed"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
)

// pinsText is the pin table scripts/setup.sh reads as well.
//
//go:embed pins.txt
var pinsText string

// Variants of ONNX Runtime the pin table knows.
const (
	VariantCPU  = "cpu"
	VariantCUDA = "cuda"
)

// Dist is one file fetched from a package registry.
type Dist struct {
	Tool           string // "npm" (npm pack) or "pip" (pip download --no-deps)
	Package        string // the registry's package name
	PackageVersion string // its version
	File           string // the file the tool writes
	SHA256         string // its pinned sha256, lower-case hex
}

// File is one library taken out of a Dist and installed.
type File struct {
	From   string // the Dist's File it comes out of
	Member string // its path inside that archive
	Name   string // the name it is installed as
	SHA256 string // its pinned sha256, lower-case hex
}

// Build is one pinned ONNX Runtime build for one variant and architecture:
// what to fetch and what to install.
type Build struct {
	Version string // ONNX Runtime's version, e.g. "1.30.0"
	Variant string // VariantCPU or VariantCUDA
	Arch    string // "x64" or "arm64"
	Dists   []Dist
	Files   []File
}

// Table is a parsed pin table.
type Table struct {
	defaults map[string]string // variant -> version
	builds   map[buildKey]*Build
}

type buildKey struct{ version, variant, arch string }

// Pins returns the pin table embedded in the binary (pins.txt, the file
// scripts/setup.sh reads too).
func Pins() *Table {
	t, err := embedded()
	if err != nil {
		panic("ortinstall: the embedded pins.txt is broken: " + err.Error())
	}
	return t
}

var embedded = sync.OnceValues(func() (*Table, error) { return ParseTable(pinsText) })

// ParseTable reads a pin table in the format of pins.txt.
func ParseTable(text string) (*Table, error) {
	t := &Table{defaults: map[string]string{}, builds: map[buildKey]*Build{}}
	bad := func(n int, format string, args ...any) error {
		return fmt.Errorf("ortinstall: pins line %d: %s", n, fmt.Sprintf(format, args...))
	}
	for n, line := range strings.Split(text, "\n") {
		n++
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "default":
			if len(f) != 3 {
				return nil, bad(n, "default needs VARIANT VERSION")
			}
			if err := checkVariant(f[1]); err != nil {
				return nil, bad(n, "%v", err)
			}
			t.defaults[f[1]] = f[2]
		case "dist", "file":
			want := map[string]int{"dist": 9, "file": 8}[f[0]]
			if len(f) != want {
				return nil, bad(n, "%s needs %d fields, has %d", f[0], want, len(f))
			}
			if err := checkVariant(f[2]); err != nil {
				return nil, bad(n, "%v", err)
			}
			if f[3] != "x64" && f[3] != "arm64" {
				return nil, bad(n, "architecture %q is neither x64 nor arm64", f[3])
			}
			sum := f[len(f)-1]
			if !isSHA256(sum) {
				return nil, bad(n, "%q is not a sha256 (64 lower-case hex digits)", sum)
			}
			k := buildKey{f[1], f[2], f[3]}
			b := t.builds[k]
			if b == nil {
				b = &Build{Version: k.version, Variant: k.variant, Arch: k.arch}
				t.builds[k] = b
			}
			if f[0] == "dist" {
				d := Dist{Tool: f[4], Package: f[5], PackageVersion: f[6], File: f[7], SHA256: sum}
				if d.Tool != "npm" && d.Tool != "pip" {
					return nil, bad(n, "tool %q is neither npm nor pip", d.Tool)
				}
				if !plainName(d.File) {
					return nil, bad(n, "file %q must be a plain file name", d.File)
				}
				b.Dists = append(b.Dists, d)
				continue
			}
			file := File{From: f[4], Member: f[5], Name: f[6], SHA256: sum}
			if !plainName(file.Name) {
				return nil, bad(n, "name %q must be a plain file name", file.Name)
			}
			if path.Clean(file.Member) != file.Member || strings.HasPrefix(file.Member, "/") || strings.HasPrefix(file.Member, "..") {
				return nil, bad(n, "member %q must be a clean relative path", file.Member)
			}
			b.Files = append(b.Files, file)
		default:
			return nil, bad(n, "unknown line kind %q; use default, dist or file", f[0])
		}
	}
	for k, b := range t.builds {
		names := map[string]bool{}
		for _, f := range b.Files {
			if names[f.Name] {
				return nil, fmt.Errorf("ortinstall: pins: %s installs %s twice", k, f.Name)
			}
			names[f.Name] = true
			if !slices.ContainsFunc(b.Dists, func(d Dist) bool { return d.File == f.From }) {
				return nil, fmt.Errorf("ortinstall: pins: %s takes %s out of %s, which no dist line fetches", k, f.Name, f.From)
			}
		}
		if !names[LibraryName] {
			return nil, fmt.Errorf("ortinstall: pins: %s installs no %s", k, LibraryName)
		}
		if b.Variant == VariantCUDA && !names[cudaProvider] {
			return nil, fmt.Errorf("ortinstall: pins: %s installs no %s", k, cudaProvider)
		}
	}
	for variant, version := range t.defaults {
		if len(t.Versions(variant, "")) == 0 || !slices.Contains(t.Versions(variant, ""), version) {
			return nil, fmt.Errorf("ortinstall: pins: default %s version %s has no dist lines", variant, version)
		}
	}
	return t, nil
}

// String names the build's key, e.g. "1.30.0/cpu/x64".
func (k buildKey) String() string { return k.version + "/" + k.variant + "/" + k.arch }

func checkVariant(v string) error {
	if v != VariantCPU && v != VariantCUDA {
		return fmt.Errorf("variant %q is neither %s nor %s", v, VariantCPU, VariantCUDA)
	}
	return nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func plainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\")
}

// Default returns the version fetched for variant when none is asked for
// ("" when the table names none).
func (t *Table) Default(variant string) string { return t.defaults[variant] }

// Versions returns the pinned versions of variant for arch ("" = any
// architecture), sorted.
func (t *Table) Versions(variant, arch string) []string {
	var vs []string
	for k := range t.builds {
		if k.variant == variant && (arch == "" || k.arch == arch) && !slices.Contains(vs, k.version) {
			vs = append(vs, k.version)
		}
	}
	slices.SortFunc(vs, compareVersions)
	return vs
}

// Build returns the pinned build of version, variant and arch.
func (t *Table) Build(version, variant, arch string) (*Build, error) {
	if err := checkVariant(variant); err != nil {
		return nil, fmt.Errorf("ortinstall: %v", err)
	}
	if arch == "" {
		return nil, fmt.Errorf("%w: no prebuilt ONNX Runtime is pinned for this system; set ONNXRUNTIME_LIB to a libonnxruntime.so.1 of your own", ErrNotPinned)
	}
	b := t.builds[buildKey{version, variant, arch}]
	if b == nil {
		pinned := t.Versions(variant, arch)
		if len(pinned) == 0 {
			return nil, fmt.Errorf("%w: no %s build of ONNX Runtime is pinned for %s; set ONNXRUNTIME_LIB to a libonnxruntime.so.1 of your own", ErrNotPinned, variant, arch)
		}
		return nil, fmt.Errorf("%w: ONNX Runtime %s (%s, %s) is not pinned; pinned: %s (add its files and checksums to runtime/ortinstall/pins.txt to use another)", ErrNotPinned, version, variant, arch, strings.Join(pinned, ", "))
	}
	return b, nil
}

// compareVersions orders dotted versions numerically ("1.9.0" < "1.30.0").
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y string
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if len(x) != len(y) && isDigits(x) && isDigits(y) {
			return len(x) - len(y)
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
