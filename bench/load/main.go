// Command load is the load generator of gen serve's measurements and of
// the rolling-restart test: C clients in a closed loop send requests to
// one route for a duration (or a count), then it prints requests/s,
// latency percentiles and every failure. Loopback only.
//
//	go run ./bench/load -url http://127.0.0.1:8080 -c 8 -d 20s
//	go run ./bench/load -url ... -route openai -model g2p-en -inputs words.txt -json
//
// The exit status is 1 when any request failed (not 200, a broken body,
// a stream without its last event).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

type result struct {
	latency time.Duration
	err     string // "" for success
}

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "server base URL (loopback only)")
	route := flag.String("route", "tgi", "tgi (/generate), tgi-stream (/generate_stream), openai (/v1/completions) or v2 (/v2/models/NAME/infer)")
	model := flag.String("model", "", "model name for openai and v2 (default: asked from /v1/models)")
	clients := flag.Int("c", 8, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "how long to send (ends early after -n requests)")
	total := flag.Int("n", 0, "stop after this many requests (0: only -d)")
	warmup := flag.Duration("warmup", 0, "send for this long first, not counted")
	inputsFile := flag.String("inputs", "", "file of inputs, one per line (default: a fixed list of words)")
	maxNew := flag.Int("max-new-tokens", 32, "max_new_tokens of each request")
	extra := flag.String("params", "", `extra generation parameters as JSON, e.g. {"num_beams": 4}`)
	timeout := flag.Duration("timeout", 60*time.Second, "per-request timeout")
	asJSON := flag.Bool("json", false, "print the summary as one JSON object")
	flag.Parse()

	u, err := url.Parse(*base)
	if err != nil || !loopback(u.Hostname()) {
		fatal("load: -url %q is not a loopback address; this tool only loads servers on this machine", *base)
	}
	if *clients < 1 || *clients > 1024 {
		fatal("load: -c %d; use 1 to 1024 clients", *clients)
	}
	inputs := []string{"hello", "world", "pronunciation", "generation", "sequence", "transformer", "language", "model",
		"server", "batch", "stream", "token", "kubernetes", "phoneme", "dictionary", "quickly"}
	if *inputsFile != "" {
		data, err := os.ReadFile(*inputsFile)
		if err != nil {
			fatal("load: %v", err)
		}
		inputs = inputs[:0]
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				inputs = append(inputs, l)
			}
		}
		if len(inputs) == 0 {
			fatal("load: %s has no inputs", *inputsFile)
		}
	}
	params := map[string]any{}
	if *extra != "" {
		if err := json.Unmarshal([]byte(*extra), &params); err != nil {
			fatal("load: -params: %v", err)
		}
	}
	params["max_new_tokens"] = *maxNew

	tr := &http.Transport{MaxIdleConns: *clients, MaxIdleConnsPerHost: *clients, IdleConnTimeout: 30 * time.Second}
	client := &http.Client{Transport: tr, Timeout: *timeout}
	if (*route == "openai" || *route == "v2") && *model == "" {
		*model = askModel(client, *base)
	}
	send := func(ctx context.Context, in string) error {
		path, body, stream := request(*route, *model, in, params)
		req, err := http.NewRequestWithContext(ctx, "POST", *base+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("reading the answer: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %.200s", resp.StatusCode, data)
		}
		if stream && !bytes.Contains(data, []byte(`"generated_text":"`)) {
			return fmt.Errorf("the stream ended without its last event: %.200s", lastLine(data))
		}
		if !stream && !json.Valid(data) {
			return fmt.Errorf("the answer is not JSON: %.200s", data)
		}
		return nil
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run := func(d time.Duration, limit int) ([]result, time.Duration) {
		rctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		var mu sync.Mutex
		var res []result
		var next int
		var wg sync.WaitGroup
		began := time.Now()
		for c := range *clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; rctx.Err() == nil; i += *clients {
					mu.Lock()
					if limit > 0 && next >= limit {
						mu.Unlock()
						return
					}
					next++
					mu.Unlock()
					t0 := time.Now()
					// A request begun before the deadline runs to its end:
					// the load stops, it is not cut.
					err := send(context.WithoutCancel(rctx), inputs[i%len(inputs)])
					r := result{latency: time.Since(t0)}
					if err != nil {
						r.err = err.Error()
					}
					mu.Lock()
					res = append(res, r)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return res, time.Since(began)
	}
	if *warmup > 0 {
		run(*warmup, 0)
	}
	res, elapsed := run(*dur, *total)
	summarize(res, elapsed, *clients, *route, *asJSON)
	for _, r := range res {
		if r.err != "" {
			os.Exit(1)
		}
	}
}

// request builds one request of route for input.
func request(route, model, in string, params map[string]any) (path string, body []byte, stream bool) {
	var v any
	switch route {
	case "tgi":
		path, v = "/generate", map[string]any{"inputs": in, "parameters": params}
	case "tgi-stream":
		path, v, stream = "/generate_stream", map[string]any{"inputs": in, "parameters": params}, true
	case "openai":
		req := map[string]any{"model": model, "prompt": in}
		for k, x := range params {
			req[k] = x
		}
		req["max_tokens"] = req["max_new_tokens"]
		delete(req, "max_new_tokens")
		path, v = "/v1/completions", req
	case "v2":
		path = "/v2/models/" + model + "/infer"
		v = map[string]any{"parameters": params,
			"inputs": []map[string]any{{"name": "text_input", "shape": []int{1}, "datatype": "BYTES", "data": []string{in}}}}
	default:
		fatal("load: -route %q; use tgi, tgi-stream, openai or v2", route)
	}
	body, _ = json.Marshal(v)
	return path, body, stream
}

func askModel(c *http.Client, base string) string {
	resp, err := c.Get(base + "/v1/models")
	if err != nil {
		fatal("load: asking the model name: %v", err)
	}
	defer resp.Body.Close()
	var m struct{ Data []struct{ ID string } }
	if json.NewDecoder(resp.Body).Decode(&m) != nil || len(m.Data) == 0 {
		fatal("load: /v1/models named no model; pass -model")
	}
	return m.Data[0].ID
}

func summarize(res []result, elapsed time.Duration, clients int, route string, asJSON bool) {
	var lat []time.Duration
	fails := map[string]int{}
	for _, r := range res {
		if r.err != "" {
			fails[r.err]++
			continue
		}
		lat = append(lat, r.latency)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	nfail := len(res) - len(lat)
	s := map[string]any{
		"route": route, "clients": clients, "requests": len(res), "failed": nfail,
		"seconds": elapsed.Seconds(), "rps": float64(len(lat)) / elapsed.Seconds(),
		"p50_ms": pct(.50), "p90_ms": pct(.90), "p99_ms": pct(.99), "max_ms": pct(1),
	}
	if asJSON {
		json.NewEncoder(os.Stdout).Encode(s)
	} else {
		fmt.Printf("%s, %d clients: %d requests in %.1fs, %d failed: %.1f req/s, p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
			route, clients, len(res), elapsed.Seconds(), nfail, s["rps"], s["p50_ms"], s["p90_ms"], s["p99_ms"], s["max_ms"])
	}
	keys := make([]string, 0, len(fails))
	for k := range fails {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(os.Stderr, "load: %d x %s\n", fails[k], k)
	}
}

func lastLine(data []byte) []byte {
	sc := bufio.NewScanner(bytes.NewReader(data))
	var last []byte
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			last = append(last[:0], sc.Bytes()...)
		}
	}
	return last
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}
