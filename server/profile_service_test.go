package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// reportAt is report() with another doneAt.
func reportAt(messageID, to, doneAt string, errID int, errName string, groupID int, groupName string) string {
	return strings.Replace(report(messageID, to, errID, errName, groupID, groupName), "2024-05-01T10:00:00.000+0000", doneAt, 1)
}

func TestActivityListPagingAndFilter(t *testing.T) {
	env := newTestEnv(t)
	var rs []string
	for i := range 5 {
		rs = append(rs, reportAt(fmt.Sprintf("hard-%d", i), "ann@example.com", fmt.Sprintf("2024-05-0%dT10:00:00.000+0000", i+1), 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"))
	}
	rs = append(rs, reportAt("soft-1", "ann@example.com", "2024-05-09T10:00:00.000-0300", 6011, "EC_SOFT_BOUNCE", 2, "BOUNCED"))
	if code, got := env.postWebhook(t, body(rs...)); code != http.StatusOK {
		t.Fatalf("ingest: %d %v", code, got)
	}

	var gotIDs []string
	token := ""
	for page := 0; ; page++ {
		code, got := env.do(t, http.MethodGet, "/v1/profiles/ann@example.com/events?pageSize=4&pageToken="+token, "", nil)
		if code != http.StatusOK {
			t.Fatalf("page %d: %d %v", page, code, got)
		}
		for _, e := range got["events"].([]any) {
			gotIDs = append(gotIDs, e.(map[string]any)["params"].(map[string]any)["messageId"].(string))
		}
		token, _ = got["nextPageToken"].(string)
		if token == "" {
			break
		}
		if page > 3 {
			t.Fatal("paging does not end")
		}
	}
	want := "soft-1,hard-4,hard-3,hard-2,hard-1,hard-0"
	if strings.Join(gotIDs, ",") != want {
		t.Errorf("events newest first = %v, want %s", gotIDs, want)
	}

	resp, err := env.people.ListProfileEvents(context.Background(), &ibmailv1.ListProfileEventsRequest{
		ProfileId: "ann@example.com", EventNames: []string{"newsletter.softbounce"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetEvents()) != 1 || resp.GetEvents()[0].GetAction() != "newsletter.softbounce" {
		t.Errorf("filtered events = %v, want the one softbounce", resp.GetEvents())
	}
	if got := resp.GetEvents()[0].GetTime().AsTime().Format("2006-01-02T15:04:05Z07:00"); got != "2024-05-09T13:00:00Z" {
		t.Errorf("time = %s, want -0300 offset applied: 2024-05-09T13:00:00Z", got)
	}
}

func TestProfileRequestsValidated(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	tests := []struct {
		name      string
		call      func() error
		wantField string
	}{
		{"events without profile", func() error {
			_, err := env.people.ListProfileEvents(ctx, &ibmailv1.ListProfileEventsRequest{})
			return err
		}, "profile_id"},
		{"negative page size", func() error {
			_, err := env.people.ListProfileEvents(ctx, &ibmailv1.ListProfileEventsRequest{ProfileId: "p", PageSize: -1})
			return err
		}, "page_size"},
		{"foreign page token", func() error {
			_, err := env.people.ListProfileEvents(ctx, &ibmailv1.ListProfileEventsRequest{ProfileId: "p", PageToken: "bm9wZQ"})
			return err
		}, "page_token"},
		{"bad event name", func() error {
			_, err := env.people.ListProfileEvents(ctx, &ibmailv1.ListProfileEventsRequest{ProfileId: "p", EventNames: []string{"Hard Bounce"}})
			return err
		}, "event_names"},
		{"search without names", func() error {
			_, err := env.people.SearchProfiles(ctx, &ibmailv1.SearchProfilesRequest{})
			return err
		}, "event_names"},
		{"search window backwards", func() error {
			_, err := env.people.SearchProfiles(ctx, &ibmailv1.SearchProfilesRequest{
				EventNames: []string{"newsletter.hardbounce"},
				Since:      timestamppb.New(mustTime(t, "2024-05-02T00:00:00Z")),
				Until:      timestamppb.New(mustTime(t, "2024-05-01T00:00:00Z")),
			})
			return err
		}, "until"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.wantField) {
				t.Errorf("message %q does not name %s", msg, tt.wantField)
			}
		})
	}
}

func TestSegmentation(t *testing.T) {
	env := newTestEnv(t)
	b := body(
		reportAt("a1", "ann@example.com", "2024-05-01T10:00:00.000+0000", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"),
		reportAt("a2", "ann@example.com", "2024-05-03T10:00:00.000+0000", 6002, "EC_SPAM_DETECTED", 1, "DROPPED"),
		reportAt("b1", "bob@example.com", "2024-05-02T10:00:00.000+0000", 6011, "EC_SOFT_BOUNCE", 2, "BOUNCED"),
		reportAt("c1", "cy@example.com", "2024-06-01T10:00:00.000+0000", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED"),
		reportAt("d1", "di@example.com", "2024-05-02T10:00:00.000+0000", 6003, "EC_UNSUBSCRIBED_EMAIL_ADDRESS", 1, "DROPPED"),
	)
	if code, got := env.postWebhook(t, b); code != http.StatusOK {
		t.Fatalf("ingest: %d %v", code, got)
	}
	tests := []struct {
		name string
		req  string
		want string // profileId:count:lastEventTime, in order
	}{
		{"hard and spam bounces in May", `{"eventNames":["newsletter.hardbounce","newsletter.spambounce"],"since":"2024-05-01T00:00:00Z","until":"2024-06-01T00:00:00Z"}`,
			"ann@example.com:2:2024-05-03T10:00:00Z"},
		{"until is exclusive", `{"eventNames":["newsletter.hardbounce"],"since":"2024-05-01T00:00:00Z","until":"2024-06-01T10:00:00Z"}`,
			"ann@example.com:1:2024-05-01T10:00:00Z"},
		{"since is inclusive, no until", `{"eventNames":["newsletter.hardbounce"],"since":"2024-06-01T10:00:00Z"}`,
			"cy@example.com:1:2024-06-01T10:00:00Z"},
		{"unbounded", `{"eventNames":["newsletter.softbounce","newsletter.dropped"]}`,
			"bob@example.com:1:2024-05-02T10:00:00Z,di@example.com:1:2024-05-02T10:00:00Z"},
		{"no match", `{"eventNames":["newsletter.hardbounce"],"until":"2024-01-01T00:00:00Z"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, got := env.do(t, http.MethodPost, "/v1/profiles:search", "application/json", []byte(tt.req))
			if code != http.StatusOK {
				t.Fatalf("status %d: %v", code, got)
			}
			var rows []string
			for _, p := range got["profiles"].([]any) {
				m := p.(map[string]any)
				rows = append(rows, fmt.Sprintf("%v:%v:%v", m["profileId"], m["eventCount"], m["lastEventTime"]))
			}
			if g := strings.Join(rows, ","); g != tt.want {
				t.Errorf("got %s, want %s", g, tt.want)
			}
		})
	}

	// Paging: one profile per page, every profile once.
	var seen []string
	token := ""
	for range 10 {
		resp, err := env.people.SearchProfiles(context.Background(), &ibmailv1.SearchProfilesRequest{
			EventNames: []string{"newsletter.hardbounce", "newsletter.spambounce", "newsletter.softbounce", "newsletter.dropped"},
			PageSize:   1, PageToken: token,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.GetProfiles() {
			seen = append(seen, p.GetProfileId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if got, want := strings.Join(seen, ","), "ann@example.com,bob@example.com,cy@example.com,di@example.com"; got != want {
		t.Errorf("paged profiles = %s, want %s", got, want)
	}
}
