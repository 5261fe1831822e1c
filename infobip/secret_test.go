package infobip_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/ibmail/ibmail/infobip"
)

// leakyTransport fails the way a careless middleware would: quoting the
// request, headers included, in its error.
type leakyTransport struct{ wrap error }

func (l leakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("%w: cannot send %s with headers %v", l.wrap, r.URL, r.Header)
}

func TestKeyNeverLeaks(t *testing.T) {
	echo := newFake(t, canned{status: 401, body: `{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED",
		"text":"Invalid login details for App ` + testKey + `","validationErrors":{"` + testKey + `":["` + testKey + `"]}}}}`})
	c := newClient(t, echo.srv.URL)
	var errs []error
	_, err := c.Send(context.Background(), infobip.SendRequest{From: "a@example.com", To: []infobip.Recipient{{Email: "b@example.com"}}, Subject: "s"})
	errs = append(errs, err)
	if !infobip.IsUnauthorized(err) {
		t.Errorf("echoing 401: %v, want IsUnauthorized", err)
	}

	leaky := newClient(t, "https://xyz.api.infobip.com", func(cfg *infobip.Config) {
		cfg.HTTPClient = &http.Client{Transport: leakyTransport{wrap: context.DeadlineExceeded}}
	})
	_, err = leaky.Domains(context.Background(), 1)
	errs = append(errs, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("scrubbed error lost its identity: %v", err)
	}
	_, err = leaky.Logs(context.Background(), infobip.LogsQuery{BulkID: "b"})
	errs = append(errs, err, errors.Unwrap(err), errors.Unwrap(errors.Unwrap(err)))

	// url.Error of a real dial failure.
	refused := newClient(t, "http://127.0.0.1:1")
	_, err = refused.Domains(context.Background(), 1)
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			continue
		}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			if s := fmt.Sprintf(verb, err); strings.Contains(s, testKey) {
				t.Errorf("error %d printed with %s holds the key: %s", i, verb, s)
			}
		}
	}

	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
		for _, v := range []any{c, *c} {
			if s := fmt.Sprintf(verb, v); strings.Contains(s, testKey) || strings.Contains(s, fmt.Sprintf("%x", testKey)) {
				t.Errorf("client printed with %s holds the key: %s", verb, s)
			}
		}
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("client", "c", c, "v", *c, "err", errs[0])
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("client", "c", c, "v", *c, "err", errs[1])
	if strings.Contains(logs.String(), testKey) {
		t.Errorf("log holds the key: %s", logs.String())
	}
	if !strings.Contains(c.String(), "[redacted]") {
		t.Errorf("String() = %q, want the key shown as [redacted]", c.String())
	}
}
