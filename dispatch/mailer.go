package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Message is one recipient of an Infobip request.
type Message struct {
	Email        string
	Placeholders map[string]string
}

// Request is one Infobip send request: one batch of a send.
type Request struct {
	Content      Content
	BulkID       string
	Messages     []Message
	NotifyURL    string
	TrackingURL  string
	CallbackData string
}

// Accepted is Infobip's answer for one recipient of an accepted request.
type Accepted struct {
	MessageID string
	// Rejected is set when Infobip's answer put the message in its REJECTED
	// status group; Reason then says why.
	Rejected bool
	Reason   string
}

// Mailer is the part of Infobip's email API the dispatcher needs, for one
// connection.
type Mailer interface {
	// Send makes one request. On success it answers per lower-cased address.
	// Errors should be a *Failure so the dispatcher knows whether Infobip
	// may have taken the request.
	Send(ctx context.Context, req Request) (map[string]Accepted, error)
	// LookupBulk returns the messages Infobip logged for a bulkId, per
	// lower-cased address; empty when Infobip has no such bulk.
	LookupBulk(ctx context.Context, bulkID string) (map[string]Accepted, error)
}

// FailureKind says what a failed request means for the recipients in it.
type FailureKind int

// The kinds of failure.
const (
	// Retryable: Infobip did not take the request (429, most 5xx, a
	// connection refused); sending it again cannot duplicate.
	Retryable FailureKind = iota + 1
	// Ambiguous: Infobip may have taken the request (a timeout or a lost
	// connection after it was written). Its logs decide before a retry.
	Ambiguous
	// Permanent: Infobip refused the request for what it is (400, 401,
	// 403); sending it again would fail the same way.
	Permanent
)

// Failure is a failed Infobip request, classified.
type Failure struct {
	Kind FailureKind
	// HTTPStatus is Infobip's answer, 0 when there was none.
	HTTPStatus int
	// RetryAfter is Infobip's Retry-After, when it sent one.
	RetryAfter time.Duration
	// Reason says what happened in words an operator can act on; it never
	// holds a key or secret.
	Reason string
}

func (f *Failure) Error() string { return f.Reason }

// classify turns any error into a Failure: an error that is not one is
// treated as ambiguous, the only safe reading of the unknown.
func classify(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Failure{Kind: Ambiguous, Reason: "no answer from Infobip in time"}
	}
	return &Failure{Kind: Ambiguous, Reason: fmt.Sprintf("request failed: %v", err)}
}

// Limits bound the traffic to one connection.
type Limits struct {
	// RequestsPerSecond; 0 takes the dispatcher's default.
	RequestsPerSecond int
	// Concurrency is how many requests may be in flight at once; 0 takes
	// the dispatcher's default.
	Concurrency int
}
