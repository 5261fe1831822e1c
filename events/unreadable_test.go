package events

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ibmail/ibmail/metrics"
	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres"
	"github.com/ibmail/ibmail/store/postgres/pgtest"
	"github.com/ibmail/ibmail/store/sqlite"
)

// outOfRange is the instant of doneAt 9999-12-31T23:59:59.999-2359, past
// what a google.protobuf.Timestamp holds, which older versions stored.
var outOfRange = time.Date(10000, 1, 1, 23, 58, 59, 999000000, time.UTC)

// rawStore is a store with a way to write its tables behind its back, as
// an older version of ibmail (or a hand) could have.
type rawStore struct {
	store.Store
	// corrupt runs one statement; the statements are written per engine.
	corrupt func(t *testing.T, sqliteSQL, postgresSQL string, args ...any)
	engine  string
}

// openRawStore opens a fresh store of engine (sqlite or postgres; the
// test skips when PostgreSQL is not there).
func openRawStore(t *testing.T, engine string) rawStore {
	t.Helper()
	if engine == "postgres" {
		dsn := pgtest.FreshSchema(t)
		pg, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		return rawStore{Store: pg, engine: engine, corrupt: func(t *testing.T, _, q string, args ...any) {
			t.Helper()
			pgtest.Exec(t, dsn, q, args...)
		}}
	}
	path := filepath.Join(t.TempDir(), "ibmail.db")
	lite, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	return rawStore{Store: lite, engine: engine, corrupt: func(t *testing.T, q, _ string, args ...any) {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}}
}

// A stored event that cannot be published (a time out of Timestamp's
// range, params that do not decode, an absurd or non-UTF-8 email) is
// skipped, counted and logged once; the publisher's position moves past it
// and the events after it go out. Before, the publisher retried the first
// such event forever and nothing after it was published.
func TestPublisherSkipsUnshowableEvents(t *testing.T) {
	nc := requireNATS(t)
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			st := openRawStore(t, engine)
			ts := newTestStream(t, nc)
			t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			var reports []store.Report
			for i, msg := range []string{"good-1", "bad-time", "bad-params", "bad-email", "good-2"} {
				reports = append(reports, bounce(msg, "p"+msg, "newsletter.hardbounce", t0.Add(time.Duration(i)*time.Second)))
			}
			if _, err := st.IngestReports(context.Background(), reports, nil); err != nil {
				t.Fatal(err)
			}
			const byMessage = ` WHERE id = (SELECT id FROM delivery_reports WHERE message_id = `
			st.corrupt(t, `UPDATE profile_events SET time = ?`+byMessage+`?)`,
				`UPDATE profile_events SET time = $1`+byMessage+`$2)`, timeArg(st.engine, outOfRange), "bad-time")
			st.corrupt(t, `UPDATE profile_events SET params = '{"messageId": 7}'`+byMessage+`'bad-params')`,
				`UPDATE profile_events SET params = '{"messageId": 7}'`+byMessage+`'bad-params')`)
			// PostgreSQL keeps only UTF-8 text: there, the email is absurdly
			// long instead.
			st.corrupt(t, `UPDATE profile_events SET email = CAST(X'61ff40782e636f6d' AS TEXT)`+byMessage+`'bad-email')`,
				`UPDATE profile_events SET email = repeat('a', 100000) || '@x.com'`+byMessage+`'bad-email')`)
			sequenceAll(t, st)

			skipped := testutil.ToFloat64(metrics.UnreadableRows.WithLabelValues("event"))
			logs := &lockedBuffer{}
			pub := newPublisher(t, st, nc, ts, "r1", func(o *PublisherOptions) { o.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })
			runInBackground(t, pub.Run)
			eventually(t, 20*time.Second, "the publisher moves past the unshowable events", caughtUp(t, st, pub.name, 5))

			// An event stored after them still goes out.
			if _, err := st.IngestReports(context.Background(), []store.Report{bounce("good-3", "pgood-3", "newsletter.hardbounce", t0.Add(time.Minute))}, nil); err != nil {
				t.Fatal(err)
			}
			sequenceAll(t, st)
			eventually(t, 20*time.Second, "a later event is published", caughtUp(t, st, pub.name, 6))

			var got []string
			for _, m := range ts.messages(t) {
				var p payloadJSON
				if err := json.Unmarshal([]byte(m.data), &p); err != nil {
					t.Fatalf("message %d: %v", m.seq, err)
				}
				got = append(got, p.ProfileID)
			}
			if want := []string{"pgood-1", "pgood-2", "pgood-3"}; !slices.Equal(got, want) {
				t.Errorf("stream holds the events of %v, want %v", got, want)
			}
			if d := testutil.ToFloat64(metrics.UnreadableRows.WithLabelValues("event")) - skipped; d < 3 {
				t.Errorf("ibmail_unreadable_rows_total{what=event} grew by %v, want at least 3", d)
			}
			if n := strings.Count(logs.String(), `"msg":"stored row cannot be shown; skipped"`); n != 3 {
				t.Errorf("%d log lines about unshowable rows, want 3 (one per row):\n%s", n, logs.String())
			}
		})
	}
}

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// timeArg is t as the engine's time columns hold it.
func timeArg(engine string, t time.Time) any {
	if engine == "sqlite" {
		return t.UnixMicro()
	}
	return t
}
