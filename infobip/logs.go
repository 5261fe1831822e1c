package infobip

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// MaxLogsLimit is the most entries GET /email/1/logs returns at once.
const MaxLogsLimit = 1000

// LogsQuery filters GET /email/1/logs; zero fields are not sent. Infobip
// keeps logs for 48 hours and allows 60 requests a minute.
type LogsQuery struct {
	BulkID              string
	MessageID           string
	From                string
	To                  string
	CampaignReferenceID string
	// GeneralStatus is a status group name: PENDING, DELIVERED...
	GeneralStatus string
	SentSince     time.Time
	SentUntil     time.Time
	// Limit is 1..MaxLogsLimit; 0 leaves it to Infobip.
	Limit         int
	ApplicationID string
	EntityID      string
}

// LogsResponse is the messages that matched.
type LogsResponse struct {
	Results []Log `json:"results"`
}

// Log is one message as Infobip logged it.
type Log struct {
	ApplicationID string `json:"applicationId,omitempty"`
	EntityID      string `json:"entityId,omitempty"`
	BulkID        string `json:"bulkId"`
	MessageID     string `json:"messageId"`
	To            string `json:"to"`
	From          string `json:"from,omitempty"`
	Text          string `json:"text,omitempty"`
	SentAt        *Time  `json:"sentAt,omitempty"`
	DoneAt        *Time  `json:"doneAt,omitempty"`
	// MessageCount is the number of emails the entry stands for.
	MessageCount int    `json:"messageCount"`
	Price        *Price `json:"price,omitempty"`
	Status       Status `json:"status"`
	// Error is nil while the message is pending.
	Error *ErrorInfo `json:"error,omitempty"`
}

// Logs reads message logs. Its use here is to settle an ambiguous send:
// query by the send's BulkID; the messages it lists were accepted.
func (c *Client) Logs(ctx context.Context, q LogsQuery) (*LogsResponse, error) {
	if q.Limit < 0 || q.Limit > MaxLogsLimit {
		return nil, &FieldError{Field: "limit", Problem: fmt.Sprintf("%d is outside 1..%d", q.Limit, MaxLogsLimit)}
	}
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("messageId", q.MessageID)
	set("from", q.From)
	set("to", q.To)
	set("bulkId", q.BulkID)
	set("campaignReferenceId", q.CampaignReferenceID)
	set("generalStatus", q.GeneralStatus)
	if !q.SentSince.IsZero() {
		set("sentSince", q.SentSince.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}
	if !q.SentUntil.IsZero() {
		set("sentUntil", q.SentUntil.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}
	if q.Limit > 0 {
		set("limit", strconv.Itoa(q.Limit))
	}
	set("applicationId", q.ApplicationID)
	set("entityId", q.EntityID)
	var out LogsResponse
	if err := c.do(ctx, call{method: "GET", path: "/email/1/logs", query: v}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
