package config

import (
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/s2s-dev/s2s/beamsearch"
	"github.com/s2s-dev/s2s/models"
)

var model = filepath.Join("..", "testdata", "bart-tiny")

func load(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs)
}

func TestModelGenerationConfigIsTheBase(t *testing.T) {
	c, err := load(t, "-model", model)
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	gc, err := models.LoadGenerationConfig(model)
	if err != nil {
		t.Fatal(err)
	}
	want := m.Options(gc)
	if c.Generation.MaxNewTokens != want.MaxNewTokens || c.Generation.ForcedEOSTokenID != want.ForcedEOSTokenID ||
		!slices.Equal(c.Generation.EOSTokenIDs, want.EOSTokenIDs) || c.Generation.DecoderStartTokenID != want.DecoderStartTokenID {
		t.Errorf("config %+v, want the model's %+v", c.Generation, want)
	}
	if c.Runtime.Provider != "cpu" {
		t.Errorf("provider %q, want the default cpu", c.Runtime.Provider)
	}
}

func TestPrecedenceFlagsEnvFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s2s.yaml")
	yaml := "model: " + model + "\nmax_new_tokens: 7\nnum_beams: 3\ntemperature: 0.5\neos_token_id: [2, 5]\nbad_words_ids: [[4], [6, 7]]\nintra_op_threads: 1\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("S2S_NUM_BEAMS", "4")
	t.Setenv("S2S_TEMPERATURE", "0.7")
	c, err := load(t, "-config", file, "-temperature", "0.9")
	if err != nil {
		t.Fatal(err)
	}
	g := c.Generation
	if g.MaxNewTokens != 7 {
		t.Errorf("max_new_tokens %d, want 7 from the file", g.MaxNewTokens)
	}
	if g.NumBeams != 4 {
		t.Errorf("num_beams %d, want 4 from the environment over the file's 3", g.NumBeams)
	}
	if g.Temperature != 0.9 {
		t.Errorf("temperature %v, want 0.9 from the flag over env and file", g.Temperature)
	}
	if !slices.Equal(g.EOSTokenIDs, []int64{2, 5}) {
		t.Errorf("eos_token_id %v, want [2 5]", g.EOSTokenIDs)
	}
	if len(g.BadWordsIDs) != 2 || !slices.Equal(g.BadWordsIDs[1], []int64{6, 7}) {
		t.Errorf("bad_words_ids %v", g.BadWordsIDs)
	}
	if c.Runtime.IntraOpThreads != 1 {
		t.Errorf("intra_op_threads %d, want 1", c.Runtime.IntraOpThreads)
	}
	if c.Model != model {
		t.Errorf("model %q from the file, want %q", c.Model, model)
	}
}

func TestListsFromFlags(t *testing.T) {
	c, err := load(t, "-model", model, "-eos-token-id", "2,9", "-suppress-tokens", "[5, 6]", "-bad-words-ids", "[[3]]")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Generation.EOSTokenIDs, []int64{2, 9}) || !slices.Equal(c.Generation.SuppressTokens, []int64{5, 6}) ||
		len(c.Generation.BadWordsIDs) != 1 || c.Generation.BadWordsIDs[0][0] != 3 {
		t.Errorf("%+v", c.Generation)
	}
}

func TestORTSessionFlags(t *testing.T) {
	c, err := load(t, "-model", model, "-disable-mem-arena", "-ort-config", "session.intra_op.allow_spinning=0, session.disable_prepacking = 1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"session.intra_op.allow_spinning": "0", "session.disable_prepacking": "1"}
	if !c.Runtime.DisableMemArena || !maps.Equal(c.Runtime.SessionConfig, want) {
		t.Errorf("arena off %v, session config %v; want true, %v", c.Runtime.DisableMemArena, c.Runtime.SessionConfig, want)
	}
}

func TestErrors(t *testing.T) {
	if _, err := load(t); !errors.Is(err, ErrNoModel) {
		t.Errorf("no model: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("max_new_token: 5\n"), 0o644)
	cases := map[string][]string{
		"unknown file key": {"-model", model, "-config", bad},
		"missing file":     {"-model", model, "-config", "/nonexistent.yaml"},
		"bad ids":          {"-model", model, "-eos-token-id", "two"},
		"invalid options":  {"-model", model, "-top-p", "1.5"},
		"bad provider":     {"-model", model, "-provider", "tpu"},
		"bad batch size":   {"-model", model, "-batch-size", "-1"},
		"bad ort config":   {"-model", model, "-ort-config", "session.intra_op.allow_spinning"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := load(t, args...); err == nil {
				t.Fatal("no error")
			} else {
				t.Log(err)
			}
		})
	}
}

func TestApplyGenerateKwargs(t *testing.T) {
	base := beamsearch.Defaults()
	o, err := ApplyGenerateKwargs(base, map[string]any{
		"max_new_tokens": 12.0, "early_stopping": true, "eos_token_id": []any{1.0, 4.0}, "length_penalty": 0.6,
		"bad_words_ids": []any{[]any{3.0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.MaxNewTokens != 12 || o.EarlyStopping != "true" || !slices.Equal(o.EOSTokenIDs, []int64{1, 4}) || o.LengthPenalty != 0.6 || o.BadWordsIDs[0][0] != 3 {
		t.Errorf("%+v", o)
	}
	if _, err := ApplyGenerateKwargs(base, map[string]any{"model": "x"}); err == nil {
		t.Error("model accepted as a generation option")
	}
	if _, err := ApplyGenerateKwargs(base, map[string]any{"max_length_x": 3}); err == nil {
		t.Error("unknown option accepted")
	}
}
