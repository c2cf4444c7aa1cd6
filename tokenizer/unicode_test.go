package tokenizer

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// unicodeGoldens reads testdata/tokenizer/unicode-normalization.txt.gz
// (make_unicode_goldens.py): per form, what Python tokenizers gives for
// every measured string whose result is not the trivial one.
func unicodeGoldens(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "tokenizer", "unicode-normalization.txt.gz"))
	if err != nil {
		t.Fatalf("goldens missing (make them with testdata/tokenizer/make_unicode_goldens.py): %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	decode := func(h string) string {
		var b strings.Builder
		for _, x := range strings.Fields(h) {
			cp, err := strconv.ParseUint(x, 16, 32)
			if err != nil {
				t.Fatalf("bad code point %q", x)
			}
			b.WriteRune(rune(cp))
		}
		return b.String()
	}
	out := map[string]map[string]string{}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) != 3 {
			t.Fatalf("bad golden line %q", line)
		}
		if out[fields[0]] == nil {
			out[fields[0]] = map[string]string{}
		}
		out[fields[0]][decode(fields[1])] = decode(fields[2])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != 4 {
		t.Fatalf("goldens hold %d forms, want 4", len(out))
	}
	return out
}

// TestUnicodeNormalizersMatchTokenizers runs NFC, NFD, NFKC and NFKD over
// every code point alone, every code point beside combining marks of
// classes 1, 220 and 230 (which shows its combining class), and every
// composition pair x/text knows, and compares each result with Python
// tokenizers' (the goldens; a string absent from them has the trivial
// result: itself, or its parts' results put together).
func TestUnicodeNormalizersMatchTokenizers(t *testing.T) {
	goldens := unicodeGoldens(t)
	inGoldens := map[rune]bool{}
	for _, g := range goldens {
		for text := range g {
			for _, r := range text {
				inGoldens[r] = true
			}
		}
	}
	var singles []string
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r < 0xD800 || r > 0xDFFF {
			singles = append(singles, string(r))
		}
	}
	pairs := collisions(compositionPairs())
	// A probe of a code point that neither table gives a property is
	// trivial on both sides (it is a starter that composes with nothing):
	// the probes run on the code points of the golden lines and those
	// x/text gives a property. x/text looks compositions up by the low 16
	// bits of both runes, so the code points of other planes with the same
	// low bits as one that has a property are probed too.
	var probed []string
	for _, s := range singles {
		r, _ := utf8.DecodeRuneInString(s)
		if inGoldens[r] || hasNormProperty(s) || r > 0xFFFF && hasNormProperty(string(r&0xFFFF)) {
			probed = append(probed, s)
		}
	}
	probes := [][2]string{{"", "\u0334"}, {"", "\u0316"}, {"", "\u0301"}, {"\u0301", ""}, {"\u0334", ""}}
	for _, form := range []struct {
		name string
		f    norm.Form
	}{{"NFC", norm.NFC}, {"NFD", norm.NFD}, {"NFKC", norm.NFKC}, {"NFKD", norm.NFKD}} {
		t.Run(form.name, func(t *testing.T) {
			want := goldens[form.name]
			expect := func(s string) string {
				if w, ok := want[s]; ok {
					return w
				}
				return s
			}
			u := unicodeNormalizer{form.f}
			var texts, wants []string
			for _, s := range singles {
				texts, wants = append(texts, s), append(wants, expect(s))
			}
			for _, p := range probes {
				for _, s := range probed {
					text := p[0] + s + p[1]
					w, ok := want[text]
					if !ok {
						w = expect(p[0]) + expect(s) + expect(p[1])
					}
					texts, wants = append(texts, text), append(wants, w)
				}
			}
			for _, p := range pairs {
				text := p[0] + p[1]
				w, ok := want[text]
				if !ok {
					w = expect(p[0]) + expect(p[1])
				}
				texts, wants = append(texts, text), append(wants, w)
			}
			// Every golden line too (the pairs of Python's own tables).
			for text, w := range want {
				texts, wants = append(texts, text), append(wants, w)
			}
			if bad := checkNormalized(u, texts, wants, false); len(bad) > 0 {
				t.Errorf("%d of %d strings differ from tokenizers, e.g.:\n%s", len(bad), len(texts), strings.Join(bad[:min(len(bad), 20)], "\n"))
			}
			// With alignments tracked (the Metaspace "first" path) the text
			// is the same.
			var tracked []string
			for text := range want {
				tracked = append(tracked, text)
			}
			for _, s := range singles {
				if r, _ := utf8.DecodeRuneInString(s); unknownRune(r) {
					tracked = append(tracked, s, "a"+s+"\u0301", "a\u0301"+s+"\u0316\u0301")
				}
			}
			if bad := checkNormalized(u, tracked, nil, true); len(bad) > 0 {
				t.Errorf("tracked: %d of %d strings differ from the untracked result, e.g.:\n%s", len(bad), len(tracked), strings.Join(bad[:min(len(bad), 20)], "\n"))
			}
		})
	}
}

// checkNormalized normalizes texts many at a time, joined by U+0000 (a
// starter that neither decomposes nor composes), and returns a line for
// each result that is not its want. With track the alignments are kept
// and the result is compared with the untracked one instead.
func checkNormalized(u unicodeNormalizer, texts, wants []string, track bool) []string {
	var bad []string
	const chunk = 20000
	for i := 0; i < len(texts); i += chunk {
		part := texts[i:min(i+chunk, len(texts))]
		joined := strings.Join(part, "\x00")
		got := strings.Split(u.normalize(newAligned(joined, 0, track)).text, "\x00")
		var exp []string
		if track {
			exp = strings.Split(u.normalize(newAligned(joined, 0, false)).text, "\x00")
		} else {
			exp = wants[i : i+len(part)]
		}
		if len(got) != len(part) {
			// A result that holds U+0000 cannot happen; normalize one by one.
			got = got[:0]
			for _, p := range part {
				got = append(got, u.normalize(newAligned(p, 0, track)).text)
			}
		}
		for k := range part {
			if got[k] != exp[k] {
				bad = append(bad, fmt.Sprintf("  %s: got %s, want %s", hexRunes(part[k]), hexRunes(got[k]), hexRunes(exp[k])))
			}
		}
	}
	return bad
}

func hexRunes(s string) string {
	var parts []string
	for _, r := range s {
		parts = append(parts, fmt.Sprintf("%04X", r))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// collisions returns pairs and, for each, the pairs of runes in any plane
// with the same low 16 bits, which x/text's composition lookup cannot
// tell apart.
func collisions(pairs [][2]string) [][2]string {
	seen := map[[2]string]bool{}
	var out [][2]string
	for _, p := range pairs {
		a, _ := utf8.DecodeRuneInString(p[0])
		b, _ := utf8.DecodeRuneInString(p[1])
		for pa := rune(0); pa <= 16; pa++ {
			for pb := rune(0); pb <= 16; pb++ {
				a2, b2 := pa<<16|a&0xFFFF, pb<<16|b&0xFFFF
				if !utf8.ValidRune(a2) || !utf8.ValidRune(b2) {
					continue
				}
				q := [2]string{string(a2), string(b2)}
				if !seen[q] {
					seen[q] = true
					out = append(out, q)
				}
			}
		}
	}
	return out
}

// compositionPairs returns the canonical pairs x/text composes: the two
// characters of every two-character canonical decomposition, and the
// Hangul L+V and LV+T pairs.
func compositionPairs() [][2]string {
	var out [][2]string
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		d := []rune(string(norm.NFD.PropertiesString(string(r)).Decomposition()))
		if len(d) == 2 && (r < 0xAC00 || r > 0xD7A3) {
			out = append(out, [2]string{string(d[0]), string(d[1])})
		}
	}
	for l := rune(0x1100); l <= 0x1112; l++ {
		for v := rune(0x1161); v <= 0x1175; v++ {
			out = append(out, [2]string{string(l), string(v)})
		}
	}
	for tr := rune(0x11A8); tr <= 0x11C2; tr++ {
		out = append(out, [2]string{"\uAC00", string(tr)})
	}
	return out
}

// hasNormProperty reports whether x/text gives the one rune of s a
// decomposition, a combining class or a part in a composition.
func hasNormProperty(s string) bool {
	for _, f := range []norm.Form{norm.NFC, norm.NFD, norm.NFKC, norm.NFKD} {
		if f.String(s) != s {
			return true
		}
		p := f.PropertiesString(s)
		if p.CCC() != 0 || !p.BoundaryBefore() || !p.BoundaryAfter() {
			return true
		}
	}
	return false
}
