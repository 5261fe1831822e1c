// Package sandbox is an in-process stand-in for Infobip's Email API, faithful
// to its wire format (the published OpenAPI description and the reference
// digest), so that ibmail can be tested, benchmarked and demonstrated
// without an Infobip account or any network.
//
// It serves POST /email/3/send, GET /email/1/domains, GET /email/1/logs and
// GET /email/1/reports (which only counts calls: ibmail must never read it),
// plus, for tests, GET /sandbox/stats, POST /sandbox/reset, GET
// /sandbox/domains (each sending domain's bounce counts and block) and POST
// /sandbox/domains/{domain}/unblock. After accepting a send it POSTs
// delivery reports to the send's notifyUrl in batches, from a queue drained
// by a few workers, retrying refused batches with backoff the way Infobip
// does.
//
// The outcome of each recipient is chosen by the start of its address's
// local part (see Outcomes), so a test can ask for a hard bounce by sending to
// hardbounce-1@example.com. Faults (latency, throttling, failures, lost
// answers, duplicate reports and events, random bounces) are set in Options.
//
// Tracking events go to the send's trackingUrl (or Options.TrackingURL), one
// JSON object per POST, each with a fresh UUID eventId: the prefixes
// complain, latebounce and unsubscribe are delivered (their report says so)
// and then get COMPLAINED, LATE_BOUNCE or UNSUBSCRIBED; other delivered
// recipients get OPENED and CLICKED when the send tracks opens and clicks
// (trackOpens, trackClicks, else track, else on, as the domains' tracking
// settings say). A recipient's events are queued only once its delivery
// report was answered 200 (or given up), so no event overtakes its report.
//
// The sandbox also plays Infobip's bounce-rate protection (bounce.go): per
// sending domain and hour, once it has reported BounceMinRecipients, a
// bounce rate at BounceWarnPercent posts a HIGH_BOUNCE_RATE_WARNING and at
// BounceBlockPercent a HIGH_BOUNCE_RATE_BLOCKED platform event to
// Options.PlatformEventsURL, and for BlockDuration every recipient of the
// domain's sends is accepted and then reported 6016
// EC_SENDER_DOMAIN_BOUNCE_BLOCKED.
package sandbox

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LoseMode is how a lost answer is lost.
type LoseMode string

const (
	// LoseClose drops the connection as soon as the request is processed.
	LoseClose LoseMode = "close"
	// LoseHold keeps the connection open without an answer until the client
	// gives up (or the sandbox closes), like a stalled gateway.
	LoseHold LoseMode = "hold"
)

// Domain is a sending domain listed by GET /email/1/domains.
type Domain struct {
	Name   string
	Active bool
	// Blocked makes the domain blocked from the start, as if for its
	// bounce rate but with no end: its sends are reported 6016 until
	// UnblockDomain. The listing shows blocks of either kind.
	Blocked bool
}

// Faults are what can go wrong, by choice. They can be changed while the
// sandbox runs (SetFaults), e.g. to lose one answer and then behave.
type Faults struct {
	// Latency delays every API answer.
	Latency time.Duration
	// Rate is the requests per second (over all API endpoints) past which
	// the sandbox answers 429; 0 means unlimited. Bursts of up to Rate
	// requests (at least 1) pass.
	Rate float64
	// RetryAfter, when set, is sent as Retry-After on 429s.
	RetryAfter time.Duration
	// E429Body answers 429 with the newer {"errorCode":"E429",...} body
	// instead of the older TOO_MANY_REQUESTS one.
	E429Body bool
	// FailRate is the share (0..1) of API requests answered 500, not
	// processed.
	FailRate float64
	// LoseRate is the share (0..1) of API requests processed (a send is
	// accepted and reported) whose answer never arrives.
	LoseRate float64
	// LoseMode says how an answer is lost; empty means LoseClose.
	LoseMode LoseMode
	// DuplicateRate is the share (0..1) of reports, tracking events and
	// platform events posted twice (an event's copy keeps its eventId).
	DuplicateRate float64
	// BounceRate is the share (0..1) of otherwise delivered recipients that
	// hard-bounce (6012 EC_HARD_BOUNCE).
	BounceRate float64
	// Counted injects faults by request count (faults.go), whatever the
	// machine's speed.
	Counted
}

// Options configure a Sandbox. The zero value is a fault-free sandbox that
// accepts any "App" key and posts reports without delay.
type Options struct {
	// APIKey is the key accepted in "Authorization: App <key>"; empty
	// accepts any key.
	APIKey string
	// LimitedKeys are keys without the email scopes: answered 403 FORBIDDEN.
	LimitedKeys []string
	// Domains are listed by GET /email/1/domains; nil means one active
	// domain, example.com.
	Domains []Domain

	// Faults are the injected faults; SetFaults changes them later.
	Faults

	// ReportDelay is how long after acceptance reports are posted.
	ReportDelay time.Duration
	// ReportBatchSize is the most reports per POST; 0 means 100.
	ReportBatchSize int
	// ReportWorkers is how many POSTs run at once; 0 means 4.
	ReportWorkers int
	// ReportRetries bounds the retries of a batch that was not answered
	// 200; 0 means 5, negative means none.
	ReportRetries int
	// ReportRetryBase scales the wait before retry n to base + base*n*n,
	// Infobip's 1min + 1min*n*n; 0 means one second.
	ReportRetryBase time.Duration
	// MaxPendingReports bounds queued and in-flight reports; a send that
	// would pass it waits. 0 means 1,000,000.
	MaxPendingReports int
	// NotifyURL receives the reports of sends that name no notifyUrl, like
	// an account-level subscription; empty means such sends get none.
	NotifyURL string
	// TrackingURL receives the tracking events of sends that name no
	// trackingUrl; empty means such sends get none.
	TrackingURL string
	// PlatformEventsURL receives the platform events (bounce-rate warnings
	// and blocks), like Infobip's account-level subscription; empty means
	// none are posted, though domains are still warned and blocked.
	PlatformEventsURL string
	// BounceWarnPercent and BounceBlockPercent are the bounce rates, in
	// percent of a sending domain's recipients in the current hour, at
	// which the domain is warned and blocked; 0 means Infobip's 3 and 5,
	// negative means never.
	BounceWarnPercent  float64
	BounceBlockPercent float64
	// BounceMinRecipients is how many recipients a domain needs in the
	// hour before its rate counts, so that 1 bounce in 2 is not 50 %; 0
	// means 20.
	BounceMinRecipients int
	// BlockDuration is how long a blocked domain's sends fail with 6016;
	// 0 means Infobip's 24 hours. UnblockDomain ends a block early.
	BlockDuration time.Duration
	// GenericGroupNames names error groups 1 and 2 HANDSET_ERRORS and
	// USER_ERRORS, as seen in real traffic, instead of the seed's DROPPED
	// and BOUNCED.
	GenericGroupNames bool

	// Seed makes ids and random choices repeatable for a given sequence of
	// requests; 0 means a random seed.
	Seed int64
	// HTTPClient posts the reports; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock for timestamps and the rate limit; nil is time.Now.
	Now func() time.Time
	// MaxLogs bounds the messages kept for GET /email/1/logs, oldest
	// dropped first; 0 means 200,000.
	MaxLogs int
	// Logger receives report delivery failures; nil discards them.
	Logger *slog.Logger
}

// Sandbox is an http.Handler that behaves like Infobip's Email API. It is
// safe for concurrent use.
type Sandbox struct {
	opts    Options
	mux     *http.ServeMux
	now     func() time.Time
	keys    map[string]bool // key -> limited
	faults  atomic.Pointer[faultState]
	hostile atomic.Pointer[Hostile] // see hostile.go
	store   *store
	reports *queue
	bounces *protection // see bounce.go
	stats   counters
	log     *slog.Logger

	rngMu sync.Mutex
	rng   *rand.Rand

	done      chan struct{}
	closeOnce sync.Once
}

// New builds a Sandbox and starts its report workers; Close stops them.
func New(opts Options) *Sandbox {
	opts = withDefaults(opts)
	seed := uint64(opts.Seed)
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Sandbox{
		opts:  opts,
		now:   opts.Now,
		keys:  make(map[string]bool),
		store: newStore(opts.MaxLogs),
		log:   opts.Logger,
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		done:  make(chan struct{}),
	}
	for _, k := range opts.LimitedKeys {
		s.keys[k] = true
	}
	s.SetFaults(opts.Faults)
	s.bounces = newProtection(opts)
	s.reports = newQueue(s, opts)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /email/3/send", s.api(s.handleSend))
	s.mux.HandleFunc("GET /email/1/domains", s.api(s.handleDomains))
	s.mux.HandleFunc("GET /email/1/logs", s.api(s.handleLogs))
	s.mux.HandleFunc("GET /email/1/reports", s.api(s.handlePullReports))
	s.mux.HandleFunc("GET /sandbox/stats", s.handleStats)
	s.mux.HandleFunc("POST /sandbox/reset", s.handleReset)
	s.mux.HandleFunc("GET /sandbox/domains", s.handleDomainStates)
	s.mux.HandleFunc("POST /sandbox/domains/{domain}/unblock", s.handleUnblock)
	return s
}

func withDefaults(o Options) Options {
	if o.Domains == nil {
		o.Domains = []Domain{{Name: "example.com", Active: true}}
	}
	if o.ReportBatchSize <= 0 {
		o.ReportBatchSize = 100
	}
	if o.ReportWorkers <= 0 {
		o.ReportWorkers = 4
	}
	switch {
	case o.ReportRetries == 0:
		o.ReportRetries = 5
	case o.ReportRetries < 0:
		o.ReportRetries = 0
	}
	if o.ReportRetryBase <= 0 {
		o.ReportRetryBase = time.Second
	}
	if o.MaxPendingReports <= 0 {
		o.MaxPendingReports = 1_000_000
	}
	if o.BounceWarnPercent == 0 {
		o.BounceWarnPercent = DefaultBounceWarnPercent
	}
	if o.BounceBlockPercent == 0 {
		o.BounceBlockPercent = DefaultBounceBlockPercent
	}
	if o.BounceMinRecipients <= 0 {
		o.BounceMinRecipients = DefaultBounceMinRecipients
	}
	if o.BlockDuration <= 0 {
		o.BlockDuration = DefaultBlockDuration
	}
	if o.MaxLogs <= 0 {
		o.MaxLogs = 200_000
	}
	if o.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 4 * o.ReportWorkers
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ServeHTTP serves Infobip's endpoints and the sandbox's own.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.serveHostile(w, r) {
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		if strings.HasPrefix(r.URL.Path, "/email/") {
			s.stats.requests.Add(1)
		}
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Requested URL not found: "+r.URL.Path, nil)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// faultState is the faults in force, with the rate limiter they imply.
type faultState struct {
	Faults
	limiter *bucket
	seq     *atomic.Int64 // API requests admitted by key since SetFaults or Reset, for Counted
}

// SetFaults replaces the faults in force; requests already being handled
// keep the ones they started with. A new Rate starts with a full bucket.
func (s *Sandbox) SetFaults(f Faults) {
	if f.LoseMode == "" {
		f.LoseMode = LoseClose
	}
	st := &faultState{Faults: f, seq: new(atomic.Int64)}
	if f.Rate > 0 {
		st.limiter = newBucket(f.Rate, s.now())
	}
	s.faults.Store(st)
}

// Reset forgets every message, pending report and event, counter, bounce
// count and block (but those of Options.Domains), so one sandbox can serve
// many tests. Reports already being posted finish uncounted.
func (s *Sandbox) Reset() {
	s.reports.reset()
	s.store.reset()
	s.bounces.reset()
	s.stats.reset()
	f := s.faults.Load()
	if l := f.limiter; l != nil {
		l.reset(s.now())
	}
	f.seq.Store(0)
}

// Close stops the report workers, dropping pending reports, and releases
// answers held by latency or LoseHold. It is safe to call more than once.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.reports.close()
	})
	return nil
}

// WaitIdle returns once no report or event is queued or being posted, or
// when ctx ends; tests use it instead of sleeping.
func (s *Sandbox) WaitIdle(ctx context.Context) error { return s.reports.waitIdle(ctx) }

// sleep waits d unless the request or the sandbox ends first.
func (s *Sandbox) sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.done:
	}
}
