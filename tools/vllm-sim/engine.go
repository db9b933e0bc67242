package main

import (
	"context"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Engine is the simulated scheduler: at most MaxNumSeqs requests run; the rest wait in FIFO order,
// like vLLM's waiting queue. A request also waits while its prompt's KV blocks do not fit (unless
// nothing runs). Running requests hold ceil(tokens/block) blocks, which grow as they generate.
type Engine struct {
	cfg     *Config
	started time.Time

	mu          sync.Mutex
	running     int
	waiting     []*seq // FIFO
	usedBlocks  int
	preemptions float64
	prefix      map[uint64]struct{}
	rng         *rand.Rand
}

// seq is one admitted or waiting request.
type seq struct {
	ready  chan struct{}
	blocks int
	tokens int
	over   bool // already counted as a preemption
}

func NewEngine(cfg *Config) *Engine {
	seed := uint64(time.Now().UnixNano())
	if cfg.SeedSet {
		seed = uint64(cfg.Seed)
	}
	return &Engine{cfg: cfg, started: time.Now(), prefix: map[uint64]struct{}{},
		rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

func (e *Engine) blocksFor(tokens int) int {
	return (tokens + e.cfg.BlockSize - 1) / e.cfg.BlockSize
}

func (e *Engine) capacityBlocks() int { return max(1, e.cfg.KVCacheTokens/e.cfg.BlockSize) }

// Admit blocks until the request may run or ctx ends. It returns the running seq, or nil when ctx
// ended while waiting.
func (e *Engine) Admit(ctx context.Context, promptTokens int) *seq {
	s := &seq{ready: make(chan struct{}), tokens: promptTokens, blocks: e.blocksFor(promptTokens)}
	e.mu.Lock()
	e.waiting = append(e.waiting, s)
	e.scheduleLocked()
	e.mu.Unlock()
	select {
	case <-s.ready:
		return s
	case <-ctx.Done():
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-s.ready: // admitted meanwhile: give the slot back
		e.releaseLocked(s)
	default:
		for i, w := range e.waiting {
			if w == s {
				e.waiting = append(e.waiting[:i], e.waiting[i+1:]...)
				break
			}
		}
	}
	return nil
}

func (e *Engine) scheduleLocked() {
	for len(e.waiting) > 0 && e.running < e.cfg.MaxNumSeqs {
		s := e.waiting[0]
		if e.running > 0 && e.usedBlocks+s.blocks > e.capacityBlocks() {
			return
		}
		e.waiting = e.waiting[1:]
		e.running++
		e.usedBlocks += s.blocks
		close(s.ready)
	}
}

// Grow records one more generated token. A request that pushes the cache past its capacity is
// counted once in vllm:num_preemptions_total (it keeps running: the simulator does not recompute).
func (e *Engine) Grow(s *seq) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.tokens++
	if b := e.blocksFor(s.tokens); b != s.blocks {
		e.usedBlocks += b - s.blocks
		s.blocks = b
		if e.usedBlocks > e.capacityBlocks() && !s.over {
			s.over = true
			e.preemptions++
		}
	}
}

func (e *Engine) Release(s *seq) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.releaseLocked(s)
}

func (e *Engine) releaseLocked(s *seq) {
	e.running--
	e.usedBlocks -= s.blocks
	e.scheduleLocked()
}

// State is what the gauges show, after --fake-metrics.
func (e *Engine) State() (running, waiting, kvUsage float64) {
	e.mu.Lock()
	running, waiting = float64(e.running), float64(len(e.waiting))
	kvUsage = math.Min(1, float64(e.usedBlocks)/float64(e.capacityBlocks()))
	e.mu.Unlock()
	if fm := e.cfg.FakeMetrics; fm != nil {
		t := time.Since(e.started)
		if fm.Running != nil {
			running = math.Round(fm.Running.Value(t))
		}
		if fm.Waiting != nil {
			waiting = math.Round(fm.Waiting.Value(t))
		}
		if fm.KVCacheUsage != nil {
			kvUsage = fm.KVCacheUsage.Value(t)
		}
	}
	return
}

func (e *Engine) Preemptions() float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.preemptions
}

// PrefixHits returns how many of the prompt's tokens are in full blocks whose whole prefix was seen
// before, the way vLLM's prefix cache matches. Tokens are estimated as 4 characters each.
func (e *Engine) PrefixHits(prompt string, promptTokens int) int {
	if !e.cfg.PrefixCaching {
		return 0
	}
	chunk := 4 * e.cfg.BlockSize
	h := fnv.New64a()
	hits, missed := 0, false
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.prefix) > e.capacityBlocks() { // crude eviction: forget everything when full
		clear(e.prefix)
	}
	for i := 0; i+chunk <= len(prompt); i += chunk {
		h.Write([]byte(prompt[i : i+chunk]))
		k := h.Sum64()
		if _, ok := e.prefix[k]; ok && !missed {
			hits += e.cfg.BlockSize
			continue
		}
		missed = true
		e.prefix[k] = struct{}{}
	}
	return min(hits, promptTokens)
}

// Rand runs f with the engine's random source (math/rand/v2's Rand is not safe for concurrent use).
func (e *Engine) Rand(f func(r *rand.Rand)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e.rng)
}

// sample draws a latency from a normal distribution, never below zero.
func sample(r *rand.Rand, mean, std time.Duration) time.Duration {
	if std <= 0 {
		return mean
	}
	return max(0, mean+time.Duration(r.NormFloat64()*float64(std)))
}
