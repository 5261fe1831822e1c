package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/storetest"
)

// Migration 0005 rewrites the report keys stored before it to the instant
// (issue 9, defect 10) without failing on, or losing, any row.
func TestMigrate0005ReportKeysOnTheInstant(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ibmail.db")
	ms, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	before := 0
	for before < len(ms) && ms[before].Version < 5 {
		before++
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), db, ms[:before]); err != nil {
		t.Fatal(err)
	}
	for _, r := range storetest.DoneAtMigrationRows {
		if _, err := db.Exec(`INSERT INTO delivery_reports (message_id, status_id, error_id, done_at, connection_id,
			profile_id, email, outcome, event_name, rule, receive_time) VALUES (?, 5, 0, ?, 'c', 'p', 'e', 2, '', '', 0)`,
			r.MessageID, r.DoneAt); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open of a 0004 database: %v", err)
	}
	defer s.Close()
	storetest.CheckDoneAtMigration(t, s)
}
