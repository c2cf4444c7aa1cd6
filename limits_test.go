package s2s

import (
	"errors"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s/beamsearch"
)

func TestLimitsCheck(t *testing.T) {
	l := Limits{MaxInputs: 2, MaxInputTokens: 3, MaxNewTokens: 10, MaxBeams: 4, MaxReturnSequences: 2, MaxRows: 6}.WithDefaults()
	base := beamsearch.Defaults()
	base.MaxNewTokens = 10
	ids := [][]int64{{1, 2, 3}, {4}}
	with := func(f func(o *beamsearch.Options)) beamsearch.Options {
		o := base
		f(&o)
		return o
	}
	for _, tc := range []struct {
		name  string
		ids   [][]int64
		opts  beamsearch.Options
		limit string // "" for no error
	}{
		{"within", ids, base, ""},
		{"too many inputs", [][]int64{{1}, {1}, {1}}, base, "max_inputs"},
		{"input too long", [][]int64{{1, 2, 3, 4}}, base, "max_input_tokens"},
		{"max_new_tokens", ids, with(func(o *beamsearch.Options) { o.MaxNewTokens = 11 }), "max_new_tokens"},
		{"max_new_tokens huge", ids, with(func(o *beamsearch.Options) { o.MaxNewTokens = 1 << 62 }), "max_new_tokens"},
		{"beams", ids, with(func(o *beamsearch.Options) { o.NumBeams = 5 }), "max_beams"},
		{"return sequences", ids, with(func(o *beamsearch.Options) { o.NumBeams, o.NumReturnSequences = 4, 3 }), "max_return_sequences"},
		{"rows", ids, with(func(o *beamsearch.Options) { o.NumBeams = 4 }), "max_rows"},
		{"sampled rows", ids, with(func(o *beamsearch.Options) { o.DoSample, o.NumReturnSequences = true, 2 }), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.check(tc.ids, tc.opts)
			if tc.limit == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || !errors.Is(err, ErrLimit) || le.Limit != tc.limit {
				t.Fatalf("got %v, want a LimitError of %s", err, tc.limit)
			}
			if !strings.Contains(err.Error(), tc.limit) {
				t.Errorf("the message %q does not name the limit", err)
			}
		})
	}
	if err := (Limits{MaxBeams: -1}).Validate(); err == nil {
		t.Error("a negative limit was accepted")
	}
}
