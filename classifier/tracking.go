package classifier

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TrackingRule maps the notificationType of an Infobip tracking report (what
// Infobip posts to a send's trackingUrl: an open, a click, a complaint, a late
// bounce, an unsubscribe) to a profile event, and says whether the report
// suppresses the address. Tracking rules live in the same rule list as the
// bounce rules, so that one file decides every event and an operator can
// override either table the same way.
type TrackingRule struct {
	// NotificationType is Infobip's notificationType, such as COMPLAINED.
	// It is a name of letters, digits and underscores, as Infobip's are;
	// one rule per type.
	NotificationType string `yaml:"notificationType"`
	// Event is the profile event to make, such as newsletter.spambounce.
	Event string `yaml:"event"`
	// Suppress is the reason the suppression list records, such as
	// complaint; empty means the report does not suppress the address. It is
	// a reason rather than a yes/no so that the list says why, in the
	// operator's words.
	Suppress string `yaml:"suppress,omitempty"`
}

// DefaultTrackingRules returns the integration's tracking table: complaints,
// late bounces and unsubscribes make their events and suppress the address,
// opens and clicks only make their events. It returns a fresh slice on every
// call so that a caller may change it to build its own list.
func DefaultTrackingRules() []TrackingRule {
	return []TrackingRule{
		// A complaint, as the seed maps EC_SUPPRESSED_SPAM_COMPLAINT.
		{NotificationType: "COMPLAINED", Event: eventSpamBounce, Suppress: "complaint"},
		{NotificationType: "LATE_BOUNCE", Event: eventHardBounce, Suppress: "late bounce"},
		{NotificationType: "UNSUBSCRIBED", Event: eventUnsubscribe, Suppress: "unsubscribed"},
		{NotificationType: "OPENED", Event: eventOpen},
		{NotificationType: "CLICKED", Event: eventClick},
	}
}

// Bounds of a tracking rule's strings. A suppression reason is shown in
// listings and logs, so it stays a short phrase; a notification type is an
// enum name, and the bound keeps a pasted paragraph out of every reason.
const (
	maxSuppressReasonLen   = 100
	maxNotificationTypeLen = 64
)

// TrackingResult is the engine's decision about one tracking report.
type TrackingResult struct {
	// Outcome is OutcomeEvent when a tracking rule matched, else
	// OutcomeUnclassified; tracking reports have no "no error" case.
	Outcome Outcome
	// Event is the event name; empty unless Outcome is OutcomeEvent.
	Event string
	// Suppress is the suppression reason of the matching rule; empty when
	// the report does not suppress the address (or no rule matched).
	Suppress string
	// RuleIndex is the index into TrackingRules of the rule that matched,
	// counted from 0; -1 when none did. Reason counts from 1.
	RuleIndex int
	// Reason says which tracking rule decided, or why none did. It is built
	// when the engine is, so returning it costs nothing.
	Reason string
}

// Classified reports whether a tracking rule matched and the report makes an
// event. It is derived from Outcome so the two can never disagree.
func (r TrackingResult) Classified() bool { return r.Outcome == OutcomeEvent }

// Suppresses reports whether the report adds its address to the suppression
// list, with Suppress as the reason.
func (r TrackingResult) Suppresses() bool { return r.Suppress != "" }

// Reasons that depend on no rule; fixed strings keep ClassifyTracking
// allocation-free.
const (
	reasonNoTrackingType = "no tracking rule covers a report without a notificationType: unclassified, no event"
	reasonNoTrackingRule = "no tracking rule covers this notificationType: unclassified, no event"
)

var (
	noTrackingTypeResult = TrackingResult{Outcome: OutcomeUnclassified, RuleIndex: -1, Reason: reasonNoTrackingType}
	noTrackingRuleResult = TrackingResult{Outcome: OutcomeUnclassified, RuleIndex: -1, Reason: reasonNoTrackingRule}
)

// TrackingRules returns a copy of the engine's tracking rules, with
// notification types trimmed and upper case as they are matched and
// suppression reasons trimmed, so that a server can list them without being
// able to change the engine. It is empty when the engine has none.
func (e *Engine) TrackingRules() []TrackingRule {
	return append([]TrackingRule{}, e.tracking...)
}

// ClassifyTracking decides what a tracking report with this notificationType
// makes. The type matches whatever its case and surrounding spaces, as error
// names do in Classify; an empty type, or one no tracking rule names, is
// unclassified.
func (e *Engine) ClassifyTracking(notificationType string) TrackingResult {
	t := strings.TrimSpace(notificationType)
	if t == "" {
		return noTrackingTypeResult
	}
	ascii := isASCII(t)
	for i := range e.tracking {
		// Compiled types are validated ASCII, so their flag is always true.
		if sameName(e.tracking[i].NotificationType, true, t, ascii) {
			return e.trackingResults[i]
		}
	}
	return noTrackingRuleResult
}

// compileTracking validates tracking rules into e, reporting each problem
// through bad with the rule's index. Duplicates are found as ClassifyTracking
// matches, so that no rule can be shadowed unnoticed.
func (e *Engine) compileTracking(rules []TrackingRule, bad func(i int, format string, args ...any)) {
	e.tracking = make([]TrackingRule, len(rules))
	for i, r := range rules {
		c := TrackingRule{NotificationType: canonName(r.NotificationType), Event: r.Event, Suppress: strings.TrimSpace(r.Suppress)}
		e.tracking[i] = c
		switch {
		case r.Event == "":
			bad(i, "event is missing")
		case !eventPattern.MatchString(r.Event):
			bad(i, "event %q is not of the form lowercase.words, such as newsletter.spambounce", r.Event)
		}
		if problem := suppressProblem(r.Suppress, c.Suppress); problem != "" {
			bad(i, "%s", problem)
		}
		if problem := notificationTypeProblem(strings.TrimSpace(r.NotificationType)); problem != "" {
			bad(i, "%s", problem)
			continue // a duplicate of an unusable type would only add noise
		}
		for j := range i {
			if e.tracking[j].NotificationType == c.NotificationType {
				bad(i, "notificationType %s is already mapped by tracking rule %d, and a type takes one rule", c.NotificationType, j+1)
				break
			}
		}
	}
}

// notificationTypeProblem checks a type as given, trimmed but before its
// case is changed, so that the check sees what the operator wrote. Only
// letters, digits and underscores pass: that is every type Infobip sends, and
// it keeps quotes and control characters out of the reasons.
func notificationTypeProblem(t string) string {
	if t == "" {
		return "notificationType is missing or blank"
	}
	if len(t) > maxNotificationTypeLen {
		return fmt.Sprintf("notificationType is %d bytes long; at most %d fit", len(t), maxNotificationTypeLen)
	}
	for _, r := range t {
		if (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return fmt.Sprintf("notificationType %q holds %q, but a type is letters, digits and underscores, such as LATE_BOUNCE", t, r)
		}
	}
	return ""
}

// suppressProblem checks a suppression reason as given (raw) and trimmed.
// The reason is stored and shown as the operator wrote it, so it must be
// printable text of a sensible length.
func suppressProblem(raw, trimmed string) string {
	switch {
	case raw != "" && trimmed == "":
		return "suppress reason is blank: leave suppress out for a rule that does not suppress"
	case !utf8.ValidString(trimmed):
		return "suppress reason is not valid UTF-8"
	case utf8.RuneCountInString(trimmed) > maxSuppressReasonLen:
		return fmt.Sprintf("suppress reason is %d characters long; at most %d fit", utf8.RuneCountInString(trimmed), maxSuppressReasonLen)
	}
	for i, r := range trimmed {
		if unicode.IsControl(r) {
			return fmt.Sprintf("suppress reason holds the control character %U at byte %d: give a plain phrase, such as complaint", r, i)
		}
	}
	return ""
}

// describeTracking builds every TrackingResult in advance, so that
// ClassifyTracking only copies one.
func (e *Engine) describeTracking() {
	e.trackingResults = make([]TrackingResult, len(e.tracking))
	for i, r := range e.tracking {
		suppress := "not suppressed"
		if r.Suppress != "" {
			suppress = "suppressed (" + r.Suppress + ")"
		}
		e.trackingResults[i] = TrackingResult{
			Outcome:   OutcomeEvent,
			Event:     r.Event,
			Suppress:  r.Suppress,
			RuleIndex: i,
			Reason:    fmt.Sprintf("tracking rule %d: notificationType %s -> %s, %s", i+1, r.NotificationType, r.Event, suppress),
		}
	}
}
