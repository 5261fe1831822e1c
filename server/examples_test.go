package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
)

// examplesDir holds the input files the docs' examples post (curl --data
// @examples/...); this test posts each to a whole server so they stay true.
const examplesDir = "../examples"

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestExamplesAreAccepted posts every webhook and API example of examples/
// the way docs/ does, and wants each accepted whole: a webhook body with
// nothing in "rejected", a classification with an event where the docs
// promise one.
func TestExamplesAreAccepted(t *testing.T) {
	env := newTestEnv(t)
	cases := []struct {
		file, path  string
		webhook     bool
		wantField   string // a field the answer must hold
		wantAllKept bool   // a webhook body: nothing in rejected
	}{
		{"delivery-reports.json", server.WebhookPath, true, "accepted", true},
		{"delivery-report-delivered.json", server.WebhookPath, true, "accepted", true},
		{"tracking-complained.json", server.TrackingWebhookPath, true, "accepted", true},
		{"platform-event-warning.json", server.PlatformEventsWebhookPath, true, "accepted", true},
		{"report.json", "/v1/reports:classify", false, "eventName", false},
		{"tracking-complained.json", "/v1/trackingReports:classify", false, "eventName", false},
	}
	for _, c := range cases {
		t.Run(c.file+" to "+c.path, func(t *testing.T) {
			var auth []func(*http.Request)
			if c.webhook {
				auth = append(auth, basicAuth("infobip", testSecret))
			}
			got, out := env.do(t, http.MethodPost, c.path, "application/json", readExample(t, c.file), auth...)
			if got != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %v", got, out)
			}
			if _, ok := out[c.wantField]; !ok {
				t.Errorf("answer %v has no %q", out, c.wantField)
			}
			if rej, _ := out["rejected"].([]any); c.wantAllKept && len(rej) > 0 {
				t.Errorf("rejected = %v, want none", rej)
			}
		})
	}
}

// TestExampleSendsAreAccepted sends examples/send.json (the README's send)
// and a send made of examples/recipients.csv and examples/hello.html (what
// `ibmailctl send --html examples/hello.html --recipients
// examples/recipients.csv` posts) to a sandbox, and wants both done with
// every recipient accepted.
func TestExampleSendsAreAccepted(t *testing.T) {
	env, _ := sendingEnv(t, sandbox.Options{}, nil)
	ctx := context.Background()
	// The docs' sender account is "sandbox", as ibmaild --sandbox makes it.
	if _, err := env.senders.CreateSender(ctx, &ibmailv1.CreateSenderRequest{Sender: &ibmailv1.Sender{
		Id: "sandbox", ConnectionId: "c1", FromAddress: "news@example.com",
	}}); err != nil {
		t.Fatal(err)
	}

	got, out := env.do(t, http.MethodPost, "/v1/sends", "application/json", readExample(t, "send.json"))
	if got != http.StatusOK {
		t.Fatalf("send.json: status = %d, want 200; body %v", got, out)
	}
	first, _ := out["send"].(map[string]any)
	id, _ := first["id"].(string)

	rows, err := csv.NewReader(bytes.NewReader(readExample(t, "recipients.csv"))).ReadAll()
	if err != nil {
		t.Fatalf("recipients.csv: %v", err)
	}
	if want := []string{"email", "profileId", "name"}; len(rows) < 2 || !slices.Equal(rows[0], want) {
		t.Fatalf("recipients.csv header = %v, want %v and rows", rows[0], want)
	}
	req := &ibmailv1.CreateSendRequest{
		SenderId: "sandbox", Subject: "Hello {{name}}", Html: string(readExample(t, "hello.html")),
		IdempotencyKey: "examples-csv",
	}
	for _, r := range rows[1:] {
		req.Recipients = append(req.Recipients, &ibmailv1.RecipientInput{
			Email: r[0], ProfileId: r[1], Placeholders: map[string]string{"name": r[2]},
		})
	}
	second, err := env.sends.CreateSend(ctx, req)
	if err != nil {
		t.Fatalf("recipients.csv and hello.html: %v", err)
	}

	for _, s := range []struct{ what, id string }{{"send.json", id}, {"recipients.csv", second.GetSend().GetId()}} {
		done := waitSendDone(t, env, s.id)
		// Every address of the examples reaches Infobip: the sandbox bounces
		// some later, by their local parts, which is what the docs show.
		if done.GetAcceptedCount() != done.GetRecipientCount() || done.GetRecipientCount() != 7 {
			b, _ := json.Marshal(done)
			t.Errorf("%s: send %s, want all 7 recipients accepted", s.what, b)
		}
	}
}
