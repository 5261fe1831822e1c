package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres"
	"github.com/ibmail/ibmail/store/storetest"
	"github.com/jackc/pgx/v5"
)

// envDSN names the database the tests use. Each test works in a schema of
// its own, created and dropped around it, so the database may be shared.
const (
	envDSN     = "IBMAIL_TEST_POSTGRES"
	defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

var reach struct {
	once sync.Once
	dsn  string
	err  error
}

// requirePostgres returns the test database's DSN. When IBMAIL_TEST_POSTGRES
// is not set and nothing answers at the default address, the test is
// skipped, so that "go test ./..." passes on a machine without PostgreSQL;
// when it is set, an unreachable database fails the test instead, so that a
// CI that asked for these tests cannot pass without running them.
func requirePostgres(tb testing.TB) string {
	tb.Helper()
	reach.once.Do(func() {
		reach.dsn = os.Getenv(envDSN)
		if reach.dsn == "" {
			reach.dsn = defaultDSN
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, reach.dsn)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		reach.err = err
	})
	if reach.err != nil {
		if os.Getenv(envDSN) != "" {
			tb.Fatalf("PostgreSQL at %s=%q: %v", envDSN, redact(reach.dsn), reach.err)
		}
		tb.Skipf("PostgreSQL not reachable at %s (%v): start one there (user postgres, database test, trust auth) "+
			"or set %s to the URL of a database the tests may create schemas in", defaultDSN, reach.err, envDSN)
	}
	return reach.dsn
}

// redact hides a password in a URL DSN before it goes into a message.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

// freshSchema creates a schema of a random name and returns a DSN whose
// search_path is that schema, so that each test has an empty database of
// its own and tests can run in parallel. The schema is dropped when the
// test ends, after the stores it opened are closed (cleanups run last
// registered, first run).
func freshSchema(tb testing.TB) string {
	tb.Helper()
	dsn := requirePostgres(tb)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "ibmail_test_" + hex.EncodeToString(b[:])
	admin(tb, dsn, `CREATE SCHEMA `+name)
	tb.Cleanup(func() { admin(tb, dsn, `DROP SCHEMA `+name+` CASCADE`) })
	return withSearchPath(dsn, name)
}

// withSearchPath adds the search_path runtime parameter to a DSN, in URL or
// key=value form.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// admin runs one statement on a connection of its own.
func admin(tb testing.TB, dsn, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

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
