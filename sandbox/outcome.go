package sandbox

import (
	"strings"

	"github.com/ibmail/ibmail/infobip"
)

// Outcome is what the sandbox reports for a recipient.
type Outcome struct {
	// Prefix selects the outcome: a recipient whose local part starts with
	// it (case-insensitively) gets it. Empty for the delivered outcome.
	Prefix string
	Status infobip.Status
	Error  infobip.ErrorInfo
	// SMTPResponse is the receiving server's answer; empty when Infobip
	// never tried (suppressed and unsubscribed addresses).
	SMTPResponse string
	// Tracking is the notificationType (COMPLAINED, LATE_BOUNCE,
	// UNSUBSCRIBED) posted to the send's trackingUrl after this outcome's
	// delivered report; empty for none.
	Tracking string
	// Bounce says the outcome counts as a bounce in the sandbox's own bounce
	// rate per sending domain (see Options.BounceWarnPercent): hard bounces,
	// spam, unknown users and late bounces do; soft bounces (temporary),
	// suppressed and dropped addresses (never tried) and complaints do not.
	Bounce bool
}

var (
	statusDelivered = infobip.Status{GroupID: 3, GroupName: "DELIVERED", ID: 5, Name: "DELIVERED_TO_HANDSET", Description: "Message delivered to handset"}
	statusRejected  = infobip.Status{GroupID: 2, GroupName: "UNDELIVERABLE", ID: 4, Name: "UNDELIVERABLE_REJECTED_OPERATOR", Description: "Message rejected by operator"}
	statusPending   = infobip.Status{GroupID: 1, GroupName: "PENDING", ID: 26, Name: "PENDING_ACCEPTED", Description: "Message accepted, pending for delivery."}
	noError         = infobip.ErrorInfo{ID: 0, Name: "NO_ERROR", Description: "No Error", GroupID: 0, GroupName: "OK"}
)

// The notificationType values of the tracking webhook.
const (
	// Opened is posted for delivered recipients of sends that track opens.
	Opened = "OPENED"
	// Clicked is posted for delivered recipients of sends that track clicks.
	Clicked = "CLICKED"
	// Complained is posted for the prefix complain, after delivery.
	Complained = "COMPLAINED"
	// LateBounce is posted for the prefix latebounce, after delivery.
	LateBounce = "LATE_BOUNCE"
	// Unsubscribed is posted for the prefix unsubscribe, after delivery.
	Unsubscribed = "UNSUBSCRIBED"
)

// outcomes is the table in matching order; no prefix is a prefix of another
// (TestPrefixesAreDistinct), so the order never decides. Error group names
// are filled in by groupNames.
var outcomes = []Outcome{
	{Prefix: "hardbounce", Status: statusRejected, SMTPResponse: "550 5.1.1 Mailbox does not exist", Bounce: true,
		Error: infobip.ErrorInfo{ID: 6012, Name: "EC_HARD_BOUNCE", Description: "Hard bounce", GroupID: 2, Permanent: true}},
	{Prefix: "softbounce", Status: statusRejected, SMTPResponse: "451 4.3.0 Temporary failure, try again later",
		Error: infobip.ErrorInfo{ID: 6011, Name: "EC_SOFT_BOUNCE", Description: "Soft bounce", GroupID: 2}},
	{Prefix: "inboxfull", Status: statusRejected, SMTPResponse: "452 4.2.2 Mailbox full",
		Error: infobip.ErrorInfo{ID: 6010, Name: "EC_RECIPIENT_INBOX_FULL", Description: "Recipient inbox full", GroupID: 2}},
	{Prefix: "spam", Status: statusRejected, SMTPResponse: "550 5.7.1 Message rejected as spam", Bounce: true,
		Error: infobip.ErrorInfo{ID: 6042, Name: "EC_SPAM_REVERTED", Description: "Spam reverted", GroupID: 2, Permanent: true}},
	{Prefix: "suppressed", Status: statusRejected,
		Error: infobip.ErrorInfo{ID: 6034, Name: "EC_SUPPRESSED_BOUNCE", Description: "Address suppressed after a bounce", GroupID: 1, Permanent: true}},
	{Prefix: "dropped", Status: statusRejected,
		Error: infobip.ErrorInfo{ID: 6003, Name: "EC_UNSUBSCRIBED_EMAIL_ADDRESS", Description: "Address unsubscribed", GroupID: 1, Permanent: true}},
	{Prefix: "userunknown", Status: statusRejected, SMTPResponse: "550 5.1.1 User unknown", Bounce: true,
		Error: infobip.ErrorInfo{ID: 6006, Name: "EC_INVALID_EMAIL_ADDRESS", Description: "Invalid email address", GroupID: 2, Permanent: true}},
	// Delivered, then a tracking event: what only the trackingUrl learns.
	{Prefix: "complain", Status: statusDelivered, Error: noError, SMTPResponse: "250 2.0.0 OK", Tracking: Complained},
	{Prefix: "latebounce", Status: statusDelivered, Error: noError, SMTPResponse: "250 2.0.0 OK", Tracking: LateBounce, Bounce: true},
	{Prefix: "unsubscribe", Status: statusDelivered, Error: noError, SMTPResponse: "250 2.0.0 OK", Tracking: Unsubscribed},
}

var delivered = Outcome{Status: statusDelivered, Error: noError, SMTPResponse: "250 2.0.0 OK"}

// blocked is every recipient's outcome while the send's domain is blocked
// for its bounce rate: dropped before any attempt, as Infobip does.
var blocked = Outcome{Status: statusRejected,
	Error: infobip.ErrorInfo{ID: 6016, Name: "EC_SENDER_DOMAIN_BOUNCE_BLOCKED", Description: "Sender domain blocked due to a high bounce rate", GroupID: 1, Permanent: true}}

// BlockedOutcome is the outcome of every recipient of a send from a
// blocked domain (error 6016), with group names as the GenericGroupNames
// option would give them.
func BlockedOutcome(genericGroupNames bool) Outcome { return blocked.named(genericGroupNames) }

// randomBounce is what BounceRate turns a delivered recipient into.
var randomBounce = &outcomes[0]

// groupNames are the error group names: the seed's by default, so each
// outcome yields the event its name suggests, or the generic ones of real
// traffic.
func groupName(group int, generic bool) string {
	switch group {
	case 0:
		return "OK"
	case 1:
		if generic {
			return "HANDSET_ERRORS"
		}
		return "DROPPED"
	case 2:
		if generic {
			return "USER_ERRORS"
		}
		return "BOUNCED"
	default:
		return "OPERATOR_ERRORS"
	}
}

func (o Outcome) named(generic bool) Outcome {
	o.Error.GroupName = groupName(o.Error.GroupID, generic)
	return o
}

// Outcomes lists every outcome chosen by prefix, then the delivered one
// last, with group names as the GenericGroupNames option would give them.
func Outcomes(genericGroupNames bool) []Outcome {
	all := make([]Outcome, 0, len(outcomes)+1)
	for _, o := range outcomes {
		all = append(all, o.named(genericGroupNames))
	}
	return append(all, delivered.named(genericGroupNames))
}

// OutcomeFor is the outcome the sandbox reports for address (before any
// random bounce).
func OutcomeFor(address string, genericGroupNames bool) Outcome {
	return outcomeFor(address).named(genericGroupNames)
}

// outcomeFor points into the table, so messages share one copy.
func outcomeFor(address string) *Outcome {
	local := address
	if i := strings.LastIndexByte(local, '@'); i >= 0 {
		local = local[:i]
	}
	if i := strings.LastIndexByte(local, '<'); i >= 0 {
		local = local[i+1:]
	}
	for i := range outcomes {
		p := outcomes[i].Prefix
		if len(local) >= len(p) && strings.EqualFold(local[:len(p)], p) {
			return &outcomes[i]
		}
	}
	return &delivered
}
