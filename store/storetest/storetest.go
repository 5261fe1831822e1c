// Package storetest is the conformance suite every store.Store engine must
// pass, so that SQLite and PostgreSQL behave the same behind the server.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call; Run closes every store it opens when the subtest ends, so Close
// must accept being called again after an explicit Close.
//
// Times are compared at microsecond precision, the precision engines keep.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	o := func(t *testing.T) store.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	t.Run("Ingest", func(t *testing.T) { testIngest(t, o) })
	t.Run("IngestConcurrentDuplicates", func(t *testing.T) { testIngestConcurrentDuplicates(t, o) })
	t.Run("IngestConcurrentDistinct", func(t *testing.T) { testIngestConcurrentDistinct(t, o) })
	t.Run("IngestWithRejected", func(t *testing.T) { testIngestWithRejected(t, o) })
	t.Run("IngestEmpty", func(t *testing.T) { testIngestEmpty(t, o) })
	t.Run("IngestCanceled", func(t *testing.T) { testIngestCanceled(t, o) })
	t.Run("EventFields", func(t *testing.T) { testEventFields(t, o) })
	t.Run("ListEvents", func(t *testing.T) { testListEvents(t, o) })
	t.Run("ListEventsPaging", func(t *testing.T) { testListEventsPaging(t, o) })
	t.Run("ListEventsDefaultLimit", func(t *testing.T) { testListEventsDefaultLimit(t, o) })
	t.Run("SearchProfiles", func(t *testing.T) { testSearchProfiles(t, o) })
	t.Run("SearchProfilesPaging", func(t *testing.T) { testSearchProfilesPaging(t, o) })
	t.Run("SearchProfilesDefaultLimit", func(t *testing.T) { testSearchProfilesDefaultLimit(t, o) })
	t.Run("ListReports", func(t *testing.T) { testListReports(t, o) })
	t.Run("ReportFields", func(t *testing.T) { testReportFields(t, o) })
	t.Run("RejectedPayloads", func(t *testing.T) { testRejectedPayloads(t, o) })
	t.Run("Ping", func(t *testing.T) { testPing(t, o) })
	t.Run("Close", func(t *testing.T) { testClose(t, o) })

	t.Run("SuppressionExpiry", func(t *testing.T) { testSuppressionExpiry(t, o) })
	t.Run("SuppressionReasonBounded", func(t *testing.T) { testSuppressionReasonBounded(t, o) })
	t.Run("SoftBounceCounts", func(t *testing.T) { testSoftBounceCounts(t, o) })
	t.Run("SoftBounceEdges", func(t *testing.T) { testSoftBounceEdges(t, o) })
	t.Run("SoftBounceConcurrent", func(t *testing.T) { testSoftBounceConcurrent(t, o) })
	t.Run("IngestIDs", func(t *testing.T) { testIngestIDs(t, o) })
	t.Run("RuleVersions", func(t *testing.T) { testRuleVersions(t, o) })
	t.Run("RuleVersionsConcurrent", func(t *testing.T) { testRuleVersionsConcurrent(t, o) })
	t.Run("ReportRulesVersion", func(t *testing.T) { testReportRulesVersion(t, o) })
	t.Run("Connections", func(t *testing.T) { testConnections(t, o) })
	t.Run("EncryptionKeyCheck", func(t *testing.T) { testEncryptionKeyCheck(t, o) })
	t.Run("SealedWritesGuarded", func(t *testing.T) { testSealedWritesGuarded(t, o) })
	t.Run("ServerSecrets", func(t *testing.T) { testServerSecrets(t, o) })
	t.Run("PreviousWebhookDigest", func(t *testing.T) { testPreviousWebhookDigest(t, o) })
	t.Run("Senders", func(t *testing.T) { testSenders(t, o) })
	t.Run("CreateSend", func(t *testing.T) { testCreateSend(t, o) })
	t.Run("CreateSendDone", func(t *testing.T) { testCreateSendDone(t, o) })
	t.Run("CreateSendInvalid", func(t *testing.T) { testCreateSendInvalid(t, o) })
	t.Run("CreateSendLarge", func(t *testing.T) { testCreateSendLarge(t, o) })
	t.Run("CreateSendIdempotent", func(t *testing.T) { testCreateSendIdempotent(t, o) })
	t.Run("CreateSendConcurrentIdempotency", func(t *testing.T) { testCreateSendConcurrentIdempotency(t, o) })
	t.Run("CreateSendIdempotencyScope", func(t *testing.T) { testCreateSendIdempotencyScope(t, o) })
	t.Run("CreateSendConcurrentKeyReuse", func(t *testing.T) { testCreateSendConcurrentKeyReuse(t, o) })
	t.Run("ListSends", func(t *testing.T) { testListSends(t, o) })
	t.Run("ListRecipients", func(t *testing.T) { testListRecipients(t, o) })
	t.Run("RecipientLookups", func(t *testing.T) { testRecipientLookups(t, o) })
	t.Run("RecipientLookupsByConnection", func(t *testing.T) { testRecipientLookupsByConnection(t, o) })
	t.Run("ClaimBatches", func(t *testing.T) { testClaimBatches(t, o) })
	t.Run("ClaimConcurrent", func(t *testing.T) { testClaimConcurrent(t, o) })
	t.Run("CompleteBatch", func(t *testing.T) { testCompleteBatch(t, o) })
	t.Run("CompleteBatchInvalid", func(t *testing.T) { testCompleteBatchInvalid(t, o) })
	t.Run("CompleteBatchWhole", func(t *testing.T) { testCompleteBatchWhole(t, o) })
	t.Run("LeaseExpiry", func(t *testing.T) { testLeaseExpiry(t, o) })
	t.Run("ReleaseLeases", func(t *testing.T) { testReleaseLeases(t, o) })
	t.Run("RescheduleBatch", func(t *testing.T) { testRescheduleBatch(t, o) })
	t.Run("ExtendLease", func(t *testing.T) { testExtendLease(t, o) })
	t.Run("IngestRecipientEvents", func(t *testing.T) { testIngestRecipientEvents(t, o) })
	t.Run("IngestSuppress", func(t *testing.T) { testIngestSuppress(t, o) })
	t.Run("SuppressionLists", func(t *testing.T) { testSuppressionLists(t, o) })
	t.Run("CloseSending", func(t *testing.T) { testCloseSending(t, o) })

	t.Run("EventOutbox", func(t *testing.T) { testEventOutbox(t, o) })
	t.Run("SequenceEvents", func(t *testing.T) { testSequenceEvents(t, o) })
	t.Run("EventLeases", func(t *testing.T) { testEventLeases(t, o) })
	t.Run("PublishedPosition", func(t *testing.T) { testPublishedPosition(t, o) })
	t.Run("SequenceConcurrent", func(t *testing.T) { testSequenceConcurrent(t, o) })
	t.Run("EventLogClosed", func(t *testing.T) { testEventLogClosed(t, o) })
	t.Run("Backlog", func(t *testing.T) { testBacklog(t, o) })
	t.Run("SendSlots", func(t *testing.T) { testSendSlots(t, o) })

	t.Run("IngestTracking", func(t *testing.T) { testIngestTracking(t, o) })
	t.Run("IngestUnknownKind", func(t *testing.T) { testIngestUnknownKind(t, o) })
	t.Run("TrackingFields", func(t *testing.T) { testTrackingFields(t, o) })
	t.Run("TrackingSending", func(t *testing.T) { testTrackingSending(t, o) })
	t.Run("IngestTrackingConcurrent", func(t *testing.T) { testIngestTrackingConcurrent(t, o) })
	t.Run("EventIDsAcrossSources", func(t *testing.T) { testEventIDsAcrossSources(t, o) })
	t.Run("EventIDsConcurrent", func(t *testing.T) { testEventIDsConcurrent(t, o) })
	t.Run("DomainReportCounts", func(t *testing.T) { testDomainReportCounts(t, o) })
	t.Run("DomainReportCountsConcurrent", func(t *testing.T) { testDomainReportCountsConcurrent(t, o) })
	t.Run("DomainPrecedence", func(t *testing.T) { testDomainPrecedence(t, o) })
	t.Run("IngestDomainEvents", func(t *testing.T) { testIngestDomainEvents(t, o) })
	t.Run("SendingDomains", func(t *testing.T) { testSendingDomains(t, o) })
	t.Run("DomainProfileEvents", func(t *testing.T) { testDomainProfileEvents(t, o) })
	t.Run("DomainEventsBodyOrder", func(t *testing.T) { testDomainEventsBodyOrder(t, o) })
	t.Run("DomainEventsConcurrent", func(t *testing.T) { testDomainEventsConcurrent(t, o) })
	t.Run("ClaimHeldDomains", func(t *testing.T) { testClaimHeldDomains(t, o) })
	t.Run("CompleteBatchMessageSend", func(t *testing.T) { testCompleteBatchMessageSend(t, o) })
	t.Run("CompleteBatchMessageSendLarge", func(t *testing.T) { testCompleteBatchMessageSendLarge(t, o) })
}

type opener = func(t *testing.T) store.Store

// t0 is the fixtures' reference time; not UTC on purpose, so that engines
// must convert on the way out.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.FixedZone("CET", 3600))

func at(d time.Duration) time.Time { return t0.Add(d) }

// rep builds a report whose key is msg; its Params name msg so that events
// can be told apart in listings.
func rep(msg string, outcome store.Outcome) store.Report {
	r := store.Report{
		Key:          store.ReportKey{MessageID: msg, StatusID: 5, ErrorID: 0, DoneAt: "2026-03-01T11:00:00.000+0000"},
		ConnectionID: "conn-1",
		ProfileID:    "profile-" + msg,
		Email:        msg + "@example.com",
		Outcome:      outcome,
		Rule:         "rule-" + msg,
		EventTime:    t0,
		ReceiveTime:  t0.Add(time.Second),
		Payload:      []byte(`{"messageId":"` + msg + `"}`),
	}
	if outcome == store.OutcomeEvent {
		r.EventName = "newsletter.hardbounce"
		r.Params = map[string]string{"message": msg, "reason": "mailbox unavailable"}
	}
	return r
}

// event builds an event report for profile at time when.
func event(msg, profile, email, name string, when time.Time) store.Report {
	r := rep(msg, store.OutcomeEvent)
	r.ProfileID, r.Email, r.EventName, r.EventTime = profile, email, name, when
	return r
}

func ingest(t *testing.T, s store.Store, reports []store.Report, rejected []store.RejectedPayload) store.IngestResult {
	t.Helper()
	res, err := s.IngestReports(context.Background(), reports, rejected)
	if err != nil {
		t.Fatalf("IngestReports: %v", err)
	}
	return res
}

func listEvents(t *testing.T, s store.Store, q store.EventQuery) []store.Event {
	t.Helper()
	evs, err := s.ListEvents(context.Background(), q)
	if err != nil {
		t.Fatalf("ListEvents(%+v): %v", q, err)
	}
	return evs
}

func listReports(t *testing.T, s store.Store, q store.ReportQuery) []store.StoredReport {
	t.Helper()
	rs, err := s.ListReports(context.Background(), q)
	if err != nil {
		t.Fatalf("ListReports(%+v): %v", q, err)
	}
	return rs
}

// messages names events by the message their Params carry.
func messages(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Params["message"]
	}
	return out
}

// reportMessages names stored reports by message id.
func reportMessages(rs []store.StoredReport) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Key.MessageID
	}
	return out
}

// sameTime requires equal instants reported in UTC.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
}

func msgs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}
