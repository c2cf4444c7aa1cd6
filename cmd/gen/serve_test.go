package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run this binary as gen itself (GEN_TEST_AS_MAIN=1),
// so gen serve is tested as a process: signals and exit status.
func TestMain(m *testing.M) {
	if os.Getenv("GEN_TEST_AS_MAIN") == "1" {
		os.Args = append([]string{"gen"}, strings.Fields(os.Getenv("GEN_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestServeHelp(t *testing.T) {
	_, help, err := gen(t, "", "serve", "-h")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("gen serve -h gave %v", err)
	}
	for _, name := range []string{"addr", "model", "max-new-tokens", "max-body-bytes", "max-concurrent-requests", "max-queue",
		"max-batch-rows", "batch-window", "batching", "drain-timeout", "max-input-tokens", "limit-max-new-tokens",
		"max-beams", "max-return-sequences", "log-format", "read-header-timeout", "idle-timeout"} {
		if !strings.Contains(help, "-"+name+" ") && !strings.Contains(help, "-"+name+"\n") {
			t.Errorf("gen serve -h does not document -%s", name)
		}
	}
	if _, _, err := gen(t, "", "serve", "-addr", "127.0.0.1:0"); !errors.Is(err, errUsage) {
		t.Errorf("gen serve without a model: %v, want a usage error", err)
	}
	if _, _, err := gen(t, "", "serve", "-model", model, "-log-format", "xml"); err == nil {
		t.Error("gen serve -log-format xml: no error")
	}
	_, help, _ = gen(t, "", "-h")
	if !strings.Contains(help, "gen serve") {
		t.Error("gen -h does not list the serve command")
	}
}

// TestServeSIGTERM runs gen serve as a process, starts a long stream, sends
// SIGTERM: the stream still finishes, new requests meet 503 or a closed
// port, and gen exits 0, its log a JSON line per request.
func TestServeSIGTERM(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GEN_TEST_AS_MAIN=1",
		"GEN_TEST_ARGS=serve -model "+model+" -addr 127.0.0.1:0 -log-format json -drain-timeout 30s -intra-op-threads 1")
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on ") {
		t.Fatalf("gen serve printed %q (%v); stderr:\n%s", line, err, stderr.String())
	}
	url := "http://" + strings.TrimSpace(strings.TrimPrefix(line, "listening on "))

	body, _ := json.Marshal(map[string]any{"inputs": "finish me", "parameters": map[string]any{"max_new_tokens": 1000, "min_new_tokens": 1000}})
	resp, err := http.Post(url+"/generate_stream", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil { // the first event is out: the request is in flight
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if resp2, err := http.Get(url + "/v2/health/ready"); err == nil {
		if resp2.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("readiness after SIGTERM: %d, want 503", resp2.StatusCode)
		}
		resp2.Body.Close()
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("the stream in flight broke at SIGTERM: %v", err)
	}
	if !strings.Contains(string(rest), `"generated_text":"`) {
		t.Errorf("the stream in flight did not finish: %.300s", rest)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("gen serve after SIGTERM: %v (want exit status 0); stderr:\n%s", err, stderr.String())
	}
	var sawRequest, sawStopped, draining bool
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("a log line is not JSON: %q", l)
			continue
		}
		draining = draining || m["msg"] == "draining"
		if m["msg"] == "request" && m["route"] == "POST /generate_stream" && m["outcome"] == "ok" {
			if !draining {
				t.Error("the stream finished before the drain began; the test needs it in flight at SIGTERM")
			}
			sawRequest = true
		}
		sawStopped = sawStopped || m["msg"] == "stopped"
	}
	if !sawRequest || !sawStopped {
		t.Errorf("the log lacks the request's line or the stop:\n%s", stderr.String())
	}
}
