package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
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

// Migration 0008 brings a database of version 7 forward: sends get their
// from-domain, sender accounts' domains become sending domains, and
// profile_events loses its foreign key to delivery_reports but keeps its
// rows and indexes.
func TestMigrate0008FromDomainsAndEventIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ibmail.db")
	ms, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	before := 0
	for before < len(ms) && ms[before].Version < 8 {
		before++
	}
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), db, ms[:before]); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO connections (id, display_name, api_key_hint, base_url, application_id, entity_id, rate_limit,
		create_time, update_time) VALUES ('c', 'c', '', '', '', '', 10, 0, 0)`)
	sendSQL := `INSERT INTO sends (id, sender_id, connection_id, campaign_id, idempotency_key, subject, recipient_count,
		create_time) VALUES (?, ?, 'c', '', '', 's', 0, 0)`
	for _, sd := range storetest.FromDomainMigrationSenders {
		exec(`INSERT INTO senders (id, connection_id, from_address, from_name, reply_to, create_time)
			VALUES (?, 'c', ?, '', '', 0)`, sd.ID, sd.FromAddress)
		exec(sendSQL, "send-"+sd.ID, sd.ID)
	}
	exec(sendSQL, "send-gone", "gone")
	for _, r := range storetest.FromDomainMigrationReports {
		res, err := db.Exec(`INSERT INTO delivery_reports (message_id, status_id, error_id, done_at, connection_id,
			profile_id, email, outcome, event_name, rule, receive_time) VALUES (?, 5, 0, '', 'c', ?, 'old@example.com',
			CASE WHEN ?3 = '' THEN 2 ELSE 1 END, ?3, '', 0)`,
			r.MessageID, storetest.FromDomainMigrationProfile, r.EventName)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		if r.EventName != "" {
			exec(`INSERT INTO profile_events (id, name, time, profile_id, email) VALUES (?, ?, 0, ?, 'old@example.com')`,
				id, r.EventName, storetest.FromDomainMigrationProfile)
		}
	}
	// The foreign key being checked before: an event of no report is refused.
	if _, err := db.Exec(`INSERT INTO profile_events (id, name, time, profile_id, email) VALUES (99, 'x', 0, 'p', 'e')`); err == nil {
		t.Fatal("version 7 took an event of no report: the foreign key is not checked, the test proves nothing")
	}
	db.Close()

	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open of a 0007 database: %v", err)
	}
	defer s.Close()
	var fks int
	if err := s.readDB.QueryRow(`SELECT COUNT(*) FROM pragma_foreign_key_list('profile_events')`).Scan(&fks); err != nil {
		t.Fatal(err)
	}
	if fks != 0 {
		t.Errorf("profile_events has %d foreign keys after 0008, want none", fks)
	}
	rows, err := s.readDB.Query(`SELECT name FROM pragma_index_list('profile_events') ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var indexes []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		indexes = append(indexes, name)
	}
	rows.Close()
	if got, want := strings.Join(indexes, ","), "profile_events_activity,profile_events_window"; got != want {
		t.Errorf("profile_events indexes after 0008 = %s, want %s", got, want)
	}
	storetest.CheckFromDomainMigration(t, s)
}
