package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Generator gives a gauge's value t after the simulator started.
type Generator interface {
	Value(t time.Duration) float64
}

type constant float64

func (c constant) Value(time.Duration) float64 { return float64(c) }

// ramp goes linearly from From to To over Seconds, then holds To (or starts again with Repeat).
type ramp struct {
	From, To, Seconds float64
	Repeat            bool
}

func (r ramp) Value(t time.Duration) float64 {
	s := t.Seconds()
	if r.Repeat {
		s = math.Mod(s, r.Seconds)
	}
	if s >= r.Seconds {
		return r.To
	}
	return r.From + (r.To-r.From)*s/r.Seconds
}

// oscillate is a sine wave between Min and Max with the given Period, starting at Min.
type oscillate struct{ Min, Max, Period float64 }

func (o oscillate) Value(t time.Duration) float64 {
	phase := 2 * math.Pi * t.Seconds() / o.Period
	return o.Min + (o.Max-o.Min)*(1-math.Cos(phase))/2
}

// FakeMetrics replaces the simulated values of some gauges; a nil field keeps the real value.
type FakeMetrics struct {
	Running, Waiting, KVCacheUsage Generator
}

var fakeKeys = map[string]string{
	"running-requests": "a count >= 0", "waiting-requests": "a count >= 0", "kv-cache-usage": "a fraction 0-1",
}

// ParseFakeMetrics reads --fake-metrics. Each key takes a number, {"ramp": {"from", "to", "seconds",
// "repeat"}} or {"oscillate": {"min", "max", "period"}}. Errors name the offending path.
func ParseFakeMetrics(s string) (*FakeMetrics, error) {
	var top map[string]json.RawMessage
	if err := strictDecode([]byte(s), &top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	fm := &FakeMetrics{}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		want, ok := fakeKeys[k]
		if !ok {
			return nil, fmt.Errorf("%s: unknown key (want running-requests, waiting-requests or kv-cache-usage)", k)
		}
		upper := math.Inf(1)
		if k == "kv-cache-usage" {
			upper = 1
		}
		g, err := parseGenerator(k, top[k], upper, want)
		if err != nil {
			return nil, err
		}
		switch k {
		case "running-requests":
			fm.Running = g
		case "waiting-requests":
			fm.Waiting = g
		case "kv-cache-usage":
			fm.KVCacheUsage = g
		}
	}
	return fm, nil
}

func strictDecode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

func parseGenerator(path string, raw json.RawMessage, upper float64, want string) (Generator, error) {
	inRange := func(p string, v float64) error {
		if v < 0 || v > upper || math.IsNaN(v) {
			return fmt.Errorf("%s: %v is out of range (want %s)", p, v, want)
		}
		return nil
	}
	var num float64
	if err := json.Unmarshal(raw, &num); err == nil {
		if err := inRange(path, num); err != nil {
			return nil, err
		}
		return constant(num), nil
	}
	var obj struct {
		Ramp *struct {
			From    *float64 `json:"from"`
			To      *float64 `json:"to"`
			Seconds *float64 `json:"seconds"`
			Repeat  bool     `json:"repeat"`
		} `json:"ramp"`
		Oscillate *struct {
			Min    *float64 `json:"min"`
			Max    *float64 `json:"max"`
			Period *float64 `json:"period"`
		} `json:"oscillate"`
	}
	if err := strictDecode(raw, &obj); err != nil {
		return nil, fmt.Errorf("%s: want a number, {\"ramp\": {...}} or {\"oscillate\": {...}}: %v", path, err)
	}
	if (obj.Ramp == nil) == (obj.Oscillate == nil) {
		return nil, fmt.Errorf("%s: want exactly one of ramp or oscillate", path)
	}
	need := func(p string, v *float64, positive bool) (float64, error) {
		if v == nil {
			return 0, fmt.Errorf("%s: required", p)
		}
		if positive {
			if *v <= 0 {
				return 0, fmt.Errorf("%s: %v must be > 0", p, *v)
			}
			return *v, nil
		}
		return *v, inRange(p, *v)
	}
	var errs []string
	collect := func(v float64, err error) float64 {
		if err != nil {
			errs = append(errs, err.Error())
		}
		return v
	}
	if r := obj.Ramp; r != nil {
		p := path + ".ramp."
		g := ramp{From: collect(need(p+"from", r.From, false)), To: collect(need(p+"to", r.To, false)),
			Seconds: collect(need(p+"seconds", r.Seconds, true)), Repeat: r.Repeat}
		if errs != nil {
			return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		return g, nil
	}
	o := obj.Oscillate
	p := path + ".oscillate."
	g := oscillate{Min: collect(need(p+"min", o.Min, false)), Max: collect(need(p+"max", o.Max, false)),
		Period: collect(need(p+"period", o.Period, true))}
	if errs == nil && g.Min > g.Max {
		errs = append(errs, fmt.Sprintf("%smin: %v is above max %v", p, g.Min, g.Max))
	}
	if errs != nil {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return g, nil
}
