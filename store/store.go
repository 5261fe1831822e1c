// Package store defines what ibmail keeps: delivery reports, the profile
// events made from them and the payloads refused as malformed. The engines
// (SQLite by default, PostgreSQL for several replicas) live in
// sub-packages and pass the same conformance suite in storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable wraps failures of the engine itself (disk, connection), as
// opposed to bad input, so that callers can answer "try again later".
var ErrUnavailable = errors.New("store unavailable")

// Outcome is what the mapping engine made of a report. The values match
// ibmail.v1.ReportOutcome.
type Outcome int8

// The outcomes of a report.
const (
	OutcomeUnspecified  Outcome = 0
	OutcomeEvent        Outcome = 1
	OutcomeNoError      Outcome = 2
	OutcomeUnclassified Outcome = 3
)

// ReportKey identifies a delivery report. Infobip sends no report id and
// retries deliveries, so the key is the message id with the status, the
// error and the completion instant. DoneAt is that instant as DoneAtKey
// writes it (empty when the report carries no doneAt); engines pass every
// DoneAt through NormalizeDoneAt, so that one instant written in different
// zones or forms is one key. Rows stored before migration 0005 that did not
// normalise keep their text (see that migration).
type ReportKey struct {
	MessageID string
	StatusID  int32
	ErrorID   int32
	DoneAt    string
}

// ReportKind says which of Infobip's webhooks a report came from.
type ReportKind int8

// The kinds of report.
const (
	// ReportDelivery is a delivery report (the notifyUrl), keyed by Key.
	ReportDelivery ReportKind = 0
	// ReportTracking is a tracking report (the trackingUrl: an open, a
	// click, a complaint, a late bounce, an unsubscribe), keyed by
	// TrackingKey, Infobip's eventId.
	ReportTracking ReportKind = 1
)

// DomainCount says how a report counts towards its sending domain's
// bounce rate.
type DomainCount int8

// How reports count.
const (
	// CountNone: not at all (a pending status, an open, a click).
	CountNone DomainCount = 0
	// CountSent: one more message with a final outcome that did not bounce.
	CountSent DomainCount = 1
	// CountBounce: one more message that bounced.
	CountBounce DomainCount = 2
)

// Report is a classified report, delivery or tracking, ready to be stored
// with the event it makes, if any.
type Report struct {
	// Kind is where the report came from; Key applies to delivery reports,
	// TrackingKey to tracking reports (whose Key.MessageID still holds the
	// message id, for attribution and listings).
	Kind        ReportKind
	Key         ReportKey
	TrackingKey string
	// NotificationType is a tracking report's (OPENED, COMPLAINED, ...).
	NotificationType string
	ConnectionID     string
	ProfileID        string
	// Email is the lower-cased recipient address.
	Email     string
	Outcome   Outcome
	EventName string // empty unless Outcome is OutcomeEvent
	Rule      string
	// EventTime is the report's doneAt, or its receive time when it had none.
	EventTime   time.Time
	ReceiveTime time.Time
	// Payload is the report in the server's own encoding; opaque here.
	Payload []byte
	// Params are the facts the event keeps; stored only with an event.
	Params map[string]string
	// Recipient is the send recipient the report is about, when it is about
	// one of this server's sends: its last event is updated with the event.
	Recipient *RecipientRef
	// Suppress adds the address to the suppression list (with the event as
	// the cause) when the report is stored for the first time.
	Suppress bool
	// SuppressFor is how long that suppression lasts from ReceiveTime (the
	// lifetime of its cause); 0: for ever.
	SuppressFor time.Duration
	// SuppressReason is the reason the suppression records; empty: the
	// event's errorName param, else the rule.
	SuppressReason string
	// Domain is the sending domain (lower case) of the send the report is
	// about, when known. A newly stored report with Domain set counts
	// towards that domain's bounce rate as CountsAs says (see
	// DomainStore.DomainReportCounts).
	Domain   string
	CountsAs DomainCount
	// RulesVersion is the rules version that classified the report (0: the
	// built-in defaults or a rules file); its event records it too.
	RulesVersion int64
	// SoftBounce is what the report, stored now, does to its address's
	// soft-bounce count, under SoftBounceLimit (of the rules that
	// classified it; Limit must be positive for SoftBounceCounted). The
	// store counts in the ingest's transaction (see SoftBounceWork).
	SoftBounce      SoftBounceRole
	SoftBounceLimit SoftBounceLimit
}

// IngestResult counts what an ingest did.
type IngestResult struct {
	// Stored says, per report given, whether it was stored now (true) or had
	// been stored before (false).
	Stored []bool
	// IDs are, per report given, the id a report stored now took, which
	// is its event's id too; 0 for a duplicate. Only IngestReports sets
	// them.
	IDs        []int64
	Accepted   int
	Duplicates int
	Events     int
	// SoftBounceLimitsReached are the addresses whose soft bounces reached
	// the limit with this call, each with the bounces that did; the store
	// suppressed each in the same transaction.
	SoftBounceLimitsReached []SoftBounceLimitReached
}

// Event is a profile event as stored.
type Event struct {
	ID int64
	// ReportID is the id of the report (or domain event) the event was
	// made from, which is the event's own id (see IngestReports); the
	// engines set it to ID for every event, so for a MessageSendEvent,
	// made from no report, it names none.
	ReportID  int64
	Name      string
	Time      time.Time
	ProfileID string
	Email     string
	Params    map[string]string
	// RulesVersion is the rules version that made the event (0: the
	// built-in rules or a rules file, or an event made from no report).
	RulesVersion int64
	// Retraction is set when a reclassification retracted the event.
	Retraction *EventRetraction
	// Unreadable, when not empty, says why part of the stored row could not
	// be read back (params that do not decode): the engines return such a
	// row rather than fail the whole read, and readers skip it.
	Unreadable string
}

// EventCursor is the position after which a page of events goes on: events
// are ordered by time, then id, newest first.
type EventCursor struct {
	Time time.Time
	ID   int64
}

// EventQuery selects one profile's events, newest first.
type EventQuery struct {
	ProfileID string
	Names     []string // empty: all
	Limit     int
	After     *EventCursor // nil: from the newest
	// IncludeRetracted lists retracted events too.
	IncludeRetracted bool
}

// ProfileQuery is a segmentation: profiles with any of Names (empty: any
// name) in [Since, Until), ordered by profile id.
type ProfileQuery struct {
	Names          []string
	Since, Until   time.Time // zero: unbounded
	Limit          int
	AfterProfileID string // "": from the first
	// IncludeRetracted counts retracted events too.
	IncludeRetracted bool
}

// ProfileMatch is one profile found by a segmentation.
type ProfileMatch struct {
	ProfileID     string
	Email         string // of the latest matching event
	EventCount    int
	LastEventTime time.Time
}

// StoredReport is a report as stored, for listings.
type StoredReport struct {
	ID               int64
	Kind             ReportKind
	Key              ReportKey
	TrackingKey      string
	NotificationType string
	ConnectionID     string
	ProfileID        string
	Email            string
	Outcome          Outcome
	EventName        string
	Rule             string
	ReceiveTime      time.Time
	Payload          []byte
	// RulesVersion is the rules version that classified the report.
	RulesVersion int64
}

// ReportQuery selects stored reports of one kind, newest (highest id)
// first.
type ReportQuery struct {
	Kind     ReportKind
	Outcome  Outcome // OutcomeUnspecified: all
	Limit    int
	BeforeID int64 // 0: from the newest
}

// RejectedPayload is a webhook body, or one report of one, that was refused.
type RejectedPayload struct {
	ID          int64
	ReceiveTime time.Time
	ContentType string
	Reason      string
	Body        []byte
}

// RejectedQuery selects rejected payloads, newest (highest id) first.
type RejectedQuery struct {
	Limit    int
	BeforeID int64 // 0: from the newest
}

// Store is what the server needs of an engine. Every write is durable when it
// returns without error. Times are kept to the microsecond and returned in
// UTC. Close is idempotent; calls after it fail with ErrUnavailable.
type Store interface {
	ConnectionStore
	SendStore
	SuppressionStore
	EventLogStore
	BacklogStore
	SecretStore
	DomainStore
	RuleStore
	OperationStore

	// IngestReports stores reports, their events and rejected payloads in one
	// durable transaction. A report whose key is stored already changes
	// nothing and counts as a duplicate, also when it repeats within reports.
	// Delivery and tracking reports are kept apart, each kind deduplicated
	// by its own key, and may be mixed in one call. Every event's id is
	// unique across all events, whatever made them, and an event made from
	// a report has that report's id.
	IngestReports(ctx context.Context, reports []Report, rejected []RejectedPayload) (IngestResult, error)
	// SaveRejectedPayload durably keeps a refused payload.
	SaveRejectedPayload(ctx context.Context, p RejectedPayload) error
	// ListEvents returns up to q.Limit events of one profile, newest first.
	ListEvents(ctx context.Context, q EventQuery) ([]Event, error)
	// SearchProfiles returns up to q.Limit matching profiles by profile id.
	// Events without a profile (a domain's, see DomainEvent.EventName) are
	// never matched.
	SearchProfiles(ctx context.Context, q ProfileQuery) ([]ProfileMatch, error)
	// ListReports returns up to q.Limit stored reports, newest first.
	ListReports(ctx context.Context, q ReportQuery) ([]StoredReport, error)
	// ListRejectedPayloads returns up to q.Limit rejected payloads, newest
	// first.
	ListRejectedPayloads(ctx context.Context, q RejectedQuery) ([]RejectedPayload, error)
	// Ping reports whether the engine answers.
	Ping(ctx context.Context) error
	// Close releases the engine; pending writes finish first.
	Close() error
}
