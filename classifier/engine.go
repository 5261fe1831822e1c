// Package classifier decides which profile event, if any, an Infobip email
// delivery report makes, from the report's error alone, and which event and
// suppression a tracking report (an open, a click, a complaint, a late
// bounce, an unsubscribe) makes, from its notificationType alone.
//
// The decision is a rule list (the integration's mapping tables by default,
// or a rules file) compiled once into an Engine, so that the per-report path
// neither allocates nor touches I/O: the webhooks classify every report of
// every batch on it.
package classifier

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is the error object of one delivery report. It mirrors Infobip's
// fields rather than the protobuf message so that this package stays free of
// generated code and any caller can fill it.
type Error struct {
	// ID is Infobip's error.id; 0 means no error.
	ID int32
	// Name is Infobip's error.name, such as EC_SOFT_BOUNCE.
	Name string
	// GroupID is Infobip's error.groupId; 0 means no error.
	GroupID int32
	// GroupName is Infobip's error.groupName, such as BOUNCED or USER_ERRORS.
	GroupName string
}

// Outcome says what the engine made of a report. Its values equal the
// protobuf enum ReportOutcome so that a server converts with a plain cast.
type Outcome int32

// The outcomes; 0 is left unused so that a forgotten field reads as unknown
// rather than as a real outcome.
const (
	// OutcomeUnspecified is never returned; it is the zero value.
	OutcomeUnspecified Outcome = 0
	// OutcomeEvent: a rule matched and the report makes an event.
	OutcomeEvent Outcome = 1
	// OutcomeNoError: the report carries no error (a delivery, pending or
	// similar status), so it makes no event.
	OutcomeNoError Outcome = 2
	// OutcomeUnclassified: the report carries an error no rule covers. It
	// makes no event and is flagged so that an operator can add a rule.
	OutcomeUnclassified Outcome = 3
)

// String gives the outcome a stable name for logs and metrics labels.
func (o Outcome) String() string {
	switch o {
	case OutcomeUnspecified:
		return "unspecified"
	case OutcomeEvent:
		return "event"
	case OutcomeNoError:
		return "no_error"
	case OutcomeUnclassified:
		return "unclassified"
	}
	return fmt.Sprintf("Outcome(%d)", int32(o))
}

// Result is the engine's decision about one report.
type Result struct {
	// Outcome says whether the report makes an event, and if not, why not.
	Outcome Outcome
	// Event is the event name; empty unless Outcome is OutcomeEvent.
	Event string
	// RuleIndex is the index into Rules of the rule that matched, counted
	// from 0; -1 when no rule matched. Reason counts from 1, as people do.
	RuleIndex int
	// Reason says which rule decided, or why none did, in words a person can
	// read. It is built when the engine is, so returning it costs nothing.
	Reason string
}

// Classified reports whether a rule matched and the report makes an event.
// It is derived from Outcome so the two can never disagree.
func (r Result) Classified() bool { return r.Outcome == OutcomeEvent }

// Reasons that depend on no rule; fixed strings keep Classify allocation-free.
const (
	reasonNoError    = "no error (error group 0 OK): delivery or status report, no event"
	reasonGroupZero  = "error group 0 is reserved for no error, yet the report names an error: unclassified, no event"
	reasonNoGroup    = "no rule covers this error group: unclassified, no event"
	reasonNotCovered = "no rule of error group %d %s lists this error and the group has no catch-all rule: unclassified, no event"
)

var (
	noErrorResult   = Result{Outcome: OutcomeNoError, RuleIndex: -1, Reason: reasonNoError}
	groupZeroResult = Result{Outcome: OutcomeUnclassified, RuleIndex: -1, Reason: reasonGroupZero}
	noGroupResult   = Result{Outcome: OutcomeUnclassified, RuleIndex: -1, Reason: reasonNoGroup}
)

// Engine classifies reports with one validated rule list. It is immutable
// once built, so one Engine may serve any number of goroutines; to change the
// rules, build a new Engine and swap it in.
type Engine struct {
	rules   []Rule   // canonical copies, as Rules returns them
	results []Result // one per rule: the Result Classify returns for it
	groups  []group  // one per (group id, group name) pair, in rule order

	tracking        []TrackingRule   // canonical copies, as TrackingRules returns them
	trackingResults []TrackingResult // one per tracking rule: what ClassifyTracking returns

	softBounce SoftBouncePolicy         // when repeated soft bounces suppress
	lifetimes  map[string]time.Duration // cause -> lifetime, defaults included
}

// group holds the rules of one (group id, group name) pair, so that Classify
// finds the pair once and then only compares error names.
type group struct {
	id         int32
	name       string
	ascii      bool        // name is ASCII, so sameName may take its fast path
	named      []namedRule // error names listed by the pair's rules
	catchAll   int         // rule index of the pair's catch-all; -1 if none
	notCovered Result      // the Result for an unlisted name with no catch-all
}

type namedRule struct {
	name  string
	ascii bool
	rule  int
}

// New validates rules and compiles them into an Engine, with
// DefaultTrackingRules for tracking reports, so that a caller with only
// bounce rules still gets the integration's tracking table. It reports every
// problem it finds, each naming the rule (counted from 1), so that a bad list
// never half-applies.
func New(rules []Rule) (*Engine, error) {
	return NewWithTracking(rules, DefaultTrackingRules())
}

// NewWithTracking is New with the tracking rules given too; the policy and
// lifetimes are the defaults. They are taken
// as they are: a nil or empty list means no tracking rule, so every tracking
// report is unclassified (pass DefaultTrackingRules for the integration's
// table). Problems of either list are reported together, tracking ones as
// "tracking rule N".
func NewWithTracking(rules []Rule, tracking []TrackingRule) (*Engine, error) {
	e, err := compile(RuleSet{Rules: rules, TrackingRules: tracking, SoftBounce: DefaultSoftBouncePolicy()}, fileLines{})
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	return e, nil
}

// Default returns an Engine for DefaultRules and DefaultTrackingRules. The
// seed's tables are known to be valid, so it cannot fail.
func Default() *Engine {
	e, err := New(DefaultRules())
	if err != nil {
		panic(err) // a broken built-in table is a programming error
	}
	return e
}

// Rules returns a copy of the engine's rules, with names trimmed and upper
// case as they are matched, so that a server can list them without being
// able to change the engine.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i, r := range e.rules {
		out[i] = r
		if len(r.ErrorNames) > 0 {
			out[i].ErrorNames = append([]string(nil), r.ErrorNames...)
		}
	}
	return out
}

// Classify decides what one report's error makes. Pass the zero Error for a
// report without an error object. Names match whatever their case and
// surrounding spaces, because Infobip's spelling has not been stable; a rule
// listing the error name beats the catch-all of its group pair.
func (e *Engine) Classify(err Error) Result {
	groupName, name := strings.TrimSpace(err.GroupName), strings.TrimSpace(err.Name)
	groupASCII, nameASCII := isASCII(groupName), isASCII(name)
	if err.GroupID == 0 {
		if err.ID == 0 && isNoErrorName(groupName, groupASCII) && isNoErrorName(name, nameASCII) {
			return noErrorResult
		}
		return groupZeroResult
	}
	for i := range e.groups {
		g := &e.groups[i]
		if g.id != err.GroupID || !sameName(g.name, g.ascii, groupName, groupASCII) {
			continue
		}
		for _, n := range g.named {
			if sameName(n.name, n.ascii, name, nameASCII) {
				return e.results[n.rule]
			}
		}
		if g.catchAll >= 0 {
			return e.results[g.catchAll]
		}
		return g.notCovered
	}
	return noGroupResult
}

// isNoErrorName accepts the names Infobip uses for "no error" in group 0,
// and the empty name of a report that has no error object at all.
func isNoErrorName(s string, ascii bool) bool {
	return s == "" || sameName("OK", true, s, ascii) || sameName("NO_ERROR", true, s, ascii)
}

// sameName reports whether a name of the engine (trimmed, upper case) equals
// a name from a report (trimmed) whatever the case, exactly as
// strings.EqualFold does. Infobip's names are ASCII; for them it compares
// lengths first and folds bytes itself, which keeps Classify's many
// mismatches cheap.
func sameName(canon string, canonASCII bool, in string, inASCII bool) bool {
	if !canonASCII || !inASCII {
		return strings.EqualFold(canon, in)
	}
	if len(canon) != len(in) {
		return false
	}
	for i := 0; i < len(in); i++ {
		c := in[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != canon[i] {
			return false
		}
	}
	return true
}

// isASCII lets sameName know when byte-wise folding is exact.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
