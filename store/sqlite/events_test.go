package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// A database from before the event log gets one when it is opened: its
// events take the first positions, in the order they were stored.
func TestEventLogMigrationBackfills(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ibmail.db")
	s := openTemp(t, path)
	ctx := context.Background()
	if _, err := s.IngestReports(ctx, body("old", 5), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Back to the schema before 0003, as an older binary left it.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TABLE event_outbox`, `DROP TABLE event_log`, `DROP TABLE event_leases`, `DROP TABLE event_cursors`,
		// 0012 changes the log, so it goes too, to be applied after 0003 again.
		`DROP TABLE operations`, `DROP TABLE event_retractions`, `DROP TABLE reclassified_events`,
		`ALTER TABLE delivery_reports DROP COLUMN current_event_id`, `ALTER TABLE tracking_events DROP COLUMN current_event_id`,
		`DELETE FROM schema_migrations WHERE version IN (3, 12)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s = openTemp(t, path)
	defer s.Close()
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
	// Events stored from now on follow them.
	if held, err := s.AcquireLease(ctx, store.SequencerLease, "me", time.Now(), time.Minute); err != nil || !held {
		t.Fatalf("AcquireLease = %v, %v", held, err)
	}
	if _, err := s.IngestReports(ctx, body("new", 1), nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SequenceEvents(ctx, "me", 10); err != nil || n != 1 {
		t.Fatalf("SequenceEvents = %d, %v; want 1", n, err)
	}
	if last, err := s.LastEventPosition(ctx); err != nil || last != 6 {
		t.Errorf("LastEventPosition = %d, %v; want 6", last, err)
	}
}
