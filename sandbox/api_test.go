package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ibmail/ibmail/infobip"
	"github.com/ibmail/ibmail/infobip/spec"
	"github.com/ibmail/ibmail/sandbox"
)

func TestAuth(t *testing.T) {
	e := newEnv(t, sandbox.Options{LimitedKeys: []string{"limited"}})
	tests := []struct {
		name, auth string
		status     int
		body       string
	}{
		{"no header", "", 401, `{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}`},
		{"wrong key", "App nope", 401, `{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}`},
		{"other scheme", "Bearer " + key, 401, `{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}`},
		{"key without scopes", "App limited", 403, `{"requestError":{"serviceException":{"messageId":"FORBIDDEN","text":"Forbidden"}}}`},
		{"good key, scheme in any case", "app " + key, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/email/1/domains?size=1", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, body := do(t, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if tt.body != "" && string(body) != tt.body {
				t.Errorf("body = %s\nwant %s", body, tt.body)
			}
		})
	}
	_, err := newClient(t, e.srv.URL, "limited").Domains(context.Background(), 1)
	if !infobip.IsForbidden(err) {
		t.Errorf("limited key through the client: %v, want IsForbidden", err)
	}
	_, err = newClient(t, e.srv.URL, "wrong").Send(context.Background(), infobip.SendRequest{From: "a@example.com", Subject: "s", To: recipients("b@example.com")})
	if !infobip.IsUnauthorized(err) || infobip.IsRetryable(err) {
		t.Errorf("wrong key through the client: %v, want IsUnauthorized, not retryable", err)
	}
	if st := e.sb.Stats(); st.Rejected401 != 4 || st.Rejected403 != 2 || st.Accepted != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRecipientLimit(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	form := func(to, cc, bcc int) []field {
		f := []field{{"from", "a@example.com"}, {"subject", "s"}}
		for i := range to {
			f = append(f, field{"to", fmt.Sprintf("to%d@example.com", i)})
		}
		for i := range cc {
			f = append(f, field{"cc", fmt.Sprintf(`{"to":"cc%d@example.com","placeholders":{"n":"%d"}}`, i, i)})
		}
		for i := range bcc {
			f = append(f, field{"bcc", fmt.Sprintf("bcc%d@example.com", i)})
		}
		return f
	}
	resp, body := rawSend(t, e.srv.URL, key, form(998, 1, 1)...)
	var ok infobip.SendResponse
	if resp.StatusCode != 200 || json.Unmarshal(body, &ok) != nil || len(ok.Messages) != 1000 {
		t.Fatalf("1000 recipients: %d %.200s", resp.StatusCode, body)
	}
	resp, body = rawSend(t, e.srv.URL, key, form(999, 1, 1)...)
	var apiErr struct {
		RequestError struct {
			ServiceException struct {
				MessageID        string              `json:"messageId"`
				ValidationErrors map[string][]string `json:"validationErrors"`
			} `json:"serviceException"`
		} `json:"requestError"`
	}
	if err := json.Unmarshal(body, &apiErr); err != nil || resp.StatusCode != 400 {
		t.Fatalf("1001 recipients: %d %s", resp.StatusCode, body)
	}
	se := apiErr.RequestError.ServiceException
	if se.MessageID != "BAD_REQUEST" || len(se.ValidationErrors["to"]) != 1 || !strings.Contains(se.ValidationErrors["to"][0], "1000") {
		t.Errorf("1001 recipients: %s", body)
	}
	if st := e.sb.Stats(); st.Accepted != 1 || st.Recipients != 1000 || st.Rejected400 != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSendValidation(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	tests := []struct {
		name   string
		fields []field
		bad    string // field named in validationErrors; "" means accepted
	}{
		{"minimal", []field{{"from", "a@example.com"}, {"subject", "s"}, {"to", "b@example.com"}}, ""},
		{"template without from or subject", []field{{"templateId", "12"}, {"to", "b@example.com"}}, ""},
		{"no to", []field{{"from", "a@example.com"}, {"subject", "s"}, {"cc", "b@example.com"}}, "to"},
		{"no from", []field{{"subject", "s"}, {"to", "b@example.com"}}, "from"},
		{"no subject", []field{{"from", "a@example.com"}, {"to", "b@example.com"}}, "subject"},
		{"subject too long", []field{{"from", "a@example.com"}, {"subject", strings.Repeat("s", 1001)}, {"to", "b@example.com"}}, "subject"},
		{"callbackData too long", []field{{"from", "a@example.com"}, {"subject", "s"}, {"to", "b@example.com"}, {"callbackData", strings.Repeat("c", 4001)}}, "callbackData"},
		{"bad destination JSON", []field{{"from", "a@example.com"}, {"subject", "s"}, {"to", `{"to":`}}, "to"},
		{"bad boolean", []field{{"from", "a@example.com"}, {"subject", "s"}, {"to", "b@example.com"}, {"trackOpens", "yes please"}}, "trackOpens"},
		{"bad templateId", []field{{"to", "b@example.com"}, {"templateId", "t"}}, "templateId"},
		{"messageId for two", []field{{"from", "a@example.com"}, {"subject", "s"}, {"to", "b@example.com"}, {"to", "c@example.com"}, {"messageId", "m"}}, "messageId"},
		{"relative notifyUrl", []field{{"from", "a@example.com"}, {"subject", "s"}, {"to", "b@example.com"}, {"notifyUrl", "/dlr"}}, "notifyUrl"},
		{"relative trackingUrl", []field{{"from", "a@example.com"}, {"subject", "s"}, {"to", "b@example.com"}, {"trackingUrl", "/track?token=t"}}, "trackingUrl"},
		{"ftp trackingUrl", []field{{"from", "a@example.com"}, {"subject", "s"}, {"to", "b@example.com"}, {"trackingUrl", "ftp://example.com/t"}}, "trackingUrl"},
		{"trackingUrl with a token", []field{{"from", "a@example.com"}, {"subject", "s"}, {"to", "b@example.com"}, {"trackingUrl", "https://hooks.example.com/t?token=x"}}, ""},
		{"bad track", []field{{"from", "a@example.com"}, {"subject", "s"}, {"to", "b@example.com"}, {"track", "maybe"}}, "track"},
		{"bad trackClicks", []field{{"from", "a@example.com"}, {"subject", "s"}, {"to", "b@example.com"}, {"trackClicks", "2"}}, "trackClicks"},
		{"defaultPlaceholders not JSON", []field{{"from", "a@example.com"}, {"subject", "s"}, {"to", "b@example.com"}, {"defaultPlaceholders", "ph1=x"}}, "defaultPlaceholders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawSend(t, e.srv.URL, key, tt.fields...)
			if tt.bad == "" {
				if resp.StatusCode != 200 {
					t.Errorf("status %d, want 200: %s", resp.StatusCode, body)
				}
				return
			}
			if resp.StatusCode != 400 || !strings.Contains(string(body), `"`+tt.bad+`":[`) {
				t.Errorf("status %d, want 400 naming %s: %s", resp.StatusCode, tt.bad, body)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, sandbox.Options{Faults: sandbox.Faults{Rate: 2}, Now: clock})
	get := func() error { _, err := e.client.Domains(context.Background(), 1); return err }
	for i := range 2 {
		if err := get(); err != nil {
			t.Fatalf("request %d within the rate: %v", i, err)
		}
	}
	err := get()
	var ae *infobip.APIError
	if !infobip.IsRetryable(err) || !strings.Contains(fmt.Sprint(err), "TOO_MANY_REQUESTS") {
		t.Fatalf("past the rate: %v, want 429 TOO_MANY_REQUESTS", err)
	}
	mu.Lock()
	now = now.Add(500 * time.Millisecond)
	mu.Unlock()
	if err := get(); err != nil {
		t.Errorf("after half a second at 2/s: %v", err)
	}

	e.sb.SetFaults(sandbox.Faults{Rate: 1, E429Body: true, RetryAfter: 1500 * time.Millisecond})
	_ = get()
	_, err = e.client.Send(context.Background(), infobip.SendRequest{From: "a@example.com", Subject: "s", To: recipients("b@example.com")})
	if !asAPIError(err, &ae) || ae.StatusCode != 429 || ae.MessageID != "E429" || ae.Text != "Too many requests sent." || ae.RetryAfter != 2*time.Second {
		t.Errorf("newer 429 body: %#v", err)
	}
	if st := e.sb.Stats(); st.Rejected429 != 2 || st.Accepted != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func asAPIError(err error, target **infobip.APIError) bool {
	e, ok := err.(*infobip.APIError)
	*target = e
	return ok
}

func TestFailRate(t *testing.T) {
	e := newEnv(t, sandbox.Options{Seed: 3, Faults: sandbox.Faults{FailRate: 1}})
	_, err := e.client.Send(context.Background(), infobip.SendRequest{From: "a@example.com", Subject: "s", To: recipients("b@example.com")})
	if !infobip.IsRetryable(err) || infobip.IsAmbiguous(err) || !strings.Contains(fmt.Sprint(err), "HTTP 500 GENERAL_ERROR") {
		t.Errorf("failed send: %v, want 500 GENERAL_ERROR, retryable, not ambiguous", err)
	}
	if st := e.sb.Stats(); st.Failed5xx != 1 || st.Accepted != 0 || st.Recipients != 0 {
		t.Errorf("stats = %+v, want one failure and nothing accepted", st)
	}

	e.sb.SetFaults(sandbox.Faults{FailRate: 0.5})
	for range 40 {
		_, _ = e.client.Domains(context.Background(), 1)
	}
	if st := e.sb.Stats(); st.Failed5xx < 2 || st.Failed5xx > 39 {
		t.Errorf("fail rate 0.5 failed %d of 40", st.Failed5xx-1)
	}
}

func TestLoseRate(t *testing.T) {
	for _, mode := range []sandbox.LoseMode{sandbox.LoseClose, sandbox.LoseHold} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t, sandbox.Options{Faults: sandbox.Faults{LoseRate: 1, LoseMode: mode}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if mode == sandbox.LoseHold {
				// The client gives up once the sandbox has taken the send in.
				go func() {
					for e.sb.Stats().Lost == 0 && ctx.Err() == nil {
						time.Sleep(time.Millisecond)
					}
					cancel()
				}()
			}
			req := infobip.SendRequest{From: "a@example.com", Subject: "s", To: recipients("b@example.com", "c@example.com"),
				BulkID: "lost-bulk", NotifyURL: e.rcv.srv.URL}
			_, err := e.client.Send(ctx, req)
			if !infobip.IsAmbiguous(err) {
				t.Fatalf("lost answer: %v, want an ambiguous error", err)
			}
			e.sb.SetFaults(sandbox.Faults{})
			logs, err := e.client.Logs(context.Background(), infobip.LogsQuery{BulkID: "lost-bulk"})
			if err != nil {
				t.Fatal(err)
			}
			if len(logs.Results) != 2 {
				t.Errorf("logs of the lost send: %+v, want its 2 messages", logs.Results)
			}
			e.idle(t)
			if st := e.sb.Stats(); st.Lost != 1 || st.Accepted != 1 || st.Recipients != 2 || st.ReportsPosted != 2 {
				t.Errorf("stats = %+v, want the lost send accepted and reported", st)
			}
		})
	}
}

func TestLogs(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, sandbox.Options{Now: clock, ReportDelay: time.Minute})
	first := e.send(t, infobip.SendRequest{To: recipients("ann@example.com", "hardbounce@example.com"), BulkID: "b1", ApplicationID: "app"})
	e.send(t, infobip.SendRequest{To: recipients("bob@example.com"), BulkID: "b2"})

	logs, err := e.client.Logs(context.Background(), infobip.LogsQuery{BulkID: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs.Results) != 2 || logs.Results[0].Status.Name != "PENDING_ACCEPTED" || logs.Results[0].ApplicationID != "app" {
		t.Fatalf("logs of b1 before its reports: %+v", logs.Results)
	}

	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	hard := first.Messages[1].MessageID
	logs, err = e.client.Logs(context.Background(), infobip.LogsQuery{MessageID: hard})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs.Results) != 1 || logs.Results[0].To != "hardbounce@example.com" || logs.Results[0].Error == nil || logs.Results[0].Error.ID != 6012 || logs.Results[0].DoneAt == nil {
		t.Errorf("logs of %s after its report: %+v", hard, logs.Results)
	}
	all, err := e.client.Logs(context.Background(), infobip.LogsQuery{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Results) != 2 || all.Results[0].BulkID != "b2" {
		t.Errorf("newest 2: %+v", all.Results)
	}
	none, err := e.client.Logs(context.Background(), infobip.LogsQuery{BulkID: "nope"})
	if err != nil || len(none.Results) != 0 {
		t.Errorf("unknown bulk: %+v, %v", none, err)
	}
	delivered, err := e.client.Logs(context.Background(), infobip.LogsQuery{GeneralStatus: "DELIVERED"})
	if err != nil || len(delivered.Results) != 2 {
		t.Errorf("delivered: %+v, %v", delivered, err)
	}
}

func TestDomains(t *testing.T) {
	e := newEnv(t, sandbox.Options{Domains: []sandbox.Domain{{Name: "a.example", Active: true}, {Name: "b.example", Blocked: true}}})
	got, err := e.client.Domains(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Results) != 1 || got.Results[0].DomainName != "a.example" || !got.Results[0].Active || got.Paging.TotalResults != 2 {
		t.Errorf("page 1: %+v", got)
	}
	all, err := e.client.Domains(context.Background(), 0)
	if err != nil || len(all.Results) != 2 || !all.Results[1].Blocked || all.Results[1].Active {
		t.Errorf("all: %+v, %v", all, err)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/email/1/domains?size=21", nil)
	req.Header.Set("Authorization", "App "+key)
	if resp, body := do(t, req); resp.StatusCode != 400 {
		t.Errorf("size=21: %d %s", resp.StatusCode, body)
	}

	def := newEnv(t, sandbox.Options{})
	d, err := def.client.Domains(context.Background(), 1)
	if err != nil || len(d.Results) != 1 || d.Results[0].DomainName != "example.com" || !d.Results[0].Active {
		t.Errorf("default domains: %+v, %v", d, err)
	}
}

func TestStats(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	e.send(t, infobip.SendRequest{To: recipients("a@example.com", "b@example.com")})
	e.send(t, infobip.SendRequest{To: recipients("A@example.com", "c@example.com"), Cc: recipients("a@example.com")})
	e.idle(t)
	resp, body := do(t, mustRequest(t, http.MethodGet, e.srv.URL+"/sandbox/stats"))
	var st map[string]int64
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("stats: %d %s", resp.StatusCode, body)
	}
	want := map[string]int64{"requests": 2, "accepted": 2, "recipients": 5, "duplicateRecipients": 1, "duplicateSends": 2, "reportsPosted": 5, "pendingReports": 0}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%s = %d, want %d (%s)", k, st[k], v, body)
		}
	}
	for _, k := range []string{"trackingQueued", "trackingDuplicates", "trackingPosted", "trackingPostFailures", "trackingAbandoned",
		"platformEventsQueued", "platformEventDuplicates", "platformEventsPosted", "platformEventPostFailures", "platformEventsAbandoned",
		"domainWarnings", "domainBlocks", "blockedRecipients"} {
		if _, ok := st[k]; !ok {
			t.Errorf("stats lack %s: %s", k, body)
		}
	}
	_, _ = do(t, mustRequest(t, http.MethodGet, e.srv.URL+"/email/1/reports"))
	if got := e.sb.Stats().PullReportCalls; got != 1 {
		t.Errorf("pullReportCalls = %d, want 1", got)
	}

	resp, body = do(t, mustRequest(t, http.MethodPost, e.srv.URL+"/sandbox/reset"))
	if resp.StatusCode != 200 || e.sb.Stats() != (sandbox.Stats{}) {
		t.Errorf("after reset: %s", body)
	}
	logs, err := e.client.Logs(context.Background(), infobip.LogsQuery{})
	if err != nil || len(logs.Results) != 0 {
		t.Errorf("logs after reset: %+v %v", logs, err)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "App "+key)
	return req
}

func TestUnknownPath(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	resp, body := do(t, mustRequest(t, http.MethodGet, e.srv.URL+"/email/9/nothing"))
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"messageId":"NOT_FOUND"`) {
		t.Errorf("unknown path: %d %s", resp.StatusCode, body)
	}
}

// The same seed and the same requests give the same ids and choices.
func TestSeeded(t *testing.T) {
	run := func() []string {
		e := newEnv(t, sandbox.Options{Seed: 42, Faults: sandbox.Faults{BounceRate: 0.5}})
		var out []string
		for range 3 {
			// The client picks bulkIds itself; the sandbox's messageIds and
			// outcomes are what the seed fixes.
			resp := e.send(t, infobip.SendRequest{To: recipients("a@example.com", "b@example.com", "c@example.com", "d@example.com")})
			for _, m := range resp.Messages {
				out = append(out, m.MessageID)
			}
		}
		e.idle(t)
		reps := e.rcv.reports()
		outcome := map[string]int{}
		for _, r := range reps {
			outcome[r.MessageID] = r.Error.ID
		}
		for _, id := range out[:] {
			out = append(out, fmt.Sprint(outcome[id]))
		}
		resp, body := rawSend(t, e.srv.URL, key, field{"from", "a@example.com"}, field{"subject", "s"}, field{"to", "z@example.com"})
		var generated infobip.SendResponse
		if err := json.Unmarshal(body, &generated); err != nil || resp.StatusCode != 200 || len(generated.BulkID) != 20 {
			t.Fatalf("send without bulkId: %d %s", resp.StatusCode, body)
		}
		return append(out, generated.BulkID)
	}
	a, b := run(), run()
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("two runs with seed 42 differ:\n%v\n%v", a, b)
	}
	if !strings.Contains(strings.Join(a, ","), "6012") {
		t.Errorf("bounce rate 0.5 bounced no one in 12: %v", a)
	}
}

func TestConcurrentSends(t *testing.T) {
	e := newEnv(t, sandbox.Options{ReportBatchSize: 7, Faults: sandbox.Faults{DuplicateRate: 0.1}})
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 5 {
				to := make([]string, 20)
				for k := range to {
					to[k] = fmt.Sprintf("g%d-%d-%d@example.com", g, i, k)
				}
				_, err := e.client.Send(context.Background(), infobip.SendRequest{From: "a@example.com", Subject: "s", To: recipients(to...), NotifyURL: e.rcv.srv.URL})
				if err != nil {
					t.Error(err)
				}
				_, _ = e.client.Logs(context.Background(), infobip.LogsQuery{Limit: 5})
			}
		})
	}
	wg.Wait()
	e.idle(t)
	st := e.sb.Stats()
	if st.Recipients != 600 || st.DuplicateRecipients != 0 || st.ReportsPosted != 600+st.DuplicateReports {
		t.Errorf("stats = %+v", st)
	}
}

func TestPreserveRecipients(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	resp := e.send(t, infobip.SendRequest{To: recipients("a@example.com", "b@example.com"), PreserveRecipients: true, MessageID: "shared"})
	if len(resp.Messages) != 1 || resp.Messages[0].MessageID != "shared" {
		t.Errorf("preserved recipients answer: %+v", resp)
	}
	e.idle(t)
	for _, r := range e.rcv.reports() {
		if r.MessageID != "shared" {
			t.Errorf("report %+v, want messageId shared", r)
		}
	}
}

// The answers the sandbox gives for each operation match the description,
// error bodies included.
func TestAnswersMatchTheDescription(t *testing.T) {
	e := newEnv(t, sandbox.Options{LimitedKeys: []string{"limited"}})
	v := spec.MustLoad()
	for _, c := range []struct{ method, path, auth string }{
		{"GET", "/email/1/domains", "App " + key},
		{"GET", "/email/1/domains?size=30", "App " + key},
		{"GET", "/email/1/logs", "App " + key},
		{"GET", "/email/1/logs", "App wrong"},
		{"GET", "/email/1/logs", "App limited"},
	} {
		req, _ := http.NewRequest(c.method, e.srv.URL+c.path, nil)
		req.Header.Set("Authorization", c.auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.ValidateResponse(req, resp); err != nil {
			t.Errorf("%s %s as %q: %v", c.method, c.path, c.auth, err)
		}
		_ = resp.Body.Close()
	}
}
