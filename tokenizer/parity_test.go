package tokenizer

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the goldens by running testdata/tokenizer/make_goldens.py")

// parityNames are the tokenizers checked against the Python tokenizers
// library: the model tokenizers under testdata/tokenizers, then the edge-*
// tokenizers under testdata/tokenizer that exercise the components those
// do not use (see make_goldens.py).
var parityNames = []string{"t5", "bart", "marian", "edge-unigram", "edge-bytefallback", "edge-bpe-suffix", "edge-t5-first"}

// minCorpus is the least number of strings the corpus must hold.
const minCorpus = 200

// tokenizersDir holds t5/, bart/ and marian/. S2S_TOKENIZERS_DIR points the
// test at other files (with goldens made from them, S2S_TOKENIZER_GOLDENS).
func tokenizersDir() string {
	if d := os.Getenv("S2S_TOKENIZERS_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "testdata", "tokenizers")
}

func goldenDir() string {
	if d := os.Getenv("S2S_TOKENIZER_GOLDENS"); d != "" {
		return d
	}
	return filepath.Join("..", "testdata", "tokenizer")
}

// loadNamed loads testdata/tokenizers/<name> (or testdata/tokenizer/<name>.json
// for the edge tokenizers), failing the test if the files are missing.
// Marian must have its target tokenizer.
func loadNamed(t testing.TB, name string) *Tokenizer {
	t.Helper()
	dir := filepath.Join(tokenizersDir(), name)
	src := filepath.Join(dir, "tokenizer.json")
	tgt := ""
	switch {
	case name == "marian":
		tgt = filepath.Join(dir, "tokenizer_target.json")
	case strings.HasPrefix(name, "edge-"):
		src = filepath.Join("..", "testdata", "tokenizer", name+".json")
	}
	tok, err := Load(src, tgt)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return tok
}

type goldenLine struct {
	Text           string  `json:"text"`
	IDs            []int64 `json:"ids"`
	Decoded        string  `json:"decoded"`
	DecodedSpecial string  `json:"decoded_special"`
}

type goldenExtra struct {
	TokenizersVersion string            `json:"tokenizers_version"`
	VocabSize         int               `json:"vocab_size"`
	SpecialIDs        []int64           `json:"special_ids"`
	TokenIDs          map[string]*int64 `json:"token_ids"`
	RandomDecode      []struct {
		IDs            []int64 `json:"ids"`
		Decoded        string  `json:"decoded"`
		DecodedSpecial string  `json:"decoded_special"`
	} `json:"random_decode"`
}

func readJSONL[T any](t testing.TB, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v; run go test ./tokenizer -run Parity -update", err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

func readCorpus(t testing.TB) []string {
	t.Helper()
	corpus := readJSONL[string](t, filepath.Join("..", "testdata", "tokenizer", "corpus.jsonl"))
	if len(corpus) < minCorpus {
		t.Fatalf("corpus has %d strings, want at least %d", len(corpus), minCorpus)
	}
	return corpus
}

// runMakeGoldens refreshes the goldens with the Python tokenizers library.
func runMakeGoldens(t *testing.T) {
	t.Helper()
	python := os.Getenv("S2S_PYTHON")
	if python == "" {
		python = filepath.Join("..", ".venv", "bin", "python")
	}
	cmd := exec.Command(python, filepath.Join("..", "testdata", "tokenizer", "make_goldens.py"),
		"--tokenizers", tokenizersDir(), "--out", goldenDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make_goldens.py: %v\n%s\nset S2S_PYTHON to a python with the tokenizers package", err, out)
	}
	t.Logf("%s", out)
}

// TestParity checks ids and decoded text against the Python tokenizers
// library for every corpus string and each tokenizer.
func TestParity(t *testing.T) {
	if *update {
		runMakeGoldens(t)
	}
	corpus := readCorpus(t)
	for _, name := range parityNames {
		t.Run(name, func(t *testing.T) {
			tok := loadNamed(t, name)
			golden := readJSONL[goldenLine](t, filepath.Join(goldenDir(), "golden-"+name+".jsonl"))
			if len(golden) != len(corpus) {
				t.Fatalf("golden-%s.jsonl has %d lines for %d corpus strings; run with -update", name, len(golden), len(corpus))
			}
			texts := make([]string, len(corpus))
			for i, g := range golden {
				if g.Text != corpus[i] {
					t.Fatalf("golden-%s.jsonl line %d is for %q, corpus has %q; run with -update", name, i+1, g.Text, corpus[i])
				}
				texts[i] = g.Text
			}
			all, err := tok.EncodeBatch(texts)
			if err != nil {
				t.Fatalf("EncodeBatch: %v", err)
			}
			idsOK, decOK := 0, 0
			for i, g := range golden {
				if slices.Equal(all[i], g.IDs) {
					idsOK++
				} else {
					t.Errorf("line %d %q:\n ids  %v\n want %v", i+1, g.Text, all[i], g.IDs)
				}
				got, gotSpecial := tok.Decode(g.IDs, true), tok.Decode(g.IDs, false)
				if got == g.Decoded && gotSpecial == g.DecodedSpecial {
					decOK++
				} else {
					t.Errorf("line %d %q: decode\n got  %q / %q\n want %q / %q", i+1, g.Text, got, gotSpecial, g.Decoded, g.DecodedSpecial)
				}
			}
			t.Logf("%s: ids equal %d/%d, decoded equal %d/%d", name, idsOK, len(golden), decOK, len(golden))
		})
	}
}

// TestParityExtra checks vocabulary size, special ids, token lookups and
// the decoding of random id sequences against the Python library.
func TestParityExtra(t *testing.T) {
	for _, name := range parityNames {
		t.Run(name, func(t *testing.T) {
			tok := loadNamed(t, name)
			path := filepath.Join(goldenDir(), "golden-"+name+"-extra.json")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v; run go test ./tokenizer -run Parity -update", err)
			}
			var ex goldenExtra
			if err := json.Unmarshal(data, &ex); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if got := tok.VocabSize(); got != ex.VocabSize {
				t.Errorf("VocabSize() = %d, want %d", got, ex.VocabSize)
			}
			if got := tok.SpecialIDs(); !slices.Equal(got, ex.SpecialIDs) {
				t.Errorf("SpecialIDs() = %v, want %v", got, ex.SpecialIDs)
			}
			for token, want := range ex.TokenIDs {
				id, ok := tok.TokenID(token)
				if want == nil {
					if ok {
						t.Errorf("TokenID(%q) = %d, want none", token, id)
					}
				} else if !ok || id != *want {
					t.Errorf("TokenID(%q) = %d, %v, want %d", token, id, ok, *want)
				}
			}
			if len(ex.RandomDecode) == 0 {
				t.Fatalf("%s has no random_decode cases", path)
			}
			for _, c := range ex.RandomDecode {
				if got := tok.Decode(c.IDs, true); got != c.Decoded {
					t.Errorf("Decode(%v, true) = %q, want %q", c.IDs, got, c.Decoded)
				}
				if got := tok.Decode(c.IDs, false); got != c.DecodedSpecial {
					t.Errorf("Decode(%v, false) = %q, want %q", c.IDs, got, c.DecodedSpecial)
				}
			}
		})
	}
}

// streamAll feeds ids one by one and returns the chunks, Flush's last.
func streamAll(tok *Tokenizer, ids []int64, skip bool) []string {
	sd := NewStreamDecoder(tok, skip)
	var chunks []string
	for _, id := range ids {
		chunks = append(chunks, sd.Add(id))
	}
	return append(chunks, sd.Flush())
}

// TestStreamMatchesDecode checks, for every corpus string and random id
// sequence, that the streamed chunks are whole UTF-8 and concatenate to
// Decode of all ids.
func TestStreamMatchesDecode(t *testing.T) {
	corpus := readCorpus(t)
	for _, name := range parityNames {
		t.Run(name, func(t *testing.T) {
			tok := loadNamed(t, name)
			seqs := make([][]int64, 0, len(corpus)+64)
			for _, text := range corpus {
				ids, err := tok.Encode(text)
				if err != nil {
					t.Fatalf("Encode(%q): %v", text, err)
				}
				seqs = append(seqs, ids)
			}
			// Byte-level pieces of multi-byte characters, fed one by one.
			seqs = append(seqs, byteSplitIDs(tok, "😀€é日本")...)
			checked := 0
			for _, ids := range seqs {
				for _, skip := range []bool{true, false} {
					chunks := streamAll(tok, ids, skip)
					for _, c := range chunks {
						if !utf8.ValidString(c) {
							t.Fatalf("ids %v: chunk %q is not valid utf-8", ids, c)
						}
					}
					if got, want := strings.Join(chunks, ""), tok.Decode(ids, skip); got != want {
						t.Errorf("ids %v skip=%v: stream %q (chunks %q), Decode %q", ids, skip, got, chunks, want)
					}
					checked++
				}
			}
			t.Logf("%s: %d streams equal to Decode", name, checked)
		})
	}
}

// byteSplitIDs returns, for byte-level tokenizers, the ids of the single
// byte tokens spelling s (nil otherwise).
func byteSplitIDs(tok *Tokenizer, s string) [][]int64 {
	var ids []int64
	for i := 0; i < len(s); i++ {
		id, ok := tok.TokenID(byteLevelEncode(s[i : i+1]))
		if !ok {
			return nil
		}
		ids = append(ids, id)
	}
	return [][]int64{ids}
}

func ExampleNewStreamDecoder() {
	tok, err := Load(filepath.Join("..", "testdata", "tokenizers", "bart", "tokenizer.json"), "")
	if err != nil {
		fmt.Println(err)
		return
	}
	ids, _ := tok.Encode("Streaming 😀 works.")
	sd := NewStreamDecoder(tok, true)
	var out strings.Builder
	for _, id := range ids {
		out.WriteString(sd.Add(id))
	}
	out.WriteString(sd.Flush())
	fmt.Println(out.String())
	// Output: Streaming 😀 works.
}
