package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	sugarpre "github.com/sugarme/tokenizer/pretokenizer"
)

// preTokenizer splits normalized text into words and may rewrite them.
type preTokenizer interface {
	preTokenize(in []aligned) []aligned
}

// needsStart reports whether p uses the Metaspace "first" scheme, the one
// step that needs alignments.
func needsStart(p preTokenizer) bool {
	switch p := p.(type) {
	case sequencePreTokenizer:
		for _, q := range p {
			if needsStart(q) {
				return true
			}
		}
	case metaspacePreTokenizer:
		return p.scheme == prependFirst
	}
	return false
}

// newPreTokenizer builds the pre-tokenizer described by raw (nil for none).
func newPreTokenizer(raw json.RawMessage) (preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw)
	if err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %v", err)
	}
	switch typ {
	case "Sequence":
		var v struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := decodeInto(raw, "pre_tokenizer Sequence", &v); err != nil {
			return nil, err
		}
		var seq sequencePreTokenizer
		for _, r := range v.PreTokenizers {
			p, err := newPreTokenizer(r)
			if err != nil {
				return nil, err
			}
			if p != nil {
				seq = append(seq, p)
			}
		}
		return seq, nil
	case "ByteLevel":
		var v struct {
			AddPrefixSpace bool  `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}
		if err := decodeInto(raw, "pre_tokenizer ByteLevel", &v); err != nil {
			return nil, err
		}
		useRegex := v.UseRegex == nil || *v.UseRegex
		return byteLevelPreTokenizer{addPrefixSpace: v.AddPrefixSpace, useRegex: useRegex}, nil
	case "Metaspace":
		var v metaspaceJSON
		if err := decodeInto(raw, "pre_tokenizer Metaspace", &v); err != nil {
			return nil, err
		}
		rep, scheme, split, err := v.parse("pre_tokenizer Metaspace")
		if err != nil {
			return nil, err
		}
		return metaspacePreTokenizer{rep: string(rep), scheme: scheme, split: split}, nil
	case "WhitespaceSplit":
		return whitespaceSplit{}, nil
	case "":
		return nil, fmt.Errorf("pre_tokenizer: no \"type\" field")
	default:
		return nil, unsupported("pre_tokenizer type %q (supported: Sequence, ByteLevel, Metaspace, WhitespaceSplit)", typ)
	}
}

// sequencePreTokenizer applies pre-tokenizers in order.
type sequencePreTokenizer []preTokenizer

func (s sequencePreTokenizer) preTokenize(in []aligned) []aligned {
	for _, p := range s {
		in = p.preTokenize(in)
	}
	return in
}

// appendSplits appends the non-empty parts of p cut at the byte offsets
// cuts (ascending).
func appendSplits(out []aligned, p aligned, cuts []int) []aligned {
	start := 0
	for _, c := range append(cuts, len(p.text)) {
		if c > start {
			out = append(out, p.slice(start, c))
		}
		start = c
	}
	return out
}

// metaspacePreTokenizer replaces spaces with the replacement character
// (U+2581 "▁"), prepends one as the scheme says, and splits before each.
// Unlike sugarme, which replaces every \s, only U+0020 is replaced, as in
// tokenizers; the "first" scheme and "split": false are honoured.
type metaspacePreTokenizer struct {
	rep    string
	scheme prependScheme
	split  bool
}

func (m metaspacePreTokenizer) preTokenize(in []aligned) []aligned {
	out := make([]aligned, 0, len(in))
	for _, p := range in {
		// Each space becomes the replacement, aligned with it.
		ab := newAlignedBuilder(p)
		last := 0
		for i := 0; i < len(p.text); i++ {
			if p.text[i] == ' ' {
				ab.copyFrom(p, last, i)
				ab.write(m.rep, p.origAt(i))
				last = i + 1
			}
		}
		ab.copyFrom(p, last, len(p.text))
		q := ab.done()
		if !strings.HasPrefix(q.text, m.rep) {
			if m.scheme == prependAlways || (m.scheme == prependFirst && q.atStart()) {
				q = prependAligned(q, m.rep)
			}
		}
		s := q.text
		if !m.split {
			out = append(out, q)
			continue
		}
		var cuts []int
		for i := 0; i < len(s); {
			j := strings.Index(s[i:], m.rep)
			if j < 0 {
				break
			}
			if i+j > 0 {
				cuts = append(cuts, i+j)
			}
			i += j + len(m.rep)
		}
		out = appendSplits(out, q, cuts)
	}
	return out
}

// whitespaceSplit splits on white space and drops it.
type whitespaceSplit struct{}

func (whitespaceSplit) preTokenize(in []aligned) []aligned {
	out := make([]aligned, 0, len(in))
	for _, p := range in {
		start := -1
		for i, r := range p.text {
			if isWhiteSpace(r) {
				if start >= 0 {
					out = append(out, p.slice(start, i))
					start = -1
				}
			} else if start < 0 {
				start = i
			}
		}
		if start >= 0 {
			out = append(out, p.slice(start, len(p.text)))
		}
	}
	return out
}

// byteLevelPreTokenizer is GPT-2's pre-tokenizer: it splits words with
// GPT-2's pattern and maps every byte to a printable character.
type byteLevelPreTokenizer struct {
	addPrefixSpace bool
	useRegex       bool
}

func (b byteLevelPreTokenizer) preTokenize(in []aligned) []aligned {
	out := make([]aligned, 0, len(in))
	for _, p := range in {
		if b.addPrefixSpace && !strings.HasPrefix(p.text, " ") {
			p = prependAligned(p, " ")
		}
		var words []aligned
		if b.useRegex {
			words = appendSplits(nil, p, gpt2Cuts(p.text))
		} else {
			words = []aligned{p}
		}
		for _, w := range words {
			if w.orig == nil {
				out = append(out, aligned{text: byteLevelEncode(w.text), base: w.base})
				continue
			}
			ab := newAlignedBuilder(w)
			for i := 0; i < len(w.text); i++ {
				ab.write(sugarpre.BytesChar[w.text[i]], w.orig[i])
			}
			out = append(out, ab.done())
		}
	}
	return out
}

// byteLevelEncode maps each byte of s to its GPT-2 character (sugarme's
// table, which matches tokenizers').
func byteLevelEncode(s string) string {
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteString(sugarpre.BytesChar[s[i]])
	}
	return b.String()
}

// byteLevelDecodeTable is the inverse of sugarme's BytesChar.
var byteLevelDecodeTable = func() map[rune]byte {
	m := make(map[rune]byte, 256)
	for b := 0; b < 256; b++ {
		r, _ := utf8.DecodeRuneInString(sugarpre.BytesChar[uint8(b)])
		m[r] = byte(b)
	}
	return m
}()

// gpt2Cuts returns the cut points of GPT-2's pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// over s. Go's regexp has no look-ahead, so (as sugarme drops the last two
// alternatives and so mis-splits white space) the pattern is matched by
// hand. \s is Unicode White_Space, as in Oniguruma.
func gpt2Cuts(s string) []int {
	var cuts []int
	i := 0
	for i < len(s) {
		n := gpt2Match(s[i:])
		i += n
		if i < len(s) {
			cuts = append(cuts, i)
		}
	}
	return cuts
}

// gpt2Match returns the byte length of the GPT-2 pattern's match at the
// start of s (len(s) > 0). Every character matches some alternative.
func gpt2Match(s string) int {
	if s[0] == '\'' {
		for _, suf := range [...]string{"s", "t", "re", "ve", "m", "ll", "d"} {
			if strings.HasPrefix(s[1:], suf) {
				return 1 + len(suf)
			}
		}
	}
	// " ?" then a class: letters, numbers, or neither-nor-space.
	start := 0
	if s[0] == ' ' && len(s) > 1 {
		start = 1
	}
	for _, try := range []int{start, 0} {
		r, size := utf8.DecodeRuneInString(s[try:])
		var in func(rune) bool
		switch {
		case unicode.IsLetter(r):
			in = unicode.IsLetter
		case unicode.IsNumber(r):
			in = unicode.IsNumber
		case !isWhiteSpace(r):
			in = isOther
		}
		if in != nil {
			return try + size + runLen(s[try+size:], in)
		}
		if try == 0 {
			break
		}
	}
	// White space: \s+(?!\S), else \s+.
	n := runLen(s, isWhiteSpace)
	if n == len(s) {
		return n
	}
	// The run is followed by a non-space: give back its last character,
	// unless that leaves nothing (then \s+ takes the single character).
	_, last := utf8.DecodeLastRuneInString(s[:n])
	if n-last > 0 {
		return n - last
	}
	return n
}

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool {
	return !isWhiteSpace(r) && !unicode.IsLetter(r) && !unicode.IsNumber(r)
}

// runLen returns the byte length of the longest prefix of s whose runes
// all satisfy in.
func runLen(s string, in func(rune) bool) int {
	for i, r := range s {
		if !in(r) {
			return i
		}
	}
	return len(s)
}
