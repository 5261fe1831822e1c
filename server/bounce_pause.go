package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ibmail/ibmail/store"
)

// DefaultPauseMinReports is how many reports a window must count before
// its bounce rate may pause a domain: below it one bounce among a handful
// of messages would read as a rate of tens of percent.
const DefaultPauseMinReports = 100

// defaultPauseCheckEvery is how often the bounce rates are checked: a
// domain's rate moves with the reports of minutes, and each check reads
// only the per-domain counters.
const defaultPauseCheckEvery = 15 * time.Second

// BouncePauser pauses a sending domain itself when the bounce rate ibmail
// measures over either of Infobip's windows (the last hour, the last 24
// hours) reaches Percent, before Infobip blocks it at 5 %: a pause holds
// the domain's batches until an operator unblocks it, whereas a block
// fails every message for a day. Every replica may run one; they agree
// through the store, and a domain already held is left alone.
type BouncePauser struct {
	store      store.DomainStore
	percent    float64
	minReports int64
	every      time.Duration
	log        *slog.Logger
	now        func() time.Time
}

// NewBouncePauser returns a pauser at percent (0 < percent <= 100) that
// judges windows of at least minReports reports (0: DefaultPauseMinReports)
// every every (0: 15 seconds).
func NewBouncePauser(st store.DomainStore, percent float64, minReports int64, every time.Duration, log *slog.Logger) *BouncePauser {
	if minReports <= 0 {
		minReports = DefaultPauseMinReports
	}
	if every <= 0 {
		every = defaultPauseCheckEvery
	}
	return &BouncePauser{store: st, percent: percent, minReports: minReports, every: every, log: log, now: time.Now}
}

// Run checks until ctx ends.
func (p *BouncePauser) Run(ctx context.Context) {
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	for {
		if err := p.Check(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("checking the sending domains' bounce rates failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Check pauses every domain whose rate has reached the threshold and that
// is not held already, and says how many it paused.
func (p *BouncePauser) Check(ctx context.Context) error {
	now := p.now().UTC()
	windows := []struct {
		name, scope string
		length      time.Duration
	}{{"hour", "HOURLY", hourlyWindow}, {"24 hours", "DAILY", dailyWindow}}
	paused := map[string]bool{}
	for _, w := range windows {
		counts, err := p.store.DomainReportCounts(ctx, now.Add(-w.length))
		if err != nil {
			return err
		}
		for domain, c := range counts {
			rate := c.BounceRate()
			if paused[domain] || c.Reports < p.minReports || rate < p.percent {
				continue
			}
			d, err := p.store.GetSendingDomain(ctx, domain)
			if err == nil && d.Holds(now) {
				continue
			}
			if err == nil && unblockedSince(d, now.Add(-w.length)) {
				// An operator unblocked it within the window: the reports
				// that paused it would pause it again at once. It is
				// judged afresh, on the buckets after the unblock's.
				fresh, err := p.store.DomainReportCounts(ctx, store.DomainCountBucketOf(d.UpdateTime).Add(store.DomainCountBucket))
				if err != nil {
					return err
				}
				c = fresh[domain]
				if rate = c.BounceRate(); c.Reports < p.minReports || rate < p.percent {
					continue
				}
			}
			ev := store.DomainEvent{
				Domain: domain, Type: store.DomainEventPaused, Time: now, ReceiveTime: now, BounceRate: rate,
				Threshold: p.percent, Scope: w.scope,
				State: store.DomainPaused, EventName: eventDomainPaused,
				Reason: fmt.Sprintf("paused by ibmail: its own bounce rate of %s %% over the last %s (%d reports) reached --pause-bounce-rate %s %%",
					percent(round2(rate)), w.name, c.Reports, percent(p.percent)),
			}
			if _, err := p.store.IngestDomainEvents(ctx, []store.DomainEvent{ev}, nil); err != nil {
				return err
			}
			noteDomainEvent(ctx, p.log, ev)
			paused[domain] = true
		}
	}
	return nil
}

// unblockedSince tells whether d was made active by an event (an
// operator's unblock: a domain added with its first sender is active with
// no reason) after since.
func unblockedSince(d store.SendingDomain, since time.Time) bool {
	return d.State == store.DomainActive && d.Reason != "" && d.UpdateTime.After(since)
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
