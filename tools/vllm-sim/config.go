package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything the simulator reads from its command line.
type Config struct {
	Model           string
	ServedNames     []string
	Host            string
	Port            int
	TTFT            time.Duration
	TTFTStdDev      time.Duration
	ITL             time.Duration
	ITLStdDev       time.Duration
	MaxNumSeqs      int
	MaxModelLen     int
	KVCacheTokens   int
	BlockSize       int
	OutputTokens    int
	FailureRate     float64 // percent, 0-100
	FailureTypes    []string
	StartupDuration time.Duration
	FakeMetrics     *FakeMetrics
	Seed            int64
	SeedSet         bool
	Mode            string
	APIKey          string
	ShowHiddenFor   string
	PrefixCaching   bool

	// Ignored holds the vLLM engine flags that were accepted but are not simulated, as given.
	Ignored []string
}

// errHelp is returned by ParseArgs for --help; the usage text has been written.
var errHelp = errors.New("help requested")

// durationMS is a latency flag: a bare number is milliseconds (as in llm-d-inference-sim), a Go
// duration ("150ms", "1.5s") is taken as written.
type durationMS struct{ d *time.Duration }

func (v durationMS) String() string {
	if v.d == nil {
		return "0"
	}
	return strconv.FormatFloat(float64(*v.d)/float64(time.Millisecond), 'f', -1, 64)
}

func (v durationMS) Set(s string) error {
	d, err := parseDuration(s, time.Millisecond)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

// durationS is like durationMS with seconds as the bare unit (--startup-duration).
type durationS struct{ d *time.Duration }

func (v durationS) String() string {
	if v.d == nil {
		return "0"
	}
	return strconv.FormatFloat(v.d.Seconds(), 'f', -1, 64)
}

func (v durationS) Set(s string) error {
	d, err := parseDuration(s, time.Second)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func parseDuration(s string, unit time.Duration) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 {
			return 0, fmt.Errorf("must not be negative")
		}
		return time.Duration(f * float64(unit)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a number or a duration such as 150ms")
	}
	if d < 0 {
		return 0, fmt.Errorf("must not be negative")
	}
	return d, nil
}

// listFlag collects a repeatable, comma-separated flag.
type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l.v = append(*l.v, p)
		}
	}
	return nil
}

// fakeFlag parses --fake-metrics as soon as it is seen, so its error names the flag.
type fakeFlag struct{ f **FakeMetrics }

func (v fakeFlag) String() string { return "" }
func (v fakeFlag) Set(s string) error {
	fm, err := ParseFakeMetrics(s)
	if err != nil {
		return err
	}
	*v.f = fm
	return nil
}

// vLLM engine flags that take no value. An unknown flag not listed here swallows the next argument
// as its value unless that argument starts with "-", which is what vLLM's own argparse would do.
var vllmBoolFlags = map[string]bool{
	"enable-prefix-caching": true, "no-enable-prefix-caching": true, "enable-chunked-prefill": true,
	"no-enable-chunked-prefill": true, "enable-lora": true, "trust-remote-code": true, "enforce-eager": true,
	"disable-log-requests": true, "enable-log-requests": true, "disable-log-stats": true,
	"enable-auto-tool-choice": true, "disable-custom-all-reduce": true, "enable-prompt-tokens-details": true,
	"disable-frontend-multiprocessing": true, "enable-sleep-mode": true, "disable-fastapi-docs": true,
	"enable-expert-parallel": true, "enable-server-load-tracking": true, "enable-force-include-usage": true,
	"async-scheduling": true, "no-async-scheduling": true, "enable-lora-bias": true, "headless": true,
	"disable-uvicorn-access-log": true, "enable-request-id-headers": true, "skip-tokenizer-init": true,
	"force-dummy-tokenizer": true, "kv-cache-metrics": true, "enable-log-outputs": true,
	"disable-sliding-window": true, "disable-cascade-attn": true, "enable-tokenizer-info-endpoint": true,
}

// What --help shows as the argument of flags with custom parsers.
var valueKinds = map[string]string{
	"time-to-first-token": "ms", "time-to-first-token-std-dev": "ms", "inter-token-latency": "ms",
	"inter-token-latency-std-dev": "ms", "startup-duration": "seconds", "served-model-name": "names",
	"failure-types": "types", "fake-metrics": "json",
}

// flagsFor builds the flag set that fills c; usage goes to out.
func flagsFor(c *Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vllm-sim", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Model, "model", "", "model name (or the positional MODEL, as in vllm serve MODEL)")
	fs.Var(listFlag{&c.ServedNames}, "served-model-name", "name(s) the API accepts; repeatable or comma-separated (default: --model). Metrics carry the first as model_name")
	fs.StringVar(&c.Host, "host", "", "address to listen on (default: all interfaces)")
	fs.IntVar(&c.Port, "port", 8000, "port to listen on")
	fs.Var(durationMS{&c.TTFT}, "time-to-first-token", "time to first token after the request leaves the queue, ms (or a duration like 150ms)")
	fs.Var(durationMS{&c.TTFTStdDev}, "time-to-first-token-std-dev", "standard deviation of the time to first token, ms")
	fs.Var(durationMS{&c.ITL}, "inter-token-latency", "time between output tokens, ms")
	fs.Var(durationMS{&c.ITLStdDev}, "inter-token-latency-std-dev", "standard deviation of the inter-token latency, ms")
	fs.IntVar(&c.MaxNumSeqs, "max-num-seqs", 256, "requests generated at once; more wait in the queue (vllm:num_requests_waiting)")
	fs.IntVar(&c.MaxModelLen, "max-model-len", 4096, "context length: prompt + output tokens")
	fs.IntVar(&c.KVCacheTokens, "kv-cache-tokens", 65536, "KV cache capacity in tokens; vllm:kv_cache_usage_perc = blocks held by running requests / capacity")
	fs.IntVar(&c.BlockSize, "block-size", 16, "KV cache block size in tokens")
	fs.IntVar(&c.OutputTokens, "output-tokens", 64, "output tokens when a request sets neither max_tokens nor max_completion_tokens (finish_reason stop)")
	fs.Float64Var(&c.FailureRate, "failure-injection-rate", 0, "percentage (0-100) of API requests that fail with an OpenAI-style error")
	fs.Var(listFlag{&c.FailureTypes}, "failure-types", "kinds of injected failure, picked uniformly: server_error (500), rate_limit (429), unavailable (503), invalid_request (400), context_length (400), invalid_api_key (401), model_not_found (404) (default server_error,rate_limit,unavailable)")
	fs.Var(durationS{&c.StartupDuration}, "startup-duration", "seconds after start during which /health, /health/ready and the API answer 503")
	fs.Var(fakeFlag{&c.FakeMetrics}, "fake-metrics", `JSON that overrides gauges, e.g. {"running-requests":3,"waiting-requests":{"ramp":{"from":0,"to":20,"seconds":60}},"kv-cache-usage":{"oscillate":{"min":0.2,"max":0.9,"period":30}}}`)
	fs.Int64Var(&c.Seed, "seed", 0, "random seed for latencies, failures and generated words (default: time-based)")
	fs.StringVar(&c.Mode, "mode", "random", "random: made-up words; echo: repeat the prompt's words")
	fs.StringVar(&c.APIKey, "api-key", os.Getenv("VLLM_API_KEY"), "require the header Authorization: Bearer <key> on /v1/* (default: $VLLM_API_KEY)")
	fs.StringVar(&c.ShowHiddenFor, "show-hidden-metrics-for-version", "", "also export vLLM's hidden deprecated metrics (vllm:time_per_output_token_seconds)")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: vllm-sim [serve] [MODEL] [flags]\n\n"+
			"llm-stack's vLLM simulator: OpenAI API with timed made-up tokens and vLLM's /metrics.\n"+
			"Other vLLM engine flags (--tensor-parallel-size, --dtype, ...) are accepted and ignored.\n\nFlags:\n")
		fs.VisitAll(func(f *flag.Flag) {
			kind, usage := flag.UnquoteUsage(f)
			if k, ok := valueKinds[f.Name]; ok {
				kind = k
			}
			fmt.Fprintf(out, "  --%s %s\n      %s", f.Name, kind, usage)
			if f.DefValue != "" && f.DefValue != "0" && !strings.Contains(usage, "(default") {
				fmt.Fprintf(out, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
	return fs
}

// ParseArgs reads vLLM-style arguments. Known flags are ours; unknown --flags are recorded in
// Config.Ignored so the chart's vLLM argument list runs unchanged. Usage and errors go to out.
func ParseArgs(args []string, out io.Writer) (*Config, error) {
	c := &Config{}
	fs := flagsFor(c, out)
	var known, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		// vLLM's parser treats --max_model_len and --max-model-len alike.
		name = strings.ReplaceAll(name, "_", "-")
		if name == "h" || name == "help" {
			fs.Usage()
			return nil, errHelp
		}
		if fs.Lookup(name) == nil {
			if !hasValue && !vllmBoolFlags[name] && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				value, hasValue = args[i], true
			}
			if hasValue {
				c.Ignored = append(c.Ignored, "--"+name+"="+value)
			} else {
				c.Ignored = append(c.Ignored, "--"+name)
			}
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag --%s: needs a value", name)
			}
			i++
			value = args[i]
			// vLLM's --served-model-name takes several names: `--served-model-name a b`.
			// Extra names are taken only once the model is known, so `--served-model-name a MODEL` works too.
			for name == "served-model-name" && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && modelSeen(positional, known) {
				i++
				value += "," + args[i]
			}
		}
		known = append(known, "--"+name+"="+value)
	}
	for _, kv := range known {
		name, value, _ := strings.Cut(strings.TrimPrefix(kv, "--"), "=")
		if err := fs.Set(name, value); err != nil {
			return nil, fmt.Errorf("--%s=%s: %v", name, value, err)
		}
		if name == "seed" {
			c.SeedSet = true
		}
	}
	if len(positional) > 0 && positional[0] == "serve" {
		positional = positional[1:]
	}
	switch {
	case len(positional) > 1:
		return nil, fmt.Errorf("unexpected argument %q: only one positional MODEL is accepted", positional[1])
	case len(positional) == 1 && c.Model != "" && c.Model != positional[0]:
		return nil, fmt.Errorf("model given twice: positional %q and --model=%q", positional[0], c.Model)
	case len(positional) == 1:
		c.Model = positional[0]
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func modelSeen(positional, known []string) bool {
	for _, p := range positional {
		if p != "serve" {
			return true
		}
	}
	for _, k := range known {
		if strings.HasPrefix(k, "--model=") {
			return true
		}
	}
	return false
}

var failureStatus = map[string]int{
	"server_error": 500, "rate_limit": 429, "unavailable": 503, "invalid_request": 400,
	"context_length": 400, "invalid_api_key": 401, "model_not_found": 404,
}

func (c *Config) validate() error {
	if c.Model == "" {
		return errors.New("--model: required (or give MODEL as the first positional argument)")
	}
	if len(c.ServedNames) == 0 {
		c.ServedNames = []string{c.Model}
	}
	if len(c.FailureTypes) == 0 {
		c.FailureTypes = []string{"server_error", "rate_limit", "unavailable"}
	}
	for _, t := range c.FailureTypes {
		if _, ok := failureStatus[t]; !ok {
			return fmt.Errorf("--failure-types: unknown type %q (want one of server_error, rate_limit, unavailable, invalid_request, context_length, invalid_api_key, model_not_found)", t)
		}
	}
	checks := []struct {
		name string
		ok   bool
		want string
		val  any
	}{
		{"--port", c.Port >= 0 && c.Port <= 65535, "0-65535", c.Port},
		{"--max-num-seqs", c.MaxNumSeqs >= 1, ">= 1", c.MaxNumSeqs},
		{"--max-model-len", c.MaxModelLen >= 2, ">= 2", c.MaxModelLen},
		{"--kv-cache-tokens", c.KVCacheTokens >= 1, ">= 1", c.KVCacheTokens},
		{"--block-size", c.BlockSize >= 1, ">= 1", c.BlockSize},
		{"--output-tokens", c.OutputTokens >= 1, ">= 1", c.OutputTokens},
		{"--failure-injection-rate", c.FailureRate >= 0 && c.FailureRate <= 100, "a percentage 0-100", c.FailureRate},
		{"--mode", c.Mode == "random" || c.Mode == "echo", "random or echo", c.Mode},
	}
	for _, k := range checks {
		if !k.ok {
			return fmt.Errorf("%s: %v is out of range (want %s)", k.name, k.val, k.want)
		}
	}
	// vLLM V1 caches prefixes unless told not to.
	c.PrefixCaching = true
	for _, f := range c.Ignored {
		if f == "--no-enable-prefix-caching" || f == "--enable-prefix-caching=false" || f == "--enable-prefix-caching=False" {
			c.PrefixCaching = false
		}
	}
	return nil
}
