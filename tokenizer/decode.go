package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// decoder turns token strings back into text, in the chain form of
// tokenizers: each step maps a list of strings to a list of strings, and
// the text is their concatenation.
type decoder interface {
	decodeChain(tokens []string) []string
}

// newDecoder builds the decoder described by raw (nil for none).
func newDecoder(raw json.RawMessage) (decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw)
	if err != nil {
		return nil, fmt.Errorf("decoder: %v", err)
	}
	switch typ {
	case "Sequence":
		var v struct {
			Decoders []json.RawMessage `json:"decoders"`
		}
		if err := decodeInto(raw, "decoder Sequence", &v); err != nil {
			return nil, err
		}
		var seq sequenceDecoder
		for _, r := range v.Decoders {
			d, err := newDecoder(r)
			if err != nil {
				return nil, err
			}
			if d != nil {
				seq = append(seq, d)
			}
		}
		return seq, nil
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "Metaspace":
		var v metaspaceJSON
		if err := decodeInto(raw, "decoder Metaspace", &v); err != nil {
			return nil, err
		}
		rep, scheme, _, err := v.parse("decoder Metaspace")
		if err != nil {
			return nil, err
		}
		return metaspaceDecoder{rep: rep, dropFirst: scheme != prependNever}, nil
	case "Replace":
		var v struct {
			Pattern patternJSON `json:"pattern"`
			Content string      `json:"content"`
		}
		if err := decodeInto(raw, "decoder Replace", &v); err != nil {
			return nil, err
		}
		rep, err := newReplacer(v.Pattern, v.Content, "decoder Replace")
		if err != nil {
			return nil, err
		}
		return replaceDecoder{rep}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		var v struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := decodeInto(raw, "decoder Strip", &v); err != nil {
			return nil, err
		}
		runes := []rune(v.Content)
		if len(runes) != 1 || v.Start < 0 || v.Stop < 0 {
			return nil, fmt.Errorf("decoder Strip: content must be one character and start, stop >= 0")
		}
		return stripDecoder{content: runes[0], start: v.Start, stop: v.Stop}, nil
	case "":
		return nil, fmt.Errorf("decoder: no \"type\" field")
	default:
		return nil, unsupported("decoder type %q (supported: Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip)", typ)
	}
}

// hasByteFallback reports whether d is or holds a ByteFallback decoder.
func hasByteFallback(d decoder) bool {
	switch x := d.(type) {
	case byteFallbackDecoder:
		return true
	case sequenceDecoder:
		for _, e := range x {
			if hasByteFallback(e) {
				return true
			}
		}
	}
	return false
}

// sequenceDecoder applies decoders in order.
type sequenceDecoder []decoder

func (s sequenceDecoder) decodeChain(tokens []string) []string {
	for _, d := range s {
		tokens = d.decodeChain(tokens)
	}
	return tokens
}

// byteLevelDecoder maps GPT-2 characters back to bytes. A token with a
// character outside the table (an added token such as "<mask>") keeps its
// own bytes (sugarme turns each such character into a NUL byte). Invalid
// UTF-8 becomes U+FFFD as Rust's from_utf8_lossy does, one per maximal
// invalid subsequence (sugarme leaves the invalid bytes in the string).
type byteLevelDecoder struct{}

func (byteLevelDecoder) decodeChain(tokens []string) []string {
	var buf []byte
	for _, t := range tokens {
		mark := len(buf)
		ok := true
		for _, r := range t {
			b, found := byteLevelDecodeTable[r]
			if !found {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if !ok {
			buf = append(buf[:mark], t...)
		}
	}
	return []string{lossyUTF8(buf)}
}

// lossyUTF8 is Rust's String::from_utf8_lossy: each maximal subpart of an
// ill-formed sequence becomes one U+FFFD.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			sb.Write(b[i : i+size])
			i += size
			continue
		}
		sb.WriteRune(utf8.RuneError)
		i += 1 + validContinuations(b[i:])
	}
	return sb.String()
}

// validContinuations returns how many bytes after b[0] continue a
// well-formed prefix of a UTF-8 sequence that is cut short (0 when b[0]
// cannot start a sequence).
func validContinuations(b []byte) int {
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c == 0xED:
		need, hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90
	case c == 0xF4:
		need, hi = 3, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	default:
		return 0
	}
	n := 0
	for n < need && 1+n < len(b) {
		c := b[1+n]
		if n == 0 && (c < lo || c > hi) || n > 0 && (c < 0x80 || c > 0xBF) {
			break
		}
		n++
	}
	return n
}

// metaspaceDecoder turns the replacement character back into spaces; with
// a prepend scheme other than "never" it drops them from the first token.
// sugarme reads only the old add_prefix_space field, so for files with
// prepend_scheme it keeps the leading space.
type metaspaceDecoder struct {
	rep       rune
	dropFirst bool
}

func (m metaspaceDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		var b strings.Builder
		for _, r := range t {
			switch {
			case r != m.rep:
				b.WriteRune(r)
			case i == 0 && m.dropFirst:
			default:
				b.WriteByte(' ')
			}
		}
		out[i] = b.String()
	}
	return out
}

// replaceDecoder replaces a pattern in each token.
type replaceDecoder struct{ r *replacer }

func (d replaceDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = d.r.replace(t)
	}
	return out
}

// byteFallbackDecoder turns runs of "<0xAB>" tokens into the bytes they
// spell; a run that is not valid UTF-8 gives one U+FFFD per byte.
type byteFallbackDecoder struct{}

func (byteFallbackDecoder) decodeChain(tokens []string) []string {
	var out []string
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range tokens {
		if b, ok := parseByteToken(t); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// parseByteToken reads a "<0xAB>" token.
func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(t[3:5]) {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		v = v<<4 | d
	}
	return v, true
}

// fuseDecoder joins all tokens into one.
type fuseDecoder struct{}

func (fuseDecoder) decodeChain(tokens []string) []string {
	return []string{strings.Join(tokens, "")}
}

// stripDecoder removes up to start leading and stop trailing copies of a
// character from each token.
type stripDecoder struct {
	content     rune
	start, stop int
}

func (s stripDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		r := []rune(t)
		lo := 0
		for lo < len(r) && lo < s.start && r[lo] == s.content {
			lo++
		}
		hi := len(r)
		for n := 0; n < s.stop && hi > lo && r[hi-1] == s.content; n++ {
			hi--
		}
		out[i] = string(r[lo:hi])
	}
	return out
}
