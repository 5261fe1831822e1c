package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
)

// An event whose id was drawn first but whose transaction commits last (two
// replicas ingesting at once) must still reach a reader that has already
// gone past the later id: it gets the next position when it commits, where
// a reader going by id ("id > last seen") would skip it for good.
func TestSequenceLateCommit(t *testing.T) {
	t.Parallel()
	dsn := freshSchema(t)
	s := open(t, dsn)
	ctx := context.Background()
	const owner = "sequencer"
	if held, err := s.AcquireLease(ctx, store.SequencerLease, owner, time.Now(), time.Minute); err != nil || !held {
		t.Fatalf("AcquireLease = %v, %v", held, err)
	}

	// The slow replica: draws its id, stores its event and outbox entry,
	// and does not commit yet.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	var lateID int64
	if err := tx.QueryRow(ctx, `SELECT nextval('delivery_reports_id_seq')`).Scan(&lateID); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO delivery_reports (id, message_id, status_id, error_id, done_at, connection_id, profile_id, email,
			outcome, event_name, rule, receive_time) OVERRIDING SYSTEM VALUE
			VALUES ($1, 'late', 5, 0, '2026-03-01T11:00:00.000+0000', '', 'p', 'p@example.com', 1, 'newsletter.hardbounce', '', now())`,
		`INSERT INTO profile_events (id, name, time, profile_id, email) VALUES ($1, 'newsletter.hardbounce', now(), 'p', 'p@example.com')`,
		`INSERT INTO event_outbox (event_id) VALUES ($1)`,
	} {
		if _, err := tx.Exec(ctx, q, lateID); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	// The fast replica commits a higher id, which is sequenced and read.
	if _, err := s.IngestReports(ctx, body("early", 1), nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SequenceEvents(ctx, owner, 100); err != nil || n != 1 {
		t.Fatalf("SequenceEvents before the late commit = %d, %v; want 1", n, err)
	}
	first, err := s.ReadEventLog(ctx, store.EventLogQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || first[0].Position != 1 || first[0].ID <= lateID {
		t.Fatalf("log before the late commit = %+v, want the early event (id > %d) at position 1", first, lateID)
	}

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SequenceEvents(ctx, owner, 100); err != nil || n != 1 {
		t.Fatalf("SequenceEvents after the late commit = %d, %v; want 1", n, err)
	}
	next, err := s.ReadEventLog(ctx, store.EventLogQuery{After: first[0].Position, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != 1 || next[0].Position != 2 || next[0].ID != lateID {
		t.Errorf("log after position 1 = %+v, want the late event %d at position 2", next, lateID)
	}
}

// A database from before the event log gets one when the first replica of
// the new version opens it: its events take the first positions, by id.
func TestEventLogMigrationBackfills(t *testing.T) {
	t.Parallel()
	dsn := freshSchema(t)
	s := open(t, dsn)
	ctx := context.Background()
	if _, err := s.IngestReports(ctx, body("old", 5), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Back to the schema before 0003, as an older binary left it.
	// 0013 changes the log, so it goes too, to be applied after 0003 again.
	admin(t, dsn, `DROP TABLE event_outbox, event_log, event_leases, event_cursors, operations, event_retractions, reclassified_events`)
	admin(t, dsn, `ALTER TABLE delivery_reports DROP COLUMN current_event_id`)
	admin(t, dsn, `ALTER TABLE tracking_events DROP COLUMN current_event_id`)
	admin(t, dsn, `DELETE FROM schema_migrations WHERE version IN (3, 13)`)

	s = open(t, dsn)
	logged, err := s.ReadEventLog(ctx, store.EventLogQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) != 5 {
		t.Fatalf("log after the migration holds %d events, want the 5 stored before", len(logged))
	}
	for i, e := range logged {
		if want := body("old", 5)[i].Key.MessageID; e.Position != int64(i+1) || e.Params["messageId"] != want {
			t.Errorf("position %d = %d %s, want %d %s", i, e.Position, e.Params["messageId"], i+1, want)
		}
	}
}
