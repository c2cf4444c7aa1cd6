package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is an entry of added_tokens: a string matched in the text
// before the model runs, and given its id whole.
type addedToken struct {
	id         int64
	content    string
	singleWord bool
	lstrip     bool
	rstrip     bool
	normalized bool
	special    bool
}

// matcher finds added tokens in text, leftmost first and longest among
// those starting at the same place, like tokenizers' Aho-Corasick matcher
// built with MatchKind::LeftmostLongest.
type matcher struct {
	// byFirst lists, for each first byte, the tokens (pattern, token)
	// longest first.
	byFirst map[byte][]matchPattern
}

type matchPattern struct {
	pattern string
	token   *addedToken
}

func newMatcher(pats []matchPattern) *matcher {
	m := &matcher{byFirst: make(map[byte][]matchPattern)}
	for _, p := range pats {
		if p.pattern == "" {
			continue
		}
		m.byFirst[p.pattern[0]] = append(m.byFirst[p.pattern[0]], p)
	}
	for _, list := range m.byFirst {
		sort.SliceStable(list, func(i, j int) bool { return len(list[i].pattern) > len(list[j].pattern) })
	}
	return m
}

// find returns the first match at or after from: its start, end and token.
func (m *matcher) find(s string, from int) (int, int, *addedToken, bool) {
	if m == nil || len(m.byFirst) == 0 {
		return 0, 0, nil, false
	}
	for i := from; i < len(s); i++ {
		for _, p := range m.byFirst[s[i]] {
			if strings.HasPrefix(s[i:], p.pattern) {
				return i, i + len(p.pattern), p.token, true
			}
		}
	}
	return 0, 0, nil, false
}

// part is a stretch of text that is either an added token (id >= 0) or
// text still to tokenize (id < 0). start is its offset in the text it was
// cut from.
type part struct {
	text  string
	start int
	id    int64
}

// split cuts s at the added tokens m finds, applying single_word, lstrip
// and rstrip as tokenizers' find_matches does. Empty text parts are dropped.
func (m *matcher) split(s string) []part {
	var parts []part
	last := 0 // end of the previous token, stripped white space included
	for pos := 0; pos < len(s); {
		start, stop, tok, ok := m.find(s, pos)
		if !ok {
			break
		}
		pos = stop // the search resumes after the raw match, kept or not
		if tok.singleWord {
			startSpace := start == 0 || !endsWithWordChar(s[:start])
			stopSpace := stop == len(s) || !startsWithWordChar(s[stop:])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if tok.lstrip {
			start = max(len(strings.TrimRightFunc(s[:start], isWhiteSpace)), last)
		}
		if tok.rstrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], isWhiteSpace))
		}
		if last < start {
			parts = append(parts, part{text: s[last:start], start: last, id: -1})
		}
		parts = append(parts, part{text: s[start:stop], start: start, id: tok.id})
		last = stop
	}
	if last < len(s) {
		parts = append(parts, part{text: s[last:], start: last, id: -1})
	}
	return parts
}

// isWordChar is \w of Rust's regex crate: Alphabetic, marks, decimal
// digits, connector punctuation and Join_Control.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_Alphabetic, r) ||
		unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r) ||
		unicode.Is(unicode.Join_Control, r)
}

func endsWithWordChar(s string) bool {
	r, size := utf8.DecodeLastRuneInString(s)
	return size > 0 && isWordChar(r)
}

func startsWithWordChar(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return size > 0 && isWordChar(r)
}
