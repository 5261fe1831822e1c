package infobip

import (
	"bytes"
	"fmt"
	"time"
)

// TimeLayout is how Infobip writes timestamps in reports and logs: always
// milliseconds, and an offset without a colon ("+0000", "-0300"), which
// time.RFC3339 rejects.
const TimeLayout = "2006-01-02T15:04:05.000-0700"

// Time is a timestamp that marshals in TimeLayout and unmarshals from
// TimeLayout, the same without milliseconds, or RFC 3339, because Infobip's
// endpoints have not always agreed on one form.
type Time struct{ time.Time }

var timeLayouts = []string{TimeLayout, "2006-01-02T15:04:05-0700", time.RFC3339Nano}

// ParseTime parses s in any of the forms Time accepts.
func ParseTime(s string) (time.Time, error) {
	var first error
	for _, layout := range timeLayouts {
		t, err := time.Parse(layout, s)
		if err == nil {
			return t, nil
		}
		if first == nil {
			first = err
		}
	}
	return time.Time{}, fmt.Errorf("infobip: timestamp %q: %w", s, first)
}

// MarshalJSON writes t in TimeLayout.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON accepts null (the zero Time) or a string in any form that
// ParseTime accepts.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		t.Time = time.Time{}
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("infobip: timestamp is not a JSON string: %.40s", b)
	}
	parsed, err := ParseTime(string(b[1 : len(b)-1]))
	if err != nil {
		return err
	}
	t.Time = parsed
	return nil
}

// Status is a message status as Infobip reports it in send answers, logs and
// delivery reports. GroupName is the general status (PENDING, DELIVERED...).
type Status struct {
	GroupID     int    `json:"groupId"`
	GroupName   string `json:"groupName"`
	ID          int    `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Action      string `json:"action,omitempty"`
}

// ErrorInfo is the error part of a log entry or a delivery report; ID 0
// (NO_ERROR, group 0 OK) means there was none.
type ErrorInfo struct {
	ID          int    `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	GroupID     int    `json:"groupId"`
	GroupName   string `json:"groupName"`
	Permanent   bool   `json:"permanent"`
}

// Price is what one message cost.
type Price struct {
	PricePerMessage float64 `json:"pricePerMessage"`
	Currency        string  `json:"currency"`
}

// DeliveryReports is the body Infobip POSTs to a send's notifyUrl: one POST
// may carry many reports.
type DeliveryReports struct {
	Results []DeliveryReport `json:"results"`
}

// DeliveryReport is the final (or, with intermediateReport, an interim)
// outcome of one message. There is no event id: the same report may arrive
// more than once.
type DeliveryReport struct {
	BulkID    string `json:"bulkId,omitempty"`
	MessageID string `json:"messageId"`
	To        string `json:"to"`
	SentAt    Time   `json:"sentAt,omitzero"`
	DoneAt    Time   `json:"doneAt,omitzero"`
	// SMSCount is the number of emails; the name is shared with SMS.
	SMSCount     int `json:"smsCount"`
	AttemptCount int `json:"attemptCount,omitempty"`
	// TimeToFirstAttempt is in milliseconds.
	TimeToFirstAttempt int64  `json:"timeToFirstAttempt,omitempty"`
	Price              *Price `json:"price,omitempty"`
	Status             Status `json:"status"`
	// Error is NO_ERROR (id 0, group 0 OK) for a delivered message; its
	// group and name decide the profile event.
	Error               ErrorInfo `json:"error"`
	CallbackData        string    `json:"callbackData,omitempty"`
	ApplicationID       string    `json:"applicationId,omitempty"`
	EntityID            string    `json:"entityId,omitempty"`
	CampaignReferenceID string    `json:"campaignReferenceId,omitempty"`
	BrowserLink         string    `json:"browserLink,omitempty"`
	SendingIP           string    `json:"sendingIp,omitempty"`
	SMTP                *SMTPInfo `json:"smtp,omitempty"`
}

// SMTPInfo carries the receiving server's last SMTP answer.
type SMTPInfo struct {
	Response string `json:"response"`
}
