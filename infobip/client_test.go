package infobip_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ibmail/ibmail/infobip"
	"github.com/ibmail/ibmail/infobip/spec"
)

const testKey = "k3y-0123456789abcdef-secret"

// canned is the answer a fake Infobip gives.
type canned struct {
	status int
	header http.Header
	body   string
}

// fakeInfobip records every request (body included), checks it against
// Infobip's OpenAPI description, and answers with the next canned answer.
type fakeInfobip struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []*http.Request
	bodies [][]byte
	answer canned
}

func newFake(t *testing.T, answer canned) *fakeInfobip {
	f := &fakeInfobip{t: t, answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		check := r.Clone(context.Background())
		check.Body = io.NopCloser(bytes.NewReader(body))
		if err := spec.MustLoad().ValidateRequest(check); err != nil {
			t.Errorf("request breaks the OpenAPI description: %v", err)
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, check)
		f.bodies = append(f.bodies, body)
		a := f.answer
		f.mu.Unlock()
		if a.status == http.StatusOK {
			resp := &http.Response{StatusCode: a.status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(a.body))}
			if err := spec.MustLoad().ValidateResponse(check, resp); err != nil {
				t.Errorf("canned answer breaks the OpenAPI description: %v", err)
			}
		}
		for k, vs := range a.header {
			w.Header()[k] = vs
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeInfobip) last(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("no request reached the fake Infobip")
	}
	r, b := f.reqs[len(f.reqs)-1], f.bodies[len(f.bodies)-1]
	r.Body = io.NopCloser(bytes.NewReader(b))
	return r, b
}

func (f *fakeInfobip) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func newClient(t *testing.T, baseURL string, mod ...func(*infobip.Config)) *infobip.Client {
	t.Helper()
	cfg := infobip.Config{BaseURL: baseURL, APIKey: testKey, ApplicationID: "app-1", EntityID: "ent-1"}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := infobip.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const acceptedBody = `{"bulkId":"bulk-1","messages":[
 {"to":"john@example.com","messageId":"m-1","status":{"groupId":1,"groupName":"PENDING","id":26,"name":"PENDING_ACCEPTED","description":"Message accepted, pending for delivery."}},
 {"to":"ann@example.com","messageId":"m-2","status":{"groupId":1,"groupName":"PENDING","id":26,"name":"PENDING_ACCEPTED","description":"Message accepted, pending for delivery."}}]}`

func TestSendMultipart(t *testing.T) {
	fake := newFake(t, canned{status: 200, body: acceptedBody})
	c := newClient(t, fake.srv.URL)
	got, err := c.Send(context.Background(), infobip.SendRequest{
		From: "Jane Smith <jane@example.com>",
		To: []infobip.Recipient{
			{Email: "john@example.com"},
			{Email: "ann@example.com", Placeholders: map[string]string{"name": "Ann"}},
		},
		Bcc:                 []infobip.Recipient{{Email: "audit@example.com"}},
		Subject:             "Hello {{name}}",
		HTML:                "<p>Hi {{name}}, {{ph1}}</p>",
		Text:                "Hi {{name}}",
		ReplyTo:             "replies@example.com",
		DefaultPlaceholders: map[string]string{"ph1": "Success"},
		TrackOpens:          new(true),
		TrackClicks:         new(false),
		NotifyURL:           "https://hooks.example.com/dlr?token=abc",
		CallbackData:        `{"profileId":"p-42"}`,
		CampaignReferenceID: "spring",
		Attachments:         []infobip.Attachment{{Name: "a.txt", ContentType: "text/plain", Data: []byte("hello")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &infobip.SendResponse{BulkID: "bulk-1", Messages: []infobip.SentMessage{
		{To: "john@example.com", MessageID: "m-1", Status: pending},
		{To: "ann@example.com", MessageID: "m-2", Status: pending},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Send = %+v, want %+v", got, want)
	}

	r, _ := fake.last(t)
	if got, want := r.Header.Get("Authorization"), "App "+testKey; got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		t.Fatal(err)
	}
	form := r.MultipartForm.Value
	wantForm := map[string][]string{
		"from":                {"Jane Smith <jane@example.com>"},
		"to":                  {"john@example.com", `{"to":"ann@example.com","placeholders":{"name":"Ann"}}`},
		"bcc":                 {"audit@example.com"},
		"subject":             {"Hello {{name}}"},
		"html":                {"<p>Hi {{name}}, {{ph1}}</p>"},
		"text":                {"Hi {{name}}"},
		"replyTo":             {"replies@example.com"},
		"defaultPlaceholders": {`{"ph1":"Success"}`},
		"trackOpens":          {"true"},
		"trackClicks":         {"false"},
		"notifyUrl":           {"https://hooks.example.com/dlr?token=abc"},
		"notifyContentType":   {"application/json"},
		"callbackData":        {`{"profileId":"p-42"}`},
		"campaignReferenceId": {"spring"},
		"applicationId":       {"app-1"},
		"entityId":            {"ent-1"},
		"bulkId":              form["bulkId"], // generated: checked below
	}
	if !reflect.DeepEqual(form, wantForm) {
		t.Errorf("form = %q\nwant %q", form, wantForm)
	}
	if b := form["bulkId"]; len(b) != 1 || len(b[0]) != 20 {
		t.Errorf("bulkId = %q, want one generated 20-character id", b)
	}
	if files := r.MultipartForm.File["attachment"]; len(files) != 1 || files[0].Filename != "a.txt" || files[0].Size != 5 {
		t.Errorf("attachment = %+v, want a.txt of 5 bytes", files)
	}
}

var pending = infobip.Status{GroupID: 1, GroupName: "PENDING", ID: 26, Name: "PENDING_ACCEPTED", Description: "Message accepted, pending for delivery."}

func TestSendKeepsCallerIDs(t *testing.T) {
	fake := newFake(t, canned{status: 200, body: acceptedBody})
	c := newClient(t, fake.srv.URL)
	_, err := c.Send(context.Background(), infobip.SendRequest{
		TemplateID: 77, To: []infobip.Recipient{{Email: "a@example.com"}},
		BulkID: "my-bulk", MessageID: "my-msg", ApplicationID: "other-app",
	})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := fake.last(t)
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]string{"bulkId": "my-bulk", "messageId": "my-msg", "templateId": "77", "applicationId": "other-app", "entityId": "ent-1"} {
		if got := r.MultipartForm.Value[field]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	for _, absent := range []string{"from", "subject", "notifyContentType", "trackOpens"} {
		if got, ok := r.MultipartForm.Value[absent]; ok {
			t.Errorf("%s = %q, want it left out", absent, got)
		}
	}
}

func TestSendValidation(t *testing.T) {
	to := func(n int) []infobip.Recipient {
		r := make([]infobip.Recipient, n)
		for i := range r {
			r[i] = infobip.Recipient{Email: "r@example.com"}
		}
		return r
	}
	ok := infobip.SendRequest{From: "a@example.com", To: to(1), Subject: "s"}
	with := func(mod func(*infobip.SendRequest)) infobip.SendRequest {
		r := ok
		mod(&r)
		return r
	}
	tests := []struct {
		name      string
		req       infobip.SendRequest
		wantField string // "" means valid
	}{
		{"valid", ok, ""},
		{"1000 recipients over to, cc and bcc", with(func(r *infobip.SendRequest) { r.To, r.Cc, r.Bcc = to(998), to(1), to(1) }), ""},
		{"1001 recipients over to, cc and bcc", with(func(r *infobip.SendRequest) { r.To, r.Cc, r.Bcc = to(999), to(1), to(1) }), "to"},
		{"no to", with(func(r *infobip.SendRequest) { r.To, r.Cc = nil, to(1) }), "to"},
		{"empty address", with(func(r *infobip.SendRequest) { r.To = []infobip.Recipient{{Email: "a@example.com"}, {Email: " "}} }), "to[1]"},
		{"address without @", with(func(r *infobip.SendRequest) { r.Bcc = []infobip.Recipient{{Email: "nobody"}} }), "bcc[0]"},
		{"no from", with(func(r *infobip.SendRequest) { r.From = "" }), "from"},
		{"no subject", with(func(r *infobip.SendRequest) { r.Subject = "" }), "subject"},
		{"template needs neither from nor subject", with(func(r *infobip.SendRequest) { r.From, r.Subject, r.TemplateID = "", "", 5 }), ""},
		{"subject of 1000 characters", with(func(r *infobip.SendRequest) { r.Subject = strings.Repeat("é", 1000) }), ""},
		{"subject of 1001 characters", with(func(r *infobip.SendRequest) { r.Subject = strings.Repeat("é", 1001) }), "subject"},
		{"callbackData of 4000 characters", with(func(r *infobip.SendRequest) { r.CallbackData = strings.Repeat("x", 4000) }), ""},
		{"callbackData of 4001 characters", with(func(r *infobip.SendRequest) { r.CallbackData = strings.Repeat("x", 4001) }), "callbackData"},
		{"messageId with two recipients", with(func(r *infobip.SendRequest) { r.To, r.MessageID = to(2), "m" }), "messageId"},
		{"messageId with preserved recipients", with(func(r *infobip.SendRequest) { r.To, r.MessageID, r.PreserveRecipients = to(2), "m", true }), ""},
		{"ampHtml without html", with(func(r *infobip.SendRequest) { r.AMPHTML = "<html amp>" }), "ampHtml"},
		{"notifyContentType text", with(func(r *infobip.SendRequest) { r.NotifyContentType = "text/plain" }), "notifyContentType"},
		{"applicationId too long", with(func(r *infobip.SendRequest) { r.ApplicationID = strings.Repeat("a", 256) }), "applicationId"},
	}
	fake := newFake(t, canned{status: 200, body: acceptedBody})
	c := newClient(t, fake.srv.URL)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fake.count()
			_, err := c.Send(context.Background(), tt.req)
			var fe *infobip.FieldError
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("Send: %v, want no error", err)
			case tt.wantField != "" && !errors.As(err, &fe):
				t.Fatalf("Send: %v, want a *FieldError for %s", err, tt.wantField)
			case tt.wantField != "" && fe.Field != tt.wantField:
				t.Errorf("Field = %q, want %q (%v)", fe.Field, tt.wantField, err)
			case tt.wantField != "" && fake.count() != before:
				t.Errorf("an invalid request was sent")
			}
		})
	}
}

func TestDomains(t *testing.T) {
	fake := newFake(t, canned{status: 200, body: `{"paging":{"page":0,"size":1,"totalPages":2,"totalResults":2},
		"results":[{"domainId":7,"domainName":"mail.example.com","active":true,"blocked":false,
		"tracking":{"clicks":true,"opens":true,"unsubscribe":false},
		"dnsRecords":[{"recordType":"TXT","name":"mail.example.com","expectedValue":"v=spf1","verified":true}],
		"createdAt":"2024-05-01T10:00:00.000+0000"}]}`})
	c := newClient(t, fake.srv.URL)
	got, err := c.Domains(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := fake.last(t)
	if r.URL.Path != "/email/1/domains" || r.URL.RawQuery != "size=1" {
		t.Errorf("request = %s?%s, want /email/1/domains?size=1", r.URL.Path, r.URL.RawQuery)
	}
	if len(got.Results) != 1 || got.Paging.TotalResults != 2 {
		t.Fatalf("Domains = %+v", got)
	}
	d := got.Results[0]
	if d.DomainName != "mail.example.com" || !d.Active || d.Blocked || !d.Tracking.Clicks || len(d.DNSRecords) != 1 || d.CreatedAt.Year() != 2024 {
		t.Errorf("domain = %+v", d)
	}
	if _, err := c.Domains(context.Background(), 21); err == nil {
		t.Error("Domains(21): want a *FieldError")
	}
}

func TestLogs(t *testing.T) {
	fake := newFake(t, canned{status: 200, body: `{"results":[{"bulkId":"b-1","messageId":"m-1","to":"a@example.com",
		"from":"me@example.com","sentAt":"2024-05-01T10:00:00.256+0000","doneAt":"2024-05-01T10:00:02.000+0000","messageCount":1,
		"price":{"pricePerMessage":0,"currency":"EUR"},
		"status":{"groupId":3,"groupName":"DELIVERED","id":5,"name":"DELIVERED_TO_HANDSET"},
		"error":{"groupId":0,"groupName":"OK","id":0,"name":"NO_ERROR","permanent":false}}]}`})
	c := newClient(t, fake.srv.URL)
	got, err := c.Logs(context.Background(), infobip.LogsQuery{BulkID: "b-1", MessageID: "m-1", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := fake.last(t)
	if want := "bulkId=b-1&limit=10&messageId=m-1"; r.URL.Path != "/email/1/logs" || r.URL.RawQuery != want {
		t.Errorf("request = %s?%s, want /email/1/logs?%s", r.URL.Path, r.URL.RawQuery, want)
	}
	if len(got.Results) != 1 {
		t.Fatalf("Logs = %+v", got)
	}
	l := got.Results[0]
	if l.MessageID != "m-1" || l.Status.GroupName != "DELIVERED" || l.SentAt.Nanosecond() != 256e6 || l.Error.Name != "NO_ERROR" {
		t.Errorf("log = %+v", l)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   infobip.Config
		field string
	}{
		{"no base", infobip.Config{APIKey: "k"}, "BaseURL"},
		{"relative base", infobip.Config{BaseURL: "xyz.api.infobip.com", APIKey: "k"}, "BaseURL"},
		{"no key", infobip.Config{BaseURL: "https://x.api.infobip.com"}, "APIKey"},
		{"key with a newline", infobip.Config{BaseURL: "https://x.api.infobip.com", APIKey: "k\nX-Evil: 1"}, "APIKey"},
		{"long entity", infobip.Config{BaseURL: "https://x.api.infobip.com", APIKey: "k", EntityID: strings.Repeat("e", 256)}, "EntityID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := infobip.New(tt.cfg)
			var fe *infobip.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("New: %v, want a *FieldError for %s", err, tt.field)
			}
		})
	}
}
