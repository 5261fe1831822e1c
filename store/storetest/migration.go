package storetest

import (
	"context"
	"testing"

	"github.com/ibmail/ibmail/store"
)

// DoneAtMigrationRow is a report row as a database before migration 0005
// holds it (done_at as Infobip wrote it), with the done_at the migration
// must leave. Engines' migration tests insert DoneAtMigrationRows in order
// (so ids ascend) with status 5 and error 0, migrate, then call
// CheckDoneAtMigration.
type DoneAtMigrationRow struct {
	MessageID, DoneAt, Want string
}

// DoneAtMigrationRows covers the forms the server accepted before, rows
// that become duplicates of each other, and text that does not parse.
var DoneAtMigrationRows = []DoneAtMigrationRow{
	// One report three times: the first stored takes the canonical key,
	// the later ones keep their text (and their events).
	{"dup", "2024-05-01T10:00:00.256+0000", "2024-05-01T10:00:00.256000000Z"},
	{"dup", "2024-05-01T10:00:00.256Z", "2024-05-01T10:00:00.256Z"},
	{"dup", "2024-05-01T12:00:00.256+0200", "2024-05-01T12:00:00.256+0200"},
	// A row already canonical keeps its key even when an older duplicate
	// exists, which then keeps its text.
	{"held", "2024-05-01T10:00:00.500+0000", "2024-05-01T10:00:00.500+0000"},
	{"held", "2024-05-01T10:00:00.500000000Z", "2024-05-01T10:00:00.500000000Z"},
	{"no-fraction", "2024-05-01T10:00:00-0130", "2024-05-01T11:30:00.000000000Z"},
	{"colon-offset", "2024-05-01T10:00:00.1+05:30", "2024-05-01T04:30:00.100000000Z"},
	{"nanoseconds", "2024-05-01T10:00:00.123456789-03:00", "2024-05-01T13:00:00.123456789Z"},
	{"across-midnight", "2024-12-31T23:30:00.000-0100", "2025-01-01T00:30:00.000000000Z"},
	// Out of any sensible range, or no time at all: kept as they are.
	{"year-0", "0000-01-01T00:00:00.000+0000", "0000-01-01T00:00:00.000+0000"},
	{"year-10000", "9999-12-31T23:59:59.999-2359", "9999-12-31T23:59:59.999-2359"},
	{"words", "yesterday", "yesterday"},
	{"none", "", ""},
}

// CheckDoneAtMigration checks the keys after migration 0005 and that a
// retry of a migrated report, in yet another zone, is a duplicate.
func CheckDoneAtMigration(t *testing.T, s store.Store) {
	t.Helper()
	rows := listReports(t, s, store.ReportQuery{Limit: 1000})
	if len(rows) != len(DoneAtMigrationRows) {
		t.Fatalf("%d reports after migrating, want all %d kept", len(rows), len(DoneAtMigrationRows))
	}
	for i, want := range DoneAtMigrationRows {
		got := rows[len(rows)-1-i] // listed newest first
		if got.Key.MessageID != want.MessageID || got.Key.DoneAt != want.Want {
			t.Errorf("row %d (%q, %q) after migrating = (%q, %q), want (%q, %q)",
				i, want.MessageID, want.DoneAt, got.Key.MessageID, got.Key.DoneAt, want.MessageID, want.Want)
		}
	}
	for _, retry := range []struct{ msg, doneAt string }{
		{"dup", "2024-05-01T06:00:00.256-0400"},
		{"held", "2024-05-01T10:00:00.5Z"},
		{"no-fraction", "2024-05-01T11:30:00.000+0000"},
	} {
		r := rep(retry.msg, store.OutcomeEvent)
		r.Key.DoneAt = retry.doneAt
		res, err := s.IngestReports(context.Background(), []store.Report{r}, nil)
		if err != nil {
			t.Fatalf("IngestReports: %v", err)
		}
		if res.Duplicates != 1 {
			t.Errorf("retry of %s at %s after migrating = %+v, want a duplicate", retry.msg, retry.doneAt, res)
		}
	}
}
