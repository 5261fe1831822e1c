package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres/pgtest"
	"github.com/ibmail/ibmail/store/storetest"
)

// Migration 0005 rewrites the report keys stored before it to the instant
// (issue 9, defect 10) without failing on, or losing, any row.
func TestMigrate0005ReportKeysOnTheInstant(t *testing.T) {
	dsn := pgtest.FreshSchema(t)
	ms, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	before := 0
	for before < len(ms) && ms[before].Version < 5 {
		before++
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), cfg, ms[:before]); err != nil {
		t.Fatal(err)
	}
	for _, r := range storetest.DoneAtMigrationRows {
		pgtest.Exec(t, dsn, `INSERT INTO delivery_reports (message_id, status_id, error_id, done_at, connection_id,
			profile_id, email, outcome, event_name, rule, receive_time) VALUES ($1, 5, 0, $2, 'c', 'p', 'e', 2, '', '', now())`,
			r.MessageID, r.DoneAt)
	}
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open of a 0004 database: %v", err)
	}
	defer s.Close()
	storetest.CheckDoneAtMigration(t, s)
}
