package sandbox

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
)

// Stats are the sandbox's counters since it was built or last Reset, as
// GET /sandbox/stats serves them.
type Stats struct {
	// Requests counts every request to an Infobip endpoint, whatever the
	// answer.
	Requests int64 `json:"requests"`
	// SendRequests counts POST /email/3/send requests that passed the key,
	// rate and failure checks.
	SendRequests int64 `json:"sendRequests"`
	// Accepted counts sends accepted, lost answers included.
	Accepted int64 `json:"accepted"`
	// Recipients counts the recipients (to, cc, bcc) of accepted sends.
	Recipients int64 `json:"recipients"`
	// DuplicateRecipients counts distinct addresses (case-insensitively)
	// received more than once across accepted sends: each is an email a
	// person may get twice.
	DuplicateRecipients int64 `json:"duplicateRecipients"`
	// DuplicateSends counts receipts of an address beyond its first.
	DuplicateSends int64 `json:"duplicateSends"`
	// Rejected400 .. Rejected429 count answers by status; Failed5xx counts
	// injected failures (FailRate).
	Rejected400 int64 `json:"rejected400"`
	Rejected401 int64 `json:"rejected401"`
	Rejected403 int64 `json:"rejected403"`
	Rejected429 int64 `json:"rejected429"`
	Failed5xx   int64 `json:"failed5xx"`
	// Lost counts processed requests whose answer was withheld (LoseRate).
	Lost int64 `json:"lost"`
	// ReportsQueued counts reports queued for posting, duplicates included.
	ReportsQueued int64 `json:"reportsQueued"`
	// DuplicateReports counts the second copies queued (DuplicateRate).
	DuplicateReports int64 `json:"duplicateReports"`
	// ReportsPosted counts reports in POSTs answered 200.
	ReportsPosted int64 `json:"reportsPosted"`
	// ReportPosts counts POSTs answered 200.
	ReportPosts int64 `json:"reportPosts"`
	// ReportPostFailures counts POSTs that failed or were not answered 200.
	ReportPostFailures int64 `json:"reportPostFailures"`
	// ReportsAbandoned counts reports given up after the last retry.
	ReportsAbandoned int64 `json:"reportsAbandoned"`
	// ReportsDropped counts reports never queued because the sender gave up
	// while waiting for room (MaxPendingReports).
	ReportsDropped int64 `json:"reportsDropped"`
	// PendingReports is how many reports and events (tracking, platform)
	// are queued or being posted now.
	PendingReports int64 `json:"pendingReports"`

	// TrackingQueued counts tracking events queued for their trackingUrl,
	// second copies not included.
	TrackingQueued int64 `json:"trackingQueued"`
	// TrackingDuplicates counts the second copies queued (DuplicateRate).
	TrackingDuplicates int64 `json:"trackingDuplicates"`
	// TrackingPosted counts tracking POSTs answered 200, copies included.
	TrackingPosted int64 `json:"trackingPosted"`
	// TrackingPostFailures counts tracking POSTs that failed or were not
	// answered 200.
	TrackingPostFailures int64 `json:"trackingPostFailures"`
	// TrackingAbandoned counts tracking events given up after the last
	// retry.
	TrackingAbandoned int64 `json:"trackingAbandoned"`

	// PlatformEventsQueued .. PlatformEventsAbandoned count the platform
	// events as the Tracking counters count tracking events.
	PlatformEventsQueued      int64 `json:"platformEventsQueued"`
	PlatformEventDuplicates   int64 `json:"platformEventDuplicates"`
	PlatformEventsPosted      int64 `json:"platformEventsPosted"`
	PlatformEventPostFailures int64 `json:"platformEventPostFailures"`
	PlatformEventsAbandoned   int64 `json:"platformEventsAbandoned"`

	// DomainWarnings and DomainBlocks count the bounce-rate thresholds
	// crossed (a platform event each, posted or not).
	DomainWarnings int64 `json:"domainWarnings"`
	DomainBlocks   int64 `json:"domainBlocks"`
	// BlockedRecipients counts recipients reported 6016
	// EC_SENDER_DOMAIN_BOUNCE_BLOCKED because their domain was blocked.
	BlockedRecipients int64 `json:"blockedRecipients"`
	// PullReportCalls counts GET /email/1/reports, which consumes reports on
	// Infobip and should stay 0.
	PullReportCalls int64 `json:"pullReportCalls"`
}

// counters are the live form of Stats.
type counters struct {
	requests, sendRequests, accepted, recipients       atomic.Int64
	duplicateRecipients, duplicateSends                atomic.Int64
	rejected400, rejected401, rejected403, rejected429 atomic.Int64
	failed5xx, lost                                    atomic.Int64
	reportsQueued, duplicateReports, reportsPosted     atomic.Int64
	reportPosts, reportPostFailures, reportsAbandoned  atomic.Int64
	reportsDropped, pullReportCalls                    atomic.Int64
	domainWarnings, domainBlocks, blockedRecipients    atomic.Int64
	tracking, platform                                 eventCounters
}

// eventCounters count one kind of event POSTs.
type eventCounters struct {
	queuedN, duplicates, posted, postFailures, abandoned atomic.Int64
}

// queued counts a new event job's events as queued. It reads only
// j.events, which no worker changes, so it may run once j is queued.
func (c *eventCounters) queued(j *job) {
	for _, e := range j.events {
		if e.dup {
			c.duplicates.Add(1)
		} else {
			c.queuedN.Add(1)
		}
	}
}

func (c *counters) events(k jobKind) *eventCounters {
	if k == jobPlatform {
		return &c.platform
	}
	return &c.tracking
}

func (c *counters) reset() {
	for _, n := range []*atomic.Int64{
		&c.requests, &c.sendRequests, &c.accepted, &c.recipients, &c.duplicateRecipients, &c.duplicateSends,
		&c.rejected400, &c.rejected401, &c.rejected403, &c.rejected429, &c.failed5xx, &c.lost,
		&c.reportsQueued, &c.duplicateReports, &c.reportsPosted, &c.reportPosts, &c.reportPostFailures,
		&c.reportsAbandoned, &c.reportsDropped, &c.pullReportCalls,
		&c.domainWarnings, &c.domainBlocks, &c.blockedRecipients,
		&c.tracking.queuedN, &c.tracking.duplicates, &c.tracking.posted, &c.tracking.postFailures, &c.tracking.abandoned,
		&c.platform.queuedN, &c.platform.duplicates, &c.platform.posted, &c.platform.postFailures, &c.platform.abandoned,
	} {
		n.Store(0)
	}
}

// Stats returns a snapshot of the counters.
func (s *Sandbox) Stats() Stats {
	c := &s.stats
	return Stats{
		Requests: c.requests.Load(), SendRequests: c.sendRequests.Load(), Accepted: c.accepted.Load(),
		Recipients: c.recipients.Load(), DuplicateRecipients: c.duplicateRecipients.Load(), DuplicateSends: c.duplicateSends.Load(),
		Rejected400: c.rejected400.Load(), Rejected401: c.rejected401.Load(), Rejected403: c.rejected403.Load(),
		Rejected429: c.rejected429.Load(), Failed5xx: c.failed5xx.Load(), Lost: c.lost.Load(),
		ReportsQueued: c.reportsQueued.Load(), DuplicateReports: c.duplicateReports.Load(),
		ReportsPosted: c.reportsPosted.Load(), ReportPosts: c.reportPosts.Load(),
		ReportPostFailures: c.reportPostFailures.Load(), ReportsAbandoned: c.reportsAbandoned.Load(),
		ReportsDropped: c.reportsDropped.Load(), PendingReports: int64(s.reports.pendingReports()),
		PullReportCalls: c.pullReportCalls.Load(),
		TrackingQueued:  c.tracking.queuedN.Load(), TrackingDuplicates: c.tracking.duplicates.Load(),
		TrackingPosted: c.tracking.posted.Load(), TrackingPostFailures: c.tracking.postFailures.Load(),
		TrackingAbandoned:    c.tracking.abandoned.Load(),
		PlatformEventsQueued: c.platform.queuedN.Load(), PlatformEventDuplicates: c.platform.duplicates.Load(),
		PlatformEventsPosted: c.platform.posted.Load(), PlatformEventPostFailures: c.platform.postFailures.Load(),
		PlatformEventsAbandoned: c.platform.abandoned.Load(),
		DomainWarnings:          c.domainWarnings.Load(), DomainBlocks: c.domainBlocks.Load(), BlockedRecipients: c.blockedRecipients.Load(),
	}
}

func (s *Sandbox) handleStats(w http.ResponseWriter, _ *http.Request) {
	b, _ := json.Marshal(s.Stats())
	write(w, answer{status: http.StatusOK, body: b})
}

func (s *Sandbox) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	b, _ := json.Marshal(s.Stats())
	write(w, answer{status: http.StatusOK, body: b})
}
