package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ibmail/ibmail/infobip"
)

// InfobipMailer is a Mailer over Infobip's email API.
type InfobipMailer struct {
	client *infobip.Client
}

// NewInfobipMailer returns a Mailer that sends through client.
func NewInfobipMailer(client *infobip.Client) *InfobipMailer {
	return &InfobipMailer{client: client}
}

// Send makes one POST /email/3/send with the batch's recipients as
// repeated `to` fields, and classifies any failure.
func (m *InfobipMailer) Send(ctx context.Context, req Request) (map[string]Accepted, error) {
	c := req.Content
	sr := infobip.SendRequest{
		From:                c.From,
		ReplyTo:             c.ReplyTo,
		Subject:             c.Subject,
		HTML:                c.HTML,
		Text:                c.Text,
		TemplateID:          c.TemplateID,
		DefaultPlaceholders: c.DefaultPlaceholders,
		TrackOpens:          &c.TrackOpens,
		TrackClicks:         &c.TrackClicks,
		NotifyURL:           req.NotifyURL,
		TrackingURL:         req.TrackingURL,
		NotifyContentType:   "application/json",
		CallbackData:        req.CallbackData,
		BulkID:              req.BulkID,
		CampaignReferenceID: c.CampaignID,
	}
	for _, msg := range req.Messages {
		sr.To = append(sr.To, infobip.Recipient{Email: msg.Email, Placeholders: msg.Placeholders})
	}
	resp, err := m.client.Send(ctx, sr)
	if err != nil {
		return nil, failureOf(err)
	}
	out := make(map[string]Accepted, len(resp.Messages))
	for _, msg := range resp.Messages {
		a := Accepted{MessageID: msg.MessageID}
		if msg.Status.GroupName == "REJECTED" || msg.Status.GroupID == 5 {
			a.Rejected, a.Reason = true, m.client.Excerpt(msg.Status.Name+": "+msg.Status.Description)
		}
		out[strings.ToLower(msg.To)] = a
	}
	return out, nil
}

// LookupBulk asks Infobip's logs which messages a bulkId holds.
func (m *InfobipMailer) LookupBulk(ctx context.Context, bulkID string) (map[string]Accepted, error) {
	resp, err := m.client.Logs(ctx, infobip.LogsQuery{BulkID: bulkID, Limit: 1000})
	if err != nil {
		return nil, failureOf(err)
	}
	out := make(map[string]Accepted, len(resp.Results))
	for _, l := range resp.Results {
		if l.BulkID != "" && l.BulkID != bulkID {
			continue // a filter Infobip ignored must not settle another bulk
		}
		a := Accepted{MessageID: l.MessageID}
		if l.Status.GroupName == "REJECTED" || l.Status.GroupID == 5 {
			a.Rejected, a.Reason = true, m.client.Excerpt(l.Status.Name+": "+l.Status.Description)
		}
		out[strings.ToLower(l.To)] = a
	}
	return out, nil
}

// failureOf classifies an error of the Infobip client. Its text is already
// redacted, sanitised and bounded by the client (infobip.Redactor), the one
// place that knows the key.
//
// A redirect is Permanent: Infobip's API never answers 3xx, so the base URL
// points at something that is not Infobip; the client followed nothing, so
// nothing was sent, and every retry would meet the same redirect until the
// connection is fixed. Failing the batch at once, with the reason naming
// the redirect's origin, never sends twice and tells the operator why.
func failureOf(err error) *Failure {
	f := &Failure{Reason: err.Error()}
	var apiErr *infobip.APIError
	if errors.As(err, &apiErr) {
		f.HTTPStatus = apiErr.StatusCode
		f.Reason = fmt.Sprintf("Infobip answered %d %s", apiErr.StatusCode, http.StatusText(apiErr.StatusCode))
		if apiErr.Text != "" {
			f.Reason += ": " + apiErr.Text
		}
	}
	if ra, ok := infobip.RetryAfter(err); ok {
		f.RetryAfter = ra
	}
	var fieldErr *infobip.FieldError
	switch {
	case infobip.IsRedirect(err):
		f.Kind = Permanent
	case errors.As(err, &fieldErr):
		f.Kind = Permanent // refused by the client: nothing was sent
	case infobip.IsAmbiguous(err):
		f.Kind = Ambiguous
	case infobip.IsRetryable(err):
		f.Kind = Retryable
	case apiErr != nil:
		f.Kind = Permanent
	default:
		f.Kind = Ambiguous // unknown: only the logs can tell
	}
	return f
}
