package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Server is the simulator's HTTP API.
type Server struct {
	cfg     *Config
	eng     *Engine
	met     *Metrics
	readyAt time.Time
	nextID  atomic.Uint64
	names   map[string]bool
	mux     *http.ServeMux
}

func NewServer(cfg *Config) *Server {
	eng := NewEngine(cfg)
	s := &Server{cfg: cfg, eng: eng, met: NewMetrics(cfg, eng), readyAt: eng.started.Add(cfg.StartupDuration),
		names: map[string]bool{}, mux: http.NewServeMux()}
	for _, n := range cfg.ServedNames {
		s.names[n] = true
	}
	s.mux.HandleFunc("GET /v1/models", s.models)
	s.mux.HandleFunc("POST /v1/chat/completions", s.generate(true))
	s.mux.HandleFunc("POST /v1/completions", s.generate(false))
	for _, p := range []string{"/health", "/health/ready", "/ping"} {
		s.mux.HandleFunc("GET "+p, s.health)
	}
	s.mux.HandleFunc("POST /ping", s.health)
	s.mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]string{"version": "0.12.0 (llm-stack vllm-sim)"})
	})
	s.mux.Handle("GET /metrics", s.met.Handler())
	return s
}

// Handlers that prometheus-fastapi-instrumentator is told to skip in vLLM.
var unmeasured = map[string]bool{"/metrics": true, "/health": true, "/health/ready": true, "/load": true,
	"/ping": true, "/version": true, "/server_info": true}

var measured = map[string]bool{"/v1/models": true, "/v1/chat/completions": true, "/v1/completions": true}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if unmeasured[r.URL.Path] {
		s.mux.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	rw := &recorder{ResponseWriter: w, status: 200}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusNotFound)
		io.WriteString(rw, `{"detail":"Not Found"}`)
	} else {
		s.mux.ServeHTTP(rw, r)
	}
	handler := r.URL.Path
	if !measured[handler] {
		handler = "none" // the instrumentator groups untemplated paths
	}
	s.met.HTTP(handler, r.Method, rw.status, r.ContentLength, rw.bytes, time.Since(start))
}

// recorder remembers the status and size of a response and still flushes.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }
func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) ready() bool { return !time.Now().Before(s.readyAt) }

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	if !s.ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

var errorTypes = map[int]string{400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError",
	429: "RateLimitError", 500: "InternalServerError", 503: "ServiceUnavailableError"}

// apiError writes vLLM's error body: {"error": {"message", "type", "param", "code"}}.
func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"message": msg, "type": errorTypes[status], "param": nil, "code": status}})
}

func (s *Server) gate(w http.ResponseWriter, r *http.Request) bool {
	if !s.ready() {
		apiError(w, 503, "the server is starting up")
		return false
	}
	if s.cfg.APIKey != "" {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.APIKey)) != 1 {
			writeJSON(w, 401, map[string]string{"error": "Unauthorized"})
			return false
		}
	}
	return true
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	if !s.gate(w, r) {
		return
	}
	data := []map[string]any{}
	for _, n := range s.cfg.ServedNames {
		data = append(data, map[string]any{"id": n, "object": "model", "created": s.eng.started.Unix(),
			"owned_by": "vllm", "root": s.cfg.Model, "parent": nil, "max_model_len": s.cfg.MaxModelLen})
	}
	writeJSON(w, 200, map[string]any{"object": "list", "data": data})
}

// request is the part of a chat or completions request the simulator reads.
type request struct {
	Model               string          `json:"model"`
	Messages            []message       `json:"messages"`
	Prompt              json.RawMessage `json:"prompt"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage         bool `json:"include_usage"`
		ContinuousUsageStats bool `json:"continuous_usage_stats"`
	} `json:"stream_options"`
	N *int `json:"n"`
}

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// text is a message's content: a string, or the text parts of an array of parts.
func (m message) text() (string, error) {
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(m.Content, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", fmt.Errorf("content: want a string or an array of content parts")
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// estimateTokens is the simulator's tokenizer: one token per 4 characters, at least one for
// non-empty text.
func estimateTokens(s string) int {
	return (utf8.RuneCountInString(s) + 3) / 4
}

// perMessageTokens stands for the chat template's role markers around each message.
const perMessageTokens = 4

// prompt returns the prompt text and its estimated token count.
func (q *request) prompt(chat bool) (string, int, error) {
	if chat {
		if len(q.Messages) == 0 {
			return "", 0, fmt.Errorf("messages: at least one message is required")
		}
		var b strings.Builder
		tokens := 0
		for i, m := range q.Messages {
			t, err := m.text()
			if err != nil {
				return "", 0, fmt.Errorf("messages[%d].%v", i, err)
			}
			b.WriteString(m.Role + ": " + t + "\n")
			tokens += estimateTokens(t) + perMessageTokens
		}
		return b.String(), tokens, nil
	}
	var s string
	if err := json.Unmarshal(q.Prompt, &s); err == nil {
		return s, max(1, estimateTokens(s)), nil
	}
	var ids []int
	if err := json.Unmarshal(q.Prompt, &ids); err == nil && len(ids) > 0 {
		return fmt.Sprint(ids), len(ids), nil
	}
	var list []string
	if err := json.Unmarshal(q.Prompt, &list); err == nil && len(list) == 1 {
		return list[0], max(1, estimateTokens(list[0])), nil
	}
	if len(q.Prompt) == 0 {
		return "", 0, fmt.Errorf("prompt: required")
	}
	return "", 0, fmt.Errorf("prompt: want a string, one-element string array or token id array (the simulator does not batch prompts)")
}

func (s *Server) generate(chat bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		arrival := time.Now()
		if !s.gate(w, r) {
			return
		}
		var q request
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
			apiError(w, 400, fmt.Sprintf("invalid JSON body: %v", err))
			return
		}
		if !s.names[q.Model] {
			apiError(w, 404, fmt.Sprintf("The model `%s` does not exist.", q.Model))
			return
		}
		if q.N != nil && *q.N != 1 {
			apiError(w, 400, fmt.Sprintf("n: %d is not supported by the simulator (only 1)", *q.N))
			return
		}
		var seed uint64
		failStatus := 0
		s.eng.Rand(func(rng *rand.Rand) {
			seed = rng.Uint64()
			if s.cfg.FailureRate > 0 && rng.Float64()*100 < s.cfg.FailureRate {
				failStatus = failureStatus[s.cfg.FailureTypes[rng.IntN(len(s.cfg.FailureTypes))]]
			}
		})
		if failStatus != 0 {
			apiError(w, failStatus, fmt.Sprintf("injected failure (--failure-injection-rate=%v)", s.cfg.FailureRate))
			return
		}
		promptText, promptTokens, err := q.prompt(chat)
		if err != nil {
			apiError(w, 400, err.Error())
			return
		}
		room := s.cfg.MaxModelLen - promptTokens
		if room < 1 {
			apiError(w, 400, fmt.Sprintf("This model's maximum context length is %d tokens. However, your request has %d input tokens. Please reduce the length of the input messages.", s.cfg.MaxModelLen, promptTokens))
			return
		}
		requested := q.MaxCompletionTokens
		if requested == nil {
			requested = q.MaxTokens
		}
		var outTokens, maxTokens int
		reason := "length"
		switch {
		case requested == nil:
			// Like a model that stops by itself; vLLM's default max_tokens is what remains of the context.
			outTokens, maxTokens, reason = min(s.cfg.OutputTokens, room), room, "stop"
			if s.cfg.OutputTokens > room {
				reason = "length"
			}
		case *requested < 1:
			apiError(w, 400, fmt.Sprintf("max_tokens: must be at least 1, got %d", *requested))
			return
		default:
			outTokens, maxTokens = min(*requested, room), *requested
		}
		g := &generation{s: s, w: w, chat: chat, model: q.Model, created: arrival.Unix(),
			prompt: promptText, promptTokens: promptTokens, outTokens: outTokens, maxTokens: maxTokens,
			reason: reason, rng: rand.New(rand.NewPCG(seed, 1)), arrival: arrival}
		if q.StreamOptions != nil {
			g.includeUsage, g.continuousUsage = q.StreamOptions.IncludeUsage, q.StreamOptions.ContinuousUsageStats
		}
		prefix := "cmpl-"
		if chat {
			prefix = "chatcmpl-"
		}
		g.id = fmt.Sprintf("%s%016x%08x", prefix, seed, s.nextID.Add(1))
		g.run(r.Context(), q.Stream)
	}
}

// generation is one request from the queue to its last token.
type generation struct {
	s                             *Server
	w                             http.ResponseWriter
	chat                          bool
	id, model, prompt             string
	created                       int64
	promptTokens, outTokens       int
	maxTokens                     int
	reason                        string
	includeUsage, continuousUsage bool
	rng                           *rand.Rand
	arrival                       time.Time
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	TotalTokens      int `json:"total_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

func (g *generation) usage(done int) *usage {
	return &usage{PromptTokens: g.promptTokens, CompletionTokens: done, TotalTokens: g.promptTokens + done}
}

func (g *generation) run(ctx context.Context, stream bool) {
	s, w := g.s, g.w
	var flush func()
	if stream {
		// vLLM answers 200 with the event-stream headers at once; tokens follow.
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(200)
		rc := http.NewResponseController(w)
		flush = func() { rc.Flush() }
		flush()
	}
	sq := s.eng.Admit(ctx, g.promptTokens)
	if sq == nil {
		s.met.Aborted()
		return
	}
	released := false
	defer func() {
		if !released {
			s.eng.Release(sq)
		}
	}()
	t := timeline{arrival: g.arrival, scheduled: time.Now(), promptTokens: g.promptTokens,
		maxTokens: g.maxTokens, reason: g.reason}
	cfg := s.cfg
	deadline := t.scheduled.Add(sample(g.rng, cfg.TTFT, cfg.TTFTStdDev))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	words := g.words()
	var text strings.Builder
	prev := time.Time{}
	for i := 0; i < g.outTokens; i++ {
		if d := time.Until(deadline); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				s.met.Aborted()
				return
			}
		} else if ctx.Err() != nil {
			s.met.Aborted()
			return
		}
		now := time.Now()
		word := words(i)
		if i == 0 {
			t.first = now
			s.met.ttft.Observe(now.Sub(g.arrival).Seconds())
			s.met.promptTokens.Add(float64(g.promptTokens))
			s.met.prefixQueries.Add(float64(g.promptTokens))
			s.met.prefixHits.Add(float64(s.eng.PrefixHits(g.prompt, g.promptTokens)))
			s.met.Token(0, true, g.promptTokens)
		} else {
			s.met.Token(now.Sub(prev), false, 0)
		}
		s.eng.Grow(sq)
		prev = now
		last := i == g.outTokens-1
		if stream {
			var err error
			if i == 0 && g.chat {
				err = g.send(g.chunk(&delta{Role: "assistant"}, "", "", nil))
			}
			if err == nil {
				finish := ""
				if last {
					finish = g.reason
				}
				err = g.send(g.chunk(&delta{Content: word}, word, finish, g.usageIf(g.continuousUsage, i+1)))
			}
			if err != nil {
				s.met.Aborted()
				return
			}
			flush()
		} else {
			text.WriteString(word)
		}
		deadline = deadline.Add(sample(g.rng, cfg.ITL, cfg.ITLStdDev))
	}
	t.last = time.Now()
	t.genTokens = g.outTokens
	s.eng.Release(sq)
	released = true
	s.met.Finished(t)
	if stream {
		if g.includeUsage {
			g.send(streamChunk{ID: g.id, Object: g.object(), Created: g.created, Model: g.model,
				Choices: []streamChoice{}, Usage: g.usage(g.outTokens)})
		}
		io.WriteString(w, "data: [DONE]\n\n")
		flush()
		return
	}
	type msg struct {
		Role      string `json:"role"`
		Content   string `json:"content"`
		ToolCalls []any  `json:"tool_calls"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Message      *msg    `json:"message,omitempty"`
		Text         *string `json:"text,omitempty"`
		Logprobs     *int    `json:"logprobs"`
		FinishReason string  `json:"finish_reason"`
		StopReason   *string `json:"stop_reason"`
	}
	out := text.String()
	c := choice{FinishReason: g.reason}
	if g.chat {
		c.Message = &msg{Role: "assistant", Content: out, ToolCalls: []any{}}
	} else {
		c.Text = &out
	}
	writeJSON(w, 200, struct {
		ID      string   `json:"id"`
		Object  string   `json:"object"`
		Created int64    `json:"created"`
		Model   string   `json:"model"`
		Choices []choice `json:"choices"`
		Usage   *usage   `json:"usage"`
	}{g.id, strings.TrimSuffix(g.object(), ".chunk"), g.created, g.model, []choice{c}, g.usage(g.outTokens)})
}

func (g *generation) usageIf(on bool, done int) *usage {
	if !on {
		return nil
	}
	return g.usage(done)
}

func (g *generation) object() string {
	if g.chat {
		return "chat.completion.chunk"
	}
	return "text_completion"
}

// The response shapes, with vLLM's field order. Pointer fields marshal as null when nil.
type delta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

type streamChoice struct {
	Index        int     `json:"index"`
	Delta        *delta  `json:"delta,omitempty"`
	Text         *string `json:"text,omitempty"`
	Logprobs     *int    `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
	StopReason   *string `json:"stop_reason"`
}

type streamChunk struct {
	ID      string         `json:"id"`
	Object  string         `json:"object"`
	Created int64          `json:"created"`
	Model   string         `json:"model"`
	Choices []streamChoice `json:"choices"`
	Usage   *usage         `json:"usage,omitempty"`
}

// chunk builds one streamed event: a chat delta or a text piece, with finish_reason on the last.
func (g *generation) chunk(d *delta, text string, finish string, u *usage) streamChunk {
	c := streamChoice{}
	if g.chat {
		c.Delta = d
	} else {
		c.Text = &text
	}
	if finish != "" {
		c.FinishReason = &finish
	}
	return streamChunk{ID: g.id, Object: g.object(), Created: g.created, Model: g.model,
		Choices: []streamChoice{c}, Usage: u}
}

func (g *generation) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, len(b)+8)
	buf = append(append(append(buf, "data: "...), b...), "\n\n"...)
	_, err = g.w.Write(buf)
	return err
}

// Made-up vocabulary: syllables that read as words and never spell a real answer.
var syllables = []string{"ka", "lo", "mi", "ren", "to", "sa", "vel", "nu", "dor", "pi", "qua", "zet", "ber", "fin", "go", "ash"}

// words returns the i-th output token's text: made-up words, or the prompt's words with --mode echo.
func (g *generation) words() func(i int) string {
	if g.s.cfg.Mode == "echo" {
		src := strings.Fields(g.prompt)
		if len(src) == 0 {
			src = []string{"echo"}
		}
		return func(i int) string { return lead(i, src[i%len(src)]) }
	}
	return func(i int) string {
		n := 1 + g.rng.IntN(3)
		var b strings.Builder
		for range n {
			b.WriteString(syllables[g.rng.IntN(len(syllables))])
		}
		return lead(i, b.String())
	}
}

func lead(i int, w string) string {
	if i == 0 {
		return w
	}
	return " " + w
}
