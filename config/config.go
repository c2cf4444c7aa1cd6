// Package config turns a YAML file, S2S_* environment variables and
// command-line flags into the plain option structs of the s2s packages. It is
// the only importer of viper.
//
// Precedence, highest first: flags, environment, the config file, the
// model's generation_config.json, the defaults of Hugging Face generate().
// Keys are Hugging Face's generate() parameter names (max_new_tokens,
// num_beams, ...); a flag spells a key with dashes (-max-new-tokens), an
// environment variable upper-cases it behind S2S_ (S2S_MAX_NEW_TOKENS), and
// the YAML file uses the key itself.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/viper"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/beamsearch"
	"github.com/s2s-dev/s2s/models"
	"github.com/s2s-dev/s2s/runtime"
)

// EnvPrefix prefixes every environment variable config reads.
const EnvPrefix = "S2S"

// Config is everything a run of gen (or a service) needs.
type Config struct {
	// Model is the model directory.
	Model string
	// Runtime holds the load-time ONNX Runtime options.
	Runtime runtime.Options
	// Limits bound each request (zero fields: s2s.DefaultLimits).
	Limits s2s.Limits
	// Generation holds the per-request generation options, already merged
	// over the model's generation_config.json.
	Generation beamsearch.Options
	// JSON writes JSON lines instead of plain text.
	JSON bool
	// Stream prints text as it is generated.
	Stream bool
	// BatchSize is how many stdin lines are generated together.
	BatchSize int
}

// kind is how a key's value is parsed.
type kind int

const (
	kString kind = iota
	kInt
	kFloat
	kBool
	kIDs    // list of token ids: "1,2" or [1, 2]
	kIDSeqs // list of id lists: "[[1,2],[3]]"
)

// key is one configuration key: its name, type, help text and where it goes.
type key struct {
	name  string
	kind  kind
	usage string
	set   func(c *Config, v value) error
}

// value is a resolved key value with typed accessors.
type value struct {
	name string
	raw  any
}

func (v value) str() string { return strings.TrimSpace(fmt.Sprint(v.raw)) }

// int64 returns the value as a whole number. Every source is range
// checked: a number that does not fit in an int64 (from a flag, the
// environment, YAML or JSON) is an error, never a wrapped-around value.
func (v value) int64() (int64, error) {
	outOfRange := func() (int64, error) {
		return 0, fmt.Errorf("config: %s is %s; it is out of range (at most %d)", v.name, v.str(), int64(math.MaxInt64))
	}
	switch x := v.raw.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return outOfRange()
		}
		return int64(x), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return outOfRange()
		}
		return int64(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || x != math.Trunc(x) {
			return 0, fmt.Errorf("config: %s is %v; give a whole number", v.name, x)
		}
		// float64(MaxInt64) rounds up to 2^63, which does not fit.
		if x < math.MinInt64 || x >= math.MaxInt64 {
			return outOfRange()
		}
		return int64(x), nil
	}
	n, err := strconv.ParseInt(v.str(), 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return outOfRange()
	}
	if err != nil {
		return 0, fmt.Errorf("config: %s is %q; give a whole number", v.name, v.str())
	}
	return n, nil
}

// int returns the value as an int; on 32-bit hosts a value past int32 is
// out of range.
func (v value) int() (int, error) {
	n, err := v.int64()
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt || n < math.MinInt {
		return 0, fmt.Errorf("config: %s is %d; it is out of range (at most %d)", v.name, n, math.MaxInt)
	}
	return int(n), nil
}

// uint64 returns the value as an unsigned whole number (seeds).
func (v value) uint64() (uint64, error) {
	switch x := v.raw.(type) {
	case uint64:
		return x, nil
	case uint:
		return uint64(x), nil
	case string:
		n, err := strconv.ParseUint(strings.TrimSpace(x), 10, 64)
		if err == nil {
			return n, nil
		}
	}
	n, err := v.int64()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("config: %s is %d; give a whole number 0 or above", v.name, n)
	}
	return uint64(n), nil
}

// float returns the value as a number. NaN and the infinities parse (the
// options' Validate says which option takes none of them); a number past
// float64's range is an error.
func (v value) float() (float64, error) {
	switch x := v.raw.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	}
	f, err := strconv.ParseFloat(v.str(), 64)
	if errors.Is(err, strconv.ErrRange) && !math.IsInf(f, 0) {
		return f, nil // underflow to 0 or a subnormal: the nearest value
	}
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("config: %s is %q; it is past the range of a float64", v.name, v.str())
		}
		return 0, fmt.Errorf("config: %s is %q; give a number", v.name, v.str())
	}
	return f, nil
}

func (v value) bool() (bool, error) {
	if b, ok := v.raw.(bool); ok {
		return b, nil
	}
	b, err := strconv.ParseBool(v.str())
	if err != nil {
		return false, fmt.Errorf("config: %s is %q; give true or false", v.name, v.str())
	}
	return b, nil
}

// ids parses a list of token ids from "1,2", "[1,2]", a single number or a
// YAML list.
func (v value) ids() ([]int64, error) {
	bad := fmt.Errorf("config: %s is %q; give token ids as 1,2,3", v.name, v.str())
	switch x := v.raw.(type) {
	case []any:
		out := make([]int64, 0, len(x))
		for _, e := range x {
			n, err := value{v.name, e}.int64()
			if err != nil {
				return nil, bad
			}
			out = append(out, n)
		}
		return out, nil
	case int, int64, float64:
		n, err := v.int64()
		return []int64{n}, err
	}
	s := strings.Trim(v.str(), "[] ")
	if s == "" {
		return []int64{}, nil
	}
	var out []int64
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil {
			return nil, bad
		}
		out = append(out, n)
	}
	return out, nil
}

// idSeqs parses a list of id lists from JSON text or a YAML list of lists.
func (v value) idSeqs() ([][]int64, error) {
	bad := fmt.Errorf("config: %s is %q; give a JSON list of id lists such as [[5],[7,8]]", v.name, v.str())
	if x, ok := v.raw.([]any); ok {
		out := make([][]int64, 0, len(x))
		for _, e := range x {
			seq, err := value{v.name, e}.ids()
			if err != nil {
				return nil, bad
			}
			out = append(out, seq)
		}
		return out, nil
	}
	var out [][]int64
	if err := json.Unmarshal([]byte(v.str()), &out); err != nil {
		return nil, bad
	}
	return out, nil
}

// setInt, setFloat, ... adapt a typed setter to a key's set function.
func setInt(f func(c *Config, n int)) func(*Config, value) error {
	return func(c *Config, v value) error {
		n, err := v.int()
		if err == nil {
			f(c, n)
		}
		return err
	}
}

func setID(f func(c *Config, n int64)) func(*Config, value) error {
	return func(c *Config, v value) error {
		n, err := v.int64()
		if err == nil {
			f(c, n)
		}
		return err
	}
}

func setFloat(f func(c *Config, x float64)) func(*Config, value) error {
	return func(c *Config, v value) error {
		x, err := v.float()
		if err == nil {
			f(c, x)
		}
		return err
	}
}

func setBool(f func(c *Config, b bool)) func(*Config, value) error {
	return func(c *Config, v value) error {
		b, err := v.bool()
		if err == nil {
			f(c, b)
		}
		return err
	}
}

func setString(f func(c *Config, s string)) func(*Config, value) error {
	return func(c *Config, v value) error {
		f(c, v.str())
		return nil
	}
}

// setORTConfig parses key=value[,key=value...] into the runtime's session
// config entries.
func setORTConfig(c *Config, v value) error {
	s := strings.TrimSpace(v.str())
	if s == "" {
		return nil
	}
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, val, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("%q is not key=value; write ONNX Runtime session config entries as key=value[,key=value...]", kv)
		}
		m[k] = strings.TrimSpace(val)
	}
	c.Runtime.SessionConfig = m
	return nil
}

// modelKey and configKey are resolved before everything else.
const (
	modelKey  = "model"
	configKey = "config"
)

// keys lists every key but model and config, in the order -h shows them.
var keys = []key{
	{"json", kBool, "write JSON lines: input, output text, token ids, score (and every returned sequence)", setBool(func(c *Config, b bool) { c.JSON = b })},
	{"stream", kBool, "print text as it is generated (greedy and sampling: each token; beam search: the prefix all beams agree on)", setBool(func(c *Config, b bool) { c.Stream = b })},
	{"batch_size", kInt, "generate this many stdin lines together (default 1)", setInt(func(c *Config, n int) { c.BatchSize = n })},

	{"ort_lib", kString, "path of libonnxruntime.so.1, or its directory (default: $ONNXRUNTIME_LIB, then .ort/lib next to gen or in its checkout, then gen ort install's cache, then the system paths; never the working directory unless named here)", setString(func(c *Config, s string) { c.Runtime.LibraryPath = s })},
	{"provider", kString, "execution provider: cpu or cuda (default cpu)", setString(func(c *Config, s string) { c.Runtime.Provider = s })},
	{"device_id", kInt, "CUDA device id (default 0)", setInt(func(c *Config, n int) { c.Runtime.DeviceID = n })},
	{"intra_op_threads", kInt, "ONNX Runtime intra-op threads (default: ONNX Runtime's choice)", setInt(func(c *Config, n int) { c.Runtime.IntraOpThreads = n })},
	{"inter_op_threads", kInt, "ONNX Runtime inter-op threads (default: ONNX Runtime's choice)", setInt(func(c *Config, n int) { c.Runtime.InterOpThreads = n })},
	{"graph_optimization", kString, "graph optimization level: disable, basic, extended or all (default all)", setString(func(c *Config, s string) { c.Runtime.GraphOptimization = s })},
	{"decoder_graphs", kString, "decoder graphs to run: auto, split or merged (default auto: on the CPU merged when present, on CUDA split when present)", setString(func(c *Config, s string) { c.Runtime.DecoderGraphs = s })},
	{"disable_mem_arena", kBool, "turn ONNX Runtime's CPU memory arena off (less memory held between requests of different sizes)", setBool(func(c *Config, b bool) { c.Runtime.DisableMemArena = b })},
	{"ort_config", kString, "ONNX Runtime session config entries, key=value[,key=value...], e.g. session.intra_op.allow_spinning=0", setORTConfig},

	// Limits of each request (s2s.Limits): a request over one fails at once.
	{"max_inputs", kInt, "limit: most inputs of one request or batch (default 256)", setInt(func(c *Config, n int) { c.Limits.MaxInputs = n })},
	{"max_input_bytes", kInt, "limit: most bytes of one input text (default 64 per max_input_tokens)", setInt(func(c *Config, n int) { c.Limits.MaxInputBytes = n })},
	{"max_input_tokens", kInt, "limit: most tokens of one input; the model's max_position_embeddings applies too (default 1024)", setInt(func(c *Config, n int) { c.Limits.MaxInputTokens = n })},
	{"limit_max_new_tokens", kInt, "limit: most max_new_tokens a request may ask; the model's max_position_embeddings applies too (default 1024)", setInt(func(c *Config, n int) { c.Limits.MaxNewTokens = n })},
	{"max_beams", kInt, "limit: most num_beams (default 32)", setInt(func(c *Config, n int) { c.Limits.MaxBeams = n })},
	{"max_return_sequences", kInt, "limit: most num_return_sequences (default 32)", setInt(func(c *Config, n int) { c.Limits.MaxReturnSequences = n })},
	{"max_rows", kInt, "limit: most decoder rows of one request, inputs x beams (or x sequences when sampling) (default 1024)", setInt(func(c *Config, n int) { c.Limits.MaxRows = n })},

	// Generation options from here on (firstGenerationKey).
	{"max_new_tokens", kInt, "most tokens to generate, EOS included (default: generation_config.json, else 20)", setInt(func(c *Config, n int) { c.Generation.MaxNewTokens = n })},
	{"min_new_tokens", kInt, "fewest tokens to generate before EOS may end a sequence (default 0)", setInt(func(c *Config, n int) { c.Generation.MinNewTokens = n })},
	{"num_beams", kInt, "beams of beam search; 1 is greedy search (default 1)", setInt(func(c *Config, n int) { c.Generation.NumBeams = n })},
	{"num_return_sequences", kInt, "sequences returned per input (default 1)", setInt(func(c *Config, n int) { c.Generation.NumReturnSequences = n })},
	{"length_penalty", kFloat, "exponent of the length in beam scores (default 1.0)", setFloat(func(c *Config, x float64) { c.Generation.LengthPenalty = x })},
	{"early_stopping", kString, "beam search stopping rule: true, false or never (default false)", setString(func(c *Config, s string) { c.Generation.EarlyStopping = strings.ToLower(s) })},
	{"do_sample", kBool, "sample instead of searching (default false)", setBool(func(c *Config, b bool) { c.Generation.DoSample = b })},
	{"temperature", kFloat, "sampling temperature (default 1.0)", setFloat(func(c *Config, x float64) { c.Generation.Temperature = x })},
	{"top_k", kInt, "sample from the k most likely tokens; 0 disables (default 50)", setInt(func(c *Config, n int) { c.Generation.TopK = n })},
	{"top_p", kFloat, "sample from the smallest set of tokens with this much probability (default 1.0)", setFloat(func(c *Config, x float64) { c.Generation.TopP = x })},
	{"seed", kInt, "random seed of sampling, per request, 0 to 2^64-1 (default 0)", func(c *Config, v value) error {
		n, err := v.uint64()
		c.Generation.Seed = n
		return err
	}},
	{"repetition_penalty", kFloat, "penalty of tokens already generated; 1.0 disables (default 1.0)", setFloat(func(c *Config, x float64) { c.Generation.RepetitionPenalty = x })},
	{"no_repeat_ngram_size", kInt, "never repeat an n-gram of this size; 0 disables (default 0)", setInt(func(c *Config, n int) { c.Generation.NoRepeatNgramSize = n })},
	{"bad_words_ids", kIDSeqs, "token sequences never to generate, as JSON: [[5],[7,8]]", func(c *Config, v value) error {
		s, err := v.idSeqs()
		c.Generation.BadWordsIDs = s
		return err
	}},
	{"suppress_tokens", kIDs, "token ids never to generate: 5,7", func(c *Config, v value) error {
		s, err := v.ids()
		c.Generation.SuppressTokens = s
		return err
	}},
	{"forced_bos_token_id", kInt, "token forced first; -1 disables (default: the model's)", setID(func(c *Config, n int64) { c.Generation.ForcedBOSTokenID = n })},
	{"forced_eos_token_id", kInt, "token forced when max_new_tokens is reached; -1 disables (default: the model's)", setID(func(c *Config, n int64) { c.Generation.ForcedEOSTokenID = n })},
	{"eos_token_id", kIDs, "token ids that end a sequence: 1 or 1,5 (default: the model's)", func(c *Config, v value) error {
		s, err := v.ids()
		c.Generation.EOSTokenIDs = s
		return err
	}},
	{"pad_token_id", kInt, "padding token id (default: the model's)", setID(func(c *Config, n int64) { c.Generation.PadTokenID = n })},
	{"decoder_start_token_id", kInt, "first decoder input token (default: the model's)", setID(func(c *Config, n int64) { c.Generation.DecoderStartTokenID = n })},
}

// firstGenerationKey is the index in keys of the first generation option.
var firstGenerationKey = func() int {
	for i, k := range keys {
		if k.name == "max_new_tokens" {
			return i
		}
	}
	panic("config: max_new_tokens missing from keys")
}()

// flagName spells a key as a flag: max_new_tokens -> max-new-tokens.
func flagName(k string) string { return strings.ReplaceAll(k, "_", "-") }

// EnvName spells a key as an environment variable: S2S_MAX_NEW_TOKENS.
func EnvName(k string) string { return EnvPrefix + "_" + strings.ToUpper(k) }

// RegisterFlags adds a flag for every key to fs. Only flags given on the
// command line override the other sources; their zero defaults mean
// nothing.
func RegisterFlags(fs *flag.FlagSet) {
	// No back quotes in usage texts: flag.PrintDefaults takes a back-quoted
	// word for the flag's argument name.
	fs.String(flagName(modelKey), "", "model directory, as the s2s exporter (python -m s2s_export) or optimum-cli writes it, or a packed .onnx file (python -m s2s_export pack) [env S2S_MODEL]")
	fs.String(flagName(configKey), "", "YAML config file whose keys are these flags' names with underscores [env S2S_CONFIG]")
	for _, k := range keys {
		usage := fmt.Sprintf("%s [env %s]", k.usage, EnvName(k.name))
		switch k.kind {
		case kInt:
			fs.Int(flagName(k.name), 0, usage)
		case kFloat:
			fs.Float64(flagName(k.name), 0, usage)
		case kBool:
			fs.Bool(flagName(k.name), false, usage)
		default:
			fs.String(flagName(k.name), "", usage)
		}
	}
}

// ErrNoModel is returned when no model directory is configured; check with
// errors.Is.
var ErrNoModel = errors.New("config: no model directory; pass -model DIR or set S2S_MODEL")

// Load resolves the configuration from fs (already parsed), the environment
// and the config file, over the model's generation_config.json.
func Load(fs *flag.FlagSet) (*Config, error) {
	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	var flagErr error
	fs.Visit(func(f *flag.Flag) {
		name := strings.ReplaceAll(f.Name, "-", "_")
		if !known(name) {
			flagErr = fmt.Errorf("config: flag -%s has no config key", f.Name)
		}
		v.Set(name, f.Value.String())
	})
	if flagErr != nil {
		return nil, flagErr
	}
	if file := v.GetString(configKey); file != "" {
		v.SetConfigFile(file)
		if strings.HasSuffix(file, ".yml") || strings.HasSuffix(file, ".yaml") || !strings.Contains(file, ".") {
			v.SetConfigType("yaml")
		}
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config: reading %s: %v; fix the file or drop -config", file, err)
		}
		for _, k := range v.AllKeys() {
			if !known(k) {
				return nil, fmt.Errorf("config: %s has unknown key %q; see gen -h for the keys", file, k)
			}
		}
	}
	c := &Config{Model: v.GetString(modelKey), BatchSize: 1}
	if c.Model == "" {
		return nil, ErrNoModel
	}
	m, err := models.Load(c.Model)
	if err != nil {
		return nil, err
	}
	gc, err := models.LoadGenerationConfig(c.Model)
	if err != nil {
		return nil, err
	}
	base := m.Options(gc)
	for i, k := range keys {
		if i == firstGenerationKey {
			// The limits are set (their keys come first): the model's
			// default max_new_tokens is capped to them, as s2s.Open does.
			if err := c.Limits.Validate(); err != nil {
				return nil, err
			}
			c.Generation = c.Limits.Cap(base, m.MaxPositions)
			// The model's defaults must work on their own, as s2s.Open
			// requires.
			if err := checkDefaults(c.Generation, c.Limits, m); err != nil {
				return nil, err
			}
		}
		if !v.IsSet(k.name) {
			continue
		}
		if err := k.set(c, value{k.name, v.Get(k.name)}); err != nil {
			return nil, err
		}
	}
	c.Runtime = c.Runtime.WithDefaults()
	if err := c.Runtime.Validate(); err != nil {
		return nil, err
	}
	if maxInputs := c.Limits.WithDefaults().MaxInputs; c.BatchSize < 1 || c.BatchSize > maxInputs {
		return nil, fmt.Errorf("config: batch_size is %d; set it between 1 and max_inputs (%d)", c.BatchSize, maxInputs)
	}
	// Limits first: their errors name the setting that raises them.
	if err := c.Limits.WithDefaults().CheckOptions(c.Generation, m.MaxPositions); err != nil {
		return nil, err
	}
	if err := c.Generation.Validate(m.VocabSize); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// checkDefaults reports model defaults no request could run with, naming
// generation_config.json.
func checkDefaults(o beamsearch.Options, l s2s.Limits, m *models.Manifest) error {
	err := l.WithDefaults().CheckOptions(o, m.MaxPositions)
	if err == nil {
		err = o.Validate(m.VocabSize)
	}
	if err != nil {
		return fmt.Errorf("config: the defaults of %s do not work: %w; fix the file or raise the limit", m.Path(models.GenerationConfigFile), err)
	}
	return nil
}

// known reports whether name is a configuration key.
func known(name string) bool {
	if name == modelKey || name == configKey || isServeKey(name) {
		return true
	}
	for _, k := range keys {
		if k.name == name {
			return true
		}
	}
	return false
}

// ApplyGenerateKwargs overlays generation options given by their Hugging
// Face generate() names (as a JSON request or a golden file holds them)
// onto base. Unknown names and keys that are not generation options are
// errors.
func ApplyGenerateKwargs(base beamsearch.Options, kwargs map[string]any) (beamsearch.Options, error) {
	c := Config{Generation: base}
	for name, raw := range kwargs {
		k, ok := generationKey(name)
		if !ok {
			return base, fmt.Errorf("config: %q is not a generation option; see gen -h for the names", name)
		}
		if err := k.set(&c, value{name, jsonNumbers(raw)}); err != nil {
			return base, err
		}
	}
	return c.Generation, nil
}

// generationKey finds a key that sets a generation option.
func generationKey(name string) (key, bool) {
	for i, k := range keys {
		if k.name == name {
			return k, i >= firstGenerationKey
		}
	}
	return key{}, false
}

// jsonNumbers turns encoding/json's float64 whole numbers into ints, inside
// lists too, so ids decoded from JSON parse as ids.
func jsonNumbers(v any) any {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) {
			return int(x)
		}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonNumbers(e)
		}
		return out
	case bool:
		// early_stopping may be a JSON boolean; the string form is the same.
		return x
	}
	return v
}
