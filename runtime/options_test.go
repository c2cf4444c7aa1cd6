package runtime

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestOptionsDefaults(t *testing.T) {
	got := Options{}.WithDefaults()
	want := Options{Provider: "cpu", GraphOptimization: "all", DecoderGraphs: "auto"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	set := Options{Provider: "cuda", GraphOptimization: "basic", DecoderGraphs: "merged", IntraOpThreads: 3}
	if !reflect.DeepEqual(set.WithDefaults(), set) {
		t.Fatalf("WithDefaults changed set fields: %+v", set.WithDefaults())
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string // "" = valid
	}{
		{"zero value", Options{}, ""},
		{"all set", Options{Provider: "cuda", DeviceID: 1, IntraOpThreads: 2, InterOpThreads: 1, GraphOptimization: "extended", DecoderGraphs: "split"}, ""},
		{"unknown provider", Options{Provider: "tpu"}, `provider "tpu" is unknown; use one of cpu, cuda`},
		{"unknown optimization", Options{GraphOptimization: "max"}, `graph optimization "max" is unknown`},
		{"unknown graphs", Options{DecoderGraphs: "both"}, `decoder graphs "both" is unknown`},
		{"negative device", Options{Provider: "cuda", DeviceID: -1}, "device id -1 is negative"},
		{"device without cuda", Options{DeviceID: 2}, `device id 2 needs provider "cuda"`},
		{"negative threads", Options{IntraOpThreads: -1}, "thread counts must be 0"},
		{"threads at the limit", Options{IntraOpThreads: MaxThreads(), InterOpThreads: MaxThreads()}, ""},
		{"intra-op threads past the limit", Options{IntraOpThreads: 100000}, fmt.Sprintf("intra-op-threads 100000 is over the limit of %d threads", MaxThreads())},
		{"inter-op threads past the limit", Options{InterOpThreads: MaxThreads() + 1}, "(-inter-op-threads, S2S_INTER_OP_THREADS)"},
		{"session config", Options{DisableMemArena: true, SessionConfig: map[string]string{"session.intra_op.allow_spinning": "0"}}, ""},
		{"empty session config key", Options{SessionConfig: map[string]string{" ": "1"}}, "session config has an empty key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "runtime: ") {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
