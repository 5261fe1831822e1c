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

// Migration 0008 brings a database of version 7 forward: sends get their
// from-domain, sender accounts' domains become sending domains, and new
// ids of every source follow those the old rows drew.
func TestMigrate0008FromDomainsAndEventIDs(t *testing.T) {
	dsn := pgtest.FreshSchema(t)
	ms, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	before := 0
	for before < len(ms) && ms[before].Version < 8 {
		before++
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), cfg, ms[:before]); err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, dsn, `INSERT INTO connections (id, display_name, api_key_hint, base_url, application_id, entity_id,
		rate_limit, create_time, update_time) VALUES ('c', 'c', '', '', '', '', 10, now(), now())`)
	sendSQL := `INSERT INTO sends (id, sender_id, connection_id, campaign_id, idempotency_key, subject, recipient_count,
		create_time) VALUES ($1, $2, 'c', '', '', 's', 0, now())`
	for _, sd := range storetest.FromDomainMigrationSenders {
		pgtest.Exec(t, dsn, `INSERT INTO senders (id, connection_id, from_address, from_name, reply_to, create_time)
			VALUES ($1, 'c', $2, '', '', now())`, sd.ID, sd.FromAddress)
		pgtest.Exec(t, dsn, sendSQL, "send-"+sd.ID, sd.ID)
	}
	pgtest.Exec(t, dsn, sendSQL, "send-gone", "gone")
	// Ids drawn from the identity, as version 7 drew them; the event
	// takes its report's.
	for _, r := range storetest.FromDomainMigrationReports {
		pgtest.Exec(t, dsn, `WITH r AS (
				INSERT INTO delivery_reports (message_id, status_id, error_id, done_at, connection_id, profile_id, email,
					outcome, event_name, rule, receive_time)
				VALUES ($1, 5, 0, '', 'c', $2, 'old@example.com', CASE WHEN $3 = '' THEN 2 ELSE 1 END, $3, '', now())
				RETURNING id
			)
			INSERT INTO profile_events (id, name, time, profile_id, email)
			SELECT id, $3, now(), $2, 'old@example.com' FROM r WHERE $3 <> ''`,
			r.MessageID, storetest.FromDomainMigrationProfile, r.EventName)
	}
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open of a 0007 database: %v", err)
	}
	defer s.Close()
	storetest.CheckFromDomainMigration(t, s)
}
