package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/metrics"
	"github.com/ibmail/ibmail/store/postgres/pgtest"
)

// outOfRange is the instant of doneAt 9999-12-31T23:59:59.999-2359: past
// what a google.protobuf.Timestamp holds. Older versions stored it.
var outOfRange = time.Date(10000, 1, 1, 23, 58, 59, 999000000, time.UTC)

// corrupt writes the store's tables behind its back, as an older version
// of ibmail (or a hand) could have: sqliteSQL on SQLite (with ? and a time
// as unix microseconds), postgresSQL on PostgreSQL (with $n).
func (e *testEnv) corrupt(t *testing.T, sqliteSQL, postgresSQL string, args ...any) {
	t.Helper()
	if e.postgresDSN != "" {
		pgtest.Exec(t, e.postgresDSN, postgresSQL, args...)
		return
	}
	for i, a := range args {
		if tm, ok := a.(time.Time); ok {
			args[i] = tm.UnixMicro()
		}
	}
	db, err := sql.Open("sqlite", "file:"+e.sqlitePath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(sqliteSQL, args...); err != nil {
		t.Fatalf("%s: %v", sqliteSQL, err)
	}
}

// bounceFor is a hard-bounce report of message msg to profile at doneAt.
func bounceFor(msg, profile, doneAt string) string {
	r := map[string]any{
		"messageId":    msg,
		"to":           profile + "@example.com",
		"doneAt":       doneAt,
		"callbackData": `{"profileId":"` + profile + `"}`,
		"status":       map[string]any{"id": 4, "groupId": 2, "groupName": "UNDELIVERABLE", "name": "UNDELIVERABLE_REJECTED_OPERATOR"},
		"error":        map[string]any{"id": 6012, "name": "EC_HARD_BOUNCE", "groupId": 2, "groupName": "BOUNCED", "permanent": true},
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// unreadable reads ibmail_unreadable_rows_total by kind of row.
func unreadable(what string) float64 {
	return testutil.ToFloat64(metrics.UnreadableRows.WithLabelValues(what))
}

// Rows stored by older versions that cannot be shown (times outside a
// Timestamp's range, invalid UTF-8, params that do not decode, payloads
// that do not unmarshal, absurd sizes) are skipped by every read, over
// gRPC and REST, logged once each and counted; the good rows are served,
// pages move past the skipped ones, and WatchEvents streams on past them.
// On the old code, each of these reads answered Internal (500).
func TestUnreadableRowsAreSkippedByEveryRead(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			opts := []envOption{withSequencer()}
			if engine == "postgres" {
				opts = append(opts, withPostgres())
			}
			env := newTestEnv(t, opts...)
			ctx := context.Background()
			status, resp := env.postWebhook(t, body(
				bounceFor("good-1", "ann", "2024-05-01T10:00:00.000+0000"),
				bounceFor("bad-params", "ann", "2024-05-01T10:00:01.000+0000"),
				bounceFor("bad-email", "ann", "2024-05-01T10:00:02.000+0000"),
				bounceFor("good-2", "ann", "2024-05-01T10:00:03.000+0000"),
				bounceFor("bad-time", "zed", "2024-05-01T10:00:04.000+0000"),
				bounceFor("good-3", "bob", "2024-05-01T10:00:05.000+0000"),
				`{"to": "no-message-id@example.com"}`,
			))
			if status != http.StatusOK || resp["accepted"] != float64(6) {
				t.Fatalf("webhook = %d %v, want 200 with 6 accepted", status, resp)
			}
			const byMessage = ` WHERE id = (SELECT id FROM delivery_reports WHERE message_id = `
			env.corrupt(t, `UPDATE profile_events SET time = ?`+byMessage+`'bad-time')`,
				`UPDATE profile_events SET time = $1`+byMessage+`'bad-time')`, outOfRange)
			env.corrupt(t, `UPDATE profile_events SET params = '{"messageId": 7}'`+byMessage+`'bad-params')`,
				`UPDATE profile_events SET params = '{"messageId": 7}'`+byMessage+`'bad-params')`)
			// PostgreSQL keeps only UTF-8 text: there the email is absurdly
			// long instead.
			env.corrupt(t, `UPDATE profile_events SET email = CAST(X'61ff40782e636f6d' AS TEXT)`+byMessage+`'bad-email')`,
				`UPDATE profile_events SET email = repeat('a', 100000) || '@x.com'`+byMessage+`'bad-email')`)
			env.corrupt(t, `UPDATE delivery_reports SET payload = X'ffff' WHERE message_id = 'good-2'`,
				`UPDATE delivery_reports SET payload = '\xffff'::bytea WHERE message_id = 'good-2'`)
			env.corrupt(t, `INSERT INTO rejected_payloads (receive_time, content_type, reason, body) VALUES (?, 'application/json', 'old', X'7b7d')`,
				`INSERT INTO rejected_payloads (receive_time, content_type, reason, body) VALUES ($1, 'application/json', 'old', '\x7b7d'::bytea)`, outOfRange)
			env.corrupt(t, `INSERT INTO suppressions (email, profile_id, event_name, event_id, reason, create_time) VALUES ('old@example.com', 'old', 'newsletter.hardbounce', 1, 'old', ?)`,
				`INSERT INTO suppressions (email, profile_id, event_name, event_id, reason, create_time) VALUES ('old@example.com', 'old', 'newsletter.hardbounce', 1, 'old', $1)`, outOfRange)

			before := map[string]float64{}
			kinds := []string{"event", "profile_match", "report", "rejected_payload", "suppression"}
			for _, k := range kinds {
				before[k] = unreadable(k)
			}

			// The activity list, a page of one at a time: the skipped rows
			// make empty pages whose token moves on.
			for range 2 { // a second read logs nothing new
				var got []string
				token := ""
				for pages := 0; ; pages++ {
					if pages > 10 {
						t.Fatal("the activity list does not end: its page token does not move past skipped rows")
					}
					page, err := env.people.ListProfileEvents(ctx, &ibmailv1.ListProfileEventsRequest{ProfileId: "ann", PageSize: 1, PageToken: token})
					if err != nil {
						t.Fatalf("ListProfileEvents(ann): %v", err)
					}
					for _, e := range page.GetEvents() {
						got = append(got, e.GetParams()["messageId"])
					}
					if token = page.GetNextPageToken(); token == "" {
						break
					}
				}
				if want := []string{"good-2", "good-1"}; !slices.Equal(got, want) {
					t.Errorf("ann's events = %v, want %v", got, want)
				}
			}
			if page, err := env.people.ListProfileEvents(ctx, &ibmailv1.ListProfileEventsRequest{ProfileId: "zed"}); err != nil || len(page.GetEvents()) != 0 {
				t.Errorf("ListProfileEvents(zed) = %v, %v; want no events and no error", page, err)
			}
			if n := strings.Count(env.logs.String(), `"msg":"stored row cannot be shown; skipped","what":"event"`); n != 3 {
				t.Errorf("%d log lines about unshowable events after reading them twice, want 3 (one per row)", n)
			}

			search, err := env.people.SearchProfiles(ctx, &ibmailv1.SearchProfilesRequest{EventNames: []string{"newsletter.hardbounce"}})
			if err != nil {
				t.Fatalf("SearchProfiles: %v", err)
			}
			var profiles []string
			for _, m := range search.GetProfiles() {
				profiles = append(profiles, m.GetProfileId())
			}
			if want := []string{"ann", "bob"}; !slices.Equal(profiles, want) {
				t.Errorf("SearchProfiles = %v, want %v (zed's only event cannot be shown)", profiles, want)
			}

			reports, err := env.reports.ListDeliveryReports(ctx, &ibmailv1.ListDeliveryReportsRequest{})
			if err != nil {
				t.Fatalf("ListDeliveryReports: %v", err)
			}
			var reportIDs []string
			for _, r := range reports.GetReports() {
				reportIDs = append(reportIDs, r.GetReport().GetMessageId())
			}
			if slices.Contains(reportIDs, "good-2") || len(reportIDs) != 5 {
				t.Errorf("ListDeliveryReports = %v, want the 5 reports other than good-2", reportIDs)
			}
			rejected, err := env.reports.ListRejectedPayloads(ctx, &ibmailv1.ListRejectedPayloadsRequest{})
			if err != nil || len(rejected.GetPayloads()) != 1 || rejected.GetPayloads()[0].GetReason() == "old" {
				t.Errorf("ListRejectedPayloads = %v, %v; want the one refused report, not the old row", rejected, err)
			}
			supps, err := env.supps.ListSuppressions(ctx, &ibmailv1.ListSuppressionsRequest{})
			if err != nil {
				t.Fatalf("ListSuppressions: %v", err)
			}
			for _, s := range supps.GetSuppressions() {
				if s.GetEmail() == "old@example.com" {
					t.Errorf("ListSuppressions shows the old row with a time out of range")
				}
			}

			// The same reads over REST answer 200.
			for _, r := range []struct{ method, path, body string }{
				{http.MethodGet, "/v1/profiles/ann/events", ""},
				{http.MethodGet, "/v1/profiles/zed/events", ""},
				{http.MethodPost, "/v1/profiles:search", `{"eventNames": ["newsletter.hardbounce"]}`},
				{http.MethodPost, "/v1/profiles:search", `{"eventNames": ["newsletter.hardbounce"], "since": "2024-01-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}`},
				{http.MethodGet, "/v1/deliveryReports", ""},
				{http.MethodGet, "/v1/rejectedPayloads", ""},
				{http.MethodGet, "/v1/suppressions", ""},
			} {
				if status, out := env.do(t, r.method, r.path, "application/json", []byte(r.body)); status != http.StatusOK {
					t.Errorf("%s %s = %d %v, want 200", r.method, r.path, status, out)
				}
			}

			// WatchEvents streams past the skipped events, to one stored
			// after them.
			watchCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			stream, err := env.events.WatchEvents(watchCtx, &ibmailv1.WatchEventsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if status, _ := env.postWebhook(t, body(bounceFor("good-4", "bob", "2024-05-01T10:00:06.000+0000"))); status != http.StatusOK {
				t.Fatalf("webhook = %d", status)
			}
			var streamed []string
			for !slices.Contains(streamed, "good-4") {
				msg, err := stream.Recv()
				if errors.Is(err, io.EOF) || err != nil {
					t.Fatalf("WatchEvents after %v: %v", streamed, err)
				}
				streamed = append(streamed, msg.GetEvent().GetParams()["messageId"])
			}
			if want := []string{"good-1", "good-2", "good-3", "good-4"}; !slices.Equal(streamed, want) {
				t.Errorf("WatchEvents streamed %v, want %v", streamed, want)
			}

			for _, k := range kinds {
				if d := unreadable(k) - before[k]; d < 1 {
					t.Errorf("ibmail_unreadable_rows_total{what=%q} did not grow", k)
				}
			}
		})
	}
}

// Sends, their recipients, senders and connections stored with what
// cannot be shown are skipped by their listings (over gRPC and REST) and
// counted; a Get of one answers DATA_LOSS with the reason UNREADABLE_ROW
// instead of an opaque Internal. On the old code, each answered Internal.
func TestUnreadableResourceRowsAreSkipped(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			var opts []envOption
			if engine == "postgres" {
				opts = append(opts, withPostgres())
			}
			env := newTestEnv(t, opts...)
			ctx := context.Background()
			provisionSender(t, env, "https://c1.api.infobip.com")
			if _, err := env.conns.CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{Connection: &ibmailv1.Connection{
				Id: "c2", ApiKey: testAPIKey, BaseUrl: "https://c2.api.infobip.com"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := env.senders.CreateSender(ctx, &ibmailv1.CreateSenderRequest{Sender: &ibmailv1.Sender{
				Id: "s2", ConnectionId: "c1", FromAddress: "other@example.com"}}); err != nil {
				t.Fatal(err)
			}
			var sendIDs []string
			for _, key := range []string{"bad", "good"} {
				resp, err := env.sends.CreateSend(ctx, &ibmailv1.CreateSendRequest{SenderId: "s1", Subject: "s", Text: "t", IdempotencyKey: key,
					Recipients: []*ibmailv1.RecipientInput{{Email: "a@example.com"}, {Email: "b@example.com"}}})
				if err != nil {
					t.Fatal(err)
				}
				sendIDs = append(sendIDs, resp.GetSend().GetId())
			}
			bad, good := sendIDs[0], sendIDs[1]
			// Not UTF-8 in SQLite; absurdly long in PostgreSQL, which keeps
			// only UTF-8 text.
			const liteBad, pgBad = `CAST(X'61ff62' AS TEXT)`, `repeat('x', 70000)`
			env.corrupt(t, `UPDATE sends SET subject = `+liteBad+` WHERE id = ?`, `UPDATE sends SET subject = `+pgBad+` WHERE id = $1`, bad)
			env.corrupt(t, `UPDATE send_recipients SET reason = `+liteBad+` WHERE send_id = ? AND seq = 0`,
				`UPDATE send_recipients SET reason = `+pgBad+` WHERE send_id = $1 AND seq = 0`, good)
			env.corrupt(t, `UPDATE senders SET from_name = `+liteBad+` WHERE id = 's2'`, `UPDATE senders SET from_name = `+pgBad+` WHERE id = 's2'`)
			env.corrupt(t, `UPDATE connections SET display_name = `+liteBad+` WHERE id = 'c2'`, `UPDATE connections SET display_name = `+pgBad+` WHERE id = 'c2'`)

			kinds := []string{"send", "recipient", "sender", "connection"}
			before := map[string]float64{}
			for _, k := range kinds {
				before[k] = unreadable(k)
			}
			list, err := env.sends.ListSends(ctx, &ibmailv1.ListSendsRequest{})
			if err != nil || len(list.GetSends()) != 1 || list.GetSends()[0].GetId() != good {
				t.Errorf("ListSends = %v, %v; want only %s", list, err, good)
			}
			recipients, err := env.sends.ListSendRecipients(ctx, &ibmailv1.ListSendRecipientsRequest{SendId: good})
			if err != nil || len(recipients.GetRecipients()) != 1 || recipients.GetRecipients()[0].GetEmail() != "b@example.com" {
				t.Errorf("ListSendRecipients = %v, %v; want only b@example.com", recipients, err)
			}
			senders, err := env.senders.ListSenders(ctx, &ibmailv1.ListSendersRequest{})
			if err != nil || len(senders.GetSenders()) != 1 || senders.GetSenders()[0].GetId() != "s1" {
				t.Errorf("ListSenders = %v, %v; want only s1", senders, err)
			}
			conns, err := env.conns.ListConnections(ctx, &ibmailv1.ListConnectionsRequest{})
			if err != nil || len(conns.GetConnections()) != 1 || conns.GetConnections()[0].GetId() != "c1" {
				t.Errorf("ListConnections = %v, %v; want only c1", conns, err)
			}
			for name, get := range map[string]func() error{
				"GetSend": func() error { _, err := env.sends.GetSend(ctx, &ibmailv1.GetSendRequest{SendId: bad}); return err },
				"GetSender": func() error {
					_, err := env.senders.GetSender(ctx, &ibmailv1.GetSenderRequest{SenderId: "s2"})
					return err
				},
				"GetConnection": func() error {
					_, err := env.conns.GetConnection(ctx, &ibmailv1.GetConnectionRequest{ConnectionId: "c2"})
					return err
				},
			} {
				err := get()
				if status.Code(err) != codes.DataLoss || !strings.Contains(status.Convert(err).Message(), "cannot be shown") {
					t.Errorf("%s = %v, want DataLoss saying the row cannot be shown", name, err)
				}
			}
			for _, path := range []string{"/v1/sends", "/v1/sends/" + good + "/recipients", "/v1/senders", "/v1/connections"} {
				if code, got := env.do(t, http.MethodGet, path, "", nil); code != http.StatusOK {
					t.Errorf("GET %s = %d %v, want 200", path, code, got)
				}
			}
			for _, k := range kinds {
				if d := unreadable(k) - before[k]; d < 1 {
					t.Errorf("ibmail_unreadable_rows_total{what=%q} did not grow", k)
				}
			}
		})
	}
}
