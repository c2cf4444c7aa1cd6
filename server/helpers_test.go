package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/runtime"
	"github.com/s2s-dev/s2s/server"
)

var (
	t5Tiny = filepath.Join("..", "testdata", "t5-tiny")
	g2pEn  = filepath.Join("..", "models", "g2p-en")
)

// openGen opens a Generator whose limits leave room for merged batches.
func openGen(t *testing.T, dir string) *s2s.Generator {
	t.Helper()
	g, err := s2s.Open(dir, s2s.Options{Runtime: runtime.Options{IntraOpThreads: 1}, Limits: s2s.Limits{MaxInputs: 1024}})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return g
}

// testServer is a real server on a loopback port.
type testServer struct {
	*server.Server
	g      *s2s.Generator
	url    string
	served chan error
	logs   *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start serves g on 127.0.0.1:0 with cfg (edit's changes applied to the
// defaults) and drains it at the test's end.
func start(t *testing.T, g *s2s.Generator, edit func(*server.Config)) *testServer {
	t.Helper()
	cfg := server.DefaultConfig()
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if edit != nil {
		edit(&cfg)
	}
	s, err := server.New(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, g: g, url: "http://" + l.Addr().String(), served: make(chan error, 1), logs: logs}
	go func() { ts.served <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		if err := <-ts.served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return ts
}

// post sends body as JSON and returns the status, headers and body.
func (ts *testServer) post(t *testing.T, path string, body any) (int, http.Header, []byte) {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case string:
		data = []byte(b)
	case []byte:
		data = b
	default:
		var err error
		if data, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(ts.url+path, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading the answer: %v", path, err)
	}
	return resp.StatusCode, resp.Header, out
}

func (ts *testServer) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(ts.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// decode unmarshals data into a map, failing the test on bad JSON.
func decode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, data)
	}
	return m
}

// sseEvents parses a server-sent event stream into its data payloads, as
// a client does: events end at a blank line, data: lines join with \n.
func sseEvents(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	var data []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != nil {
				out = append(out, strings.Join(data, "\n"))
				data = nil
			}
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "event:"), strings.HasPrefix(line, "id:"):
		default:
			t.Errorf("unexpected line in the event stream: %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the event stream: %v", err)
	}
	if data != nil {
		t.Errorf("the stream ended inside an event: %q", data)
	}
	return out
}

// stream posts body and returns the status, the content type and the
// stream's events.
func (ts *testServer) stream(t *testing.T, path string, body any) (int, string, []string) {
	t.Helper()
	data, _ := json.Marshal(body)
	resp, err := http.Post(ts.url+path, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), []string{string(b)}
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), sseEvents(t, resp.Body)
}

// direct generates inputs with g as a library user would, alone.
func direct(t *testing.T, g *s2s.Generator, opts s2s.GenerateOptions, inputs ...string) []s2s.Output {
	t.Helper()
	outs, err := g.Generate(context.Background(), inputs, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return outs
}
