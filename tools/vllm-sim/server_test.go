package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// start runs a simulator with the given flags on a loopback port.
func start(t *testing.T, args ...string) *httptest.Server {
	t.Helper()
	cfg, err := ParseArgs(append([]string{"--model=org/base", "--served-model-name=sim"}, args...), io.Discard)
	if err != nil {
		t.Fatalf("ParseArgs(%v): %v", args, err)
	}
	ts := httptest.NewServer(NewServer(cfg))
	t.Cleanup(ts.Close)
	return ts
}

func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// event is one SSE data line and when it arrived.
type event struct {
	at   time.Time
	data string
}

func readEvents(t *testing.T, r io.Reader) []event {
	t.Helper()
	var out []event
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line = strings.TrimRight(line, "\n"); line != "" {
			if !strings.HasPrefix(line, "data: ") {
				t.Errorf("SSE line without 'data: ': %q", line)
			}
			out = append(out, event{time.Now(), strings.TrimPrefix(line, "data: ")})
		}
		if err != nil {
			return out
		}
	}
}

type chunkJSON struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Delta *struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		Text         *string `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

func decodeChunks(t *testing.T, evs []event) []chunkJSON {
	t.Helper()
	if len(evs) == 0 || evs[len(evs)-1].data != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %v", evs)
	}
	var out []chunkJSON
	for _, e := range evs[:len(evs)-1] {
		var c chunkJSON
		if err := json.Unmarshal([]byte(e.data), &c); err != nil {
			t.Fatalf("chunk %q: %v", e.data, err)
		}
		out = append(out, c)
	}
	return out
}

func TestChatStreamCarriesRoleTokensFinishReasonAndUsage(t *testing.T) {
	ts := start(t)
	resp := post(t, ts.URL+"/v1/chat/completions", `{"model":"sim","messages":[{"role":"user","content":"hello world, how are you"}],
		"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}`)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	chunks := decodeChunks(t, readEvents(t, resp.Body))
	if len(chunks) != 1+5+1 {
		t.Fatalf("want role chunk + 5 token chunks + usage chunk, got %d chunks", len(chunks))
	}
	first := chunks[0].Choices[0]
	if first.Delta == nil || first.Delta.Role == nil || *first.Delta.Role != "assistant" {
		t.Errorf("first chunk does not carry the assistant role: %+v", chunks[0])
	}
	var text strings.Builder
	for i, c := range chunks[1:6] {
		if c.Object != "chat.completion.chunk" || c.Model != "sim" || c.ID != chunks[0].ID {
			t.Errorf("chunk %d: object %q model %q id %q", i, c.Object, c.Model, c.ID)
		}
		ch := c.Choices[0]
		if ch.Delta == nil || ch.Delta.Content == nil || *ch.Delta.Content == "" {
			t.Errorf("chunk %d has no content", i)
			continue
		}
		text.WriteString(*ch.Delta.Content)
		if last := i == 4; last != (ch.FinishReason != nil) {
			t.Errorf("chunk %d finish_reason %v", i, ch.FinishReason)
		}
	}
	if fr := chunks[5].Choices[0].FinishReason; fr == nil || *fr != "length" {
		t.Errorf("last token chunk finish_reason = %v, want length", fr)
	}
	if n := len(strings.Fields(text.String())); n != 5 {
		t.Errorf("text %q has %d words, want 5", text.String(), n)
	}
	u := chunks[6]
	if len(u.Choices) != 0 || u.Usage == nil {
		t.Fatalf("usage chunk: %+v", u)
	}
	// 24 characters -> 6 tokens, plus the per-message template tokens.
	if u.Usage.CompletionTokens != 5 || u.Usage.PromptTokens != 6+perMessageTokens || u.Usage.TotalTokens != 15 {
		t.Errorf("usage %+v", *u.Usage)
	}
}

func TestStreamWithoutIncludeUsageHasNoUsageChunk(t *testing.T) {
	ts := start(t)
	resp := post(t, ts.URL+"/v1/completions", `{"model":"sim","prompt":"abc","max_tokens":3,"stream":true}`)
	defer resp.Body.Close()
	chunks := decodeChunks(t, readEvents(t, resp.Body))
	if len(chunks) != 3 {
		t.Fatalf("want 3 text chunks, got %d", len(chunks))
	}
	for _, c := range chunks {
		if c.Usage != nil || c.Object != "text_completion" || c.Choices[0].Text == nil {
			t.Errorf("chunk %+v", c)
		}
	}
}

func TestNonStreamingResponsesAndLengthLimits(t *testing.T) {
	ts := start(t, "--max-model-len=20", "--output-tokens=3")
	var out struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Role, Content string
			} `json:"message"`
			Text         string `json:"text"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage usage `json:"usage"`
	}
	cases := []struct {
		path, body, object, reason string
		completion                 int
	}{
		// no max_tokens: --output-tokens, ended as a model would (stop)
		{"/v1/chat/completions", `{"model":"sim","messages":[{"role":"user","content":"hi"}]}`, "chat.completion", "stop", 3},
		// max_completion_tokens wins over max_tokens
		{"/v1/chat/completions", `{"model":"sim","messages":[{"role":"user","content":"hi"}],"max_tokens":9,"max_completion_tokens":2}`, "chat.completion", "length", 2},
		// capped by --max-model-len minus the prompt (8 chars = 2 tokens)
		{"/v1/completions", `{"model":"sim","prompt":"12345678","max_tokens":100}`, "text_completion", "length", 18},
		{"/v1/completions", `{"model":"sim","prompt":[1,2,3,4,5],"max_tokens":4}`, "text_completion", "length", 4},
	}
	for _, c := range cases {
		resp := post(t, ts.URL+c.path, c.body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", c.body, resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		got := out.Choices[0].Text
		if c.object == "chat.completion" {
			got = out.Choices[0].Message.Content
			if out.Choices[0].Message.Role != "assistant" {
				t.Errorf("%s: role %q", c.body, out.Choices[0].Message.Role)
			}
		}
		if out.Object != c.object || out.Choices[0].FinishReason != c.reason || out.Usage.CompletionTokens != c.completion ||
			len(strings.Fields(got)) != c.completion {
			t.Errorf("%s: object %q finish %q usage %+v text %q; want %s %s %d tokens", c.body, out.Object,
				out.Choices[0].FinishReason, out.Usage, got, c.object, c.reason, c.completion)
		}
	}
}

func TestErrorsAreOpenAIShaped(t *testing.T) {
	ts := start(t, "--max-model-len=10")
	cases := []struct {
		body   string
		status int
		typ    string
	}{
		{`{"model":"other","prompt":"x"}`, 404, "NotFoundError"},
		{`{"model":"sim","prompt":"this prompt is far longer than ten tokens, surely"}`, 400, "BadRequestError"},
		{`{"model":"sim","prompt":"x","max_tokens":0}`, 400, "BadRequestError"},
		{`{"model":"sim","prompt":["a","b"]}`, 400, "BadRequestError"},
		{`not json`, 400, "BadRequestError"},
	}
	for _, c := range cases {
		resp := post(t, ts.URL+"/v1/completions", c.body)
		var e struct {
			Error struct {
				Message, Type string
				Code          int
			}
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.status || e.Error.Type != c.typ || e.Error.Code != c.status || e.Error.Message == "" {
			t.Errorf("%s: status %d error %+v, want %d %s", c.body, resp.StatusCode, e.Error, c.status, c.typ)
		}
	}
}

func TestModelsListsEveryServedName(t *testing.T) {
	cfg, err := ParseArgs([]string{"serve", "org/base", "--served-model-name", "a", "b", "--served-model-name=c,d"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(NewServer(cfg))
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Data []struct{ ID, Root string } }
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	var ids []string
	for _, d := range out.Data {
		ids = append(ids, d.ID)
		if d.Root != "org/base" {
			t.Errorf("root %q", d.Root)
		}
	}
	if strings.Join(ids, ",") != "a,b,c,d" {
		t.Errorf("models %v, want a,b,c,d", ids)
	}
}

// percentile with linear interpolation.
func percentile(xs []float64, p float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	if lo+1 >= len(s) {
		return s[lo]
	}
	return s[lo] + (s[lo+1]-s[lo])*(pos-float64(lo))
}

func TestTimingHoldsWith64ConcurrentStreams(t *testing.T) {
	const streams, tokens = 64, 20
	ttft, itl := 100*time.Millisecond, 20*time.Millisecond
	ts := start(t, "--time-to-first-token=100", "--inter-token-latency=20", "--max-num-seqs=128")
	tr := &http.Transport{MaxIdleConnsPerHost: streams}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var ttfts, itls, e2es []float64
	var wg sync.WaitGroup
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"model":"sim","prompt":"time me","max_tokens":%d,"stream":true}`, tokens)
			sent := time.Now()
			resp, err := client.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			evs := readEvents(t, resp.Body)
			if len(evs) != tokens+1 {
				t.Errorf("got %d events, want %d", len(evs), tokens+1)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ttfts = append(ttfts, evs[0].at.Sub(sent).Seconds())
			for i := 1; i < tokens; i++ {
				itls = append(itls, evs[i].at.Sub(evs[i-1].at).Seconds())
			}
			e2es = append(e2es, evs[tokens-1].at.Sub(sent).Seconds())
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ms := func(x float64) float64 { return x * 1000 }
	wantE2E := ttft + (tokens-1)*itl
	t.Logf("TTFT p50 %.1fms p99 %.1fms; ITL p50 %.1fms p99 %.1fms; E2E p50 %.1fms (want %v)",
		ms(percentile(ttfts, 50)), ms(percentile(ttfts, 99)), ms(percentile(itls, 50)), ms(percentile(itls, 99)),
		ms(percentile(e2es, 50)), wantE2E)
	check := func(name string, got, lo, hi float64) {
		if got < lo || got > hi {
			t.Errorf("%s = %.1fms, want %.0f..%.0fms", name, ms(got), ms(lo), ms(hi))
		}
	}
	check("TTFT p50", percentile(ttfts, 50), ttft.Seconds(), ttft.Seconds()+0.020)
	check("TTFT p99", percentile(ttfts, 99), ttft.Seconds(), ttft.Seconds()+0.060)
	check("ITL p50", percentile(itls, 50), itl.Seconds()-0.003, itl.Seconds()+0.003)
	// Deadlines are absolute, so a late token does not delay the rest: the end stays on time.
	check("E2E p50", percentile(e2es, 50), wantE2E.Seconds(), wantE2E.Seconds()+0.020)
	check("E2E max", percentile(e2es, 100), wantE2E.Seconds(), wantE2E.Seconds()+0.080)
}

// scrape returns the value of every sample on /metrics, keyed by its line up to the value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// scrapeWhen scrapes until ok holds or a second passes: the HTTP series are recorded just after the
// response is written, so a client can read its answer a moment before they count it.
func scrapeWhen(t *testing.T, base string, ok func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	m := scrape(t, base)
	for deadline := time.Now().Add(time.Second); !ok(m) && time.Now().Before(deadline); m = scrape(t, base) {
		time.Sleep(5 * time.Millisecond)
	}
	return m
}

const sel = `{engine="0",model_name="sim"}`

func TestQueueBeyondMaxNumSeqsShowsAsWaiting(t *testing.T) {
	ts := start(t, "--max-num-seqs=2", "--time-to-first-token=300", "--inter-token-latency=1")
	type result struct {
		ttft time.Duration
		err  error
	}
	results := make(chan result, 5)
	for range 5 {
		go func() {
			sent := time.Now()
			resp, err := http.Post(ts.URL+"/v1/completions", "application/json",
				strings.NewReader(`{"model":"sim","prompt":"q","max_tokens":1,"stream":true}`))
			if err != nil {
				results <- result{err: err}
				return
			}
			br := bufio.NewReader(resp.Body)
			_, err = br.ReadString('\n')
			ttft := time.Since(sent)
			io.Copy(io.Discard, br) // to [DONE]: the request's metrics are recorded by then
			resp.Body.Close()
			results <- result{ttft, err}
		}()
	}
	deadline := time.Now().Add(250 * time.Millisecond)
	var m map[string]float64
	for time.Now().Before(deadline) {
		m = scrape(t, ts.URL)
		if m["vllm:num_requests_running"+sel] == 2 && m["vllm:num_requests_waiting"+sel] == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m["vllm:num_requests_running"+sel] != 2 || m["vllm:num_requests_waiting"+sel] != 3 {
		t.Fatalf("running %v waiting %v, want 2 and 3", m["vllm:num_requests_running"+sel], m["vllm:num_requests_waiting"+sel])
	}
	var ttfts []time.Duration
	for range 5 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		ttfts = append(ttfts, r.ttft)
	}
	sort.Slice(ttfts, func(i, j int) bool { return ttfts[i] < ttfts[j] })
	// Two run at once, so the 5th request's first token comes after three rounds of 300 ms (less the
	// few ms by which its send trailed the first ones).
	if ttfts[1] > 400*time.Millisecond || ttfts[4] < 850*time.Millisecond {
		t.Errorf("first tokens at %v: want two near 300ms and the last near 900ms", ttfts)
	}
	m = scrape(t, ts.URL)
	if m["vllm:num_requests_waiting"+sel] != 0 || m["vllm:request_queue_time_seconds_count"+sel] != 5 ||
		m["vllm:request_queue_time_seconds_sum"+sel] < 1.15 {
		// queued 0, 0, 300, 300 and 600 ms
		t.Errorf("after the burst: waiting %v, queue time count %v sum %v (want 0, 5, >= 1.2s)",
			m["vllm:num_requests_waiting"+sel], m["vllm:request_queue_time_seconds_count"+sel],
			m["vllm:request_queue_time_seconds_sum"+sel])
	}
}

func TestFailureInjectionRate(t *testing.T) {
	ts := start(t, "--failure-injection-rate=30", "--seed=7")
	const n = 600
	codes := map[int]int{}
	for range n {
		resp := post(t, ts.URL+"/v1/completions", `{"model":"sim","prompt":"x","max_tokens":1}`)
		if resp.StatusCode != 200 {
			var e struct{ Error struct{ Code int } }
			json.NewDecoder(resp.Body).Decode(&e)
			if e.Error.Code != resp.StatusCode {
				t.Errorf("error body code %d for status %d", e.Error.Code, resp.StatusCode)
			}
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	failed := n - codes[200]
	if rate := float64(failed) / n * 100; rate < 24 || rate > 36 {
		t.Errorf("failure rate %.1f%%, want about 30%% (codes %v)", rate, codes)
	}
	for _, c := range []int{429, 500, 503} {
		if codes[c] == 0 {
			t.Errorf("no %d among the injected failures: %v", c, codes)
		}
	}
	errs := func(m map[string]float64) float64 {
		return m[`http_requests_total{handler="/v1/completions",method="POST",status="4xx"}`] +
			m[`http_requests_total{handler="/v1/completions",method="POST",status="5xx"}`]
	}
	m := scrapeWhen(t, ts.URL, func(m map[string]float64) bool { return int(errs(m)) == failed })
	got := errs(m)
	if int(got) != failed || int(m[`vllm:request_success_total{engine="0",finished_reason="length",model_name="sim"}`]) != codes[200] {
		t.Errorf("http_requests_total errors %v (want %d); success %v (want %d)", got, failed,
			m[`vllm:request_success_total{engine="0",finished_reason="length",model_name="sim"}`], codes[200])
	}

	ts = start(t, "--failure-injection-rate=100", "--failure-types=invalid_api_key")
	resp := post(t, ts.URL+"/v1/chat/completions", `{"model":"sim","messages":[{"role":"user","content":"x"}]}`)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("--failure-types=invalid_api_key gave %d", resp.StatusCode)
	}
}

// Series vLLM v0.12 always exports (tests/data/vllm_metrics.txt in the repository lists them with
// their sources), plus the labels every vllm:* series carries.
var vllmSeries = []string{
	"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:engine_sleep_state", "vllm:kv_cache_usage_perc",
	"vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total", "vllm:external_prefix_cache_queries_total",
	"vllm:external_prefix_cache_hits_total", "vllm:mm_cache_queries_total", "vllm:mm_cache_hits_total",
	"vllm:num_preemptions_total", "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:request_success_total",
	"vllm:cache_config_info", "http_requests_total",
}

var vllmHistograms = []string{
	"vllm:request_prompt_tokens", "vllm:request_generation_tokens", "vllm:iteration_tokens_total",
	"vllm:request_max_num_generation_tokens", "vllm:request_params_n", "vllm:request_params_max_tokens",
	"vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds", "vllm:request_time_per_output_token_seconds",
	"vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds", "vllm:request_inference_time_seconds",
	"vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds", "http_request_duration_seconds",
	"http_request_duration_highr_seconds",
}

func TestMetricsUseVLLMNamesAndLabels(t *testing.T) {
	ts := start(t, "--time-to-first-token=30", "--inter-token-latency=10")
	resp := post(t, ts.URL+"/v1/chat/completions", `{"model":"sim","messages":[{"role":"user","content":"hello"}],"max_tokens":4}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	m := scrapeWhen(t, ts.URL, func(m map[string]float64) bool {
		return m[`http_requests_total{handler="/v1/chat/completions",method="POST",status="2xx"}`] == 1
	})
	names := map[string]bool{}
	for k := range m {
		name, labels, _ := strings.Cut(k, "{")
		names[name] = true
		if strings.HasPrefix(name, "vllm:") && (!strings.Contains(labels, `engine="0"`) ||
			(name != "vllm:cache_config_info" && !strings.Contains(labels, `model_name="sim"`))) {
			t.Errorf("%s lacks engine=\"0\" or model_name=\"sim\"", k)
		}
	}
	want := append([]string{}, vllmSeries...)
	for _, h := range vllmHistograms {
		want = append(want, h+"_bucket", h+"_sum", h+"_count")
	}
	want = append(want, "http_request_size_bytes_sum", "http_request_size_bytes_count",
		"http_response_size_bytes_sum", "http_response_size_bytes_count")
	for _, n := range want {
		if !names[n] {
			t.Errorf("/metrics lacks %s", n)
		}
	}
	for _, gone := range []string{"vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds_count", "vllm:num_preemptions"} {
		if names[gone] {
			t.Errorf("/metrics has %s, which vLLM 0.12 does not export by default", gone)
		}
	}
	expect := map[string]float64{
		"vllm:generation_tokens_total" + sel:                                               4,
		"vllm:prompt_tokens_total" + sel:                                                   2 + perMessageTokens,
		"vllm:time_to_first_token_seconds_count" + sel:                                     1,
		"vllm:inter_token_latency_seconds_count" + sel:                                     3,
		`vllm:request_success_total{engine="0",finished_reason="length",model_name="sim"}`: 1,
		`http_requests_total{handler="/v1/chat/completions",method="POST",status="2xx"}`:   1,
		`vllm:time_to_first_token_seconds_bucket{engine="0",model_name="sim",le="0.02"}`:   0,
		`vllm:time_to_first_token_seconds_bucket{engine="0",model_name="sim",le="0.04"}`:   1,
		`vllm:request_params_max_tokens_bucket{engine="0",model_name="sim",le="5"}`:        1,
	}
	for k, v := range expect {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	// /metrics and /health are not counted, as vLLM's instrumentator excludes them.
	for k := range m {
		if strings.Contains(k, `handler="/metrics"`) || strings.Contains(k, `handler="/health"`) {
			t.Errorf("excluded handler counted: %s", k)
		}
	}
}

func TestHiddenMetricsFlagAddsTimePerOutputToken(t *testing.T) {
	ts := start(t, "--show-hidden-metrics-for-version=0.11", "--inter-token-latency=1")
	resp := post(t, ts.URL+"/v1/completions", `{"model":"sim","prompt":"x","max_tokens":3}`)
	resp.Body.Close()
	if got := scrape(t, ts.URL)["vllm:time_per_output_token_seconds_count"+sel]; got != 2 {
		t.Errorf("vllm:time_per_output_token_seconds_count = %v, want 2", got)
	}
}

func TestKVCacheUsageFollowsRunningTokens(t *testing.T) {
	// 64 prompt chars = 16 tokens = 1 block of 16; capacity 10 blocks.
	ts := start(t, "--kv-cache-tokens=160", "--block-size=16", "--time-to-first-token=200")
	go func() {
		resp, err := http.Post(ts.URL+"/v1/completions", "application/json",
			strings.NewReader(`{"model":"sim","prompt":"`+strings.Repeat("a", 64)+`","max_tokens":1}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	var got float64
	for deadline := time.Now().Add(150 * time.Millisecond); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got = scrape(t, ts.URL)["vllm:kv_cache_usage_perc"+sel]; got > 0 {
			break
		}
	}
	if math.Abs(got-0.1) > 1e-9 {
		t.Errorf("kv_cache_usage_perc while running = %v, want 0.1", got)
	}
	time.Sleep(300 * time.Millisecond)
	if got = scrape(t, ts.URL)["vllm:kv_cache_usage_perc"+sel]; got != 0 {
		t.Errorf("kv_cache_usage_perc after the request = %v, want 0", got)
	}
}

func TestPrefixCacheCountsRepeatedPrompts(t *testing.T) {
	ts := start(t)
	prompt := strings.Repeat("b", 200) // 50 tokens, 3 full blocks of 16
	for range 2 {
		resp := post(t, ts.URL+"/v1/completions", `{"model":"sim","prompt":"`+prompt+`","max_tokens":1}`)
		resp.Body.Close()
	}
	m := scrape(t, ts.URL)
	if q, h := m["vllm:prefix_cache_queries_total"+sel], m["vllm:prefix_cache_hits_total"+sel]; q != 100 || h != 48 {
		t.Errorf("prefix cache queries %v hits %v, want 100 and 48", q, h)
	}
}

func TestFakeMetricsOverrideGauges(t *testing.T) {
	ts := start(t, `--fake-metrics={"running-requests":7,"waiting-requests":{"ramp":{"from":10,"to":20,"seconds":1000}},"kv-cache-usage":{"oscillate":{"min":0.25,"max":0.75,"period":1000}}}`)
	m := scrape(t, ts.URL)
	if m["vllm:num_requests_running"+sel] != 7 || m["vllm:num_requests_waiting"+sel] != 10 ||
		math.Abs(m["vllm:kv_cache_usage_perc"+sel]-0.25) > 0.001 {
		t.Errorf("running %v waiting %v kv %v; want 7, 10, 0.25", m["vllm:num_requests_running"+sel],
			m["vllm:num_requests_waiting"+sel], m["vllm:kv_cache_usage_perc"+sel])
	}
}

func TestFakeMetricGenerators(t *testing.T) {
	r := ramp{From: 0, To: 20, Seconds: 10}
	rr := ramp{From: 0, To: 20, Seconds: 10, Repeat: true}
	o := oscillate{Min: 0.2, Max: 0.8, Period: 8}
	cases := []struct {
		g    Generator
		at   float64
		want float64
	}{
		{r, 0, 0}, {r, 5, 10}, {r, 10, 20}, {r, 99, 20},
		{rr, 12.5, 5},
		{o, 0, 0.2}, {o, 2, 0.5}, {o, 4, 0.8}, {o, 8, 0.2},
		{constant(3), 42, 3},
	}
	for _, c := range cases {
		if got := c.g.Value(time.Duration(c.at * float64(time.Second))); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%#v at %vs = %v, want %v", c.g, c.at, got, c.want)
		}
	}
}

func TestFakeMetricsErrorsNameThePath(t *testing.T) {
	cases := map[string]string{
		`{"kv-cache-usage":1.5}`: "kv-cache-usage: 1.5 is out of range",
		`{"running":3}`:          "running: unknown key",
		`{"waiting-requests":{"ramp":{"from":0,"to":5}}}`:                   "waiting-requests.ramp.seconds: required",
		`{"waiting-requests":{"ramp":{"from":0,"to":5,"seconds":-1}}}`:      "waiting-requests.ramp.seconds: -1 must be > 0",
		`{"kv-cache-usage":{"oscillate":{"min":0.9,"max":0.1,"period":5}}}`: "kv-cache-usage.oscillate.min: 0.9 is above max",
		`{"kv-cache-usage":{"sine":{}}}`:                                    "kv-cache-usage: want a number",
		`[1]`:                                                               "not a JSON object",
	}
	for in, want := range cases {
		_, err := ParseArgs([]string{"m", "--fake-metrics", in}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "fake-metrics") {
			t.Errorf("--fake-metrics %s: error %v, want it to contain %q", in, err, want)
		}
	}
}

func TestStartupDurationGatesHealthAndAPI(t *testing.T) {
	ts := start(t, "--startup-duration=0.3")
	status := func(path string) int {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/health", "/health/ready", "/v1/models"} {
		if s := status(p); s != 503 {
			t.Errorf("%s during startup: %d, want 503", p, s)
		}
	}
	if s := status("/metrics"); s != 200 {
		t.Errorf("/metrics during startup: %d", s)
	}
	time.Sleep(350 * time.Millisecond)
	for _, p := range []string{"/health", "/health/ready", "/v1/models"} {
		if s := status(p); s != 200 {
			t.Errorf("%s after startup: %d, want 200", p, s)
		}
	}
}

func TestAPIKeyGuardsOnlyTheAPI(t *testing.T) {
	ts := start(t, "--api-key=s3cret")
	req, _ := http.NewRequest("GET", ts.URL+"/v1/models", nil)
	for _, c := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong", 401}, {"Bearer s3cret", 200}} {
		req.Header.Set("Authorization", c.auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("Authorization %q: %d, want %d", c.auth, resp.StatusCode, c.want)
		}
	}
	if resp, _ := http.Get(ts.URL + "/health"); resp.StatusCode != 200 {
		t.Errorf("/health with --api-key: %d", resp.StatusCode)
	}
}

func TestClientDisconnectCountsAbortAndFreesTheSlot(t *testing.T) {
	ts := start(t, "--max-num-seqs=1", "--time-to-first-token=10", "--inter-token-latency=50")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions",
		strings.NewReader(`{"model":"sim","prompt":"x","max_tokens":100,"stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	bufio.NewReader(resp.Body).ReadString('\n')
	cancel()
	resp.Body.Close()
	time.Sleep(100 * time.Millisecond)
	m := scrape(t, ts.URL)
	if m[`vllm:request_success_total{engine="0",finished_reason="abort",model_name="sim"}`] != 1 ||
		m["vllm:num_requests_running"+sel] != 0 {
		t.Errorf("abort %v running %v, want 1 and 0", m[`vllm:request_success_total{engine="0",finished_reason="abort",model_name="sim"}`],
			m["vllm:num_requests_running"+sel])
	}
}

func TestEchoModeRepeatsThePrompt(t *testing.T) {
	ts := start(t, "--mode=echo")
	resp := post(t, ts.URL+"/v1/completions", `{"model":"sim","prompt":"one two three","max_tokens":3}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(b, []byte(`"text":"one two three"`)) {
		t.Errorf("echo response %s", b)
	}
}

var chartArgs = []string{
	"--model", "/models/meta-llama/Llama-3.1-8B-Instruct", "--served-model-name", "llama-8b",
	"--host", "0.0.0.0", "--port", "8000", "--tensor-parallel-size", "2", "--pipeline-parallel-size=1",
	"--gpu-memory-utilization", "0.92", "--dtype", "bfloat16", "--enable-prefix-caching", "--max-model-len", "8192",
	"--download-dir", "/models/cache", "--revision", "main", "--enable-chunked-prefill", "--quantization", "fp8",
	"--enable-lora", "--max-loras", "4", "--max_num_batched_tokens", "4096", "--trust-remote-code",
	"--kv-cache-dtype=fp8", "-tp", "2", "--disable-log-requests", "--max-num-seqs", "64",
}

func TestChartVLLMArgsAreAcceptedAndIgnored(t *testing.T) {
	cfg, err := ParseArgs(chartArgs, io.Discard)
	if err != nil {
		t.Fatalf("the chart's vLLM args were rejected: %v", err)
	}
	if cfg.Model != "/models/meta-llama/Llama-3.1-8B-Instruct" || cfg.ServedNames[0] != "llama-8b" ||
		cfg.MaxModelLen != 8192 || cfg.MaxNumSeqs != 64 || cfg.Port != 8000 {
		t.Errorf("known flags misread: %+v", cfg)
	}
	want := []string{"--tensor-parallel-size=2", "--pipeline-parallel-size=1", "--gpu-memory-utilization=0.92",
		"--dtype=bfloat16", "--enable-prefix-caching", "--download-dir=/models/cache", "--revision=main",
		"--enable-chunked-prefill", "--quantization=fp8", "--enable-lora", "--max-loras=4",
		"--max-num-batched-tokens=4096", "--trust-remote-code", "--kv-cache-dtype=fp8", "--tp=2", "--disable-log-requests"}
	if strings.Join(cfg.Ignored, " ") != strings.Join(want, " ") {
		t.Errorf("ignored flags:\n got %v\nwant %v", cfg.Ignored, want)
	}
}

func TestArgumentErrorsNameTheFlag(t *testing.T) {
	cases := map[string][]string{
		"--max-num-seqs: 0 is out of range":        {"m", "--max-num-seqs=0"},
		"--failure-injection-rate: 150":            {"m", "--failure-injection-rate", "150"},
		"time-to-first-token":                      {"m", "--time-to-first-token=soon"},
		"--failure-types: unknown type \"teapot\"": {"m", "--failure-types=teapot"},
		"--model: required":                        {"--port=1"},
		"model given twice":                        {"serve", "a", "--model=b"},
		"unexpected argument \"c\"":                {"a", "c"},
		"flag --port: needs a value":               {"m", "--port"},
	}
	for want, args := range cases {
		_, err := ParseArgs(args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v, want it to contain %q", args, err, want)
		}
	}
}

func TestHelpListsTheFlags(t *testing.T) {
	var out bytes.Buffer
	if _, err := ParseArgs([]string{"--help"}, &out); err != errHelp {
		t.Fatalf("--help: %v", err)
	}
	for _, f := range []string{"--model", "--served-model-name", "--port", "--time-to-first-token-std-dev",
		"--inter-token-latency", "--max-num-seqs", "--max-model-len", "--failure-injection-rate", "--startup-duration",
		"--fake-metrics", "--output-tokens", "--seed", "--kv-cache-tokens"} {
		if !regexp.MustCompile(`(?m)^  ` + f + ` `).MatchString(out.String()) {
			t.Errorf("--help does not list %s", f)
		}
	}
}

func TestLatencyFlagsTakeMillisecondsOrDurations(t *testing.T) {
	cfg, err := ParseArgs([]string{"m", "--time-to-first-token=250", "--inter-token-latency=1.5s", "--startup-duration=2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TTFT != 250*time.Millisecond || cfg.ITL != 1500*time.Millisecond || cfg.StartupDuration != 2*time.Second {
		t.Errorf("ttft %v itl %v startup %v", cfg.TTFT, cfg.ITL, cfg.StartupDuration)
	}
}

// The repository's list of what vLLM 0.12 always exports (from its source) must all be here too.
func TestMetricsCoverTheRepositorysVLLMList(t *testing.T) {
	raw, err := os.ReadFile("../../tests/data/vllm_metrics.txt")
	if err != nil {
		t.Skipf("no vLLM metric list outside the module: %v", err)
	}
	always, _, found := strings.Cut(string(raw), "--- exported only when")
	if !found {
		t.Fatal("tests/data/vllm_metrics.txt lost its '--- exported only when' section marker")
	}
	ts := start(t, "--inter-token-latency=1")
	resp := post(t, ts.URL+"/v1/completions", `{"model":"sim","prompt":"x","max_tokens":2}`)
	resp.Body.Close()
	m := scrapeWhen(t, ts.URL, func(m map[string]float64) bool { return len(m) > 0 && hasName(m, "http_requests_total") })
	n := 0
	for _, line := range strings.Split(always, "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		n++
		if !hasName(m, line) {
			t.Errorf("/metrics lacks %s, which vLLM 0.12 always exports", line)
		}
	}
	if n < 50 {
		t.Errorf("read only %d series names from the list", n)
	}
}

func hasName(m map[string]float64, name string) bool {
	for k := range m {
		if n, _, _ := strings.Cut(k, "{"); n == name {
			return true
		}
	}
	return false
}
