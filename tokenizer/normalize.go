package tokenizer

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"github.com/sugarme/tokenizer/spm"
	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites text before pre-tokenization. Alignments are kept
// (by tokenizers' rules) only when the text's orig is tracked; see aligned.
type normalizer interface {
	normalize(a aligned) aligned
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

func (s sequenceNormalizer) normalize(a aligned) aligned {
	for _, n := range s {
		a = n.normalize(a)
	}
	return a
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

// normalize rewrites each grapheme. When alignments are tracked it lists
// the changes as spm_precompiled's replace does (the extra characters of a
// longer rewrite are insertions; a shorter rewrite removes characters after
// the last one written, even one of an earlier grapheme) and applies them
// once, as tokenizers does.
func (p *precompiledNormalizer) normalize(a aligned) aligned {
	track := a.orig != nil
	var b strings.Builder
	var dest []change
	modified := false
	emit := func(old, repl string, rewritten bool) {
		if !track {
			b.WriteString(repl)
			return
		}
		for _, r := range repl {
			dest = append(dest, change{r: r})
		}
		if !rewritten {
			return
		}
		modified = true
		diff := utf8.RuneCountInString(repl) - utf8.RuneCountInString(old)
		switch {
		case diff > 0:
			for k := 1; k <= diff; k++ {
				dest[len(dest)-k].n = 1
			}
		case diff < 0 && len(dest) > 0:
			dest[len(dest)-1].n += diff
		}
	}
	b.Grow(len(a.text))
	state := -1
	rest := a.text
	for len(rest) > 0 {
		var g string
		g, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		// Like spm_precompiled: a short grapheme is looked up whole;
		// otherwise (or with no rule) each character is looked up alone.
		if len(g) < 6 {
			if norm, ok := p.transform(g); ok {
				emit(g, norm, true)
				continue
			}
		}
		for i := 0; i < len(g); {
			_, size := utf8.DecodeRuneInString(g[i:])
			part := g[i : i+size]
			if norm, ok := p.transform(part); ok {
				emit(part, norm, true)
			} else {
				emit(part, part, false)
			}
			i += size
		}
	}
	if !track {
		return aligned{text: b.String(), base: a.base}
	}
	if !modified {
		return a
	}
	return a.transform(dest)
}

// isWhiteSpace is Rust's char::is_whitespace (the White_Space property).
func isWhiteSpace(r rune) bool {
	return unicode.Is(unicode.White_Space, r)
}

// stripNormalizer removes leading and/or trailing white space.
type stripNormalizer struct{ left, right bool }

// normalize strips; the characters kept keep their alignments.
func (s stripNormalizer) normalize(a aligned) aligned {
	lo, hi := 0, len(a.text)
	if s.left {
		lo = hi - len(strings.TrimLeftFunc(a.text, isWhiteSpace))
	}
	if s.right {
		hi = lo + len(strings.TrimRightFunc(a.text[lo:], isWhiteSpace))
	}
	return a.slice(lo, hi)
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

// matches returns the byte ranges replace rewrites.
func (r *replacer) matches(s string) [][]int {
	if r.re != nil {
		return r.re.FindAllStringIndex(s, -1)
	}
	var out [][]int
	for i := 0; ; {
		j := strings.Index(s[i:], r.literal)
		if j < 0 {
			return out
		}
		out = append(out, []int{i + j, i + j + len(r.literal)})
		i += j + len(r.literal)
	}
}

// normalize replaces. As in tokenizers, the content of a match is aligned
// with the match's last character (an empty match: the character before).
func (r *replacer) normalize(a aligned) aligned {
	if a.orig == nil {
		return aligned{text: r.replace(a.text), base: a.base}
	}
	ms := r.matches(a.text)
	if len(ms) == 0 {
		return a
	}
	ab := newAlignedBuilder(a)
	last := 0
	for _, m := range ms {
		ab.copyFrom(a, last, m[0])
		at := ab.last()
		if m[1] > m[0] {
			at = a.orig[m[1]-1]
		}
		ab.write(r.content, at)
		last = m[1]
	}
	ab.copyFrom(a, last, len(a.text))
	return ab.done()
}

// prependNormalizer puts a string before non-empty text.
type prependNormalizer string

func (p prependNormalizer) normalize(a aligned) aligned {
	return prependAligned(a, string(p))
}

// prependAligned puts s before non-empty text, aligned (as tokenizers'
// prepend does) with the first character.
func prependAligned(a aligned, s string) aligned {
	if a.text == "" {
		return a
	}
	ab := newAlignedBuilder(a)
	ab.write(s, a.origAt(0))
	ab.copyFrom(a, 0, len(a.text))
	return ab.done()
}

// lowercaseNormalizer lowercases character by character with Unicode's
// full mapping, as Rust's char::to_lowercase does: it differs from Go's
// simple mapping only for U+0130, which becomes "i\u0307".
type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(a aligned) aligned {
	ab := newAlignedBuilder(a)
	for i, r := range a.text {
		lower := string(unicode.ToLower(r))
		if r == '\u0130' {
			lower = "i\u0307"
		}
		ab.write(lower, a.origAt(i))
	}
	return ab.done()
}

// unicodeNormalizer applies NFC, NFD, NFKC or NFKD with x/text (the
// package sugarme wraps). sugarme's own normalizers are not used: its NFC
// and NFKC leave decomposed input ("e\u0301") uncomposed, and its NFKD
// returns nil for input already in NFKD.
type unicodeNormalizer struct {
	form norm.Form
}

// maxMarks is the longest run of combining marks x/text normalizes as
// Unicode says; past 30 it follows the Stream-Safe Text Format and cuts
// the run with a U+034F, which Rust's unicode-normalization (used by
// tokenizers) does not.
const maxMarks = 30

// normalize normalizes a as tokenizers does: between the characters its
// Unicode 9.0 tables do not know (see unicode9.go), which are kept as they
// are, with x/text.
func (u unicodeNormalizer) normalize(a aligned) aligned {
	if !hasUnknown(a.text) {
		return u.normalizeKnown(a)
	}
	ab := newAlignedBuilder(a)
	start := 0
	flush := func(end int) {
		if end > start {
			seg := u.normalizeKnown(a.slice(start, end))
			ab.copyFrom(seg, 0, len(seg.text))
		}
	}
	for i, r := range a.text {
		if unknownRune(r) {
			flush(i)
			start = i + utf8.RuneLen(r)
			ab.copyFrom(a, i, start)
		}
	}
	flush(len(a.text))
	return ab.done()
}

// normalizeKnown normalizes text that holds no character unknown to
// tokenizers' tables.
func (u unicodeNormalizer) normalizeKnown(a aligned) aligned {
	long := longestMarkRun(a.text) >= maxMarks-1
	if a.orig == nil {
		return aligned{text: u.str(a.text, long), base: a.base}
	}
	// Normalize segment by segment (x/text's boundaries, across which
	// normalization does not reach), aligning the n-th output character of
	// a segment with its n-th input character, or its last.
	ab := newAlignedBuilder(a)
	for i := 0; i < len(a.text); {
		n := len(a.text) - i
		if !long {
			if b := u.form.NextBoundaryInString(a.text[i:], true); b > 0 {
				n = b
			}
		}
		seg := a.text[i : i+n]
		out := u.str(seg, long)
		var starts []int
		for k := range seg {
			starts = append(starts, a.orig[i+k])
		}
		j := 0
		for _, r := range out {
			ab.write(string(r), starts[min(j, len(starts)-1)])
			j++
		}
		i += n
	}
	return ab.done()
}

// str normalizes s with x/text, or by the book (normalizeLong) when s has
// a long run of marks or x/text composes it wrongly.
//
// x/text's composition looks pairs up by the low 16 bits of both runes, so
// a supplementary-plane rune can compose as if it were the BMP rune with
// the same low bits: NFC("\U00010041\u0301") gives "Á". A composition
// never changes the canonical (NFC) or compatibility (NFKC) decomposition,
// so when s holds a supplementary rune the result is checked by
// decomposing it again, and redone by the book when the check fails.
func (u unicodeNormalizer) str(s string, long bool) string {
	if long {
		return u.normalizeLong(s)
	}
	out := u.form.String(s)
	var decompose norm.Form
	switch u.form {
	case norm.NFC:
		decompose = norm.NFD
	case norm.NFKC:
		decompose = norm.NFKD
	default:
		return out
	}
	if !hasSupplementary(s) || decompose.String(out) == decompose.String(s) {
		return out
	}
	return u.normalizeLong(s)
}

// hasSupplementary reports whether s holds a rune above U+FFFF (4 bytes
// in UTF-8).
func hasSupplementary(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0xF0 {
			return true
		}
	}
	return false
}

// composePair returns the canonical composite of a and b, as x/text
// composes it, when there is one: it must decompose as a, b do (which
// x/text's lookup by low 16 bits does not check); Hangul syllables are
// composed by algorithm.
func composePair(a, b rune) (rune, bool) {
	pair := []rune(norm.NFC.String(string([]rune{a, b})))
	if len(pair) != 1 {
		return 0, false
	}
	c := pair[0]
	if c >= 0xAC00 && c <= 0xD7A3 {
		return c, true
	}
	if norm.NFD.String(string(c)) != norm.NFD.String(string([]rune{a, b})) {
		return 0, false
	}
	return c, true
}

// longestMarkRun returns the longest run of combining marks (non-zero
// canonical combining class) in the compatibility decomposition of s.
func longestMarkRun(s string) int {
	longest, run := 0, 0
	mark := func(ccc uint8) {
		if ccc != 0 {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	for i := 0; i < len(s); {
		if s[i] < 0xC2 {
			run = 0 // ASCII (and C1 controls): starters without decomposition
			i++
			continue
		}
		p := norm.NFKD.PropertiesString(s[i:])
		size := p.Size()
		if size == 0 {
			size = 1 // invalid UTF-8 (not reached: Encode refuses it)
		}
		if d := p.Decomposition(); d != nil {
			for j := 0; j < len(d); {
				q := norm.NFD.Properties(d[j:])
				mark(q.CCC())
				j += max(q.Size(), 1)
			}
		} else {
			mark(p.CCC())
		}
		i += size
	}
	return longest
}

// normalizeLong normalizes text with long runs of marks by the book:
// decompose each rune, sort each run of marks by combining class (stably),
// then, for NFC and NFKC, compose each mark with the last starter unless a
// mark in between blocks it. Pairs are composed by composePair.
func (u unicodeNormalizer) normalizeLong(s string) string {
	decompose, compose := norm.NFD, false
	switch u.form {
	case norm.NFKD:
		decompose = norm.NFKD
	case norm.NFC:
		compose = true
	case norm.NFKC:
		decompose, compose = norm.NFKD, true
	}
	ccc := func(r rune) uint8 { return norm.NFD.PropertiesString(string(r)).CCC() }
	var runes []rune
	for _, r := range s {
		runes = append(runes, []rune(decompose.String(string(r)))...)
	}
	for i := 0; i < len(runes); {
		if ccc(runes[i]) == 0 {
			i++
			continue
		}
		j := i
		for j < len(runes) && ccc(runes[j]) != 0 {
			j++
		}
		run := runes[i:j]
		sort.SliceStable(run, func(a, b int) bool { return ccc(run[a]) < ccc(run[b]) })
		i = j
	}
	if !compose {
		return string(runes)
	}
	out := make([]rune, 0, len(runes))
	starter := -1
	for _, r := range runes {
		c := ccc(r)
		if starter >= 0 {
			blocked := false
			if last := len(out) - 1; last > starter {
				lc := ccc(out[last])
				blocked = lc == 0 || lc >= c
			}
			if !blocked {
				if composed, ok := composePair(out[starter], r); ok {
					out[starter] = composed
					continue
				}
			}
		}
		if c == 0 {
			starter = len(out)
		}
		out = append(out, r)
	}
	return string(out)
}
