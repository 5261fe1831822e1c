// Command ibmail-load measures the server on one machine: it starts a whole
// server on loopback listeners, in a child process (this binary again, so
// that the server's peak RSS is its own; --server-process=false keeps it in
// this process), with a temporary SQLite store (or PostgreSQL with --db),
// and prints a table of:
//
//   - classify: ClassifyReport throughput beside an empty RPC;
//   - ingest: each webhook (--webhooks: delivery reports, tracking reports,
//     platform events) with bodies of each size (--bodies, 100 and 1
//     reports), throughput, p50 and p99 per body, beside an empty handler on
//     the same HTTP listener with the same bodies (the listener's ceiling)
//     and the ratio; after each run the store's counts must equal what was
//     acknowledged with 200, or the tool fails; and the server's peak RSS;
//   - dispatch: the sandbox's own ceiling (--ceiling long), then a send of
//     --recipients through the server's dispatcher to an in-process sandbox
//     that posts its reports back, in recipients/s and as a ratio to the
//     ceiling; the sandbox must have taken every recipient exactly once and
//     the store must hold every report it posted; and the peak RSS;
//   - segment: SearchProfiles latency over a seeded event log.
//
// The event log is seeded through the store's IngestReports (--seed store,
// the default: the path webhooks take, but past a million events it slows
// to hours for ten million on SQLite) or by INSERT ... SELECT statements
// run inside the engine (--seed sql: minutes for ten million, the way to
// the target), writing the same kind of rows; see seed.go.
//
//	go run ./cmd/ibmail-load --duration 10s --events 1000000
//	go run ./cmd/ibmail-load --phases ingest,dispatch --bodies 100,1 --recipients 100000
//	go run ./cmd/ibmail-load --phases segment --seed sql --events 10000000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ibmail/ibmail/buildinfo"
	"github.com/ibmail/ibmail/cmd/internal/envflag"
)

func main() {
	if sc, ok := os.LookupEnv(childEnv); ok {
		os.Exit(childMain(sc))
	}
	var cfg config
	// ContinueOnError: the command line's own set would exit on --help
	// before envflag prints the usage.
	fs := flag.NewFlagSet("ibmail-load", flag.ContinueOnError)
	var phases, webhooks, bodies string
	fs.StringVar(&phases, "phases", "classify,ingest,dispatch,segment", "phases to run, comma-separated: classify, ingest, dispatch, segment")
	fs.StringVar(&webhooks, "webhooks", strings.Join(webhookNames, ","), "webhooks the ingest phase posts to, comma-separated: delivery, tracking, platform")
	fs.StringVar(&bodies, "bodies", "100,1", "reports per body in the ingest phase, comma-separated: a run of each, beside the empty handler with the same bodies")
	fs.IntVar(&cfg.recipients, "recipients", 100_000, "recipients of the dispatch phase's send")
	fs.DurationVar(&cfg.ceiling, "ceiling", 3*time.Second, "how long the dispatch phase measures the sandbox's own ceiling")
	fs.BoolVar(&cfg.serverProcess, "server-process", true, "run the server in a child process (this binary again), so that its peak RSS is its own; false: in this process, with the load clients")
	fs.IntVar(&cfg.concurrency, "concurrency", 32, "concurrent clients in the classify and ingest phases")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long each throughput measurement runs")
	fs.IntVar(&cfg.events, "events", 1_000_000, "events to seed for the segment phase (the issue's target is 10,000,000)")
	fs.IntVar(&cfg.queries, "queries", 50, "repetitions of each SearchProfiles query")
	fs.StringVar(&cfg.seed, "seed", seedStore, "how the segment phase seeds its events: store (through IngestReports, as webhooks do; slow past 1,000,000) or sql (INSERT ... SELECT inside the engine; use it for 10,000,000)")
	fs.StringVar(&cfg.db, "db", "", "postgres:// URL to measure PostgreSQL (its tables get the seeded data); empty: a temporary SQLite store")
	showVersion := fs.Bool("version", false, "print the version and exit")
	err := envflag.New(fs, nil).Parse(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if *showVersion {
		fmt.Println("ibmail-load", buildinfo.Read())
		return
	}
	if err == nil {
		if cfg.phases, err = parsePhases(phases); err == nil {
			cfg.webhooks = splitList(webhooks)
			if cfg.bodies, err = parseInts(bodies); err == nil {
				err = cfg.check()
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ibmail-load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ibmail-load:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("--bodies: %q is not a number", p)
		}
		out = append(out, n)
	}
	return out, nil
}
