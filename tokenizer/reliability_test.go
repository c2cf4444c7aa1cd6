package tokenizer

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/s2s-dev/s2s/internal/safefile"
)

// TestLoadRefusesSpecialAndHugeFiles: tokenizer.json is read only when it
// is a regular file within MaxFileBytes (a named pipe used to block Load,
// a symlink to /dev/zero to exhaust memory).
func TestLoadRefusesSpecialAndHugeFiles(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(t *testing.T, path string)
		want error
		says string
	}{
		{"fifo", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Skipf("no named pipes here: %v", err)
			}
		}, safefile.ErrNotRegular, "named pipe"},
		{"dev zero", func(t *testing.T, path string) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}, safefile.ErrNotRegular, "device"},
		{"huge", func(t *testing.T, path string) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(MaxFileBytes + 1); err != nil { // sparse: no disk used
				t.Fatal(err)
			}
		}, safefile.ErrTooLarge, "tokenizer.MaxFileBytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokenizer.json")
			c.make(t, path)
			_, err := Load(path, "")
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want %v saying %q", err, c.want, c.says)
			}
		})
	}
}

// TestLoadRefusesDamagedFiles: missing, truncated and random-bytes
// tokenizer files fail Load with one error that names the file.
func TestLoadRefusesDamagedFiles(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(tokenizersDir(), "t5", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"truncated", good[:len(good)/2], ErrMalformed},
		{"random bytes", []byte("\x8f\x00\x13\xfe garbage \xff"), ErrMalformed},
		{"empty", nil, ErrMalformed},
		{"not an object", []byte(`[1, 2, 3]`), ErrMalformed},
		{"no model", []byte(`{"added_tokens": []}`), nil},
		{"unknown model", []byte(`{"model": {"type": "WordPiece9"}}`), ErrUnsupported},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".json")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, "")
			if err == nil || c.want != nil && !errors.Is(err, c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want an error (%v) naming %s", err, c.want, path)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.json"), ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
}

// TestStreamIsLinear streams 4096 ids: each Add decodes a short window,
// not every id so far (which allocated O(n²) bytes: hundreds of MB here).
func TestStreamIsLinear(t *testing.T) {
	corpus := readCorpus(t)
	for _, name := range []string{"t5", "bart"} {
		tok := loadNamed(t, name)
		var ids []int64
		for len(ids) < 4096 {
			for _, text := range corpus {
				e, err := tok.Encode(text)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, e...)
			}
		}
		ids = ids[:4096]
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		sd := NewStreamDecoder(tok, true)
		var b strings.Builder
		for _, id := range ids {
			b.WriteString(sd.Add(id))
		}
		b.WriteString(sd.Flush())
		runtime.ReadMemStats(&after)
		if b.String() != tok.Decode(ids, true) {
			t.Fatalf("%s: the stream differs from Decode", name)
		}
		// A window of a few ids allocates a few hundred bytes per Add.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("%s: streaming 4096 ids allocated %d MB; each Add must decode a window, not all ids", name, alloc>>20)
		}
	}
}

// TestStreamBoundedOnInvalidBytes: byte tokens that never form UTF-8 keep
// the window from settling; it is cut at maxWindow ids, so the cost stays
// linear, and the text is still Decode's.
func TestStreamBoundedOnInvalidBytes(t *testing.T) {
	tok := loadNamed(t, "bart")
	cont, ok := tok.TokenID(byteLevelEncode("\x80"))
	if !ok {
		t.Fatal("no token for byte 0x80")
	}
	ids := make([]int64, 4096)
	for i := range ids {
		ids[i] = cont
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sd := NewStreamDecoder(tok, true)
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(sd.Add(id))
	}
	b.WriteString(sd.Flush())
	runtime.ReadMemStats(&after)
	if b.String() != tok.Decode(ids, true) {
		t.Errorf("the stream of %d lone continuation bytes differs from Decode", len(ids))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("streaming 4096 invalid bytes allocated %d MB", alloc>>20)
	}
}
