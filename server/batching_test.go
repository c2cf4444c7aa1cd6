package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/server"
)

// recordingEngine answers each input with its own ids and records the
// batches it was given.
type recordingEngine struct {
	mu      sync.Mutex
	batches [][][]int64
	gate    chan struct{} // the first batch waits for it
	calls   int
}

func (e *recordingEngine) GenerateIDs(ctx context.Context, ids [][]int64, opts s2s.GenerateOptions, stream s2s.StreamFunc) ([]s2s.Output, error) {
	e.mu.Lock()
	e.batches = append(e.batches, ids)
	e.calls++
	first := e.calls == 1
	e.mu.Unlock()
	if first && e.gate != nil {
		<-e.gate
	}
	outs := make([]s2s.Output, len(ids))
	for i, seq := range ids {
		if stream != nil {
			if err := stream(s2s.Event{Input: i, Tokens: seq, Text: fmt.Sprint(seq)}); err != nil {
				return nil, err
			}
		}
		outs[i] = s2s.Output{Sequences: []s2s.Sequence{{Text: fmt.Sprint(seq), Tokens: seq}}}
	}
	return outs, ctx.Err()
}

// TestBatcherForms checks how jobs are merged, without a model: jobs of
// equal options within the window share a batch up to max_batch_rows;
// jobs of other options, and sampling jobs, run apart; each job gets its
// own outputs back.
func TestBatcherForms(t *testing.T) {
	eng := &recordingEngine{gate: make(chan struct{})}
	b, err := server.NewBatcher(eng, server.BatcherOptions{MaxQueue: 64, MaxConcurrent: 64, MaxBatches: 1, MaxBatchRows: 5,
		Window: 300 * time.Millisecond, Batching: true})
	if err != nil {
		t.Fatal(err)
	}
	greedy := s2s.GenerateOptions{MaxNewTokens: 5, NumBeams: 1, NumReturnSequences: 1}
	beam := greedy
	beam.NumBeams = 2
	sample := greedy
	sample.DoSample = true
	type sub struct {
		ids  [][]int64
		opts s2s.GenerateOptions
	}
	subs := []sub{
		{[][]int64{{1}}, greedy}, {[][]int64{{2}, {3}}, greedy}, {[][]int64{{4}}, beam}, {[][]int64{{5}}, greedy},
		{[][]int64{{6}}, sample}, {[][]int64{{7}}, greedy}, {[][]int64{{8}}, beam}, {[][]int64{{9}}, sample}, {[][]int64{{10}}, greedy},
	}
	// A first job holds the only batch slot while the others queue.
	first, err := b.Submit(context.Background(), &server.Job{IDs: [][]int64{{0}}, Options: s2s.GenerateOptions{MaxNewTokens: 9}})
	if err != nil {
		t.Fatal(err)
	}
	tickets := make([]*server.Ticket, len(subs))
	for i, s := range subs {
		if tickets[i], err = b.Submit(context.Background(), &server.Job{IDs: s.ids, Options: s.opts}); err != nil {
			t.Fatal(err)
		}
	}
	close(eng.gate)
	<-first.Done()
	for i, tk := range tickets {
		<-tk.Done()
		outs, err := tk.Result()
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		for j, o := range outs {
			if !slices.Equal(o.Sequences[0].Tokens, subs[i].ids[j]) {
				t.Errorf("job %d input %d got %v, want its own %v", i, j, o.Sequences[0].Tokens, subs[i].ids[j])
			}
		}
	}
	if err := b.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(eng.batches)
	// After the first job, greedy rows 1+2+1+1 = 5 fill a batch; the beam
	// jobs (2 rows each) share one; each sampling job runs alone; the last
	// greedy one runs on its own.
	want := "[[[0]] [[1] [2] [3] [5] [7]] [[4] [8]] [[6]] [[9]] [[10]]]"
	if got != want {
		t.Errorf("batches %s, want %s", got, want)
	}
	if _, err := b.Submit(context.Background(), &server.Job{IDs: [][]int64{{1}}, Options: greedy}); !errors.Is(err, server.ErrDraining) {
		t.Errorf("Submit after Drain: %v, want ErrDraining", err)
	}
}

// TestBatchedResultsEqualAlone sends requests of equal options at once:
// the server decodes them together (the log shows their batch), and each
// answer is the one the library gives for that input alone, on t5-tiny and
// g2p-en, greedy and beam search, through TGI, OpenAI and v2 at once.
func TestBatchedResultsEqualAlone(t *testing.T) {
	for _, dir := range []string{t5Tiny, g2pEn} {
		t.Run(dir[strings.LastIndex(dir, "/")+1:], func(t *testing.T) {
			g := openGen(t, dir)
			ts := start(t, g, func(c *server.Config) {
				c.Batcher.Window = 500 * time.Millisecond
				c.Batcher.MaxBatchRows = 64
			})
			inputs := []string{"hello", "pronunciation", "a much longer input than the others here", "x", "world wide", "test"}
			for _, beams := range []int{1, 3} {
				opts := g.Defaults()
				opts.MaxNewTokens, opts.NumBeams = 12, beams
				var wg sync.WaitGroup
				got := make([]string, len(inputs))
				for i, in := range inputs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						params := map[string]any{"max_new_tokens": 12, "num_beams": beams}
						var status int
						var body []byte
						switch i % 3 {
						case 0:
							status, _, body = ts.post(t, "/generate", map[string]any{"inputs": in, "parameters": params})
							got[i], _ = decode(t, body)["generated_text"].(string)
						case 1:
							req := map[string]any{"model": ts.ModelName(), "prompt": in}
							for k, v := range params {
								req[k] = v
							}
							status, _, body = ts.post(t, "/v1/completions", req)
							var c struct{ Choices []struct{ Text string } }
							json.Unmarshal(body, &c)
							if len(c.Choices) == 1 {
								got[i] = c.Choices[0].Text
							}
						default:
							status, _, body = ts.post(t, "/v2/models/"+ts.ModelName()+"/infer", map[string]any{"parameters": params,
								"inputs": []map[string]any{{"name": "text_input", "shape": []int{1}, "datatype": "BYTES", "data": []string{in}}}})
							var v struct{ Outputs []struct{ Data []string } }
							json.Unmarshal(body, &v)
							if len(v.Outputs) == 1 && len(v.Outputs[0].Data) == 1 {
								got[i] = v.Outputs[0].Data[0]
							}
						}
						if status != 200 {
							t.Errorf("input %q: %d %s", in, status, body)
						}
					}()
				}
				wg.Wait()
				for i, in := range inputs {
					if want := direct(t, g, opts, in)[0].Text(); got[i] != want {
						t.Errorf("beams %d, input %q: batched %q, alone %q", beams, in, got[i], want)
					}
				}
			}
			largest := 0
			sc := bufio.NewScanner(strings.NewReader(ts.logs.String()))
			for sc.Scan() {
				var m struct {
					Msg           string
					BatchRequests int `json:"batch_requests"`
				}
				if json.Unmarshal(sc.Bytes(), &m) == nil && m.Msg == "request" {
					largest = max(largest, m.BatchRequests)
				}
			}
			if largest < 2 {
				t.Errorf("no request shared a batch (largest batch %d); the test needs them merged", largest)
			}
			t.Logf("largest batch: %d requests", largest)
		})
	}
}
