package tokenizer

//go:generate go run gen_unicode9.go

import (
	"unicode"
	"unicode/utf8"
)

// The Python tokenizers library normalizes (NFC, NFD, NFKC, NFKD) with the
// Rust crate unicode-normalization-alignments 0.1.12, whose tables are
// Unicode 9.0.0; golang.org/x/text's are newer (15.0.0). Unicode's
// stability policy keeps the decompositions, combining classes and
// compositions of characters already assigned, so the two differ only on
// characters assigned after 9.0: tokenizers treats them as unassigned
// (they neither decompose, reorder nor compose; NFKC leaves U+1FBF9
// SEGMENTED DIGIT NINE alone where x/text makes it "9"). unknownToTokenizers
// (unicode9_table.go, generated from a measurement of tokenizers over
// every code point by gen_unicode9.go) lists those x/text gives a
// property. Such a character acts as a starter that composes with
// nothing, so normalization never reaches across it: the text is
// normalized piece by piece between them, and they are copied as they are.

// minUnknown is the smallest code point of unknownToTokenizers: text below
// it needs no lookup.
var minUnknown = func() rune {
	if len(unknownToTokenizers.R16) > 0 {
		return rune(unknownToTokenizers.R16[0].Lo)
	}
	if len(unknownToTokenizers.R32) > 0 {
		return rune(unknownToTokenizers.R32[0].Lo)
	}
	return utf8.MaxRune + 1
}()

// unknownRune reports whether tokenizers' normalizers leave r alone where
// x/text's would not.
func unknownRune(r rune) bool {
	return r >= minUnknown && unicode.Is(unknownToTokenizers, r)
}

// hasUnknown reports whether s holds an unknownRune.
func hasUnknown(s string) bool {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unknownRune(r) {
			return true
		}
		i += size
	}
	return false
}
