package sandbox

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Infobip's bounce-rate protection, which the sandbox plays: a sending
// domain whose bounce rate reaches the warning threshold gets a
// HIGH_BOUNCE_RATE_WARNING platform event; one that reaches the block
// threshold gets HIGH_BOUNCE_RATE_BLOCKED and, for BlockDuration, every
// recipient of its sends fails with 6016 EC_SENDER_DOMAIN_BOUNCE_BLOCKED.

// The eventDetails types of the platform-events webhook.
const (
	HighBounceRateWarning = "HIGH_BOUNCE_RATE_WARNING"
	HighBounceRateBlocked = "HIGH_BOUNCE_RATE_BLOCKED"
)

// ScopeHourly is the only window the sandbox computes its bounce rate
// over; Infobip also reports DAILY.
const ScopeHourly = "HOURLY"

// AccountKey is the accountKey of the sandbox's platform events: one
// account, whatever the API key (which must never be echoed).
const AccountKey = "5A4D8C0E2B1F4A6C9E3D7B8A1C2E4F60"

// Infobip's thresholds, in percent, and the other defaults of Options.
const (
	DefaultBounceWarnPercent   = 3.0
	DefaultBounceBlockPercent  = 5.0
	DefaultBounceMinRecipients = 20
	DefaultBlockDuration       = 24 * time.Hour
)

// PlatformEvent is one body POSTed to Options.PlatformEventsURL:
// Infobip's platform-events Payload.
type PlatformEvent struct {
	// EventID is a fresh UUID per event; a duplicate POST repeats it.
	EventID string `json:"eventId"`
	// CreatedAt is when the threshold was crossed, in epoch milliseconds.
	CreatedAt    int64                `json:"createdAt"`
	EventDetails PlatformEventDetails `json:"eventDetails"`
}

// PlatformEventDetails is a HighDomainBounceWarnEvent or a
// HighDomainBounceBlockEvent, told apart by Type.
type PlatformEventDetails struct {
	// Type is HighBounceRateWarning or HighBounceRateBlocked.
	Type       string `json:"type"`
	AccountKey string `json:"accountKey"`
	// Domain is the sending (from) domain.
	Domain string `json:"domain"`
	// WarnThreshold is set on warnings, BlockThreshold on blocks, in percent.
	WarnThreshold  float64 `json:"warnThreshold,omitempty"`
	BlockThreshold float64 `json:"blockThreshold,omitempty"`
	// BounceRate is the rate that crossed the threshold, in percent.
	BounceRate float64 `json:"bounceRate"`
	// Scope is the window of the rate: ScopeHourly.
	Scope string `json:"scope"`
}

// DomainState is the sandbox's view of one sending domain, as
// GET /sandbox/domains lists it.
type DomainState struct {
	Domain string `json:"domain"`
	// WindowStart is the hour the counts are of; the counts restart with
	// every hour and after a block.
	WindowStart time.Time `json:"windowStart,omitzero"`
	// Recipients and Bounces are counted in the window; BounceRate is
	// 100 * Bounces / Recipients.
	Recipients int     `json:"recipients"`
	Bounces    int     `json:"bounces"`
	BounceRate float64 `json:"bounceRate"`
	// Warned says a warning was posted for the current crossing.
	Warned bool `json:"warned"`
	// Blocked says the domain's sends fail with 6016, until BlockedUntil,
	// or until unblocked when that is zero (listed as blocked in
	// Options.Domains).
	Blocked      bool      `json:"blocked"`
	BlockedUntil time.Time `json:"blockedUntil,omitzero"`
}

// crossing is a threshold crossed: what a platform event reports.
type crossing struct {
	kind      string
	rate      float64
	threshold float64
}

// domainState is the live form of DomainState.
type domainState struct {
	window          time.Time
	total, bounced  int
	warned, blocked bool
	forever         bool // blocked by Options.Domains: until UnblockDomain
	blockedUntil    time.Time
}

// protection counts each sending domain's recipients and bounces and
// decides warnings and blocks. Its lock may be taken with rngMu held.
type protection struct {
	warn, block float64 // percent; negative means never
	min         int
	blockFor    time.Duration
	listed      []Domain

	mu     sync.Mutex
	byName map[string]*domainState
}

func newProtection(o Options) *protection {
	p := &protection{warn: o.BounceWarnPercent, block: o.BounceBlockPercent, min: o.BounceMinRecipients,
		blockFor: o.BlockDuration, listed: o.Domains}
	p.reset()
	return p
}

// reset forgets every count and block but those of Options.Domains.
func (p *protection) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byName = make(map[string]*domainState)
	for _, d := range p.listed {
		if d.Blocked {
			p.byName[strings.ToLower(d.Name)] = &domainState{blocked: true, forever: true}
		}
	}
}

func (p *protection) get(domain string) *domainState {
	d := p.byName[domain]
	if d == nil {
		d = &domainState{}
		p.byName[domain] = d
	}
	return d
}

// isBlocked says whether domain's sends fail now, ending an expired block.
func (p *protection) isBlocked(domain string, now time.Time) bool {
	if domain == "" {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.byName[strings.ToLower(domain)]
	return d != nil && d.blockedAt(now)
}

// blockedAt is isBlocked with mu held.
func (d *domainState) blockedAt(now time.Time) bool {
	if d.blocked && !d.forever && !now.Before(d.blockedUntil) {
		d.blocked, d.blockedUntil = false, time.Time{}
	}
	return d.blocked
}

// record counts a send's recipients and bounces for its domain and returns
// the thresholds they made the domain cross: a warning once per crossing
// (again only after the rate fell below it, or in a new hour), and on a
// block a warning first if none was posted. A block starts the counts
// afresh, so that the domain starts clean once it lifts.
func (p *protection) record(domain string, now time.Time, recipients, bounces int) []crossing {
	if domain == "" || recipients == 0 || (p.warn < 0 && p.block < 0) {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.get(domain)
	if d.blockedAt(now) {
		return nil // sent nothing: counts nothing
	}
	if hour := now.UTC().Truncate(time.Hour); !d.window.Equal(hour) {
		d.window, d.total, d.bounced, d.warned = hour, 0, 0, false
	}
	d.total += recipients
	d.bounced += bounces
	if d.total < p.min {
		return nil
	}
	rate := 100 * float64(d.bounced) / float64(d.total)
	var out []crossing
	warn := p.warn >= 0 && rate >= p.warn
	if warn && !d.warned {
		out = append(out, crossing{HighBounceRateWarning, rate, p.warn})
	}
	d.warned = warn
	if p.block >= 0 && rate >= p.block {
		out = append(out, crossing{HighBounceRateBlocked, rate, p.block})
		d.blocked, d.blockedUntil = true, now.Add(p.blockFor)
		d.total, d.bounced, d.warned = 0, 0, false
	}
	return out
}

// unblock lifts domain's block, whatever set it, and reports whether there
// was one; its counts start afresh.
func (p *protection) unblock(domain string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.byName[strings.ToLower(domain)]
	if d == nil {
		return false
	}
	was := d.blocked
	*d = domainState{}
	return was
}

func (p *protection) states(now time.Time) []DomainState {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]DomainState, 0, len(p.byName))
	for name, d := range p.byName {
		st := DomainState{Domain: name, WindowStart: d.window, Recipients: d.total, Bounces: d.bounced,
			Warned: d.warned, Blocked: d.blockedAt(now)}
		if st.Blocked && !d.forever {
			st.BlockedUntil = d.blockedUntil
		}
		if d.total > 0 {
			st.BounceRate = roundRate(100 * float64(d.bounced) / float64(d.total))
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b DomainState) int { return strings.Compare(a.Domain, b.Domain) })
	return out
}

// roundRate keeps two decimals, as a rate is shown.
func roundRate(r float64) float64 { return math.Round(r*100) / 100 }

// platformJob is the job posting crossings for domain in order (a warning
// before its block), each body possibly twice. Called with rngMu held, for
// the eventIds and duplicate draws.
func (s *Sandbox) platformJob(domain string, now time.Time, cs []crossing, dupRate float64) *job {
	j := &job{kind: jobPlatform, url: s.opts.PlatformEventsURL}
	for _, c := range cs {
		ev := PlatformEvent{EventID: newUUID(s.rng), CreatedAt: now.UnixMilli(), EventDetails: PlatformEventDetails{
			Type: c.kind, AccountKey: AccountKey, Domain: domain, BounceRate: roundRate(c.rate), Scope: ScopeHourly,
		}}
		if c.kind == HighBounceRateWarning {
			ev.EventDetails.WarnThreshold = c.threshold
		} else {
			ev.EventDetails.BlockThreshold = c.threshold
		}
		body := marshal(ev)
		j.events = append(j.events, eventPost{body: body})
		if dupRate > 0 && s.rng.Float64() < dupRate {
			j.events = append(j.events, eventPost{body: body, dup: true})
		}
	}
	return j
}

// UnblockDomain lifts a block of domain, whether its bounce rate or
// Options.Domains set it, and reports whether there was one. The domain's
// counts start afresh, so its next send is delivered as usual.
func (s *Sandbox) UnblockDomain(domain string) bool { return s.bounces.unblock(domain) }

// DomainStates lists every sending domain the sandbox has counted or
// blocked, by name.
func (s *Sandbox) DomainStates() []DomainState { return s.bounces.states(s.now()) }

func (s *Sandbox) handleDomainStates(w http.ResponseWriter, _ *http.Request) {
	b, _ := json.Marshal(s.DomainStates())
	write(w, answer{status: http.StatusOK, body: b})
}

// handleUnblock serves POST /sandbox/domains/{domain}/unblock.
func (s *Sandbox) handleUnblock(w http.ResponseWriter, r *http.Request) {
	domain := r.PathValue("domain")
	if !validDomainName(domain) {
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", "Bad request", map[string][]string{"domain": {"must be a domain name"}})
		return
	}
	b, _ := json.Marshal(struct {
		Domain    string `json:"domain"`
		Unblocked bool   `json:"unblocked"`
	}{strings.ToLower(domain), s.UnblockDomain(domain)})
	write(w, answer{status: http.StatusOK, body: b})
}

// validDomainName accepts what a sending domain can be: at most 253
// letters, digits, hyphens and dots.
func validDomainName(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
