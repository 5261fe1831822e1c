package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ibmail/ibmail/store"
)

// maxDomainSeries bounds the domains one scrape reports: sending domains
// are few (one per sender account's from domain), and a bound keeps a
// store full of platform events for odd domains from flooding Prometheus.
const maxDomainSeries = 500

// DomainCollector reads the sending domains at each scrape: their state
// and the bounce rate ibmail measures over Infobip's windows. Like the
// backlog, the figures are the store's, the same on every replica.
type DomainCollector struct {
	st  store.DomainStore
	now func() time.Time

	state, rate, reports *prometheus.Desc
}

// NewDomainCollector collects the sending domains of st.
func NewDomainCollector(st store.DomainStore) *DomainCollector {
	return &DomainCollector{
		st:  st,
		now: time.Now,
		state: prometheus.NewDesc("ibmail_sending_domain_state",
			"1 for the state each sending domain is in (active, warned, blocked, paused), 0 for the others.", []string{"domain", "state"}, nil),
		rate: prometheus.NewDesc("ibmail_sending_domain_bounce_rate",
			"Bounce rate in percent that ibmail measures per sending domain, over Infobip's windows (hourly, daily).", []string{"domain", "window"}, nil),
		reports: prometheus.NewDesc("ibmail_sending_domain_reports",
			"Reports the bounce rate of each window counts.", []string{"domain", "window"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *DomainCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.rate
	ch <- c.reports
}

var domainStateLabels = map[store.DomainState]string{
	store.DomainActive:  "active",
	store.DomainWarned:  "warned",
	store.DomainBlocked: "blocked",
	store.DomainPaused:  "paused",
}

// Collect implements prometheus.Collector; a failed read reports nothing
// (the backlog collector's ibmail_store_up says why).
func (c *DomainCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
	defer cancel()
	now := c.now()
	domains, err := c.st.ListSendingDomains(ctx, "", maxDomainSeries)
	if err != nil {
		return
	}
	hourly, err := c.st.DomainReportCounts(ctx, now.Add(-time.Hour))
	if err != nil {
		return
	}
	daily, err := c.st.DomainReportCounts(ctx, now.Add(-24*time.Hour))
	if err != nil {
		return
	}
	for _, d := range domains {
		current := d.Effective(now)
		for state, label := range domainStateLabels {
			v := 0.0
			if state == current {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, d.Domain, label)
		}
		for window, counts := range map[string]store.DomainCounts{"hourly": hourly[d.Domain], "daily": daily[d.Domain]} {
			ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, counts.BounceRate(), d.Domain, window)
			ch <- prometheus.MustNewConstMetric(c.reports, prometheus.GaugeValue, float64(counts.Reports), d.Domain, window)
		}
	}
}
