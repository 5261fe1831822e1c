package spec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ibmail/ibmail/infobip/spec"
)

type field struct{ name, value string }

func multipartRequest(t *testing.T, fields ...field) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f.name, f.value); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "https://xyz.api.infobip.com/email/3/send", &buf)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r.Header.Set("Authorization", "App secret")
	return r
}

func TestValidateRequest(t *testing.T) {
	v := spec.MustLoad()
	get := func(target string, auth bool) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "https://xyz.api.infobip.com"+target, nil)
		if auth {
			r.Header.Set("Authorization", "App secret")
		}
		return r
	}
	tests := []struct {
		name    string
		req     *http.Request
		wantErr string // substring of the error; empty means valid
	}{
		{"send with placeholders", multipartRequest(t,
			field{"from", "Jane <jane@example.com>"},
			field{"to", "john@example.com"},
			field{"to", `{"to":"ann@example.com","placeholders":{"name":"Ann"}}`},
			field{"subject", "Hi"}, field{"html", "<p>Hi {{name}}</p>"},
			field{"trackOpens", "true"}, field{"templateId", "42"},
			field{"notifyUrl", "https://hooks.example.com/dlr?token=t"},
			field{"notifyContentType", "application/json"},
		), ""},
		{"send without to", multipartRequest(t, field{"from", "a@example.com"}), "missing property 'to'"},
		{"send with a non-boolean trackClicks", multipartRequest(t,
			field{"to", "a@example.com"}, field{"trackClicks", "sometimes"}), "$.trackClicks"},
		{"send with a non-integer templateId", multipartRequest(t,
			field{"to", "a@example.com"}, field{"templateId", "x1"}), "$.templateId"},
		{"domains", get("/email/1/domains?size=1", true), ""},
		{"domains past the page size", get("/email/1/domains?size=21", true), "size"},
		{"domains without a key", get("/email/1/domains", false), "uthoriz"},
		{"logs by bulk", get("/email/1/logs?bulkId=b-1&limit=10", true), ""},
		{"logs with a bad limit", get("/email/1/logs?limit=many", true), "limit"},
		{"unknown path", get("/email/9/nothing", true), "nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.ValidateRequest(tt.req)
			checkErr(t, err, tt.wantErr)
		})
	}
}

func TestValidateRequestKeepsBody(t *testing.T) {
	r := multipartRequest(t, field{"to", "a@example.com"})
	if err := spec.MustLoad().ValidateRequest(r); err != nil {
		t.Fatal(err)
	}
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		t.Fatalf("body unusable after validation: %v", err)
	}
	if got, want := r.MultipartForm.Value["to"], []string{"a@example.com"}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("to = %v, want %v", got, want)
	}
}

func TestValidateResponse(t *testing.T) {
	v := spec.MustLoad()
	send := httptest.NewRequest(http.MethodPost, "https://xyz.api.infobip.com/email/3/send", nil)
	domains := httptest.NewRequest(http.MethodGet, "https://xyz.api.infobip.com/email/1/domains", nil)
	resp := func(code int, body string) *http.Response {
		return &http.Response{StatusCode: code, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body))}
	}
	tests := []struct {
		name    string
		req     *http.Request
		resp    *http.Response
		wantErr string
	}{
		{"accepted send", send, resp(200, `{"bulkId":"b","messages":[{"to":"a@example.com","messageId":"m",
			"status":{"groupId":1,"groupName":"PENDING","id":26,"name":"PENDING_ACCEPTED","description":"Message accepted, pending for delivery."}}]}`), ""},
		{"send answer without message ids", send, resp(200, `{"bulkId":"b","messages":[{"to":"a@example.com"}]}`), "messageId"},
		{"unauthorized", send, resp(401, `{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}`), ""},
		{"429 is not in the send operation", send, resp(429, `{"requestError":{"serviceException":{"messageId":"TOO_MANY_REQUESTS","text":"Too many requests"}}}`), "429"},
		{"domains", domains, resp(200, `{"paging":{"page":0,"size":1,"totalPages":1,"totalResults":1},
			"results":[{"domainId":1,"domainName":"example.com","active":true,"blocked":false}]}`), ""},
		{"domains with a string id", domains, resp(200, `{"results":[{"domainId":"one"}]}`), "domainId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, v.ValidateResponse(tt.req, tt.resp), tt.wantErr)
		})
	}
}

// The example Infobip publishes for the webhook must pass: it is the
// reference the sandbox's reports are held to.
func TestValidateDeliveryReportsExample(t *testing.T) {
	var doc struct {
		Webhooks map[string]struct {
			Post struct {
				RequestBody struct {
					Content map[string]struct {
						Examples map[string]struct {
							Value json.RawMessage `json:"value"`
						} `json:"examples"`
					} `json:"content"`
				} `json:"requestBody"`
			} `json:"post"`
		} `json:"webhooks"`
	}
	if err := json.Unmarshal(spec.JSON(), &doc); err != nil {
		t.Fatal(err)
	}
	examples := doc.Webhooks[spec.WebhookDeliveryReports].Post.RequestBody.Content["application/json"].Examples
	if len(examples) == 0 {
		t.Fatal("no delivery-report example in the description")
	}
	for name, ex := range examples {
		if err := spec.MustLoad().ValidateDeliveryReports(ex.Value); err != nil {
			t.Errorf("example %q: %v", name, err)
		}
	}
}

func TestValidateDeliveryReports(t *testing.T) {
	tests := []struct {
		name, body, wantErr string
	}{
		{"bounce with seed group names", `{"results":[{"messageId":"m","to":"a@example.com","doneAt":"2024-05-01T10:00:00.256+0000",
			"status":{"id":4,"groupId":2,"groupName":"UNDELIVERABLE","name":"UNDELIVERABLE_REJECTED_OPERATOR"},
			"error":{"id":6012,"groupId":2,"groupName":"BOUNCED","name":"EC_HARD_BOUNCE","permanent":true}}]}`, ""},
		{"string status id", `{"results":[{"status":{"id":"4"}}]}`, "$.results[0].status.id"},
		{"results not an array", `{"results":{}}`, "results"},
		{"not JSON", `{"results":`, "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, spec.MustLoad().ValidateDeliveryReports([]byte(tt.body)), tt.wantErr)
		})
	}
}

func TestValidateComponent(t *testing.T) {
	v := spec.MustLoad()
	checkErr(t, v.ValidateComponent("SendResponse", []byte(`{"messages":[]}`)), "")
	checkErr(t, v.ValidateComponent("SendResponse", []byte(`{}`)), "messages")
	checkErr(t, v.ValidateComponent("CursorPageInfo", nil), "ambiguous")
	checkErr(t, v.ValidateComponent("NoSuchThing", nil), "no component")
	if err := v.ValidateWebhook("no-such-hook", "application/json", nil); err == nil {
		t.Error("unknown webhook: got nil error")
	}
}

func TestConcurrentUse(t *testing.T) {
	v := spec.MustLoad()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if err := v.ValidateRequest(multipartRequest(t, field{"to", "a@example.com"})); err != nil {
					t.Error(err)
				}
				if err := v.ValidateDeliveryReports([]byte(`{"results":[]}`)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("got error %v, want none", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not mention %q", err, want)
	}
	var se *spec.Error
	if strings.HasPrefix(want, "$.") && !errors.As(err, &se) {
		t.Errorf("error %T is not a *spec.Error", err)
	}
}
