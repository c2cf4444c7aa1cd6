package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// Entry is one test word and its reference pronunciations, each a list of
// phonemes.
type Entry struct {
	Word  string
	Prons [][]string
}

// ReadWords reads a test file: "word<TAB>PH PH ... | PH PH ..." per line;
// blank lines are skipped.
func ReadWords(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w; pass -words FILE (word<TAB>pronunciations lines) or a model directory with test.tsv", err)
	}
	defer f.Close()
	return parseWords(f, path)
}

// parseWords reads the lines of a test file named name.
func parseWords(r io.Reader, name string) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		word, rest, ok := strings.Cut(line, "\t")
		if !ok || word == "" || strings.TrimSpace(rest) == "" {
			return nil, fmt.Errorf("%s line %d: want word<TAB>pronunciation(s); fix the file", name, n)
		}
		e := Entry{Word: word}
		for _, p := range strings.Split(rest, " | ") {
			phones := strings.Fields(p)
			if len(phones) == 0 {
				return nil, fmt.Errorf("%s line %d: an empty pronunciation; separate pronunciations with \" | \"", name, n)
			}
			e.Prons = append(e.Prons, phones)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no words; pass a word<TAB>pronunciations file", name)
	}
	return out, nil
}

// EditDistance returns the Levenshtein distance between two phoneme lists.
func EditDistance(a, b []string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ScoreWord returns the edits from hyp to the closest reference and that
// reference's length: fewest edits, then the shorter reference, then the
// first (the rule of the Python evaluation, s2s_export.rnn.evaluate).
func ScoreWord(hyp []string, refs [][]string) (edits, refLen int) {
	edits, refLen = -1, 0
	for _, r := range refs {
		d := EditDistance(hyp, r)
		if edits < 0 || d < edits || (d == edits && len(r) < refLen) {
			edits, refLen = d, len(r)
		}
	}
	return edits, refLen
}

// Rates are the error rates of a set of predictions, as fractions.
type Rates struct {
	Words, WrongWords int
	Edits, RefLen     int
}

// Add scores one prediction against its references.
func (r *Rates) Add(hyp []string, refs [][]string) {
	d, n := ScoreWord(hyp, refs)
	r.Words++
	if d != 0 {
		r.WrongWords++
	}
	r.Edits += d
	r.RefLen += n
}

// AddBest scores the closest of several predictions for one word (fewest
// edits; on a tie, the one whose reference is shorter, then the first): the
// oracle of an n-best list. With one prediction it is Add.
func (r *Rates) AddBest(hyps [][]string, refs [][]string) {
	best, bestLen := -1, 0
	for _, h := range hyps {
		d, n := ScoreWord(h, refs)
		if best < 0 || d < best || (d == best && n < bestLen) {
			best, bestLen = d, n
		}
	}
	if best < 0 { // no prediction: every reference phoneme is missed
		best, bestLen = ScoreWord(nil, refs)
	}
	r.Words++
	if best != 0 {
		r.WrongWords++
	}
	r.Edits += best
	r.RefLen += bestLen
}

// WER returns the word error rate.
func (r Rates) WER() float64 {
	if r.Words == 0 {
		return 0
	}
	return float64(r.WrongWords) / float64(r.Words)
}

// PER returns the phoneme error rate.
func (r Rates) PER() float64 {
	if r.RefLen == 0 {
		return 0
	}
	return float64(r.Edits) / float64(r.RefLen)
}
