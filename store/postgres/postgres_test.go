package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres"
	"github.com/ibmail/ibmail/store/postgres/pgtest"
	"github.com/ibmail/ibmail/store/storetest"
	"github.com/jackc/pgx/v5"
)

// The helpers of pgtest, under the names these tests use.
var (
	requirePostgres = pgtest.RequireDSN
	freshSchema     = pgtest.FreshSchema
	withSearchPath  = pgtest.WithSearchPath
	admin           = pgtest.Exec
	redact          = pgtest.Redact
)

func open(tb testing.TB, dsn string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, freshSchema(t))
	})
}

// queryInts reads a column of integers with a connection of its own.
func queryInts(t *testing.T, dsn, sql string, args ...any) []int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func migrationVersions(t *testing.T, dsn string) []int {
	t.Helper()
	return queryInts(t, dsn, `SELECT version FROM schema_migrations ORDER BY version`)
}

func checkVersions(t *testing.T, versions []int) {
	t.Helper()
	if len(versions) == 0 || versions[0] != 1 {
		t.Errorf("schema_migrations versions = %v, want one row per migration from 1", versions)
	}
	for i := 1; i < len(versions); i++ {
		if versions[i] <= versions[i-1] {
			t.Errorf("schema_migrations versions = %v, want each once", versions)
		}
	}
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	t.Parallel()
	dsn := freshSchema(t)
	ctx := context.Background()
	s := open(t, dsn)
	if _, err := s.IngestReports(ctx, body("a", 10), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	first := migrationVersions(t, dsn)
	checkVersions(t, first)

	s = open(t, dsn)
	res, err := s.IngestReports(ctx, body("a", 10), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicates != 10 {
		t.Errorf("after reopening, duplicates = %d, want 10", res.Duplicates)
	}
	if got := migrationVersions(t, dsn); fmt.Sprint(got) != fmt.Sprint(first) {
		t.Errorf("versions after reopening = %v, want %v unchanged", got, first)
	}
}

// Replicas starting together must apply each migration once, and all start.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	dsn := freshSchema(t)
	const replicas = 6
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	stores := make([]*postgres.Store, replicas)
	start := make(chan struct{})
	for i := range replicas {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = postgres.Open(context.Background(), dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Open: %v", i, err)
		}
		defer stores[i].Close()
	}
	checkVersions(t, migrationVersions(t, dsn))
	for i, s := range stores {
		if err := s.Ping(context.Background()); err != nil {
			t.Errorf("replica %d: Ping: %v", i, err)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dsn := freshSchema(t)
	open(t, dsn).Close()
	admin(t, dsn, `INSERT INTO schema_migrations (version, name) VALUES (9999, 'future.sql')`)
	if s, err := postgres.Open(context.Background(), dsn); err == nil {
		s.Close()
		t.Fatal("Open of a database from a newer schema: no error")
	}
}

// A server that does not answer is an outage: ErrUnavailable, so that the
// service answers 503 and its callers retry.
func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens, the connection is refused.
	_, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if err == nil || !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open of an unreachable server: err = %v, want ErrUnavailable", err)
	}
	if _, err := postgres.Open(ctx, "postgres://%zz"); err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open of a malformed DSN: err = %v, want an error other than ErrUnavailable", err)
	}
}

// body makes n event reports whose message ids start with prefix.
func body(prefix string, n int) []store.Report {
	reports := make([]store.Report, n)
	now := time.Now()
	for i := range reports {
		msg := fmt.Sprintf("%s-%05d", prefix, i)
		reports[i] = store.Report{
			Key:         store.ReportKey{MessageID: msg, StatusID: 5, DoneAt: "2026-03-01T11:00:00.000+0000"},
			ProfileID:   "p-" + prefix,
			Email:       "a@example.com",
			Outcome:     store.OutcomeEvent,
			EventName:   "newsletter.hardbounce",
			EventTime:   now,
			ReceiveTime: now,
			Payload:     []byte(`{"messageId":"` + msg + `"}`),
			Params:      map[string]string{"messageId": msg},
		}
	}
	return reports
}

// Ids follow the order of a body even though its rows are inserted in key
// order: listings show the last report of a body as the newest.
func TestIngestIDsFollowBodyOrder(t *testing.T) {
	t.Parallel()
	s := open(t, freshSchema(t))
	ctx := context.Background()
	reports := body("order", 5)
	for i, j := 0, len(reports)-1; i < j; i, j = i+1, j-1 {
		reports[i], reports[j] = reports[j], reports[i]
	}
	if _, err := s.IngestReports(ctx, reports, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListReports(ctx, store.ReportQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if want := reports[len(reports)-1-i].Key.MessageID; r.Key.MessageID != want {
			t.Fatalf("report %d newest first = %s, want %s", i, r.Key.MessageID, want)
		}
	}
}
