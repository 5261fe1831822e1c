package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/storetest"
)

// queryPlan returns SQLite's plan for query, one step a line.
func queryPlan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.readDB.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, query)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n")
}

// The plans the sending side relies on; see the comments on the indexes in
// migrations/0002_sending.sql. Each of these would pass every functional
// test as a full scan or a sort, and fail with 100,000-recipient sends.
func TestSendingQueryPlans(t *testing.T) {
	s := openInternal(t)
	ids := []any{"a", "b", "c"}
	tests := []struct {
		name          string
		query         string
		args          []any
		want, notWant []string
	}{
		{"claim", claimSQL, []any{1, 10},
			[]string{"send_batches_due (next_attempt_time<?)", "send_batches_leased (lease_expiry<?)", "MERGE",
				"SEARCH s USING INDEX sqlite_autoindex_sends_1 (id=?)", "SEARCH d USING PRIMARY KEY (domain=?)"},
			[]string{"TEMP B-TREE", "SCAN"}},
		{"message.send events", messageSendSQL, []any{1, "message.send", 1, "s", 1},
			[]string{"send_recipients_batch (send_id=? AND batch_seq=?)", "sqlite_autoindex_sends_1 (id=?)"},
			[]string{"SCAN s", "SCAN r"}},
		{"domain report counts", domainReportCountsSQL, []any{1},
			[]string{"SEARCH domain_report_counts USING PRIMARY KEY (bucket>?)"}, nil},
		{"domain events", domainEventsSQL, []any{"d", 10}, []string{"domain_events_domain (domain=?)"}, []string{"TEMP B-TREE"}},
		{"next id", nextIDSQL, nil, []string{"SEARCH delivery_reports", "SEARCH tracking_events", "SEARCH profile_events",
			"SEARCH domain_events"}, []string{"SCAN delivery_reports", "SCAN tracking_events", "SCAN profile_events",
			"SCAN domain_events", "USING"}},
		{"tracking reports by outcome", `SELECT id FROM tracking_events WHERE 1 AND outcome = ? AND id < ? ORDER BY id DESC LIMIT ?`,
			[]any{1, 1, 10}, []string{"tracking_events_outcome (outcome=? AND rowid<?)"}, []string{"TEMP B-TREE"}},
		{"batch recipients", batchPendingSQL, []any{"s", 1},
			[]string{"send_recipients_batch (send_id=? AND batch_seq=?)"}, []string{"TEMP B-TREE"}},
		{"batch pending left", batchPendingLeftSQL, []any{"s", 1},
			[]string{"send_recipients_batch (send_id=? AND batch_seq=?)"}, nil},
		{"send pending left", sendPendingLeftSQL, []any{"s"},
			[]string{"COVERING INDEX send_recipients_state (send_id=? AND state=?)"}, nil},
		{"counts", countsSQL, []any{"s"},
			[]string{"COVERING INDEX send_recipients_state (send_id=?)"}, []string{"TEMP B-TREE"}},
		{"recipients by state", recipientsByStateSQL, []any{"s", 1, -1, 10},
			[]string{"send_recipients_state (send_id=? AND state=? AND seq>?)"}, []string{"TEMP B-TREE"}},
		{"recipients", recipientsSQL, []any{"s", -1, 10},
			[]string{"PRIMARY KEY (send_id=? AND seq>?)"}, []string{"TEMP B-TREE"}},
		{"by message id", byMessageIDSQL(3, false), ids,
			[]string{"send_recipients_message (message_id=?)"}, []string{"SCAN"}},
		{"by message id of a connection", byMessageIDSQL(3, true), append(slices.Clip(ids), "c"),
			[]string{"send_recipients_message (message_id=?)", "SEARCH sends EXISTS USING INDEX sqlite_autoindex_sends_1 (id=?)"}, []string{"SCAN"}},
		{"by email", recipientByEmailSQL(false), []any{"s", "e"},
			[]string{"send_recipients_email (send_id=? AND email=?)"}, []string{"TEMP B-TREE"}},
		{"by email of a connection", recipientByEmailSQL(true), []any{"s", "e", "c"},
			[]string{"send_recipients_email (send_id=? AND email=?)", "SEARCH sends EXISTS USING INDEX sqlite_autoindex_sends_1 (id=?)"}, []string{"TEMP B-TREE", "SCAN"}},
		{"sends first page", sendsPageSQL, []any{10}, []string{"SCAN sends USING INDEX sends_created"}, []string{"TEMP B-TREE"}},
		{"sends page", sendsPageFromSQL, []any{1, "s", 10},
			[]string{"sends_created"}, []string{"TEMP B-TREE"}},
		{"idempotency key", sendByKeySQL, []any{"sender", "k"},
			[]string{"sends_idempotency (sender_id=? AND idempotency_key=?)"}, nil},
		{"suppressed among", `SELECT ` + suppressionColumns + ` FROM suppressions WHERE email IN (?, ?, ?)`, ids,
			[]string{"PRIMARY KEY (email=?)"}, []string{"SCAN"}},
		{"connection by digest", `SELECT ` + connectionColumns + ` FROM connections WHERE webhook_secret_digest = ?`,
			[]any{[]byte("d")}, []string{"(webhook_secret_digest=?)"}, []string{"SCAN"}},
		{"senders of a connection", `SELECT ` + senderColumns + ` FROM senders WHERE connection_id = ? AND id > ? ORDER BY id LIMIT ?`,
			[]any{"c", "", 10}, []string{"senders_connection (connection_id=? AND id>?)"}, []string{"TEMP B-TREE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := queryPlan(t, s, tt.query, tt.args...)
			t.Logf("plan:\n%s", got)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("plan lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("plan has %q:\n%s", w, got)
				}
			}
		})
	}
}

// A database made before the sending tables existed is brought forward
// with its data, and the new tables work in it.
func TestMigrateFrom0001(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ibmail.db")
	ms, err := store.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 || ms[0].Version != 1 {
		t.Fatalf("migrations = %d, want 0001 and more", len(ms))
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), db, ms[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO delivery_reports (message_id, status_id, error_id, done_at, connection_id,
		profile_id, email, outcome, event_name, rule, receive_time) VALUES ('old', 5, 0, 'd', 'c', 'p', 'e', 2, '', '', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open of a 0001 database: %v", err)
	}
	defer s.Close()
	rs, err := s.ListReports(context.Background(), store.ReportQuery{})
	if err != nil || len(rs) != 1 || rs[0].Key.MessageID != "old" {
		t.Errorf("reports after migrating = %+v, %v; want the old one", rs, err)
	}
	var version int
	if err := s.readDB.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if want := ms[len(ms)-1].Version; version != want {
		t.Errorf("schema version = %d, want %d", version, want)
	}
	if err := s.CreateConnection(context.Background(), store.Connection{ID: "c"}); err != nil {
		t.Errorf("CreateConnection after migrating: %v", err)
	}
}

// A file without send recipients answers the attribution lookups without
// a query; CreateSend turns that off before writing, and so does opening
// a file that holds recipients.
func TestAttributionSkippedWithoutRecipients(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ibmail.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if s.mayHoldRecipients.Load() {
		t.Error("a new file may hold recipients, want not")
	}
	if got, err := s.RecipientsByMessageID(ctx, "", []string{"m1"}); err != nil || len(got) != 0 {
		t.Errorf("RecipientsByMessageID on a file without sends = %v, %v; want none", got, err)
	}
	if _, err := s.RecipientByEmail(ctx, "", "s1", "someone.00000000@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RecipientByEmail on a file without sends: err = %v, want ErrNotFound", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.RecipientsByMessageID(cancelled, "", []string{"m1"}); !errors.Is(err, context.Canceled) {
		t.Errorf("RecipientsByMessageID with its context ended: err = %v, want context.Canceled", err)
	}
	sn, rs, bs := storetest.BigSend("s1", 3)
	if _, _, err := s.CreateSend(ctx, sn, rs, bs); err != nil {
		t.Fatal(err)
	}
	found := func(s *Store) {
		t.Helper()
		got, err := s.RecipientByEmail(ctx, "", "s1", rs[2].Email)
		if err != nil || got.Seq != 2 {
			t.Errorf("RecipientByEmail after CreateSend = %+v, %v; want recipient 2", got, err)
		}
	}
	found(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	reopened, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	if !reopened.mayHoldRecipients.Load() {
		t.Error("a file with recipients, reopened, may hold none")
	}
	found(reopened)
}
