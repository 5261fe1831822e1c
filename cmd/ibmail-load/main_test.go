package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres/pgtest"
)

// TestMain makes the test binary the server process of a run with
// --server-process, as main does for the tool's own binary.
func TestMain(m *testing.M) {
	if sc, ok := os.LookupEnv(childEnv); ok {
		os.Exit(childMain(sc))
	}
	os.Exit(m.Run())
}

type row struct{ phase, measure, unit string }

// ingestRows are the rows the ingest phase prints for webhooks and bodies.
func ingestRows(clients int, webhooks []string, bodies []int, memory string) []row {
	var want []row
	for _, w := range webhooks {
		for _, n := range bodies {
			label := fmt.Sprintf("%s %d-report bodies", w, n)
			if n == 1 {
				want = append(want, row{"ingest", fmt.Sprintf("%s webhook 1-report bodies, %d clients", w, clients), "bodies/s"})
			} else {
				want = append(want, row{"ingest", fmt.Sprintf("%s webhook %d-report bodies, %d clients", w, n, clients), "reports/s"})
			}
			want = append(want,
				row{"ingest", label + ": p50 per body", "ms"},
				row{"ingest", label + ": p99 per body", "ms"},
				row{"ingest", fmt.Sprintf("empty handler, same listener and %d-report %s bodies", n, w), "bodies/s"},
				row{"ingest", "empty handler: p99 per body", "ms"},
				row{"ingest", fmt.Sprintf("ratio %s/empty", label), ""},
				row{"ingest", fmt.Sprintf("stored = acknowledged, %s (checked)", label), "reports"})
		}
	}
	return append(want, row{"ingest", fmt.Sprintf("server peak RSS, %d clients (%s", clients, memory), "MiB"})
}

func dispatchRows(recipients int, memory string) []row {
	return []row{
		{"dispatch", "sandbox ceiling, 8 clients, 1000-recipient requests, 1s", "recipients/s"},
		{"dispatch", fmt.Sprintf("send of %d recipients, CreateSend to all accepted", recipients), "recipients/s"},
		{"dispatch", "ratio dispatch/ceiling", ""},
		{"dispatch", "CreateSend", "ms"},
		{"dispatch", "to every report stored", "reports/s"},
		{"dispatch", "accepted once each, every posted report stored (checked)", "reports"},
		{"dispatch", "server peak RSS, the send (" + memory, "MiB"},
	}
}

// TestRunAllPhases runs every phase with tiny sizes, the server in this
// process, and checks that the table has each expected row with a
// positive number.
func TestRunAllPhases(t *testing.T) {
	phases, err := parsePhases("classify,ingest,dispatch,segment")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{phases: phases, concurrency: 8, duration: 300 * time.Millisecond, events: 2000, queries: 5, seed: seedStore,
		webhooks: webhookNames, bodies: []int{100, 1}, recipients: 3000, ceiling: time.Second}
	out := runChecked(t, cfg)
	want := []row{
		{"classify", "ClassifyReport over loopback gRPC", "calls/s"},
		{"classify", "Health/Check (empty RPC), same way", "calls/s"},
		{"classify", "ratio classify/empty", ""},
	}
	want = append(want, ingestRows(8, webhookNames, []int{100, 1}, "this process")...)
	want = append(want, dispatchRows(3000, "this process")...)
	want = append(want, []row{
		{"segment", "seed 2000 events, 100 profiles, via IngestReports (--seed store", "s"},
		{"segment", "seed rate", "events/s"},
		{"segment", "week of hard bounces, page 1000 (", "ms"},
		{"segment", "week of hard bounces, page 1000 p99", "ms"},
		{"segment", "year of hard+soft bounces, page 1000 (", "ms"},
		{"segment", "year of hard+soft bounces, page 1000 p99", "ms"},
		{"segment", "30 days of any of 4 events, page 100 (", "ms"},
		{"segment", "30 days of any of 4 events, page 100 p99", "ms"},
	}...)
	checkRows(t, out, want)
}

// runChecked runs cfg, which must be valid, failing the test with the
// progress written on an error, and returns the table printed.
func runChecked(t *testing.T, cfg config) string {
	t.Helper()
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
	return out.String()
}

// TestRunServerProcess runs the ingest phase (every webhook, 100- and
// 1-report bodies) and the dispatch phase with the server in a child
// process, on SQLite and on PostgreSQL: a run that returns no error has
// found in the store exactly what was acknowledged, and what the sandbox
// posted back.
func TestRunServerProcess(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testRunServerProcess(t, "") })
	t.Run("postgres", func(t *testing.T) { testRunServerProcess(t, pgtest.FreshSchema(t)) })
}

func testRunServerProcess(t *testing.T, db string) {
	phases, _ := parsePhases("ingest,dispatch")
	cfg := config{phases: phases, concurrency: 8, duration: 300 * time.Millisecond, db: db,
		webhooks: webhookNames, bodies: []int{100, 1}, recipients: 2500, ceiling: time.Second, serverProcess: true}
	out := runChecked(t, cfg)
	const memory = "the server process (--server-process)"
	checkRows(t, out, append(ingestRows(8, webhookNames, []int{100, 1}, memory), dispatchRows(2500, memory)...))
}

// TestCountCheckFails loses one stored row after each kind of load run
// and wants the run to fail, naming the loss.
func TestCountCheckFails(t *testing.T) {
	for _, tc := range []struct {
		phases, webhook, table string
	}{
		{"ingest", "delivery", "delivery_reports"},
		{"ingest", "platform", "domain_events"},
		{"dispatch", "", "delivery_reports"},
	} {
		t.Run(tc.phases+"/"+tc.table, func(t *testing.T) {
			phases, _ := parsePhases(tc.phases)
			cfg := config{phases: phases, concurrency: 4, duration: 200 * time.Millisecond,
				webhooks: []string{tc.webhook}, bodies: []int{10}, recipients: 1200, ceiling: time.Second, serverProcess: true}
			if err := cfg.check(); err != nil && tc.webhook != "" {
				t.Fatal(err)
			}
			lost := false
			cfg.afterLoad = func(ctx context.Context, h *harness, what string) error {
				lost = true
				return loseNewestRow(ctx, h.sqlitePath, tc.table)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out, progress bytes.Buffer
			err := run(ctx, cfg, &out, &progress)
			if !lost {
				t.Fatalf("no row was lost: %v\n%s", err, progress.String())
			}
			if err == nil || !strings.Contains(err.Error(), "were lost") {
				t.Fatalf("run with a lost row: error %v, want one saying the reports were lost\n%s", err, out.String())
			}
			t.Log(err)
		})
	}
}

// loseNewestRow deletes the newest row of table behind the store's back,
// as a server that acknowledged it without keeping it would leave it.
func loseNewestRow(ctx context.Context, sqlitePath, table string) error {
	db, err := sql.Open("sqlite", "file:"+sqlitePath+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(0)")
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := db.ExecContext(ctx, `DELETE FROM `+table+` WHERE id = (SELECT max(id) FROM `+table+`)`)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("deleted %d rows of %s, want 1", n, table)
	}
	return nil
}

// TestRunSegmentSQL runs the segment phase alone, seeded by SQL, and checks
// that the table names the seeding.
func TestRunSegmentSQL(t *testing.T) {
	phases, err := parsePhases("segment")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{phases: phases, concurrency: 1, duration: time.Second, events: 2000, queries: 3, seed: seedSQL}
	out := runChecked(t, cfg)
	checkRows(t, out, []row{
		{"segment", "seed 2000 events, 100 profiles, via INSERT ... SELECT (--seed sql, 1000000 a chunk)", "s"},
		{"segment", "seed rate", "events/s"},
		{"segment", "week of hard bounces, page 1000 (", "ms"},
		{"segment", "week of hard bounces, page 1000 p99", "ms"},
		{"segment", "year of hard+soft bounces, page 1000 (", "ms"},
		{"segment", "year of hard+soft bounces, page 1000 p99", "ms"},
		{"segment", "30 days of any of 4 events, page 100 (", "ms"},
		{"segment", "30 days of any of 4 events, page 100 p99", "ms"},
	})
}

// checkRows checks that the printed table has a header and exactly the
// rows of want, in order, each with a positive number.
func checkRows(t *testing.T, out string, want []row) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want)+1 || !strings.HasPrefix(lines[0], "phase") {
		t.Fatalf("got %d lines, want a header and %d rows:\n%s", len(lines), len(want), out)
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
	for _, seed := range []string{seedStore, seedSQL} {
		ok := config{phases: phases, concurrency: 32, duration: time.Second, events: 1000, queries: 5, seed: seed}
		if err := ok.check(); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]config{
		"concurrency": {phases: phases, concurrency: 0, duration: time.Second, events: 1000, queries: 5, seed: seedStore},
		"duration":    {phases: phases, concurrency: 1, duration: time.Hour, events: 1000, queries: 5, seed: seedStore},
		"events":      {phases: phases, concurrency: 1, duration: time.Second, events: maxEvents + 1, queries: 5, seed: seedStore},
		"db":          {phases: phases, concurrency: 1, duration: time.Second, events: 1000, queries: 5, seed: seedStore, db: "mysql://x"},
		"seed":        {phases: phases, concurrency: 1, duration: time.Second, events: 1000, queries: 5, seed: "copy"},
		"no seed":     {phases: phases, concurrency: 1, duration: time.Second, events: 1000, queries: 5},
	} {
		if c.check() == nil {
			t.Errorf("%s: no error for %+v", name, c)
		}
	}
	if _, err := parsePhases("classify,bogus"); err == nil {
		t.Error("parsePhases accepted an unknown phase")
	}
}

// TestSeedSQL seeds 20,000 events by SQL, in chunks, into a store that
// already holds reports, and reads them back through the store: every
// sampled row exactly as sqlSeedEvent says, with the report, params and
// payload IngestReports would have written; the totals, the names, the
// profiles and the times spread as they should be; and ids that collide
// neither with the reports stored before nor with those ingested after.
// On SQLite, and on PostgreSQL as store/postgres/pgtest provides it.
func TestSeedSQL(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testSeedSQL(t, "") })
	t.Run("postgres", func(t *testing.T) { testSeedSQL(t, pgtest.FreshSchema(t)) })
}

func testSeedSQL(t *testing.T, db string) {
	const (
		n        = 20_000
		profiles = n / 20
		chunk    = 7000 // three chunks, the last one short
		before   = 50   // reports ingested before the seeding, and after
	)
	phases, _ := parsePhases("segment")
	cfg := config{phases: phases, concurrency: 1, duration: time.Second, events: n, queries: 1, db: db, seed: seedSQL, sqlChunk: chunk}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, stop, err := start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	st := h.store
	now := time.Now().UTC().Truncate(time.Second)

	// Reports from an earlier phase: the seeded ids must follow theirs.
	if res, err := st.IngestReports(ctx, seedReports(0, before, profiles, now), nil); err != nil || res.Events != before {
		t.Fatalf("ingest before: %+v, %v", res, err)
	}
	top, err := st.ListReports(ctx, store.ReportQuery{Limit: 1})
	if err != nil || len(top) != 1 {
		t.Fatalf("ListReports: %v, %v", top, err)
	}
	base := top[0].ID + 1

	seeded, how, err := seed(ctx, cfg, h, n, profiles, now, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if seeded != n || !strings.Contains(how, "--seed sql") {
		t.Fatalf("seed: %d events %q, want %d by --seed sql", seeded, how, n)
	}

	// Reports ingested afterwards get ids past the seeded ones.
	if res, err := st.IngestReports(ctx, seedReports(before, before, profiles, now), nil); err != nil || res.Events != before {
		t.Fatalf("ingest after: %+v, %v", res, err)
	}
	top, err = st.ListReports(ctx, store.ReportQuery{Limit: before + 1})
	if err != nil || len(top) != before+1 {
		t.Fatalf("ListReports: %d, %v", len(top), err)
	}
	if last := top[before]; last.ID != base+n-1 || last.Rule != "seed" || last.Key.MessageID != fmt.Sprintf("seed-%d", last.ID) {
		t.Errorf("the report before the ingest after: id %d %q %q, want the last seeded one, id %d", last.ID, last.Rule, last.Key.MessageID, base+n-1)
	}
	if first := top[before-1]; first.ID <= base+n-1 {
		t.Errorf("a report ingested after the seeding has id %d, not past the seeded %d", first.ID, base+n-1)
	}

	// Sampled rows, exactly: the ends, the chunk boundaries, and some more.
	samples := []int64{0, 1, chunk - 1, chunk, 2*chunk - 1, 2 * chunk, n - 2, n - 1}
	for i := int64(3); i < n; i += 1999 {
		samples = append(samples, i)
	}
	for _, i := range samples {
		id := base + i
		profile, name, at := sqlSeedEvent(i, n, profiles, now)
		if at.Before(now.Add(-year)) || !at.Before(now) {
			t.Fatalf("sqlSeedEvent(%d): time %v outside the year before %v", i, at, now)
		}
		msg := fmt.Sprintf("seed-%d", id)
		email := profile + "@example.com"
		evs, err := st.ListEvents(ctx, store.EventQuery{ProfileID: profile, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		k := slices.IndexFunc(evs, func(e store.Event) bool { return e.ID == id })
		if k < 0 {
			t.Errorf("event %d (seed index %d) not among the %d events of %s", id, i, len(evs), profile)
			continue
		}
		want := store.Event{ID: id, ReportID: id, Name: name, Time: at, ProfileID: profile, Email: email, Params: map[string]string{
			"bulkId": "bulk-seed", "errorId": "6012", "errorName": "EC_HARD_BOUNCE", "messageId": msg, "permanent": "true", "rule": "seed",
		}}
		if got := evs[k]; !reflect.DeepEqual(got, want) {
			t.Errorf("event %d:\n got %+v\nwant %+v", id, got, want)
		}
		rs, err := st.ListReports(ctx, store.ReportQuery{Outcome: store.OutcomeEvent, BeforeID: id + 1, Limit: 1})
		if err != nil || len(rs) != 1 || rs[0].ID != id {
			t.Fatalf("report %d: %+v, %v", id, rs, err)
		}
		r := rs[0]
		done := at.Format("2006-01-02T15:04:05.000-0700")
		wantR := store.StoredReport{
			ID:           id,
			Key:          store.ReportKey{MessageID: msg, StatusID: 4, ErrorID: 6012, DoneAt: done},
			ConnectionID: "conn-load", ProfileID: profile, Email: email, Outcome: store.OutcomeEvent,
			EventName: name, Rule: "seed", ReceiveTime: at,
		}
		payload := r.Payload
		r.Payload = nil
		if !reflect.DeepEqual(r, wantR) {
			t.Errorf("report %d:\n got %+v\nwant %+v", id, r, wantR)
		}
		var p struct {
			MessageID string `json:"messageId"`
			To        string `json:"to"`
			DoneAt    string `json:"doneAt"`
			Error     struct {
				ID int `json:"id"`
			} `json:"error"`
		}
		if err := json.Unmarshal(payload, &p); err != nil || p.MessageID != msg || p.To != email || p.DoneAt != done || p.Error.ID != 6012 {
			t.Errorf("report %d: payload %s: %+v, %v", id, payload, p, err)
		}
	}

	// The distribution, through SearchProfiles as the segment phase uses it.
	// search gives the events of every matching profile, page after page.
	search := func(names []string, since, until time.Time) (events int, perProfile []int) {
		t.Helper()
		q := store.ProfileQuery{Names: names, Since: since, Until: until, Limit: 1000}
		for {
			ms, err := st.SearchProfiles(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) == 0 {
				return events, perProfile
			}
			for _, m := range ms {
				events += m.EventCount
				perProfile = append(perProfile, m.EventCount)
			}
			q.AfterProfileID = ms[len(ms)-1].ProfileID
		}
	}
	// The reports ingested around the seeding add 2*before events, at
	// times in the same year, for profiles among the same ones.
	total, perProfile := search(nil, time.Time{}, time.Time{})
	if total != n+2*before {
		t.Errorf("%d events in all, want %d", total, n+2*before)
	}
	// About n/profiles = 20 events each, spread as random counts are
	// (Poisson: a standard deviation of about sqrt(20) = 4.5), neither dealt
	// out evenly nor piled on a few profiles.
	var sum, sum2 float64
	for _, c := range perProfile {
		sum += float64(c)
		sum2 += float64(c) * float64(c)
	}
	mean := sum / float64(len(perProfile))
	sd := math.Sqrt(sum2/float64(len(perProfile)) - mean*mean)
	t.Logf("%d profiles with events, %.1f each on average, standard deviation %.2f", len(perProfile), mean, sd)
	if len(perProfile) < profiles*98/100 || len(perProfile) > profiles || sd < 3 || sd > 7 {
		t.Errorf("%d profiles with events, standard deviation %.2f: want close to all %d, about %d events each, deviation about 4.5",
			len(perProfile), sd, profiles, n/profiles)
	}
	if got, _ := search(seedNames, now.Add(-year), now); got != total {
		t.Errorf("%d events in the year before now, want all %d", got, total)
	}
	for _, name := range seedNames {
		if got, _ := search([]string{name}, time.Time{}, time.Time{}); got < n/4*9/10 || got > n/4*11/10+2*before {
			t.Errorf("%d %s events, want about %d", got, name, n/4)
		}
	}
	for _, span := range []time.Duration{year / 2, 30 * 24 * time.Hour, 7 * 24 * time.Hour} {
		got, _ := search(nil, now.Add(-span), now)
		want := float64(n) * float64(span) / float64(year)
		if float64(got) < want*0.85 || float64(got) > want*1.15+2*before {
			t.Errorf("%d events in the %s before now, want about %.0f", got, span, want)
		}
	}
}
