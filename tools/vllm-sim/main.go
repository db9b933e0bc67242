// Command vllm-sim is llm-stack's vLLM simulator: it serves the OpenAI endpoints vLLM serves, with
// made-up tokens timed by --time-to-first-token and --inter-token-latency, and exports vLLM's
// metric names on /metrics. It is our own program, not llm-d-inference-sim.
package main

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	cfg, err := ParseArgs(os.Args[1:], os.Stdout) // only --help writes there
	if errors.Is(err, errHelp) {
		os.Exit(0)
	}
	if err != nil {
		log.Printf("vllm-sim: %v", err)
		os.Exit(2)
	}
	log.SetPrefix("vllm-sim ")
	for _, f := range cfg.Ignored {
		log.Printf("accepted vLLM flag %s (not simulated)", f)
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("listen on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: NewServer(cfg), ReadHeaderTimeout: 30 * time.Second}
	log.Printf("serving model %s as %v on http://%s (ttft=%v itl=%v max-num-seqs=%d max-model-len=%d ready after %v)",
		cfg.Model, cfg.ServedNames, ln.Addr(), cfg.TTFT, cfg.ITL, cfg.MaxNumSeqs, cfg.MaxModelLen, cfg.StartupDuration)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		log.Printf("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("serve: %v", err)
	}
}
