package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// aligned is text on its way through the pipeline, with, when the tokenizer
// needs it, where each byte came from in the text given to Encode.
//
// Only the Metaspace "first" scheme needs this: tokenizers prepends the
// replacement only to a split whose first character comes from offset 0 of
// the input, and it finds that offset through the alignments every
// normalizer updates. So orig[i] is the start offset in the input of the
// character byte i was made from, computed by the same rules as
// tokenizers' NormalizedString; base is the offset of the part of the input
// this text was cut from (what tokenizers' alignment (0, 0) means). orig is
// nil when not tracked, and then only text is computed.
type aligned struct {
	text string
	orig []int
	base int
}

// newAligned returns text from the input at offset start, tracked or not.
func newAligned(text string, start int, track bool) aligned {
	a := aligned{text: text, base: start}
	if !track {
		return a
	}
	a.orig = make([]int, len(text))
	for i := 0; i < len(text); {
		_, size := utf8.DecodeRuneInString(text[i:])
		for k := 0; k < size; k++ {
			a.orig[i+k] = start + i
		}
		i += size
	}
	return a
}

// slice returns the bytes [i, j) of a.
func (a aligned) slice(i, j int) aligned {
	out := aligned{text: a.text[i:j], base: a.base}
	if a.orig != nil {
		out.orig = a.orig[i:j]
	}
	return out
}

// atStart reports whether a begins at offset 0 of the input.
func (a aligned) atStart() bool {
	return len(a.orig) > 0 && a.orig[0] == 0
}

// change is one character of a transformation and what it does, as in
// tokenizers: 0 replaces the next character, 1 is inserted, -n replaces
// the next character and removes the n after it.
type change struct {
	r rune
	n int
}

// transform applies changes to the whole of a with tokenizers'
// transform_range rules for alignments: a replacing character takes the
// alignment of the character it replaces, an inserted one that of the
// character before it.
func (a aligned) transform(dest []change) aligned {
	var b strings.Builder
	b.Grow(len(a.text))
	if a.orig == nil {
		for _, d := range dest {
			b.WriteRune(d.r)
		}
		return aligned{text: b.String(), base: a.base}
	}
	orig := make([]int, 0, len(a.text))
	pos := 0
	consume := func() {
		if pos < len(a.text) {
			_, size := utf8.DecodeRuneInString(a.text[pos:])
			pos += size
		}
	}
	for _, d := range dest {
		var at int
		if d.n > 0 {
			at = a.origAt(pos - 1)
		} else {
			at = a.origAt(pos)
			consume()
		}
		for range -d.n {
			consume()
		}
		size := b.Len()
		b.WriteRune(d.r)
		for range b.Len() - size {
			orig = append(orig, at)
		}
	}
	return aligned{text: b.String(), orig: orig, base: a.base}
}

// origAt returns orig[i], base before the text and the last alignment past
// its end (where tokenizers would index out of range).
func (a aligned) origAt(i int) int {
	switch {
	case i < 0 || len(a.orig) == 0:
		return a.base
	case i >= len(a.orig):
		return a.orig[len(a.orig)-1]
	default:
		return a.orig[i]
	}
}

// alignedBuilder builds an aligned text piece by piece.
type alignedBuilder struct {
	b     strings.Builder
	orig  []int
	track bool
	base  int
}

func newAlignedBuilder(from aligned) *alignedBuilder {
	ab := &alignedBuilder{track: from.orig != nil, base: from.base}
	ab.b.Grow(len(from.text))
	if ab.track {
		ab.orig = make([]int, 0, len(from.text))
	}
	return ab
}

// copyFrom appends bytes [i, j) of a with their alignments.
func (ab *alignedBuilder) copyFrom(a aligned, i, j int) {
	ab.b.WriteString(a.text[i:j])
	if ab.track {
		ab.orig = append(ab.orig, a.orig[i:j]...)
	}
}

// write appends s, every byte aligned to at.
func (ab *alignedBuilder) write(s string, at int) {
	ab.b.WriteString(s)
	if ab.track {
		for range len(s) {
			ab.orig = append(ab.orig, at)
		}
	}
}

// last returns the alignment of the last byte written, or base.
func (ab *alignedBuilder) last() int {
	if len(ab.orig) == 0 {
		return ab.base
	}
	return ab.orig[len(ab.orig)-1]
}

func (ab *alignedBuilder) done() aligned {
	out := aligned{text: ab.b.String(), base: ab.base}
	if ab.track {
		out.orig = ab.orig
	}
	return out
}
