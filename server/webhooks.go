package server

import (
	"strings"

	"google.golang.org/protobuf/proto"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// The routes Infobip posts to: a public contract, spelt out in issue 10.
const (
	// WebhookPath takes delivery reports (a send's notifyUrl).
	WebhookPath = "/v1/webhooks/infobip/delivery-reports"
	// TrackingWebhookPath takes tracking reports (a send's trackingUrl):
	// opens, clicks, complaints, late bounces and unsubscribes.
	TrackingWebhookPath = "/v1/webhooks/infobip/tracking-reports"
	// PlatformEventsWebhookPath takes Infobip's email platform events (a
	// sending domain warned or blocked for its bounce rate).
	PlatformEventsWebhookPath = "/v1/webhooks/infobip/platform-events"
)

// webhookRoute is what the transport needs to know of one webhook: the
// RPC it calls, its label in metrics, the body it takes, for errors, and
// the RPC's messages, for the gateway's direct call (callWebhook).
type webhookRoute struct {
	method   string
	label    string
	body     string
	messages func() (request, response proto.Message)
}

// webhookRoutes are the webhooks by path. They share everything but their
// RPC: the secret (never a caller token), checked before the body is read;
// --max-body-bytes; bodies that do not decode kept as rejected payloads.
var webhookRoutes = map[string]webhookRoute{
	WebhookPath: {
		method: ibmailv1.DeliveryReportService_IngestDeliveryReports_FullMethodName,
		label:  "webhook",
		body:   `the body is not Infobip's delivery-report JSON {"results":[...]}`,
		messages: func() (proto.Message, proto.Message) {
			return &ibmailv1.IngestDeliveryReportsRequest{}, &ibmailv1.IngestDeliveryReportsResponse{}
		},
	},
	TrackingWebhookPath: {
		method: ibmailv1.DeliveryReportService_IngestTrackingReports_FullMethodName,
		label:  "tracking_webhook",
		body:   `the body is not Infobip's tracking-report JSON: one {"notificationType":...,"eventId":...} object, or an array of them`,
		messages: func() (proto.Message, proto.Message) {
			return &ibmailv1.IngestTrackingReportsRequest{}, &ibmailv1.IngestTrackingReportsResponse{}
		},
	},
	PlatformEventsWebhookPath: {
		method: ibmailv1.DeliveryReportService_IngestPlatformEvents_FullMethodName,
		label:  "platform_webhook",
		body:   `the body is not Infobip's platform-event JSON: one {"eventId":...,"createdAt":...,"eventDetails":{...}} object, or an array of them`,
		messages: func() (proto.Message, proto.Message) {
			return &ibmailv1.IngestPlatformEventsRequest{}, &ibmailv1.IngestPlatformEventsResponse{}
		},
	},
}

// isWebhookMethod reports the RPCs that Infobip calls with a webhook
// secret instead of a caller token.
func isWebhookMethod(fullMethod string) bool {
	for _, r := range webhookRoutes {
		if r.method == fullMethod {
			return true
		}
	}
	return false
}

// WebhookURL is the delivery-report webhook under a public base URL.
func WebhookURL(publicURL string) string {
	return strings.TrimRight(publicURL, "/") + WebhookPath
}

// TrackingWebhookURL is the tracking-report webhook under a public base
// URL: every send's trackingUrl.
func TrackingWebhookURL(publicURL string) string {
	return strings.TrimRight(publicURL, "/") + TrackingWebhookPath
}

// PlatformEventsWebhookURL is the platform-events webhook under a public
// base URL, for Infobip's event subscription.
func PlatformEventsWebhookURL(publicURL string) string {
	return strings.TrimRight(publicURL, "/") + PlatformEventsWebhookPath
}
