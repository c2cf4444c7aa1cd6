package models

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// packedFiles are the committed packed models (python -m s2s_export pack)
// and their directories.
var packedFiles = map[string]string{
	"../testdata/t5-tiny.onnx":     "../testdata/t5-tiny",
	"../testdata/bart-tiny.onnx":   "../testdata/bart-tiny",
	"../testdata/marian-tiny.onnx": "../testdata/marian-tiny",
	"g2p-en.onnx":                  "g2p-en",
}

func TestReadPackedCommitted(t *testing.T) {
	for file, dir := range packedFiles {
		t.Run(filepath.Base(file), func(t *testing.T) {
			p, err := ReadPackedFile(file)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			q, err := ReadPacked(data)
			if err != nil {
				t.Fatal(err)
			}
			if p.Path != file || p.Data != nil || q.Path != "" || len(q.Data) != len(data) {
				t.Errorf("file: path %q, %d bytes; memory: path %q, %d bytes", p.Path, len(p.Data), q.Path, len(q.Data))
			}
			if p.FormatVersion != PackedFormatVersion || p.PartInput != "s2s_part" || !p.Manifest.Packed {
				t.Errorf("version %q, part input %q, packed %v", p.FormatVersion, p.PartInput, p.Manifest.Packed)
			}
			d, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			m := p.Manifest
			if m.Architecture != d.Architecture || m.VocabSize != d.VocabSize || m.NumLayers != d.NumLayers ||
				!slices.Equal(m.EOSTokenIDs, d.EOSTokenIDs) || m.DecoderStartTokenID != d.DecoderStartTokenID ||
				len(m.States) != len(d.States) {
				t.Errorf("packed manifest %+v\ndirectory's %+v", m, d)
			}
			for _, name := range []string{m.Files.Encoder, m.Files.Decoder} {
				if _, ok := p.Part(name); !ok {
					t.Errorf("no part %q", name)
				}
			}
			for _, name := range []string{m.Tokenizer.Source, m.Tokenizer.Target, "config.json", "generation_config.json"} {
				if p.Metadata[name] == "" {
					t.Errorf("no %s in the metadata", name)
				}
			}
			if !slices.EqualFunc(p.Inputs, q.Inputs, func(a, b TensorInfo) bool { return a.Name == b.Name && slices.Equal(a.Dims, b.Dims) }) {
				t.Errorf("inputs from the file %v, from memory %v", p.Inputs, q.Inputs)
			}
			// The generation defaults are the directory's.
			want, err := LoadGenerationConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := LoadGenerationConfig(file)
			if err != nil {
				t.Fatal(err)
			}
			if !optionsEqual(d.Options(got), d.Options(want)) {
				t.Errorf("generation options %+v, directory's %+v", d.Options(got), d.Options(want))
			}
			// Load on the file gives the packed manifest.
			lm, err := Load(file)
			if err != nil || !lm.Packed || lm.VocabSize != d.VocabSize {
				t.Errorf("Load(%s): %+v, %v", file, lm, err)
			}
		})
	}
}

// appendVarint and appendField write the protobuf wire format.
func appendVarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendField(b []byte, field int, payload []byte) []byte {
	b = appendVarint(b, uint64(field)<<3|2)
	b = appendVarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// entry encodes a StringStringEntryProto.
func entry(key, value string) []byte {
	return appendField(appendField(nil, 1, []byte(key)), 2, []byte(value))
}

// splitPacked returns a packed file's top-level fields other than the
// metadata, raw, and its metadata.
func splitPacked(t *testing.T, data []byte) ([]byte, map[string]string) {
	t.Helper()
	h, err := readONNXHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	p := newPBReader(bytes.NewReader(data), int64(len(data)))
	var rest []byte
	for p.more() {
		start := p.off
		f, w, err := p.key()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.skip(w); err != nil {
			t.Fatal(err)
		}
		if f != fieldModelMetadata {
			rest = append(rest, data[start:p.off]...)
		}
	}
	return rest, h.metadata
}

// joinPacked writes rest and then the metadata entries, keys sorted.
func joinPacked(rest []byte, meta map[string]string) []byte {
	out := slices.Clone(rest)
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = appendField(out, fieldModelMetadata, entry(k, meta[k]))
	}
	return out
}

func TestPackedRoundTrip(t *testing.T) {
	data, err := os.ReadFile("../testdata/t5-tiny.onnx")
	if err != nil {
		t.Fatal(err)
	}
	rest, meta := splitPacked(t, data)
	if _, err := ReadPacked(joinPacked(rest, meta)); err != nil {
		t.Fatalf("the file taken apart and put together again: %v", err)
	}
}

func TestPackedVersions(t *testing.T) {
	data, err := os.ReadFile("../testdata/bart-tiny.onnx")
	if err != nil {
		t.Fatal(err)
	}
	rest, meta := splitPacked(t, data)
	for _, c := range []struct {
		version string
		want    error // nil: read
	}{
		{"1.0", nil},
		{"1.4", nil},
		{"1", nil},
		{"2.0", ErrPackedVersion},
		{"0.9", ErrPackedVersion},
		{"one", ErrPackedVersion},
		{"", ErrPackedVersion},
	} {
		t.Run(c.version, func(t *testing.T) {
			m := mapsClone(meta)
			m[KeyFormatVersion] = c.version
			_, err := ReadPacked(joinPacked(rest, m))
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("version %q: %v, want %v", c.version, err, c.want)
			}
			if err != nil {
				t.Log(err)
			}
		})
	}
	m := mapsClone(meta)
	delete(m, KeyFormatVersion)
	if _, err := ReadPacked(joinPacked(rest, m)); !errors.Is(err, ErrNotPacked) || !errors.Is(err, ErrNotModelDir) {
		t.Fatalf("no version: %v", err)
	}
}

func mapsClone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestPackedMalformed(t *testing.T) {
	data, err := os.ReadFile("../testdata/marian-tiny.onnx")
	if err != nil {
		t.Fatal(err)
	}
	rest, meta := splitPacked(t, data)
	with := func(edit func(m map[string]string)) []byte {
		m := mapsClone(meta)
		edit(m)
		return joinPacked(rest, m)
	}
	plain, err := os.ReadFile("../testdata/marian-tiny/encoder_model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	// A value that says it is larger than the limit, and then ends.
	huge := appendVarint(appendField(nil, 1, []byte("tokenizer.json")), 2<<3|2)
	huge = appendVarint(huge, MaxMetadataBytes+1)
	many := slices.Clone(data)
	for i := range MaxMetadataEntries + 1 {
		many = appendField(many, fieldModelMetadata, entry("k"+strconv.Itoa(i), "v"))
	}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrNotPacked},
		{"json", []byte(`{"format": "s2s-model"}`), ErrNotPacked},
		{"plain graph", plain, ErrNotPacked},
		{"truncated", data[:len(data)/2], ErrNotPacked},
		{"declared value over the limit", append(appendVarint(appendVarint(slices.Clone(data), fieldModelMetadata<<3|2), uint64(len(huge))), huge...), ErrNotPacked},
		{"too many entries", many, ErrNotPacked},
		{"duplicate key", appendField(slices.Clone(data), fieldModelMetadata, entry(KeyParts, "{}")), ErrNotPacked},
		{"parts not json", with(func(m map[string]string) { m[KeyParts] = "[" }), ErrBadPacked},
		{"no parts", with(func(m map[string]string) { delete(m, KeyParts) }), ErrBadPacked},
		{"unknown part input", with(func(m map[string]string) {
			m[KeyParts] = strings.Replace(m[KeyParts], `"input":"s2s_part"`, `"input":"mode"`, 1)
		}), ErrBadPacked},
		{"unknown input", with(func(m map[string]string) {
			m[KeyParts] = strings.Replace(m[KeyParts], `"attention_mask"`, `"attention"`, 1)
		}), ErrBadPacked},
		{"unknown output", with(func(m map[string]string) {
			m[KeyParts] = strings.Replace(m[KeyParts], `"last_hidden_state"`, `"hidden"`, 1)
		}), ErrBadPacked},
		{"no manifest", with(func(m map[string]string) { delete(m, ManifestFile) }), ErrBadPacked},
		{"manifest not json", with(func(m map[string]string) { m[ManifestFile] = "{" }), ErrBadPacked},
		{"missing part", with(func(m map[string]string) {
			m[ManifestFile] = strings.Replace(m[ManifestFile], `"decoder_with_past":"decoder_with_past"`, `"decoder_with_past":"step"`, 1)
		}), ErrBadPacked},
		{"missing tokenizer", with(func(m map[string]string) { delete(m, "tokenizer_target.json") }), ErrBadPacked},
		{"bad generation config", with(func(m map[string]string) { m["generation_config.json"] = `{"early_stopping": 3}` }), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ReadPacked(c.data)
			switch {
			case c.name == "bad generation config":
				if err == nil {
					_, err = p.GenerationConfig()
				}
				if err == nil {
					t.Fatal("early_stopping 3 accepted")
				}
			case err == nil:
				t.Fatal("read")
			case !errors.Is(err, c.want):
				t.Fatalf("%v; want %v", err, c.want)
			}
			t.Log(err)
		})
	}
	if _, err := ReadPackedFile("/nonexistent.onnx"); !errors.Is(err, ErrNotModelDir) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load("/dev/null"); err == nil {
		t.Error("/dev/null loaded")
	}
}

// TestMetadataValueLimit checks that a value over its limit is refused
// from its declared length, before it is read.
func TestMetadataValueLimit(t *testing.T) {
	msg := appendField(nil, 2, bytes.Repeat([]byte("x"), 100))
	p := newPBReader(bytes.NewReader(msg), int64(len(msg)))
	if _, _, err := p.key(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.bytes(99, "a value"); err == nil || !strings.Contains(err.Error(), "over the limit of 99") {
		t.Fatalf("100 bytes under a limit of 99: %v", err)
	}
	p = newPBReader(bytes.NewReader(msg), int64(len(msg)))
	p.key()
	if b, err := p.bytes(100, "a value"); err != nil || len(b) != 100 {
		t.Fatalf("100 bytes under a limit of 100: %d, %v", len(b), err)
	}
}

// FuzzReadPacked checks that no input makes ReadPacked panic or allocate
// past its limits (go test runs the seeds; go test -fuzz explores).
func FuzzReadPacked(f *testing.F) {
	data, err := os.ReadFile("g2p-en.onnx")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[:min(len(data), 4096)])
	f.Add(data[len(data)-min(len(data), 8192):])
	f.Add([]byte{0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		ReadPacked(b)
	})
}
