package server

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/rules"
	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/postgres"
	"github.com/ibmail/ibmail/store/postgres/pgtest"
	"github.com/ibmail/ibmail/store/sqlite"
)

// FuzzWebhookBody feeds arbitrary bodies through the webhook's decoder, the
// conversion of each report and the ingest into a real store: nothing may
// panic, every report either becomes a consistent stored report or is
// refused with a reason, and what was stored reads back through the
// activity list, segmentation (with and without a window) and the report
// listing without an error.
func FuzzWebhookBody(f *testing.F) {
	for _, seed := range []string{
		// Infobip's documented example (a delivered message).
		`{"results":[{"entityId":"promotional-traffic-entity","applicationId":"marketing-automation-application","campaignReferenceId":"campaign-reference-123","bulkId":"aszzmbhu62l7bxkhmyrj","price":{"pricePerMessage":0,"currency":"UNKNOWN"},"status":{"id":5,"groupId":3,"groupName":"DELIVERED","name":"DELIVERED_TO_HANDSET","description":"Message delivered to handset"},"error":{"id":0,"name":"NO_ERROR","description":"No Error","groupId":0,"groupName":"OK","permanent":false},"messageId":"hgtesn8bcmc71pujp92d","doneAt":"2020-09-08T05:27:59.256+0000","smsCount":1,"sentAt":"2020-09-08T05:27:57.628+0000","attemptCount":1,"timeToFirstAttempt":123,"browserLink":"https://tracking.domain.com/render/content?id=9A31","sendingIp":"192.0.2.0","smtp":{"response":"250 2.0.0 OK"},"callbackData":"something you want back","to":"john.doe@gmail.com"}]}`,
		// A suppression as seen in real traffic (2024).
		`{"results":[{"messageId":"m1","to":"a@b.com","doneAt":"2024-05-01T10:00:00.000-0300","status":{"id":4,"groupId":2,"groupName":"UNDELIVERABLE","name":"UNDELIVERABLE_REJECTED_OPERATOR"},"error":{"id":6034,"name":"EC_SUPPRESSED_BOUNCE","groupId":1,"groupName":"HANDSET_ERRORS","permanent":true},"callbackData":"{\"profileId\":\"p1\",\"ibmailSendId\":\"send-1\"}"}]}`,
		`{"results":[{"messageId":"","to":"","doneAt":"yesterday"}]}`,
		`{"results":"nope"}`,
		`{"results":[{"messageId":"x\u0000y","to":"a@b.com"}]}`,
		`[]`,
		``,
		// A key that is not UTF-8 in an undecodable report (found by fuzzing).
		"{\"results\":[{\"error\":{\"\xa9\":\"\"}}]}",
		// Undecodable reports beside a good one, and times out of bounds.
		`{"results":[{"messageId":"ok","to":"a@b.com","doneAt":"2024-05-01T10:00:00.000+0000","error":{"id":6012,"groupId":2,"groupName":"BOUNCED"}},{"messageId":"n","smsCount":99999999999},{"messageId":"s","to":{"x":1}},5]}`,
		`{"results":[{"messageId":"y0","to":"a@b.com","doneAt":"0000-01-01T00:00:00.000+0000","error":{"id":6012,"groupId":2,"groupName":"BOUNCED"}},{"messageId":"y9","to":"a@b.com","doneAt":"9999-12-31T23:59:59.999-2359","error":{"id":6012,"groupId":2,"groupName":"BOUNCED"}}]}`,
	} {
		f.Add([]byte(seed))
	}
	engine := classifier.Default()
	received := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// What the webhook stores must read back: one store for the run, the
	// service that ingests into it, and the services that read it.
	st := fuzzStore(f)
	const secret = "fuzz-webhook-secret"
	reports := NewDeliveryReportService(rules.Static(engine), st, NewStaticWebhookSecret(secret), slog.New(slog.DiscardHandler))
	reports.now = func() time.Time { return received }
	profiles := NewProfileService(st, slog.New(slog.DiscardHandler))
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(webhookTokenKey, secret))
	allEventNames := []string{"newsletter.hardbounce", "newsletter.softbounce", "newsletter.spambounce", "newsletter.dropped"}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ibmailv1.IngestDeliveryReportsRequest
		if err := gatewayMarshaler.NewDecoder(bytes.NewReader(body)).Decode(&req); err != nil {
			return // refused as malformed: a 400 with the body kept
		}
		type storedEvent struct {
			profile, name string
			at            time.Time
		}
		var events []storedEvent
		for _, r := range req.GetResults() {
			rep, err := toStoreReport(&rules.Snapshot{Engine: engine}, r, parseCallback(r), "", received, nil)
			if err != nil {
				if err.Error() == "" {
					t.Fatal("a refusal without a reason")
				}
				continue
			}
			if strings.TrimSpace(rep.Key.MessageID) == "" || rep.ProfileID == "" {
				t.Fatalf("stored report without message id or profile: %+v", rep)
			}
			if (rep.Outcome == store.OutcomeEvent) != (rep.EventName != "") || (rep.EventName != "") != (rep.Params != nil) {
				t.Fatalf("outcome %d, event %q, params %v disagree", rep.Outcome, rep.EventName, rep.Params)
			}
			if rep.EventTime.IsZero() || rep.Rule == "" {
				t.Fatalf("stored report without time or rule: %+v", rep)
			}
			if rep.EventName != "" {
				events = append(events, storedEvent{rep.ProfileID, rep.EventName, rep.EventTime})
			}
		}
		resp, err := reports.IngestDeliveryReports(ctx, &req)
		if err != nil {
			if status.Code(err) == codes.InvalidArgument {
				return // refused whole (no reports, too many): kept by the gateway
			}
			t.Fatalf("IngestDeliveryReports: %v", err)
		}
		if got, want := int(resp.GetAccepted()+resp.GetDuplicates())+len(resp.GetRejected()), len(req.GetResults())+len(req.GetUndecodableResults()); got != want {
			t.Fatalf("accepted %d + duplicates %d + rejected %d != %d reports", resp.GetAccepted(), resp.GetDuplicates(), len(resp.GetRejected()), want)
		}
		// Read back through every listing: a stored report that cannot be
		// shown fails here (an out-of-range time once broke all three).
		// Each answer is also written as REST writes it, since a time a
		// Timestamp cannot hold fails only there ("seconds out of range").
		shown := func(what string, m proto.Message) {
			t.Helper()
			if _, err := protojson.Marshal(m); err != nil {
				t.Fatalf("%s cannot be shown: %v", what, err)
			}
		}
		listed, err := reports.ListDeliveryReports(ctx, &ibmailv1.ListDeliveryReportsRequest{PageSize: 1000})
		if err != nil {
			t.Fatalf("ListDeliveryReports: %v", err)
		}
		shown("ListDeliveryReports", listed)
		found, err := profiles.SearchProfiles(ctx, &ibmailv1.SearchProfilesRequest{PageSize: 1000, EventNames: allEventNames})
		if err != nil {
			t.Fatalf("SearchProfiles without a window: %v", err)
		}
		shown("SearchProfiles without a window", found)
		for _, e := range events {
			list, err := profiles.ListProfileEvents(ctx, &ibmailv1.ListProfileEventsRequest{ProfileId: e.profile, EventNames: []string{e.name}, PageSize: 1000})
			if err != nil {
				t.Fatalf("ListProfileEvents(%q): %v", e.profile, err)
			}
			shown("ListProfileEvents", list)
			if resp.GetDuplicates() == 0 && len(list.GetEvents()) == 0 {
				t.Fatalf("ListProfileEvents(%q) lacks the %s event just stored", e.profile, e.name)
			}
			window := &ibmailv1.SearchProfilesRequest{EventNames: []string{e.name}, PageSize: 1000,
				Since: timestamppb.New(e.at.Add(-time.Hour)), Until: timestamppb.New(e.at.Add(time.Hour))}
			inWindow, err := profiles.SearchProfiles(ctx, window)
			if err != nil {
				t.Fatalf("SearchProfiles around %v: %v", e.at, err)
			}
			shown("SearchProfiles with a window", inWindow)
		}
	})
}

// fuzzStore is the store the fuzz target ingests into: PostgreSQL when
// IBMAIL_TEST_POSTGRES names one, since fuzzing instruments every package
// for coverage and the instrumented SQLite engine (transpiled C) runs a few
// executions a minute; else SQLite, which serves the seed corpus well.
func fuzzStore(f *testing.F) store.Store {
	var st store.Store
	var err error
	if os.Getenv("IBMAIL_TEST_POSTGRES") != "" {
		st, err = postgres.Open(context.Background(), pgtest.FreshSchema(f))
	} else {
		st, err = sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "fuzz.db"))
	}
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	return st
}
