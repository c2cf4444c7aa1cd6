package config

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func loadServe(t *testing.T, args ...string) (*Serve, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	RegisterServeFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return LoadServe(fs)
}

// TestServeKeysDistinct: gen serve's keys never shadow gen's.
func TestServeKeysDistinct(t *testing.T) {
	for _, k := range serveKeys {
		for _, g := range keys {
			if k.name == g.name {
				t.Errorf("serve key %s is also a gen key", k.name)
			}
		}
	}
}

// TestServePrecedence: flags over the environment over the file over the
// defaults, for the server's keys, with gen's keys in the same file.
func TestServePrecedence(t *testing.T) {
	s, err := loadServe(t, "-model", model)
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != ":8080" || s.MaxQueue != 256 || s.BatchWindow != 5*time.Millisecond || !s.Batching || s.Scheduler != "auto" || s.JoinWaitSteps != 8 || s.JoinRatio != 0.3 || s.Limits.WithDefaults().MaxNewTokens != 1024 || s.LogFormat != "text" {
		t.Errorf("defaults: %+v", s)
	}
	file := filepath.Join(t.TempDir(), "serve.yaml")
	os.WriteFile(file, []byte("max_new_tokens: 7\nmax_queue: 10\nbatch_window: 20ms\nbatching: false\nlimit_max_new_tokens: 64\nmax_batch_rows: 3\nscheduler: Window\njoin_ratio: 0.5\n"), 0o644)
	t.Setenv("S2S_MAX_QUEUE", "11")
	t.Setenv("S2S_MAX_BATCH_ROWS", "4")
	s, err = loadServe(t, "-model", model, "-config", file, "-max-batch-rows", "5", "-join-wait-steps", "0")
	if err != nil {
		t.Fatal(err)
	}
	if s.JoinRatio != 0.5 || s.JoinWaitSteps != 0 {
		t.Errorf("file and flag: join_ratio %v join_wait_steps %d", s.JoinRatio, s.JoinWaitSteps)
	}
	if s.Generation.MaxNewTokens != 7 || s.MaxQueue != 11 || s.BatchWindow != 20*time.Millisecond || s.Batching || s.Limits.MaxNewTokens != 64 || s.MaxBatchRows != 5 || s.Scheduler != "window" {
		t.Errorf("file, env and flag: max_new_tokens %d max_queue %d batch_window %v batching %v limit %d rows %d",
			s.Generation.MaxNewTokens, s.MaxQueue, s.BatchWindow, s.Batching, s.Limits.MaxNewTokens, s.MaxBatchRows)
	}
	for name, args := range map[string][]string{
		"bad duration": {"-batch-window", "soon"},
		"negative":     {"-max-queue", "-1"},
		"bad format":   {"-log-format", "xml"},
		"bad ratio":    {"-join-ratio", "-0.5"},
		"nan ratio":    {"-join-ratio", "NaN"},
	} {
		if _, err := loadServe(t, append([]string{"-model", model}, args...)...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
