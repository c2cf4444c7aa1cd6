package models

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/s2s-dev/s2s/internal/safefile"
)

// manifestDir writes a transformer manifest naming files, with the files
// that exist inside the directory.
func manifestDir(t *testing.T, files Files, tok Tokenizers) string {
	t.Helper()
	data := `{"format":"s2s-model","version":1,"architecture":"transformer","files":{"encoder":"` + files.Encoder +
		`","decoder_merged":"` + files.DecoderMerged + `"},"tokenizer":{"source":"` + tok.Source + `","target":"` + tok.Target +
		`"},"vocab_size":10,"eos_token_id":[1],"decoder_start_token_id":0}`
	return writeFiles(t, map[string]string{ManifestFile: data, "e.onnx": "x", "d.onnx": "x", "tokenizer.json": "{}"})
}

// TestManifestPathsStayInside: every file the manifest names must stay
// inside the model directory: no absolute paths, no "..", no symlinks
// out. Each of these loaded files from outside before.
func TestManifestPathsStayInside(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.json")
	if err := os.WriteFile(outside, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel := func(dir string) string {
		r, err := filepath.Rel(dir, outside)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, c := range []struct {
		name string
		make func(t *testing.T) string
	}{
		{"dotdot graph", func(t *testing.T) string {
			dir := manifestDir(t, Files{Encoder: "e.onnx", DecoderMerged: "d.onnx"}, Tokenizers{Source: "tokenizer.json"})
			return rewriteManifest(t, dir, `"encoder":"e.onnx"`, `"encoder":"`+rel(dir)+`"`)
		}},
		{"dotdot tokenizer", func(t *testing.T) string {
			dir := manifestDir(t, Files{Encoder: "e.onnx", DecoderMerged: "d.onnx"}, Tokenizers{Source: "tokenizer.json"})
			return rewriteManifest(t, dir, `"source":"tokenizer.json"`, `"source":"`+rel(dir)+`"`)
		}},
		{"absolute target tokenizer", func(t *testing.T) string {
			return manifestDir(t, Files{Encoder: "e.onnx", DecoderMerged: "d.onnx"}, Tokenizers{Source: "tokenizer.json", Target: outside})
		}},
		{"symlink out", func(t *testing.T) string {
			dir := manifestDir(t, Files{Encoder: "e.onnx", DecoderMerged: "d.onnx"}, Tokenizers{Source: "link.json"})
			if err := os.Symlink(outside, filepath.Join(dir, "link.json")); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{"symlinked folder out", func(t *testing.T) string {
			dir := manifestDir(t, Files{Encoder: "sub/secret.json", DecoderMerged: "d.onnx"}, Tokenizers{Source: "tokenizer.json"})
			if err := os.Symlink(filepath.Dir(outside), filepath.Join(dir, "sub")); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{"derived tokenizer symlinked out", func(t *testing.T) string {
			dir := writeFiles(t, map[string]string{"config.json": `{"model_type":"t5","vocab_size":10,"num_heads":1,"eos_token_id":1,"decoder_start_token_id":0}`,
				OptimumEncoder: "x", OptimumDecoderMerged: "x"})
			if err := os.Symlink(outside, filepath.Join(dir, "tokenizer.json")); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{"config symlinked out", func(t *testing.T) string {
			dir := writeFiles(t, map[string]string{OptimumEncoder: "x", OptimumDecoderMerged: "x", "tokenizer.json": "{}"})
			if err := os.Symlink(outside, filepath.Join(dir, "config.json")); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(c.make(t))
			if !errors.Is(err, safefile.ErrOutside) {
				t.Fatalf("got %v, want an error wrapping ErrOutside", err)
			}
		})
	}
	// A symlink that stays inside is fine.
	dir := manifestDir(t, Files{Encoder: "e.onnx", DecoderMerged: "d.onnx"}, Tokenizers{Source: "inside.json"})
	if err := os.Symlink("tokenizer.json", filepath.Join(dir, "inside.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err != nil {
		t.Errorf("a symlink inside the directory: %v", err)
	}
}

func rewriteManifest(t *testing.T, dir, old, new string) string {
	t.Helper()
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s lacks %s", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestJSONFilesAreRegularAndSmall: a named pipe as config.json used to
// block Load forever, a symlink to /dev/zero to exhaust memory, and a huge
// file was read whole; each is refused before reading, naming the limit.
func TestJSONFilesAreRegularAndSmall(t *testing.T) {
	base := map[string]string{OptimumEncoder: "x", OptimumDecoderMerged: "x", "tokenizer.json": "{}"}
	for _, c := range []struct {
		name, file string
		make       func(t *testing.T, path string)
		want       error
		says       string
	}{
		{"fifo config", "config.json", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Skipf("no named pipes here: %v", err)
			}
		}, safefile.ErrNotRegular, "named pipe"},
		{"dev zero config", "config.json", func(t *testing.T, path string) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}, nil, "/dev/zero"},
		{"dev zero generation config", GenerationConfigFile, func(t *testing.T, path string) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}, nil, "/dev/zero"},
		{"huge manifest", ManifestFile, func(t *testing.T, path string) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(MaxJSONBytes + 1); err != nil { // sparse: no disk used
				t.Fatal(err)
			}
		}, safefile.ErrTooLarge, "models.MaxJSONBytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range base {
				files[k] = v
			}
			if c.file != "config.json" {
				files["config.json"] = `{"model_type":"t5","vocab_size":10,"num_heads":1,"eos_token_id":1,"decoder_start_token_id":0}`
			}
			dir := writeFiles(t, files)
			c.make(t, filepath.Join(dir, c.file))
			_, err := Load(dir)
			if err == nil && c.file == GenerationConfigFile {
				_, err = LoadGenerationConfig(dir)
			}
			if err == nil || c.want != nil && !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want an error saying %q", err, c.says)
			}
		})
	}
}

// TestGenerationConfigOutOfRange: values that would overflow or make no
// sense are refused at load, naming the field (max_length
// -9223372036854775808 used to become max_new_tokens 2^63-1).
func TestGenerationConfigOutOfRange(t *testing.T) {
	for _, c := range []struct{ json, field string }{
		{`{"max_length": -9223372036854775808}`, "max_length"},
		{`{"max_length": 1}`, "max_length"},
		{`{"max_length": 9223372036854775807}`, "max_length"},
		{`{"max_new_tokens": 0}`, "max_new_tokens"},
		{`{"min_length": -1}`, "min_length"},
		{`{"min_new_tokens": -5}`, "min_new_tokens"},
		{`{"num_beams": 0}`, "num_beams"},
		{`{"num_beams": -3}`, "num_beams"},
		{`{"num_return_sequences": 0}`, "num_return_sequences"},
		{`{"top_k": -1}`, "top_k"},
		{`{"no_repeat_ngram_size": -1}`, "no_repeat_ngram_size"},
		{`{"early_stopping": "sometimes"}`, "early_stopping"},
		{`{"max_length": 1e400}`, "max_length"},
		{`{"num_beams": 2.5}`, "num_beams"},
	} {
		_, err := ParseGenerationConfig([]byte(c.json))
		if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: got %v, want ErrBadManifest naming %s", c.json, err, c.field)
		}
		dir := writeFiles(t, map[string]string{GenerationConfigFile: c.json})
		if _, err := LoadGenerationConfig(dir); err == nil || !strings.Contains(err.Error(), GenerationConfigFile) {
			t.Errorf("%s: LoadGenerationConfig gave %v, want an error naming the file", c.json, err)
		}
	}
	if _, err := ParseGenerationConfig([]byte(`{"max_length": 512, "num_beams": 4, "length_penalty": -1.5}`)); err != nil {
		t.Errorf("a real config: %v", err)
	}
}

// TestInconsistentManifest: ids outside the vocabulary and impossible
// sizes are refused at load.
func TestInconsistentManifest(t *testing.T) {
	for name, change := range map[string][2]string{
		"eos outside":           {`"eos_token_id":[1]`, `"eos_token_id":[10]`},
		"negative eos":          {`"eos_token_id":[1]`, `"eos_token_id":[-4]`},
		"start outside":         {`"decoder_start_token_id":0`, `"decoder_start_token_id":99`},
		"pad outside":           {`"vocab_size":10`, `"vocab_size":10,"pad_token_id":10`},
		"vocab past int32":      {`"vocab_size":10`, `"vocab_size":3000000000`},
		"negative layers":       {`"vocab_size":10`, `"vocab_size":10,"num_layers":-1`},
		"negative positions":    {`"vocab_size":10`, `"vocab_size":10,"max_position_embeddings":-1`},
		"newer manifest":        {`"version":1`, `"version":7`},
		"not an s2s manifest":   {`"format":"s2s-model"`, `"format":"other"`},
		"vocab overflows int64": {`"vocab_size":10`, `"vocab_size":99999999999999999999`},
	} {
		t.Run(name, func(t *testing.T) {
			dir := manifestDir(t, Files{Encoder: "e.onnx", DecoderMerged: "d.onnx"}, Tokenizers{Source: "tokenizer.json"})
			rewriteManifest(t, dir, change[0], change[1])
			if _, err := Load(dir); !errors.Is(err, ErrBadManifest) {
				t.Fatalf("got %v, want ErrBadManifest", err)
			}
		})
	}
}

// TestMaxPositions reads max_position_embeddings from config.json, also
// under an s2s.json that lacks it; T5 has none.
func TestMaxPositions(t *testing.T) {
	for dir, want := range map[string]int{
		filepath.Join("..", "testdata", "bart-tiny"):   256,
		filepath.Join("..", "testdata", "marian-tiny"): 256,
		filepath.Join("..", "testdata", "t5-tiny"):     0,
		filepath.Join("g2p-en"):                        0,
	} {
		m, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m.MaxPositions != want {
			t.Errorf("%s: max positions %d, want %d", dir, m.MaxPositions, want)
		}
	}
	dir := writeFiles(t, map[string]string{"config.json": `{"model_type":"bart","vocab_size":50,"d_model":32,"decoder_attention_heads":4,"decoder_layers":2,"eos_token_id":2,"decoder_start_token_id":2,"max_position_embeddings":1024}`,
		OptimumEncoder: "x", OptimumDecoderMerged: "x", "tokenizer.json": "{}"})
	if m, err := Load(dir); err != nil || m.MaxPositions != 1024 {
		t.Errorf("derived: %v, %v", m, err)
	}
}
