package tokenizer

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"github.com/sugarme/tokenizer/spm"
	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites text before pre-tokenization. Only the normalized
// text is kept (s2s needs ids, not offsets), and one fact about
// alignment: atStart, whether the text still begins at offset 0 of the
// original, which the Metaspace "first" scheme checks. tokenizers moves
// that offset only when a normalizer deletes the leading characters
// (Strip, or a Replace with empty content); Precompiled's deletions leave
// it at 0 because its alignment bookkeeping ignores them.
type normalizer interface {
	normalize(s string, atStart bool) (string, bool)
}

// newNormalizer builds the normalizer described by raw (nil for none).
func newNormalizer(raw json.RawMessage) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw)
	if err != nil {
		return nil, fmt.Errorf("normalizer: %v", err)
	}
	switch typ {
	case "Sequence":
		var v struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := decodeInto(raw, "normalizer Sequence", &v); err != nil {
			return nil, err
		}
		var seq sequenceNormalizer
		for _, r := range v.Normalizers {
			n, err := newNormalizer(r)
			if err != nil {
				return nil, err
			}
			if n != nil {
				seq = append(seq, n)
			}
		}
		return seq, nil
	case "Precompiled":
		var v struct {
			Charsmap []byte `json:"precompiled_charsmap"`
		}
		if err := decodeInto(raw, "normalizer Precompiled", &v); err != nil {
			return nil, err
		}
		return newPrecompiled(v.Charsmap)
	case "Strip":
		var v struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := decodeInto(raw, "normalizer Strip", &v); err != nil {
			return nil, err
		}
		return stripNormalizer{left: v.Left, right: v.Right}, nil
	case "Replace":
		var v struct {
			Pattern patternJSON `json:"pattern"`
			Content string      `json:"content"`
		}
		if err := decodeInto(raw, "normalizer Replace", &v); err != nil {
			return nil, err
		}
		rep, err := newReplacer(v.Pattern, v.Content, "normalizer Replace")
		if err != nil {
			return nil, err
		}
		return rep, nil
	case "Prepend":
		var v struct {
			Prepend string `json:"prepend"`
		}
		if err := decodeInto(raw, "normalizer Prepend", &v); err != nil {
			return nil, err
		}
		return prependNormalizer(v.Prepend), nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "NFC":
		return unicodeNormalizer{norm.NFC}, nil
	case "NFD":
		return unicodeNormalizer{norm.NFD}, nil
	case "NFKC":
		return unicodeNormalizer{norm.NFKC}, nil
	case "NFKD":
		return unicodeNormalizer{norm.NFKD}, nil
	case "":
		return nil, fmt.Errorf("normalizer: no \"type\" field")
	default:
		return nil, unsupported("normalizer type %q (supported: Sequence, Precompiled, Strip, Replace, Prepend, Lowercase, NFC, NFD, NFKC, NFKD)", typ)
	}
}

// sequenceNormalizer applies normalizers in order.
type sequenceNormalizer []normalizer

func (s sequenceNormalizer) normalize(text string, atStart bool) (string, bool) {
	for _, n := range s {
		text, atStart = n.normalize(text, atStart)
	}
	return text, atStart
}

// precompiledNormalizer is SentencePiece's normalizer (nmt_nfkc and
// friends), stored as a double-array trie of rewrite rules. sugarme parses
// the trie; the walk over graphemes is ours because sugarme's stops after
// the first grapheme, rewrites non-spacing marks into "U+0301" text and
// cannot delete a character (a rule that maps to "").
type precompiledNormalizer struct {
	trie       *spm.DoubleArray
	normalized string
}

// newPrecompiled parses a precompiled_charsmap blob.
func newPrecompiled(blob []byte) (n *precompiledNormalizer, err error) {
	if len(blob) < 4 {
		return nil, fmt.Errorf("normalizer Precompiled: precompiled_charsmap has %d bytes; re-save the tokenizer", len(blob))
	}
	trieSize := binary.LittleEndian.Uint32(blob[:4])
	if trieSize%4 != 0 || uint64(trieSize) > uint64(len(blob)-4) || trieSize == 0 {
		return nil, fmt.Errorf("normalizer Precompiled: precompiled_charsmap is malformed (trie of %d bytes in %d); re-save the tokenizer", trieSize, len(blob))
	}
	defer func() {
		if r := recover(); r != nil {
			n, err = nil, fmt.Errorf("normalizer Precompiled: precompiled_charsmap is malformed (%v); re-save the tokenizer", r)
		}
	}()
	pc, err := spm.NewPrecompiledFrom(blob)
	if err != nil {
		return nil, fmt.Errorf("normalizer Precompiled: %v", err)
	}
	return &precompiledNormalizer{trie: pc.Trie, normalized: pc.Normalized}, nil
}

// transform returns the rewrite of the shortest rule that is a prefix of
// chunk, as spm_precompiled does; ok is false when no rule applies. An
// empty result with ok true deletes the chunk.
func (p *precompiledNormalizer) transform(chunk string) (string, bool) {
	results := p.commonPrefixSearch(chunk)
	if len(results) == 0 {
		return "", false
	}
	start := results[0]
	if start < 0 || start > len(p.normalized) {
		return "", false
	}
	end := strings.IndexByte(p.normalized[start:], 0)
	if end < 0 {
		return p.normalized[start:], true
	}
	return p.normalized[start : start+end], true
}

// commonPrefixSearch walks sugarme's trie, turning an out-of-range index
// (a malformed blob) into "no rule" instead of a panic.
func (p *precompiledNormalizer) commonPrefixSearch(chunk string) (results []int) {
	defer func() {
		if recover() != nil {
			results = nil
		}
	}()
	return p.trie.CommonPrefixSearch([]byte(chunk))
}

func (p *precompiledNormalizer) normalize(s string, atStart bool) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	state := -1
	rest := s
	for len(rest) > 0 {
		var g string
		g, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		// Like spm_precompiled: a short grapheme is looked up whole;
		// otherwise (or with no rule) each character is looked up alone.
		if len(g) < 6 {
			if norm, ok := p.transform(g); ok {
				b.WriteString(norm)
				continue
			}
		}
		for i := 0; i < len(g); {
			_, size := utf8.DecodeRuneInString(g[i:])
			part := g[i : i+size]
			if norm, ok := p.transform(part); ok {
				b.WriteString(norm)
			} else {
				b.WriteString(part)
			}
			i += size
		}
	}
	return b.String(), atStart
}

// isWhiteSpace is Rust's char::is_whitespace (the White_Space property).
func isWhiteSpace(r rune) bool {
	return unicode.Is(unicode.White_Space, r)
}

// stripNormalizer removes leading and/or trailing white space.
type stripNormalizer struct{ left, right bool }

func (s stripNormalizer) normalize(text string, atStart bool) (string, bool) {
	if s.left {
		trimmed := strings.TrimLeftFunc(text, isWhiteSpace)
		atStart = atStart && len(trimmed) == len(text)
		text = trimmed
	}
	if s.right {
		text = strings.TrimRightFunc(text, isWhiteSpace)
	}
	return text, atStart
}

// replacer replaces a literal string or a regular expression. It serves
// the Replace normalizer and the Replace decoder.
type replacer struct {
	literal string
	re      *regexp.Regexp
	content string
}

// newReplacer builds a replacer from a tokenizers pattern. Regular
// expressions are compiled with Go's regexp (RE2); a pattern that needs
// Oniguruma-only syntax is refused.
func newReplacer(p patternJSON, content, what string) (*replacer, error) {
	switch {
	case p.String != nil:
		if *p.String == "" {
			return nil, fmt.Errorf("%s: empty pattern", what)
		}
		return &replacer{literal: *p.String, content: content}, nil
	case p.Regex != nil:
		re, err := regexp.Compile(*p.Regex)
		if err != nil {
			return nil, unsupported("%s: regex %q does not compile with Go's regexp: %v", what, *p.Regex, err)
		}
		return &replacer{re: re, content: content}, nil
	default:
		return nil, fmt.Errorf("%s: pattern needs a \"String\" or \"Regex\"", what)
	}
}

func (r *replacer) replace(s string) string {
	if r.re != nil {
		return r.re.ReplaceAllLiteralString(s, r.content)
	}
	return strings.ReplaceAll(s, r.literal, r.content)
}

// normalize replaces, keeping track of atStart as tokenizers' alignments
// do: the content of a match aligns with the match's last character, so a
// match at offset 0 keeps the text at the start only when it is a single
// character replaced by something.
func (r *replacer) normalize(s string, atStart bool) (string, bool) {
	if atStart {
		end := -1
		if r.re != nil {
			if loc := r.re.FindStringIndex(s); loc != nil && loc[0] == 0 {
				end = loc[1]
			}
		} else if strings.HasPrefix(s, r.literal) {
			end = len(r.literal)
		}
		if end > 0 {
			atStart = r.content != "" && utf8.RuneCountInString(s[:end]) == 1
		}
	}
	return r.replace(s), atStart
}

// prependNormalizer puts a string before non-empty text.
type prependNormalizer string

func (p prependNormalizer) normalize(s string, atStart bool) (string, bool) {
	if s == "" {
		return s, atStart
	}
	return string(p) + s, atStart
}

// lowercaseNormalizer lowercases character by character with Unicode's
// full mapping, as Rust's char::to_lowercase does: it differs from Go's
// simple mapping only for U+0130, which becomes "i\u0307".
type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(s string, atStart bool) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r == '\u0130' {
			b.WriteString("i\u0307")
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String(), atStart
}

// unicodeNormalizer applies NFC, NFD, NFKC or NFKD with x/text (the
// package sugarme wraps). sugarme's own normalizers are not used: its NFC
// and NFKC leave decomposed input ("e\u0301") uncomposed, and its NFKD
// returns nil for input already in NFKD.
type unicodeNormalizer struct {
	form norm.Form
}

// cgj is U+034F COMBINING GRAPHEME JOINER.
const cgj = "\u034f"

// normalize applies the form. x/text follows the Stream-Safe Text Format
// and puts a CGJ after every 30 combining marks in a row; Rust's
// unicode-normalization (used by tokenizers) does not, so the CGJs x/text
// adds are taken out again (the text is cut at the input's own CGJs first).
func (u unicodeNormalizer) normalize(s string, atStart bool) (string, bool) {
	parts := strings.Split(s, cgj)
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(u.form.String(p), cgj, "")
	}
	return strings.Join(parts, cgj), atStart
}
