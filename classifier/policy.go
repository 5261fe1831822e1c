package classifier

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
)

// The causes a suppression can have besides an event name. An event's
// suppression has the event's name as its cause (newsletter.hardbounce,
// newsletter.spambounce, newsletter.unsubscribe, ...), so that one lifetime
// table covers every way an address comes to be suppressed.
const (
	// CauseSoftBounceLimit is the soft-bounce policy's: an address that
	// soft-bounced too often.
	CauseSoftBounceLimit = "soft-bounce limit"
	// CauseImport is a suppression list imported from elsewhere.
	CauseImport = "import"
)

// SoftBounceEvent is the event SoftBouncePolicy counts.
const SoftBounceEvent = eventSoftBounce

// SoftBouncePolicy suppresses an address that soft-bounces again and again:
// after Limit newsletter.softbounce events within Window, with no delivery
// between them. An address that soft-bounces for weeks is as dead as one
// that hard-bounces, but a single soft bounce (a full mailbox, greylisting)
// is usually a bad day, so the policy counts rather than suppressing at once.
type SoftBouncePolicy struct {
	// Limit is how many soft bounces suppress; 0 turns the policy off.
	Limit int `yaml:"limit"`
	// Window is how far back soft bounces count.
	Window time.Duration `yaml:"window"`
}

// Enabled reports whether the policy suppresses at all.
func (p SoftBouncePolicy) Enabled() bool { return p.Limit > 0 }

// Bounds of the policy and of lifetimes. A limit past 1000 or a window past
// a year would never fire in practice and most likely is a typo; a lifetime
// under a minute would let the next send through at once.
const (
	maxSoftBounceLimit  = 1000
	minPolicyDuration   = time.Minute
	maxSoftBounceWindow = 366 * 24 * time.Hour
	maxLifetime         = 10 * 366 * 24 * time.Hour
	maxLifetimes        = 100
	maxCauseLen         = 100
)

// DefaultSoftBouncePolicy is five soft bounces within 30 days. Five spread
// over a month outlasts the usual transient causes (a full mailbox is
// emptied, a greylisting server accepts on retry, an outage ends within
// days), while a newsletter sent weekly reaches the limit in about a month
// on an address that is really gone.
func DefaultSoftBouncePolicy() SoftBouncePolicy {
	return SoftBouncePolicy{Limit: 5, Window: 30 * 24 * time.Hour}
}

// DefaultSuppressionLifetimes are the lifetimes of causes that expire by
// default: a soft-bounce-limit suppression lasts 30 days, after which the
// address gets another chance (and is suppressed again at once if it still
// soft-bounces). Every other cause (hard bounces, complaints, unsubscribes,
// imports) never expires: mailing those again harms the sender's reputation
// or ignores the recipient's wish.
func DefaultSuppressionLifetimes() map[string]time.Duration {
	return map[string]time.Duration{CauseSoftBounceLimit: 30 * 24 * time.Hour}
}

// Lifetime is one cause's lifetime as a rules file lists it.
type Lifetime struct {
	// Cause is an event name, CauseSoftBounceLimit or CauseImport.
	Cause string `yaml:"cause"`
	// Lifetime is how long the suppression blocks sends; 0 means for ever.
	Lifetime time.Duration `yaml:"lifetime"`
}

// SoftBouncePolicy returns the engine's soft-bounce policy.
func (e *Engine) SoftBouncePolicy() SoftBouncePolicy { return e.softBounce }

// SuppressionLifetime returns how long a suppression of cause lasts; 0 means
// for ever. Causes the rules do not list take DefaultSuppressionLifetimes.
func (e *Engine) SuppressionLifetime(cause string) time.Duration {
	return e.lifetimes[cause]
}

// RuleSet returns everything the engine decides, as NewFromSet takes it, so
// that a server can store and show the rules in force. Lifetimes include the
// defaults the set did not override, which NewFromSet then takes unchanged.
func (e *Engine) RuleSet() RuleSet {
	lt := make(map[string]time.Duration, len(e.lifetimes))
	for k, v := range e.lifetimes {
		lt[k] = v
	}
	return RuleSet{Rules: e.Rules(), TrackingRules: e.TrackingRules(), SoftBounce: e.softBounce, SuppressionLifetimes: lt}
}

// NewFromSet validates a whole rule set, exactly as a rules file is
// validated, and compiles it. The set is taken as it is: a zero SoftBounce
// is the policy turned off (start from DefaultRuleSet for the defaults),
// while causes missing from SuppressionLifetimes take their defaults.
func NewFromSet(set RuleSet) (*Engine, error) {
	e, err := compile(set, fileLines{})
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	return e, nil
}

// DefaultRuleSet is the integration's tables with the default policy and
// lifetimes: what a rules file holding only the defaults decides.
func DefaultRuleSet() RuleSet {
	return RuleSet{Rules: DefaultRules(), TrackingRules: DefaultTrackingRules(), SoftBounce: DefaultSoftBouncePolicy(), SuppressionLifetimes: DefaultSuppressionLifetimes()}
}

// SortedLifetimes lists lifetimes in order of cause, for a file or an API
// to show them in a stable order.
func SortedLifetimes(m map[string]time.Duration) []Lifetime {
	out := make([]Lifetime, 0, len(m))
	for c, d := range m {
		out = append(out, Lifetime{Cause: c, Lifetime: d})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cause < out[j].Cause })
	return out
}

// compilePolicy validates the policy and lifetimes of set into e, reporting
// each problem through bad (at is the line of the policy, or of each
// lifetime, when known).
func (e *Engine) compilePolicy(set RuleSet, lines fileLines, bad func(line int, format string, args ...any)) {
	p := set.SoftBounce
	switch {
	case p.Limit < 0:
		bad(lines.policy, "softBouncePolicy: limit %d is negative: give 0 to turn the policy off", p.Limit)
	case p.Limit > maxSoftBounceLimit:
		bad(lines.policy, "softBouncePolicy: limit %d is more than %d", p.Limit, maxSoftBounceLimit)
	case p.Limit > 0 && (p.Window < minPolicyDuration || p.Window > maxSoftBounceWindow):
		bad(lines.policy, "softBouncePolicy: window %s is outside 1m to %s (write hours, such as 720h for 30 days)", p.Window, maxSoftBounceWindow)
	}
	if p.Limit == 0 {
		p.Window = 0 // an off policy has no window, so that equal sets compare equal
	}
	e.softBounce = p

	e.lifetimes = DefaultSuppressionLifetimes()
	if len(set.SuppressionLifetimes) > maxLifetimes {
		bad(0, "suppressionLifetimes: %d causes is more than %d", len(set.SuppressionLifetimes), maxLifetimes)
		return
	}
	for _, lt := range SortedLifetimes(set.SuppressionLifetimes) {
		line := lines.lifetimes[lt.Cause]
		if problem := causeProblem(lt.Cause); problem != "" {
			bad(line, "suppressionLifetimes: cause %q %s", lt.Cause, problem)
			continue
		}
		if lt.Lifetime < 0 || (lt.Lifetime > 0 && lt.Lifetime < minPolicyDuration) || lt.Lifetime > maxLifetime {
			bad(line, "suppressionLifetimes: lifetime %s of %s is outside 1m to %s; 0 means for ever", lt.Lifetime, lt.Cause, maxLifetime)
			continue
		}
		e.lifetimes[lt.Cause] = lt.Lifetime
	}
}

// causeProblem says what is wrong with a lifetime's cause; "" when nothing.
func causeProblem(c string) string {
	switch {
	case c == CauseSoftBounceLimit || c == CauseImport:
		return ""
	case c == "":
		return "is empty"
	case len(c) > maxCauseLen:
		return fmt.Sprintf("is longer than %d bytes", maxCauseLen)
	case strings.IndexFunc(c, unicode.IsControl) >= 0:
		return "holds a control character"
	case !eventPattern.MatchString(c):
		return fmt.Sprintf("is neither an event name (such as newsletter.hardbounce) nor %q or %q", CauseSoftBounceLimit, CauseImport)
	}
	return ""
}
