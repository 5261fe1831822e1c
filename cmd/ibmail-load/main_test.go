package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunAllPhases runs every phase with tiny sizes and checks that the
// table has each expected row with a positive number.
func TestRunAllPhases(t *testing.T) {
	phases, err := parsePhases("classify,ingest,segment")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{phases: phases, concurrency: 8, duration: 300 * time.Millisecond, events: 2000, queries: 5}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	if err := run(ctx, cfg, &out, &progress); err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("\n%s", out.String())
	want := []struct{ phase, measure, unit string }{
		{"classify", "ClassifyReport over loopback gRPC", "calls/s"},
		{"classify", "Health/Check (empty RPC), same way", "calls/s"},
		{"classify", "ratio classify/empty", ""},
		{"ingest", "webhook 100-report bodies, 8 clients", "reports/s"},
		{"ingest", "p50 per body", "ms"},
		{"ingest", "p99 per body", "ms"},
		{"segment", "seed 2000 events, 100 profiles", "s"},
		{"segment", "seed rate", "events/s"},
		{"segment", "week of hard bounces, page 1000 (", "ms"},
		{"segment", "week of hard bounces, page 1000 p99", "ms"},
		{"segment", "year of hard+soft bounces, page 1000 (", "ms"},
		{"segment", "year of hard+soft bounces, page 1000 p99", "ms"},
		{"segment", "30 days of any of 4 events, page 100 (", "ms"},
		{"segment", "30 days of any of 4 events, page 100 p99", "ms"},
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want)+1 || !strings.HasPrefix(lines[0], "phase") {
		t.Fatalf("got %d lines, want a header and %d rows:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		line := lines[i+1]
		if !strings.HasPrefix(line, w.phase+" ") || !strings.Contains(line, w.measure) {
			t.Errorf("row %d = %q, want phase %s, measure %q", i+1, line, w.phase, w.measure)
			continue
		}
		fields := strings.Fields(line)
		vi := len(fields) - 1
		if w.unit != "" {
			if fields[vi] != w.unit {
				t.Errorf("row %q: unit %q, want %q", line, fields[vi], w.unit)
			}
			vi--
		}
		v, err := strconv.ParseFloat(fields[vi], 64)
		if err != nil || v <= 0 {
			t.Errorf("row %q: value %q is not a positive number", line, fields[vi])
		}
	}
}

func TestConfigBounds(t *testing.T) {
	phases, _ := parsePhases("segment")
	ok := config{phases: phases, concurrency: 32, duration: time.Second, events: 1000, queries: 5}
	if err := ok.check(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]config{
		"concurrency": {phases: phases, concurrency: 0, duration: time.Second, events: 1000, queries: 5},
		"duration":    {phases: phases, concurrency: 1, duration: time.Hour, events: 1000, queries: 5},
		"events":      {phases: phases, concurrency: 1, duration: time.Second, events: maxEvents + 1, queries: 5},
		"db":          {phases: phases, concurrency: 1, duration: time.Second, events: 1000, queries: 5, db: "mysql://x"},
	} {
		if c.check() == nil {
			t.Errorf("%s: no error for %+v", name, c)
		}
	}
	if _, err := parsePhases("classify,bogus"); err == nil {
		t.Error("parsePhases accepted an unknown phase")
	}
}
