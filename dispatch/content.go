// Package dispatch hands accepted sends to Infobip: it claims batches of at
// most 1000 recipients under leases, sends each within its connection's
// rate and concurrency limits, retries what Infobip did not take, and
// resolves every ambiguous attempt through Infobip's logs before trying
// again, so that no recipient is sent twice or lost.
package dispatch

import (
	"encoding/json"
	"fmt"
)

// MaxRecipientsPerRequest is Infobip's limit for to, cc and bcc together.
const MaxRecipientsPerRequest = 1000

// Content is what a send sends, frozen when the send is accepted: a
// sender account deleted or changed later does not change a send under way.
type Content struct {
	From                string            `json:"from"`
	ReplyTo             string            `json:"replyTo,omitempty"`
	Subject             string            `json:"subject,omitempty"`
	HTML                string            `json:"html,omitempty"`
	Text                string            `json:"text,omitempty"`
	TemplateID          int64             `json:"templateId,omitempty"`
	DefaultPlaceholders map[string]string `json:"defaultPlaceholders,omitempty"`
	TrackOpens          bool              `json:"trackOpens,omitempty"`
	TrackClicks         bool              `json:"trackClicks,omitempty"`
	CampaignID          string            `json:"campaignId,omitempty"`
}

// Encode serialises content for the store.
func (c Content) Encode() []byte {
	b, _ := json.Marshal(c) // strings, numbers and a string map cannot fail
	return b
}

// DecodeContent reads what Encode wrote.
func DecodeContent(b []byte) (Content, error) {
	var c Content
	if err := json.Unmarshal(b, &c); err != nil {
		return Content{}, fmt.Errorf("send content is damaged: %w", err)
	}
	return c, nil
}

// CallbackData is what each Infobip request carries in callbackData, echoed
// in every delivery report: the send, so that a report whose messageId is
// not known yet still finds its recipient (by send and address).
type CallbackData struct {
	SendID string `json:"ibmailSendId"`
}
