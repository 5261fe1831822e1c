package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/ibmail/ibmail/dispatch"
	"github.com/ibmail/ibmail/infobip"
	"github.com/ibmail/ibmail/store"
)

// MailerSource gives the dispatcher each connection's Infobip client, with
// its limits and the notifyUrl and trackingUrl (each carrying the
// connection's webhook secret) that its reports come back to.
func MailerSource(st store.ConnectionStore, vault *Vault, publicURL string, httpClient *http.Client) dispatch.MailerSource {
	return func(ctx context.Context, connectionID string) (dispatch.Mailer, dispatch.Limits, dispatch.Callbacks, error) {
		c, err := st.GetConnection(ctx, connectionID)
		if err != nil {
			return nil, dispatch.Limits{}, dispatch.Callbacks{}, fmt.Errorf("connection %s: %w", connectionID, err)
		}
		cr, err := vault.open(ctx, c)
		if err != nil {
			return nil, dispatch.Limits{}, dispatch.Callbacks{}, err
		}
		client, err := infobip.New(infobip.Config{BaseURL: c.BaseURL, APIKey: cr.APIKey, ApplicationID: c.ApplicationID, EntityID: c.EntityID, HTTPClient: httpClient})
		if err != nil {
			return nil, dispatch.Limits{}, dispatch.Callbacks{}, fmt.Errorf("connection %s: %w", connectionID, err)
		}
		token := "?token=" + url.QueryEscape(cr.WebhookSecret)
		callbacks := dispatch.Callbacks{NotifyURL: WebhookURL(publicURL) + token, TrackingURL: TrackingWebhookURL(publicURL) + token}
		return dispatch.NewInfobipMailer(client), dispatch.Limits{RequestsPerSecond: c.RateLimit}, callbacks, nil
	}
}
