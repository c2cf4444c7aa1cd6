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
		name      string
		ids       [][]int64
		opts      beamsearch.Options
		positions int    // the model's max_position_embeddings (0: none)
		limit     string // "" for no error
		flag      string // what the message says to set ("" for the model's limit)
	}{
		{"within", ids, base, 0, "", ""},
		{"too many inputs", [][]int64{{1}, {1}, {1}}, base, 0, "max_inputs", "-max-inputs (S2S_MAX_INPUTS)"},
		{"input too long", [][]int64{{1, 2, 3, 4}}, base, 0, "max_input_tokens", "-max-input-tokens (S2S_MAX_INPUT_TOKENS)"},
		{"max_new_tokens", ids, with(func(o *beamsearch.Options) { o.MaxNewTokens = 11 }), 0, "limit_max_new_tokens", "-limit-max-new-tokens (S2S_LIMIT_MAX_NEW_TOKENS)"},
		{"max_new_tokens huge", ids, with(func(o *beamsearch.Options) { o.MaxNewTokens = 1 << 62 }), 0, "limit_max_new_tokens", "-limit-max-new-tokens"},
		{"beams", ids, with(func(o *beamsearch.Options) { o.NumBeams = 5 }), 0, "max_beams", "-max-beams (S2S_MAX_BEAMS)"},
		{"return sequences", ids, with(func(o *beamsearch.Options) { o.NumBeams, o.NumReturnSequences = 4, 3 }), 0, "max_return_sequences", "-max-return-sequences"},
		{"rows", ids, with(func(o *beamsearch.Options) { o.NumBeams = 4 }), 0, "max_rows", "-max-rows (S2S_MAX_ROWS)"},
		{"sampled rows", ids, with(func(o *beamsearch.Options) { o.DoSample, o.NumReturnSequences = true, 2 }), 0, "", ""},
		{"input past the positions", ids, base, 2, "max_position_embeddings", ""},
		{"input within the positions", ids, with(func(o *beamsearch.Options) { o.MaxNewTokens = 3 }), 3, "", ""},
		{"output past the positions", ids, base, 9, "max_position_embeddings", ""},
		{"output within the positions", ids, base, 10, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.check(tc.ids, tc.opts, tc.positions)
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
			if !strings.Contains(err.Error(), tc.limit) || !strings.Contains(err.Error(), tc.flag) {
				t.Errorf("the message %q does not name the limit %s and %q", err, tc.limit, tc.flag)
			}
			if le.Model != (tc.flag == "") {
				t.Errorf("Model is %v", le.Model)
			}
		})
	}
	for _, bad := range []Limits{{MaxBeams: -1}, {MaxRows: 1 << 30}, {MaxInputBytes: -5}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v was accepted", bad)
		}
	}
}

func TestLimitsCheckTexts(t *testing.T) {
	l := Limits{MaxInputs: 2, MaxInputTokens: 4}.WithDefaults()
	if l.MaxInputBytes != 4*bytesPerToken {
		t.Fatalf("max_input_bytes defaults to %d, want %d", l.MaxInputBytes, 4*bytesPerToken)
	}
	var le *LimitError
	if err := l.checkTexts([]string{"a", strings.Repeat("x", 257)}); !errors.As(err, &le) || le.Limit != "max_input_bytes" || le.Value != 257 {
		t.Errorf("got %v, want max_input_bytes for input 1", err)
	}
	if err := l.checkTexts([]string{"a", "b", "c"}); !errors.As(err, &le) || le.Limit != "max_inputs" {
		t.Errorf("got %v, want max_inputs", err)
	}
	if err := l.checkTexts([]string{"", strings.Repeat("x", 256)}); err != nil {
		t.Errorf("got %v within the limits", err)
	}
}

func TestLimitsCap(t *testing.T) {
	o := beamsearch.Defaults()
	o.MaxNewTokens = 511
	if got := (Limits{MaxNewTokens: 100}).Cap(o, 0).MaxNewTokens; got != 100 {
		t.Errorf("capped to the limit: %d", got)
	}
	if got := (Limits{}).Cap(o, 256).MaxNewTokens; got != 256 {
		t.Errorf("capped to the positions: %d", got)
	}
	if got := (Limits{}).Cap(o, 0).MaxNewTokens; got != 511 {
		t.Errorf("within both: %d", got)
	}
}
