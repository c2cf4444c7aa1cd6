package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are every metric the server exports, declared once, on a
// registry of the Server's own (two Servers in one process do not clash).
type metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec   // by route and outcome
	duration     *prometheus.HistogramVec // by route
	queueDepth   prometheus.Gauge
	queueWait    prometheus.Histogram
	batchSize    prometheus.Histogram
	batchRows    prometheus.Histogram
	generated    prometheus.Counter
	inputTokens  prometheus.Counter
	firstToken   prometheus.Histogram
	perToken     prometheus.Histogram
	inFlightReqs prometheus.Gauge
}

func newMetrics(load func() Load) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	latency := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	m := &metrics{reg: reg}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "s2s_requests_total",
		Help: "Requests answered, by route and outcome (ok, invalid, overloaded, unavailable, canceled, timeout, error)."}, []string{"route", "outcome"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "s2s_request_duration_seconds",
		Help: "Time from a request's arrival to its last byte, by route.", Buckets: latency}, []string{"route"})
	m.queueDepth = prometheus.NewGauge(prometheus.GaugeOpts{Name: "s2s_queue_depth", Help: "Requests waiting for a batch."})
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "s2s_queue_wait_seconds",
		Help: "Time a request waited before its batch started.", Buckets: latency})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "s2s_batch_size",
		Help: "Requests decoded together in one batch.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128}})
	m.batchRows = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "s2s_batch_rows",
		Help: "Decoder rows of one batch (inputs times beams).", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}})
	m.generated = prometheus.NewCounter(prometheus.CounterOpts{Name: "s2s_generated_tokens_total", Help: "Tokens generated."})
	m.inputTokens = prometheus.NewCounter(prometheus.CounterOpts{Name: "s2s_input_tokens_total", Help: "Input tokens of answered requests."})
	m.firstToken = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "s2s_time_to_first_token_seconds",
		Help: "Time from a request's arrival to its first generated token.", Buckets: latency})
	m.perToken = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "s2s_time_per_output_token_seconds",
		Help:    "Generation time after the first token divided by the tokens after it.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5}})
	m.inFlightReqs = prometheus.NewGauge(prometheus.GaugeOpts{Name: "s2s_http_requests_in_flight", Help: "HTTP requests being served."})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.queueDepth, m.queueWait, m.batchSize, m.batchRows,
		m.generated, m.inputTokens, m.firstToken, m.perToken, m.inFlightReqs} {
		f(c)
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "s2s_requests_running", Help: "Requests in running batches."},
		func() float64 { return float64(load().Running) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "s2s_batches_running", Help: "Batches (Generate calls) running."},
		func() float64 { return float64(load().Batches) }))
	return m
}

// QueueDepth and BatchStarted make metrics the Batcher's Observer.
func (m *metrics) QueueDepth(n int) { m.queueDepth.Set(float64(n)) }

func (m *metrics) BatchStarted(requests, rows int) {
	m.batchSize.Observe(float64(requests))
	m.batchRows.Observe(float64(rows))
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, MaxRequestsInFlight: 4})
}

// lazyObserver lets the Batcher be made before the metrics that watch it.
type lazyObserver struct{ m *metrics }

func (o *lazyObserver) QueueDepth(n int) {
	if o.m != nil {
		o.m.QueueDepth(n)
	}
}

func (o *lazyObserver) BatchStarted(requests, rows int) {
	if o.m != nil {
		o.m.BatchStarted(requests, rows)
	}
}
