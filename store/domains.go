package store

import (
	"context"
	"strings"
	"time"
)

// DomainState is where a sending domain stands; values match
// ibmail.v1.SendingDomainState.
type DomainState int8

// The domain states.
const (
	DomainUnspecified DomainState = 0
	// DomainActive: sends go out.
	DomainActive DomainState = 1
	// DomainWarned: Infobip warned of the bounce rate; sends still go out.
	DomainWarned DomainState = 2
	// DomainBlocked: Infobip blocked the domain; batches are held until
	// Until or an unblock.
	DomainBlocked DomainState = 3
	// DomainPaused: ibmail paused the domain on its own bounce rate;
	// batches are held until an unblock.
	DomainPaused DomainState = 4
)

// The types of domain event: Infobip's platform events, and ibmail's own.
const (
	DomainEventWarning   = "HIGH_BOUNCE_RATE_WARNING"
	DomainEventBlocked   = "HIGH_BOUNCE_RATE_BLOCKED"
	DomainEventPaused    = "PAUSED"
	DomainEventUnblocked = "UNBLOCKED"
)

// SendingDomain is a sending domain's stored state. Rows exist for the
// domain of every sender account (CreateSender adds it, active) and of
// every domain event.
type SendingDomain struct {
	Domain string // lower case
	State  DomainState
	// Until is when a warned or blocked state ends by itself; zero: it
	// does not.
	Until  time.Time
	Reason string
	// What the last platform event reported.
	ReportedBounceRate float64
	ReportedThreshold  float64
	ReportedScope      string
	UpdateTime         time.Time
}

// Effective is the state in force at now: a warning or block whose Until
// has passed is over.
func (d SendingDomain) Effective(now time.Time) DomainState {
	if (d.State == DomainWarned || d.State == DomainBlocked) && !d.Until.IsZero() && !now.Before(d.Until) {
		return DomainActive
	}
	return d.State
}

// Holds says whether the domain's batches are held at now.
func (d SendingDomain) Holds(now time.Time) bool {
	s := d.Effective(now)
	return s == DomainBlocked || s == DomainPaused
}

// DomainEvent is a platform event from Infobip or an action of ibmail's on
// a sending domain, stored with the state it puts the domain in.
type DomainEvent struct {
	ID int64
	// EventID is Infobip's eventId, the key events are deduplicated by;
	// empty for ibmail's own actions, which are never duplicates.
	EventID string
	Domain  string // lower case
	Type    string // DomainEventWarning, ...
	// Time is when the event occurred (Infobip's createdAt).
	Time        time.Time
	ReceiveTime time.Time
	BounceRate  float64
	Threshold   float64
	Scope       string
	// ConnectionID is the connection whose webhook secret the event came
	// with; empty for the server-wide secret or ibmail's own.
	ConnectionID string
	// Payload is the event in the server's own encoding; opaque here.
	Payload []byte

	// What a newly stored event does to its domain: State, Until and
	// Reason replace the domain's, unless the domain's effective state is
	// stronger (blocked beats paused beats warned; DomainActive, an
	// unblock, always applies). Not read back.
	State  DomainState
	Until  time.Time
	Reason string
	// EventName, when set, is the profile event the newly stored event
	// makes: a profile event with no profile (ProfileID and Email empty),
	// params domain, type, bounceRate, threshold, scope and eventId, so
	// that WatchEvents and JetStream consumers hear of it. Segmentation
	// never lists it.
	EventName string
}

// DomainCounts are the reports of one domain in a window.
type DomainCounts struct {
	Reports int64 // CountSent and CountBounce reports
	Bounces int64 // CountBounce reports
}

// BounceRate is the window's bounces as a percentage of its reports; 0
// for a window without reports.
func (c DomainCounts) BounceRate() float64 {
	if c.Reports == 0 {
		return 0
	}
	return 100 * float64(c.Bounces) / float64(c.Reports)
}

// DomainStore keeps sending domains and their events.
type DomainStore interface {
	// IngestDomainEvents stores events and rejected payloads in one durable
	// transaction, applying each newly stored event to its domain (adding
	// the domain if new). An event whose EventID is stored already changes
	// nothing and counts as a duplicate (IngestResult as for reports;
	// Events counts the profile events made).
	IngestDomainEvents(ctx context.Context, events []DomainEvent, rejected []RejectedPayload) (IngestResult, error)
	// GetSendingDomain returns one domain, or ErrNotFound.
	GetSendingDomain(ctx context.Context, domain string) (SendingDomain, error)
	// ListSendingDomains returns up to limit domains after afterDomain, in
	// order of name.
	ListSendingDomains(ctx context.Context, afterDomain string, limit int) ([]SendingDomain, error)
	// ListDomainEvents returns up to limit of a domain's events, newest
	// (highest id) first.
	ListDomainEvents(ctx context.Context, domain string, limit int) ([]DomainEvent, error)
	// DomainReportCounts counts, per domain, the reports stored since
	// since that counted towards its bounce rate (see Report.CountsAs).
	// Counts may be kept in buckets of up to five minutes: since is then
	// rounded down to its bucket.
	DomainReportCounts(ctx context.Context, since time.Time) (map[string]DomainCounts, error)
	// PruneDomainReportCounts deletes the counts of buckets that end
	// before before, and says how many rows went: no window reaches back
	// further than a day, and the counts would otherwise grow forever.
	PruneDomainReportCounts(ctx context.Context, before time.Time) (int64, error)
}

// AddressDomain is the domain of an email address, lower case: what
// follows its last '@', without a closing '>' of "Name <addr>". Empty when
// there is none.
func AddressDomain(address string) string {
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(address[at+1:]), ">")))
}
