package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres"
	"github.com/ibmail/ibmail/store/sqlite"
)

// Bounds: the tool runs only against its own loopback server, but a typo
// in a flag should not keep a machine busy for a day.
const (
	maxConcurrency    = 1024
	maxDuration       = 10 * time.Minute
	maxEvents         = 50_000_000
	maxQueries        = 10_000
	seedBatch         = 5000
	reportsPerBody    = 100 // the default body, and the segment phase's batches
	maxReportsPerBody = 1000
	maxRecipients     = 1_000_000
	webhookSecret     = "ibmail-load-webhook-secret"
)

type config struct {
	phases      map[string]bool
	concurrency int
	duration    time.Duration
	events      int
	queries     int
	db          string
	seed        string // seedStore or seedSQL
	sqlChunk    int    // rows per transaction of --seed sql; 0: sqlSeedChunk
	// webhooks and bodies are what the ingest phase posts: each webhook
	// (webhookKinds) with bodies of each number of reports.
	webhooks []string
	bodies   []int
	// recipients is the size of the dispatch phase's send; ceiling how long
	// the sandbox's own ceiling is measured.
	recipients int
	ceiling    time.Duration
	// serverProcess runs the server in a child process (this binary again),
	// so that its peak RSS is its own.
	serverProcess bool
	allowBaseURLs []string // set by run for the dispatch phase's sandbox
	// afterLoad, when set, runs after each load run and before its counts
	// are checked: the tests lose a stored row there.
	afterLoad func(ctx context.Context, h *harness, what string) error
}

var allPhases = []string{"classify", "ingest", "dispatch", "segment"}

func parsePhases(s string) (map[string]bool, error) {
	m := map[string]bool{}
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(allPhases, p) {
			return nil, fmt.Errorf("--phases: unknown phase %q (use %s)", p, strings.Join(allPhases, ", "))
		}
		m[p] = true
	}
	if len(m) == 0 {
		return nil, errors.New("--phases: name at least one phase")
	}
	return m, nil
}

func (c config) check() error {
	switch {
	case c.concurrency < 1 || c.concurrency > maxConcurrency:
		return fmt.Errorf("--concurrency: 1 to %d", maxConcurrency)
	case c.duration <= 0 || c.duration > maxDuration:
		return fmt.Errorf("--duration: above 0, at most %s", maxDuration)
	case c.phases["segment"] && (c.events < 20 || c.events > maxEvents):
		return fmt.Errorf("--events: 20 to %d", maxEvents)
	case c.phases["segment"] && (c.queries < 1 || c.queries > maxQueries):
		return fmt.Errorf("--queries: 1 to %d", maxQueries)
	case c.phases["segment"] && c.seed != seedStore && c.seed != seedSQL:
		return fmt.Errorf("--seed: %s or %s", seedStore, seedSQL)
	case c.phases["ingest"] && len(c.webhooks) == 0:
		return errors.New("--webhooks: name at least one")
	case c.phases["ingest"] && len(c.bodies) == 0:
		return errors.New("--bodies: give at least one number of reports per body")
	case c.phases["dispatch"] && (c.recipients < 1 || c.recipients > maxRecipients):
		return fmt.Errorf("--recipients: 1 to %d", maxRecipients)
	case c.phases["dispatch"] && (c.ceiling < time.Second || c.ceiling > maxDuration):
		return fmt.Errorf("--ceiling: 1s to %s", maxDuration)
	}
	for _, w := range c.webhooks {
		if _, ok := webhookKinds[w]; !ok {
			return fmt.Errorf("--webhooks: unknown webhook %q (use %s)", w, strings.Join(webhookNames, ", "))
		}
	}
	for _, n := range c.bodies {
		if n < 1 || n > maxReportsPerBody {
			return fmt.Errorf("--bodies: 1 to %d reports per body", maxReportsPerBody)
		}
	}
	if c.db != "" {
		u, err := url.Parse(c.db)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return errors.New("--db: give a postgres:// URL, or nothing for a temporary SQLite store")
		}
	}
	return nil
}

// table collects the result rows and prints them aligned.
type table struct {
	rows [][4]string
}

func (t *table) add(phase, measure string, value float64, unit string) {
	t.rows = append(t.rows, [4]string{phase, measure, formatValue(value), unit})
}

func formatValue(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func (t *table) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tmeasure\tvalue\tunit")
	for _, r := range t.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r[0], r[1], r[2], r[3])
	}
	return tw.Flush()
}

// harness is the in-process server on loopback listeners.
type harness struct {
	store store.Store
	// sqlitePath is the temporary SQLite store's file, which --seed sql
	// opens beside the store; "" with PostgreSQL.
	sqlitePath string
	conn       *grpc.ClientConn // over loopback TCP
	grpcAddr   string
	restURL    string
	// pid is the process whose peak RSS is the server's, and memory says
	// what that figure covers.
	pid    int
	memory string
}

// run starts the server, runs the selected phases in order and prints the
// table to out; progress goes to progress.
func run(ctx context.Context, cfg config, out, progress io.Writer) error {
	logf := func(format string, args ...any) { fmt.Fprintf(progress, "ibmail-load: "+format+"\n", args...) }
	var sb *dispatchSandbox
	if cfg.phases["dispatch"] {
		// The sandbox runs here, beside the load clients, and the server
		// must admit it as a connection's base URL.
		sb = newDispatchSandbox(cfg.recipients)
		defer sb.close()
		cfg.allowBaseURLs = append(cfg.allowBaseURLs, sb.url)
	}
	h, stop, err := start(ctx, cfg)
	if err != nil {
		return err
	}
	defer stop()
	logf("server: %s, peak RSS of %s", h.restURL, h.memory)
	var t table
	if cfg.phases["classify"] {
		logf("classify: %d clients, %s each for ClassifyReport and Health/Check", cfg.concurrency, cfg.duration)
		if err := classifyPhase(ctx, cfg, h, &t); err != nil {
			return fmt.Errorf("classify: %w", err)
		}
	}
	if cfg.phases["ingest"] {
		if err := ingestPhase(ctx, cfg, h, &t, logf); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	if cfg.phases["dispatch"] {
		if err := dispatchPhase(ctx, cfg, h, sb, &t, logf); err != nil {
			return fmt.Errorf("dispatch: %w", err)
		}
	}
	if cfg.phases["segment"] {
		logf("segment: seeding %d events over %d profiles (--seed %s)", cfg.events, cfg.events/20, cfg.seed)
		if err := segmentPhase(ctx, cfg, h, &t, logf); err != nil {
			return fmt.Errorf("segment: %w", err)
		}
	}
	return t.print(out)
}

// start serves the store over gRPC and REST on loopback, in a child
// process (cfg.serverProcess) or in this one, and opens the store here too
// for the phases that seed it and for the counts; stop shuts all down and
// removes a temporary store.
func start(ctx context.Context, cfg config) (*harness, func(), error) {
	var cleanups []func()
	stop := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	fail := func(err error) (*harness, func(), error) { stop(); return nil, nil, err }

	sc := serveConfig{DB: cfg.db, AllowBaseURLs: cfg.allowBaseURLs}
	if cfg.db == "" {
		dir, err := os.MkdirTemp("", "ibmail-load-")
		if err != nil {
			return fail(err)
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		sc.SQLitePath = filepath.Join(dir, "ibmail.db")
	}
	h := &harness{sqlitePath: sc.SQLitePath}
	if cfg.serverProcess {
		pid, ready, stopChild, err := startChild(ctx, sc)
		if err != nil {
			return fail(fmt.Errorf("server process: %w", err))
		}
		cleanups = append(cleanups, func() {
			if err := stopChild(); err != nil {
				fmt.Fprintln(os.Stderr, "ibmail-load: server process:", err)
			}
		})
		h.pid, h.restURL, h.memory = pid, "http://"+strings.TrimPrefix(ready.REST, "http://"), "the server process (--server-process)"
		// The store again, here: the server migrated it already.
		var st store.Store
		if cfg.db != "" {
			st, err = postgres.Open(ctx, cfg.db)
		} else {
			st, err = sqlite.Open(ctx, sc.SQLitePath)
		}
		if err != nil {
			return fail(fmt.Errorf("store: %w", err))
		}
		cleanups = append(cleanups, func() { st.Close() })
		h.store, h.grpcAddr = st, ready.GRPC
	} else {
		s, err := serve(ctx, sc)
		if err != nil {
			return fail(err)
		}
		cleanups = append(cleanups, s.stop)
		h.store, h.grpcAddr, h.restURL = s.store, s.grpc, s.rest
		h.pid, h.memory = os.Getpid(), "this process: the server and the load clients together (--server-process=false)"
	}

	conn, err := grpc.NewClient("passthrough:///"+h.grpcAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { conn.Close() })
	h.conn = conn
	// Wait until the health service says SERVING (Serve sets it).
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fail(fmt.Errorf("server not serving: %v", err))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return h, stop, nil
}

// closedLoop runs call from n clients until d has passed, each client
// calling again as soon as its call returns, and gives the completed calls
// and the time they took. The first error ends it.
func closedLoop(ctx context.Context, n int, d time.Duration, call func(ctx context.Context, client, i int) error) (int64, time.Duration, error) {
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for c := range n {
		wg.Go(func() {
			for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
				if err := call(ctx, c, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return done.Load(), elapsed, firstErr
}

// classifyReport is a typical report to classify: a hard bounce.
func classifyReport() *ibmailv1.ClassifyReportRequest {
	return &ibmailv1.ClassifyReportRequest{Report: &ibmailv1.DeliveryReport{
		BulkId: "bulk-1", MessageId: "msg-1", To: "user1@example.com",
		SentAt: "2024-05-01T09:59:57.628+0000", DoneAt: "2024-05-01T10:00:01.256+0000",
		SmsCount: 1, AttemptCount: 1, TimeToFirstAttempt: 123,
		Price:        &ibmailv1.ReportPrice{Currency: "UNKNOWN"},
		Status:       &ibmailv1.ReportStatus{Id: 4, GroupId: 2, GroupName: "UNDELIVERABLE", Name: "UNDELIVERABLE_REJECTED_OPERATOR", Description: "Message rejected"},
		Error:        &ibmailv1.ReportError{Id: 6012, Name: "EC_HARD_BOUNCE", Description: "Hard bounce", GroupId: 2, GroupName: "BOUNCED", Permanent: true},
		CallbackData: `{"profileId":"p-1"}`, ApplicationId: "marketing-automation-application",
		EntityId: "promotional-traffic-entity", CampaignReferenceId: "campaign-reference-123",
		SendingIp: "192.0.2.0", Smtp: &ibmailv1.ReportSmtp{Response: "550 5.1.1 mailbox unavailable"},
	}}
}

// classifyPhase measures ClassifyReport, then the empty Health/Check the
// same way on the same connection.
func classifyPhase(ctx context.Context, cfg config, h *harness, t *table) error {
	classes := ibmailv1.NewClassifierServiceClient(h.conn)
	req := classifyReport()
	classify := func(ctx context.Context, _, _ int) error {
		resp, err := classes.ClassifyReport(ctx, req)
		if err == nil && resp.GetEventName() == "" {
			err = errors.New("the hard bounce made no event")
		}
		return err
	}
	hc := healthpb.NewHealthClient(h.conn)
	empty := func(ctx context.Context, _, _ int) error {
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	// A short warm-up of both, not counted: connections, buffers, the
	// scheduler's and the allocator's steady state.
	warm := min(cfg.duration/10, time.Second)
	for _, call := range []func(context.Context, int, int) error{classify, empty} {
		if _, _, err := closedLoop(ctx, cfg.concurrency, warm, call); err != nil {
			return err
		}
	}
	n, el, err := closedLoop(ctx, cfg.concurrency, cfg.duration, classify)
	if err != nil {
		return err
	}
	classifyRate := float64(n) / el.Seconds()
	n, el, err = closedLoop(ctx, cfg.concurrency, cfg.duration, empty)
	if err != nil {
		return err
	}
	emptyRate := float64(n) / el.Seconds()
	t.add("classify", "ClassifyReport over loopback gRPC", classifyRate, "calls/s")
	t.add("classify", "Health/Check (empty RPC), same way", emptyRate, "calls/s")
	t.add("classify", "ratio classify/empty", classifyRate/emptyRate, "")
	return nil
}

func percentile(sorted []time.Duration, p int) time.Duration {
	return sorted[(len(sorted)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var seedNames = []string{"newsletter.hardbounce", "newsletter.softbounce", "newsletter.spambounce", "newsletter.dropped"}

const year = 365 * 24 * time.Hour

// segmentPhase seeds the event log as cfg.seed says (see seed.go), then
// times typical SearchProfiles queries over gRPC.
func segmentPhase(ctx context.Context, cfg config, h *harness, t *table, logf func(string, ...any)) error {
	profiles := max(cfg.events/20, 1)
	now := time.Now().UTC().Truncate(time.Second)
	start := time.Now()
	seeded, how, err := seed(ctx, cfg, h, cfg.events, profiles, now, logf)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	seedTime := time.Since(start)
	logf("segment: seeded %d events in %s", seeded, seedTime.Round(time.Millisecond))
	t.add("segment", fmt.Sprintf("seed %d events, %d profiles, %s", seeded, profiles, how), seedTime.Seconds(), "s")
	t.add("segment", "seed rate", float64(seeded)/seedTime.Seconds(), "events/s")

	people := ibmailv1.NewProfileServiceClient(h.conn)
	queries := []struct {
		name string
		req  *ibmailv1.SearchProfilesRequest
	}{
		{"week of hard bounces, page 1000", &ibmailv1.SearchProfilesRequest{
			EventNames: seedNames[:1], Since: timestamppb.New(now.Add(-7 * 24 * time.Hour)), Until: timestamppb.New(now), PageSize: 1000}},
		{"year of hard+soft bounces, page 1000", &ibmailv1.SearchProfilesRequest{
			EventNames: seedNames[:2], Since: timestamppb.New(now.Add(-year)), Until: timestamppb.New(now.Add(time.Second)), PageSize: 1000}},
		{"30 days of any of 4 events, page 100", &ibmailv1.SearchProfilesRequest{
			EventNames: seedNames, Since: timestamppb.New(now.Add(-30 * 24 * time.Hour)), Until: timestamppb.New(now), PageSize: 100}},
	}
	logf("segment: %d SearchProfiles calls per query", cfg.queries)
	for _, q := range queries {
		lat := make([]time.Duration, 0, cfg.queries)
		found := 0
		for range cfg.queries {
			t0 := time.Now()
			resp, err := people.SearchProfiles(ctx, q.req)
			if err != nil {
				return fmt.Errorf("%s: %w", q.name, err)
			}
			lat = append(lat, time.Since(t0))
			found = len(resp.GetProfiles())
		}
		slices.Sort(lat)
		t.add("segment", fmt.Sprintf("%s (%d found) p50", q.name, found), ms(percentile(lat, 50)), "ms")
		t.add("segment", fmt.Sprintf("%s p99", q.name), ms(percentile(lat, 99)), "ms")
	}
	return nil
}
