package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ibmail/ibmail/store"
)

// backlogTimeout bounds the store read of one scrape: a store that does not
// answer in time shows as ibmail_store_up 0 rather than a hanging scrape.
const backlogTimeout = 2 * time.Second

// BacklogCollector reads the store's backlog at each scrape. The figures
// come from the store that all replicas share, so every replica reports the
// same queue; alert on max(), not sum(), across replicas.
type BacklogCollector struct {
	read func(ctx context.Context, now time.Time) (store.Backlog, error)
	now  func() time.Time

	up, batches, due, lag, outbox, position, publishLag *prometheus.Desc
}

// NewBacklogCollector collects the backlog of st.
func NewBacklogCollector(st store.BacklogStore) *BacklogCollector {
	return &BacklogCollector{
		read: st.Backlog,
		now:  time.Now,
		up: prometheus.NewDesc("ibmail_store_up",
			"Whether the store answered this scrape's backlog read (1) or not (0).", nil, nil),
		batches: prometheus.NewDesc("ibmail_dispatch_queue_batches",
			"Unfinished send batches by state (pending, in_flight, ambiguous), across all replicas.", []string{"state"}, nil),
		due: prometheus.NewDesc("ibmail_dispatch_queue_due_batches",
			"Batches a dispatcher may claim now: due pending or ambiguous ones, and in-flight ones whose lease ran out.", nil, nil),
		lag: prometheus.NewDesc("ibmail_dispatch_queue_lag_seconds",
			"How long the longest-waiting due batch has been due; 0 when none is.", nil, nil),
		outbox: prometheus.NewDesc("ibmail_events_outbox_depth",
			"Events stored but not yet given a position in the event log by the sequencer.", nil, nil),
		position: prometheus.NewDesc("ibmail_events_log_position",
			"Position of the last event of the event log.", nil, nil),
		publishLag: prometheus.NewDesc("ibmail_events_publish_lag",
			"Events of the log a publisher has not published yet, by publisher.", []string{"publisher"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *BacklogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.batches, c.due, c.lag, c.outbox, c.position, c.publishLag} {
		ch <- d
	}
}

// batchStateLabels names the unfinished batch states in metrics.
var batchStateLabels = map[store.BatchState]string{
	store.BatchPending:   "pending",
	store.BatchInFlight:  "in_flight",
	store.BatchAmbiguous: "ambiguous",
}

// Collect implements prometheus.Collector. A failed read yields only
// ibmail_store_up 0: stale queue figures would look like a healthy queue.
func (c *BacklogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
	defer cancel()
	now := c.now()
	b, err := c.read(ctx, now)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for state, label := range batchStateLabels {
		ch <- prometheus.MustNewConstMetric(c.batches, prometheus.GaugeValue, float64(b.Batches[state]), label)
	}
	ch <- prometheus.MustNewConstMetric(c.due, prometheus.GaugeValue, float64(b.DueBatches))
	lag := 0.0
	if !b.OldestDue.IsZero() {
		lag = max(now.Sub(b.OldestDue).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, lag)
	ch <- prometheus.MustNewConstMetric(c.outbox, prometheus.GaugeValue, float64(b.OutboxEvents))
	ch <- prometheus.MustNewConstMetric(c.position, prometheus.GaugeValue, float64(b.LastPosition))
	for name, pos := range b.Published {
		ch <- prometheus.MustNewConstMetric(c.publishLag, prometheus.GaugeValue, float64(max(b.LastPosition-pos, 0)), name)
	}
}
