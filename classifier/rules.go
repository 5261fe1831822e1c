package classifier

import (
	"fmt"
	"regexp"
	"strings"
)

// Event names of the integration's mapping tables. They are kept here only
// to spell DefaultRules once; the rule list, not these constants, decides.
const (
	eventSpamBounce = "newsletter.spambounce"
	eventSoftBounce = "newsletter.softbounce"
	eventHardBounce = "newsletter.hardbounce"
	eventDropped    = "newsletter.dropped"
	// The tracking events; newsletter.unsubscribe is the platform's own name.
	eventUnsubscribe = "newsletter.unsubscribe"
	eventOpen        = "newsletter.open"
	eventClick       = "newsletter.click"
)

// eventPattern is the shape of a profile event name. Rejecting anything else
// when the rules are loaded stops a typo from becoming an event that no
// segmentation ever finds.
var eventPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`)

// Rule maps an Infobip error group, and optionally some of its error names,
// to a profile event. Rules are data rather than code because Infobip has
// renamed groups and errors before; operators can then follow it with a
// rules file instead of a release.
type Rule struct {
	// GroupID is Infobip's error.groupId. It must be 1 or more: group 0 is
	// how Infobip says "no error", which never makes an event.
	GroupID int32 `yaml:"groupId"`
	// GroupName is Infobip's error.groupName. A rule names the pair of id
	// and name because Infobip sends more than one name for one id (group 1
	// arrives as DROPPED and as HANDSET_ERRORS).
	GroupName string `yaml:"groupName"`
	// ErrorNames lists the error.name values the rule covers. Empty makes
	// the rule the catch-all of its group pair, which applies only when no
	// rule of the pair lists the error name, whatever the order of rules.
	ErrorNames []string `yaml:"errorNames,omitempty"`
	// Event is the profile event to make, such as newsletter.hardbounce.
	Event string `yaml:"event"`
}

// DefaultRules returns the mapping tables of the Infobip email integration
// (the seed), in the tables' order. It returns a fresh slice on every call so
// that a caller may change it to build its own list.
func DefaultRules() []Rule {
	return []Rule{
		{GroupID: 1, GroupName: "DROPPED", ErrorNames: []string{"EC_SPAM_DETECTED", "EC_SUPPRESSED_SPAM_COMPLAINT", "EC_SUPPRESSED_BOUNCE"}, Event: eventSpamBounce},
		{GroupID: 1, GroupName: "DROPPED", Event: eventDropped},
		{GroupID: 1, GroupName: "HANDSET_ERRORS", Event: eventHardBounce},
		{GroupID: 2, GroupName: "BOUNCED", ErrorNames: []string{"EC_SENDER_IP_BLACKLISTED", "EC_BLOCKED_AS_SPAM", "EC_SPAM_REVERTED"}, Event: eventSpamBounce},
		{GroupID: 2, GroupName: "BOUNCED", ErrorNames: []string{"EC_RECIPIENT_INBOX_FULL", "EC_SOFT_BOUNCE"}, Event: eventSoftBounce},
		{GroupID: 2, GroupName: "BOUNCED", Event: eventHardBounce},
		{GroupID: 2, GroupName: "USER_ERRORS", Event: eventHardBounce},
		{GroupID: 3, GroupName: "OPERATOR_ERRORS", Event: eventHardBounce},
	}
}

// RuleError is one problem in a rule list. It carries the rule's position,
// and its line when the rules came from a file, so that an operator can find
// the rule without counting.
type RuleError struct {
	// Tracking says the rule is a tracking rule (of the trackingRules list)
	// rather than a bounce rule, so that "rule 2" is never ambiguous in a
	// file holding both lists.
	Tracking bool
	// Rule is the rule's position in its list, counted from 1 as people
	// count; 0 when the problem is the list as a whole, the soft-bounce
	// policy or a suppression lifetime (whose Problem names it).
	Rule int
	// Line is the rule's line in the rules file; 0 when not known.
	Line int
	// Problem says what is wrong, in words an operator can act on.
	Problem string
}

// Error puts the position first, as a compiler does, so that a list of
// problems reads top to bottom like the file.
func (e *RuleError) Error() string {
	kind := "rule"
	if e.Tracking {
		kind = "tracking rule"
	}
	switch {
	case e.Rule == 0 && e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Problem)
	case e.Rule == 0:
		return e.Problem
	case e.Line > 0:
		return fmt.Sprintf("%s %d (line %d): %s", kind, e.Rule, e.Line, e.Problem)
	default:
		return fmt.Sprintf("%s %d: %s", kind, e.Rule, e.Problem)
	}
}

// ruleErrors reports every problem at once, on one line, so that an operator
// fixes a file in one pass and a log keeps the message whole.
type ruleErrors []*RuleError

func (es ruleErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap lets errors.As find each *RuleError.
func (es ruleErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// canonName is how the engine stores a group or error name. Upper case only
// makes Rules and the reasons read like Infobip's own spelling; matching
// itself folds case, so it does not depend on this.
func canonName(s string) string {
	return strings.ToUpper(strings.TrimSpace(s))
}

// joinOr lists error names the way a person would: "A", "A or B", "A, B or C".
func joinOr(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
