package storetest

import (
	"context"
	"testing"
	"time"

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

// FromDomainMigrationSender is a sender account as a database before
// migration 0008 holds it, with the from-domain 0008 must give its sends
// (and make a sending domain of): store.AddressDomain's, in SQL. Engines'
// migration tests store, at version 7, a connection "c", these senders of
// it, a send "send-<ID>" of each (no recipients), a send "send-gone" of a
// sender that no longer exists, and FromDomainMigrationReports; then they
// migrate and call CheckFromDomainMigration.
type FromDomainMigrationSender struct {
	ID, FromAddress, WantDomain string
}

// FromDomainMigrationSenders covers the address forms AddressDomain reads.
var FromDomainMigrationSenders = []FromDomainMigrationSender{
	{"plain", "news@Example.COM", "example.com"},
	{"named", "News <news@mail.example.org>", "mail.example.org"},
	{"spaced", "  Someone < someone@spaced.example >  ", "spaced.example"},
	{"quoted-at", `"a@b"@quoted.example`, "quoted.example"},
	{"shared", "other@example.com", "example.com"},
	{"none", "no address", ""},
}

// FromDomainMigrationReport is a delivery report stored before 0008, with
// its event when EventName is set (the event takes the report's id, drawn
// as the engine draws report ids).
type FromDomainMigrationReport struct {
	MessageID, EventName string
}

// FromDomainMigrationReports are the reports stored before 0008: events of
// profile FromDomainMigrationProfile, and one report without event.
var FromDomainMigrationReports = []FromDomainMigrationReport{
	{"old-1", "newsletter.hardbounce"}, {"old-2", "newsletter.softbounce"}, {"old-3", "newsletter.hardbounce"}, {"old-4", ""},
}

// FromDomainMigrationProfile is the profile of FromDomainMigrationReports.
const FromDomainMigrationProfile = "old-profile"

// CheckFromDomainMigration checks a database migrated through 0008 with
// the rows above: sends have their from-domain, sender accounts' domains
// are active sending domains, the old events stay, and every source of
// events writes ids that clash neither with each other nor with the old
// rows.
func CheckFromDomainMigration(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	domains := map[string]bool{}
	for _, sd := range FromDomainMigrationSenders {
		if got := store.AddressDomain(sd.FromAddress); got != sd.WantDomain {
			t.Fatalf("fixture: AddressDomain(%q) = %q, want %q", sd.FromAddress, got, sd.WantDomain)
		}
		sn, err := s.GetSend(ctx, "send-"+sd.ID)
		if err != nil {
			t.Fatalf("GetSend(send-%s): %v", sd.ID, err)
		}
		if sn.FromDomain != sd.WantDomain {
			t.Errorf("send of %q: FromDomain = %q, want %q", sd.FromAddress, sn.FromDomain, sd.WantDomain)
		}
		if sd.WantDomain != "" {
			domains[sd.WantDomain] = true
		}
	}
	if sn, err := s.GetSend(ctx, "send-gone"); err != nil || sn.FromDomain != "" {
		t.Errorf("send of a deleted sender = %+v, %v; want no FromDomain", sn, err)
	}
	ds, err := s.ListSendingDomains(ctx, "", 100)
	if err != nil {
		t.Fatalf("ListSendingDomains: %v", err)
	}
	for _, d := range ds {
		if !domains[d.Domain] || d.State != store.DomainActive || !d.Until.IsZero() {
			t.Errorf("sending domain after migrating = %+v, want one of %v, active", d, domains)
		}
		delete(domains, d.Domain)
	}
	if len(domains) != 0 {
		t.Errorf("sending domains missing after migrating: %v", domains)
	}

	old := listEvents(t, s, store.EventQuery{ProfileID: FromDomainMigrationProfile, Limit: 100})
	if len(old) != 3 {
		t.Errorf("events stored before migrating = %d, want 3", len(old))
	}
	if ms, err := s.SearchProfiles(ctx, store.ProfileQuery{Names: []string{"newsletter.hardbounce"}}); err != nil || len(ms) != 1 || ms[0].EventCount != 2 {
		t.Errorf("SearchProfiles after migrating = %+v, %v; want the old profile with 2 events", ms, err)
	}

	// Every source writes after the old rows, without a clash.
	acquireLease(t, s, store.SequencerLease, testSequencer, at(0))
	f := sendFrom("new", "example.com", 3, 3)
	createSend(t, s, f)
	named := platformEvent("w1", "example.com", store.DomainEventWarning, store.DomainWarned, at(0), 3.2)
	named.EventName = "sendingdomain.warning"
	ingestDomainEvents(t, s, named)
	ingest(t, s, []store.Report{rep("new-d", store.OutcomeEvent), trk("new-t", store.OutcomeEvent), rep("new-n", store.OutcomeNoError)}, nil)
	cs := claim(t, s, "d", at(0), time.Minute, 10)
	if len(cs) != 1 || cs[0].Send.FromDomain != "example.com" {
		t.Fatalf("claimed %+v, want the new send's batch", cs)
	}
	completeBatch(t, s, "d", "new", 0, accepted("new", f.inBatch(0)))
	ids := readIDs(t, s, "example.com")
	if reports, domainEvents, sends := ids.check(t); reports != 2 || domainEvents != 1 || sends != 3 {
		t.Errorf("new events: %d of reports, %d of domain events, %d message.send; want 2, 1, 3", reports, domainEvents, sends)
	}
	if len(ids.reports) != len(FromDomainMigrationReports)+3 {
		t.Errorf("%d reports, want the %d old and 3 new", len(ids.reports), len(FromDomainMigrationReports))
	}
}
