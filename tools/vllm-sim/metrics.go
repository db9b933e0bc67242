package main

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Bucket boundaries as vLLM v0.12 declares them (vllm/v1/metrics/loggers.py).
var (
	ttftBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
		2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}
	itlBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
		5.0, 7.5, 10.0, 20.0, 40.0, 80.0}
	requestLatencyBuckets = []float64{0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
		40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}
	// prometheus-fastapi-instrumentator's defaults.
	httpLowrBuckets  = []float64{0.1, 0.5, 1}
	httpHighrBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3,
		3.5, 4, 4.5, 5, 7.5, 10, 30, 60}
)

// buckets125 is vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, ... up to limit.
func buckets125(limit int) []float64 {
	var out []float64
	for exp := 1.0; ; exp *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := m * exp; v <= float64(limit) {
				out = append(out, v)
			} else {
				return out
			}
		}
	}
}

// Metrics holds the vLLM series (labels model_name and engine) and the HTTP series vLLM's
// prometheus-fastapi-instrumentator exports (handler, method, status grouped as 2xx/4xx/5xx).
type Metrics struct {
	reg *prometheus.Registry

	promptTokens, generationTokens         prometheus.Counter
	prefixQueries, prefixHits              prometheus.Counter
	success                                *prometheus.CounterVec
	ttft, itl, tpot, tpotHidden            prometheus.Observer
	e2e, queue, prefill, decode, inference prometheus.Observer
	reqPrompt, reqGeneration, reqMaxTokens prometheus.Observer
	reqN, reqMaxGen, iterationTokens       prometheus.Observer
	httpRequests                           *prometheus.CounterVec
	httpDuration                           *prometheus.HistogramVec
	httpDurationHighr                      prometheus.Histogram
	httpRequestSize, httpResponseSize      *prometheus.SummaryVec
}

func NewMetrics(cfg *Config, eng *Engine) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	labels := prometheus.Labels{"model_name": cfg.ServedNames[0], "engine": "0"}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
		m.reg.MustRegister(c)
		return c
	}
	hist := func(name, help string, buckets []float64) prometheus.Observer {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets, ConstLabels: labels})
		m.reg.MustRegister(h)
		return h
	}
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}

	gauge("vllm:num_requests_running", "Number of requests in model execution batches.",
		func() float64 { r, _, _ := eng.State(); return r })
	gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
		func() float64 { _, w, _ := eng.State(); return w })
	gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
		func() float64 { _, _, k := eng.State(); return k })
	sleep := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vllm:engine_sleep_state",
		Help: "Engine sleep state; awake = 0 means engine is sleeping.", ConstLabels: labels}, []string{"sleep_state"})
	sleep.WithLabelValues("awake").Set(1)
	sleep.WithLabelValues("weights_offloaded").Set(0)
	sleep.WithLabelValues("discard_all").Set(0)
	m.reg.MustRegister(sleep)
	cacheInfo := prometheus.NewGauge(prometheus.GaugeOpts{Name: "vllm:cache_config_info",
		Help: "Information of the LLMEngine CacheConfig", ConstLabels: prometheus.Labels{
			"engine": "0", "block_size": strconv.Itoa(cfg.BlockSize), "cache_dtype": "auto",
			"enable_prefix_caching": pyBool(cfg.PrefixCaching), "gpu_memory_utilization": "0.9",
			"num_gpu_blocks": strconv.Itoa(cfg.KVCacheTokens / cfg.BlockSize), "num_cpu_blocks": "None"}})
	cacheInfo.Set(1)
	m.reg.MustRegister(cacheInfo)

	m.prefixQueries = counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.")
	m.prefixHits = counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.")
	counter("vllm:external_prefix_cache_queries_total", "External prefix cache queries from KV connector cross-instance cache sharing, in terms of number of queried tokens.")
	counter("vllm:external_prefix_cache_hits_total", "External prefix cache hits from KV connector cross-instance cache sharing, in terms of number of cached tokens.")
	counter("vllm:mm_cache_queries_total", "Multi-modal cache queries, in terms of number of queried items.")
	counter("vllm:mm_cache_hits_total", "Multi-modal cache hits, in terms of number of cached items.")
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vllm:num_preemptions_total",
		Help: "Cumulative number of preemption from the engine.", ConstLabels: labels}, eng.Preemptions))
	m.promptTokens = counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.")
	m.generationTokens = counter("vllm:generation_tokens_total", "Number of generation tokens processed.")
	m.success = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vllm:request_success_total",
		Help: "Count of successfully processed requests.", ConstLabels: labels}, []string{"finished_reason"})
	for _, r := range []string{"stop", "length", "abort"} {
		m.success.WithLabelValues(r)
	}
	m.reg.MustRegister(m.success)

	tokenBuckets := buckets125(cfg.MaxModelLen)
	m.reqPrompt = hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.", tokenBuckets)
	m.reqGeneration = hist("vllm:request_generation_tokens", "Number of generation tokens processed.", tokenBuckets)
	m.iterationTokens = hist("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.",
		[]float64{1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384})
	m.reqMaxGen = hist("vllm:request_max_num_generation_tokens", "Histogram of maximum number of requested generation tokens.", tokenBuckets)
	m.reqN = hist("vllm:request_params_n", "Histogram of the n request parameter.", []float64{1, 2, 5, 10, 20})
	m.reqMaxTokens = hist("vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", tokenBuckets)
	m.ttft = hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", ttftBuckets)
	m.itl = hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", itlBuckets)
	m.tpot = hist("vllm:request_time_per_output_token_seconds", "Histogram of time_per_output_token_seconds per request.", itlBuckets)
	if cfg.ShowHiddenFor != "" {
		m.tpotHidden = hist("vllm:time_per_output_token_seconds",
			"Histogram of time per output token in seconds. DEPRECATED: Use vllm:inter_token_latency_seconds instead.", itlBuckets)
	}
	m.e2e = hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", requestLatencyBuckets)
	m.queue = hist("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", requestLatencyBuckets)
	m.inference = hist("vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.", requestLatencyBuckets)
	m.prefill = hist("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", requestLatencyBuckets)
	m.decode = hist("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.", requestLatencyBuckets)

	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total",
		Help: "Total number of requests by method, status and handler."}, []string{"handler", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "http_request_duration_seconds",
		Help: "Latency with only few buckets by handler.", Buckets: httpLowrBuckets}, []string{"handler", "method"})
	m.httpDurationHighr = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "http_request_duration_highr_seconds",
		Help: "Latency with many buckets but no API specific labels.", Buckets: httpHighrBuckets})
	m.httpRequestSize = prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: "http_request_size_bytes",
		Help: "Content length of incoming requests by handler."}, []string{"handler"})
	m.httpResponseSize = prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: "http_response_size_bytes",
		Help: "Content length of outgoing responses by handler."}, []string{"handler"})
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.httpDurationHighr, m.httpRequestSize, m.httpResponseSize)
	return m
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Finished records one request's timeline the way vLLM's frontend does: arrival, scheduled (left the
// queue), first token, last token.
type timeline struct {
	arrival, scheduled, first, last time.Time
	promptTokens, genTokens         int
	maxTokens                       int
	reason                          string
}

func (m *Metrics) Finished(t timeline) {
	m.success.WithLabelValues(t.reason).Inc()
	m.e2e.Observe(t.last.Sub(t.arrival).Seconds())
	m.queue.Observe(t.scheduled.Sub(t.arrival).Seconds())
	m.prefill.Observe(t.first.Sub(t.scheduled).Seconds())
	m.decode.Observe(t.last.Sub(t.first).Seconds())
	m.inference.Observe(t.last.Sub(t.scheduled).Seconds())
	m.reqPrompt.Observe(float64(t.promptTokens))
	m.reqGeneration.Observe(float64(t.genTokens))
	m.reqMaxTokens.Observe(float64(t.maxTokens))
	m.reqMaxGen.Observe(float64(t.maxTokens))
	m.reqN.Observe(1)
	if t.genTokens > 1 {
		m.tpot.Observe(t.last.Sub(t.first).Seconds() / float64(t.genTokens-1))
	}
}

func (m *Metrics) Aborted() { m.success.WithLabelValues("abort").Inc() }

// Token records one generated token; gap is the time since the previous one (0 for the first).
func (m *Metrics) Token(gap time.Duration, first bool, promptTokens int) {
	m.generationTokens.Inc()
	if first {
		m.iterationTokens.Observe(float64(promptTokens + 1))
		return
	}
	m.iterationTokens.Observe(1)
	m.itl.Observe(gap.Seconds())
	if m.tpotHidden != nil {
		m.tpotHidden.Observe(gap.Seconds())
	}
}

// HTTP records one finished HTTP exchange, as the instrumentator does.
func (m *Metrics) HTTP(handler, method string, status int, reqBytes, respBytes int64, d time.Duration) {
	m.httpRequests.WithLabelValues(handler, method, fmt.Sprintf("%dxx", status/100)).Inc()
	m.httpDuration.WithLabelValues(handler, method).Observe(d.Seconds())
	m.httpDurationHighr.Observe(d.Seconds())
	m.httpRequestSize.WithLabelValues(handler).Observe(float64(max(reqBytes, 0)))
	m.httpResponseSize.WithLabelValues(handler).Observe(float64(respBytes))
}
