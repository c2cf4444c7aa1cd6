package config

import (
	"flag"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// Serve is the configuration of gen serve: the model, its runtime and
// generation defaults (Config), and the server's own keys. Every key
// comes, highest first, from a flag (-max-queue), the environment
// (S2S_MAX_QUEUE) or the YAML file (max_queue: 256), else its default.
type Serve struct {
	Config

	Addr      string
	ModelName string
	LogFormat string // text or json
	LogLevel  string // debug, info, warn or error

	MaxBodyBytes   int64
	MaxHeaderBytes int

	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	RequestTimeout, DrainTimeout                              time.Duration

	Batching              bool
	Scheduler             string
	JoinWaitSteps         int
	JoinRatio             float64
	BatchWindow           time.Duration
	MaxBatchRows          int
	MaxBatches            int
	MaxConcurrentRequests int
	MaxQueue              int

	// The limits of each request are Config.Limits, from the keys gen
	// shares (max_inputs, limit_max_new_tokens, ...).
	MaxStopSequences int
	MaxStopBytes     int

	Playground bool
}

// kDuration is a key whose value is a Go duration (5ms, 30s, 2m).
const kDuration kind = 100

// serveKey is one of gen serve's own keys and its default.
type serveKey struct {
	name  string
	kind  kind
	def   string
	usage string
	set   func(s *Serve, v value) error
}

func (v value) duration() (time.Duration, error) {
	if d, ok := v.raw.(time.Duration); ok {
		return d, nil
	}
	d, err := time.ParseDuration(v.str())
	if err != nil || d < 0 {
		return 0, fmt.Errorf("config: %s is %q; give a duration such as 5ms, 30s or 2m", v.name, v.str())
	}
	return d, nil
}

func sInt(f func(s *Serve, n int)) func(*Serve, value) error {
	return func(s *Serve, v value) error {
		n, err := v.int()
		if err == nil && n < 0 {
			err = fmt.Errorf("config: %s is %d; it cannot be negative", v.name, n)
		}
		if err == nil {
			f(s, n)
		}
		return err
	}
}

func sDur(f func(s *Serve, d time.Duration)) func(*Serve, value) error {
	return func(s *Serve, v value) error {
		d, err := v.duration()
		if err == nil {
			f(s, d)
		}
		return err
	}
}

func sFloat(f func(s *Serve, x float64)) func(*Serve, value) error {
	return func(s *Serve, v value) error {
		x, err := v.float()
		if err == nil && (!(x >= 0) || math.IsInf(x, 1)) {
			err = fmt.Errorf("config: %s is %v; give a finite number, 0 or more", v.name, x)
		}
		if err == nil {
			f(s, x)
		}
		return err
	}
}

func sBool(f func(s *Serve, b bool)) func(*Serve, value) error {
	return func(s *Serve, v value) error {
		b, err := v.bool()
		if err == nil {
			f(s, b)
		}
		return err
	}
}

func sString(f func(s *Serve, x string)) func(*Serve, value) error {
	return func(s *Serve, v value) error {
		f(s, v.str())
		return nil
	}
}

// serveKeys lists gen serve's keys in the order -h shows them.
var serveKeys = []serveKey{
	{"addr", kString, ":8080", "address to listen on, host:port", sString(func(s *Serve, x string) { s.Addr = x })},
	{"model_name", kString, "", "name the model is served under (OpenAI model, v2 {name}); default: the model directory's name", sString(func(s *Serve, x string) { s.ModelName = x })},
	{"log_format", kString, "text", "request log format: text or json", sString(func(s *Serve, x string) { s.LogFormat = strings.ToLower(x) })},
	{"log_level", kString, "info", "log level: debug, info, warn or error", sString(func(s *Serve, x string) { s.LogLevel = strings.ToLower(x) })},

	{"max_body_bytes", kInt, "1048576", "largest request body in bytes", sInt(func(s *Serve, n int) { s.MaxBodyBytes = int64(n) })},
	{"max_header_bytes", kInt, "65536", "largest request header in bytes", sInt(func(s *Serve, n int) { s.MaxHeaderBytes = n })},
	{"read_header_timeout", kDuration, "10s", "time to read a request's header", sDur(func(s *Serve, d time.Duration) { s.ReadHeaderTimeout = d })},
	{"read_timeout", kDuration, "60s", "time to read a whole request", sDur(func(s *Serve, d time.Duration) { s.ReadTimeout = d })},
	{"write_timeout", kDuration, "60s", "time for each write of an answer (a whole answer, or one stream event)", sDur(func(s *Serve, d time.Duration) { s.WriteTimeout = d })},
	{"idle_timeout", kDuration, "120s", "how long an idle keep-alive connection stays open", sDur(func(s *Serve, d time.Duration) { s.IdleTimeout = d })},
	{"request_timeout", kDuration, "5m", "longest generation of one request (0: only the limits bound it)", sDur(func(s *Serve, d time.Duration) { s.RequestTimeout = d })},
	{"drain_timeout", kDuration, "30s", "on SIGTERM, how long requests in flight may finish before they are stopped", sDur(func(s *Serve, d time.Duration) { s.DrainTimeout = d })},

	{"batching", kBool, "true", "decode requests with equal options together (dynamic batching)", sBool(func(s *Serve, b bool) { s.Batching = b })},
	{"scheduler", kString, "auto", "how requests share the decoder: continuous (join the running batch at the next step; models in the inplace layout), window (requests within batch_window share one batch) or auto (continuous where the model allows it)", sString(func(s *Serve, x string) { s.Scheduler = strings.ToLower(x) })},
	{"join_wait_steps", kInt, "8", "continuous scheduler: how many steps a request that arrives while the batch runs may wait, so that arrivals join together (0: join at the next step)", sInt(func(s *Serve, n int) { s.JoinWaitSteps = n })},
	{"join_ratio", kFloat, "0.3", "continuous scheduler: waiting requests join before join_wait_steps once they number this many times the requests running (0: only join_wait_steps)", sFloat(func(s *Serve, x float64) { s.JoinRatio = x })},
	{"batch_window", kDuration, "5ms", "how long the first request of a batch waits for others", sDur(func(s *Serve, d time.Duration) { s.BatchWindow = d })},
	{"max_batch_rows", kInt, "64", "most decoder rows (inputs x beams) of a shared batch", sInt(func(s *Serve, n int) { s.MaxBatchRows = n })},
	{"max_batches", kInt, "2", "most batches decoded at once", sInt(func(s *Serve, n int) { s.MaxBatches = n })},
	{"max_concurrent_requests", kInt, "64", "most requests decoded at once (over all batches); more wait in the queue", sInt(func(s *Serve, n int) { s.MaxConcurrentRequests = n })},
	{"max_queue", kInt, "256", "most requests waiting; past it a request gets 503 with Retry-After at once", sInt(func(s *Serve, n int) { s.MaxQueue = n })},

	{"max_stop_sequences", kInt, "4", "most stop strings of one request", sInt(func(s *Serve, n int) { s.MaxStopSequences = n })},
	{"max_stop_bytes", kInt, "256", "longest stop string in bytes", sInt(func(s *Serve, n int) { s.MaxStopBytes = n })},
	{"playground", kBool, "true", "serve the playground page at GET /", sBool(func(s *Serve, b bool) { s.Playground = b })},
}

// isServeKey reports whether name is one of gen serve's keys (a config
// file may hold them beside gen's).
func isServeKey(name string) bool {
	for _, k := range serveKeys {
		if k.name == name {
			return true
		}
	}
	return false
}

// RegisterServeFlags adds gen's flags and gen serve's own to fs.
func RegisterServeFlags(fs *flag.FlagSet) {
	RegisterFlags(fs)
	for _, k := range serveKeys {
		usage := fmt.Sprintf("%s [env %s]", k.usage, EnvName(k.name))
		if k.def != "" {
			usage = fmt.Sprintf("%s (default %s) [env %s]", k.usage, k.def, EnvName(k.name))
		}
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

// LoadServe resolves gen serve's configuration from fs (made by
// RegisterServeFlags and parsed), the environment and the config file.
func LoadServe(fs *flag.FlagSet) (*Serve, error) {
	cfg, err := Load(fs)
	if err != nil {
		return nil, err
	}
	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	for _, k := range serveKeys {
		v.SetDefault(k.name, k.def)
	}
	fs.Visit(func(f *flag.Flag) { v.Set(strings.ReplaceAll(f.Name, "-", "_"), f.Value.String()) })
	if file := v.GetString(configKey); file != "" {
		v.SetConfigFile(file)
		if strings.HasSuffix(file, ".yml") || strings.HasSuffix(file, ".yaml") || !strings.Contains(file, ".") {
			v.SetConfigType("yaml")
		}
		if err := v.ReadInConfig(); err != nil { // Load has read it once already
			return nil, fmt.Errorf("config: reading %s: %v; fix the file or drop -config", file, err)
		}
	}
	s := &Serve{Config: *cfg}
	for _, k := range serveKeys {
		if err := k.set(s, value{k.name, v.Get(k.name)}); err != nil {
			return nil, err
		}
	}
	switch s.LogFormat {
	case "text", "json":
	default:
		return nil, fmt.Errorf("config: log_format is %q; use text or json", s.LogFormat)
	}
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("config: log_level is %q; use debug, info, warn or error", s.LogLevel)
	}
	return s, nil
}
