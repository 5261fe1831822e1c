// Package metrics holds ibmail's Prometheus metrics, on a registry of its
// own that GET /metrics serves, so that what an operator sees is exactly
// what this package defines plus the Go runtime's and the process's.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ibmail/ibmail/buildinfo"
)

// Registry is where every ibmail metric is registered.
var Registry = prometheus.NewRegistry()

var (
	// RPCs counts gRPC calls (REST calls included: the gateway calls the
	// services in process, through the same interceptors) by method and
	// code.
	RPCs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ibmail_rpc_requests_total", Help: "gRPC calls by full method and status code.",
	}, []string{"method", "code"})
	// RPCLatency times gRPC calls by method.
	RPCLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ibmail_rpc_duration_seconds", Help: "gRPC call latency by full method.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"method"})
	// HTTPRequests counts REST requests by route family and status.
	HTTPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ibmail_http_requests_total", Help: "REST requests by route (webhook, api, healthz, metrics) and HTTP status.",
	}, []string{"route", "status"})
	// HTTPLatency times REST requests by route family.
	HTTPLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ibmail_http_duration_seconds", Help: "REST request latency by route (webhook, api, healthz, metrics).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"route"})
	// ReportsIngested counts delivery reports stored for the first time, by
	// outcome (event, no_error, unclassified) and event name.
	ReportsIngested = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ibmail_reports_ingested_total", Help: "Delivery reports stored for the first time, by outcome and event name.",
	}, []string{"outcome", "event"})
	// ReportsDuplicate counts reports that had been stored before.
	ReportsDuplicate = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ibmail_reports_duplicate_total", Help: "Delivery reports dropped as duplicates of stored ones.",
	})
	// ReportsRejected counts reports refused as malformed.
	ReportsRejected = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ibmail_reports_rejected_total", Help: "Delivery reports refused as malformed (kept as rejected payloads).",
	})
	// InfobipRequests counts the dispatcher's Infobip send requests by
	// result: the HTTP status, or "lost" when no answer came.
	InfobipRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ibmail_infobip_send_requests_total", Help: "Infobip send requests by HTTP status (lost: no answer).",
	}, []string{"status"})
	// DispatchRetries counts batches rescheduled, by kind.
	DispatchRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ibmail_dispatch_retries_total", Help: "Batches rescheduled after a failed attempt, by kind (retryable, ambiguous).",
	}, []string{"kind"})
	// RecipientsDispatched counts recipients by the final state a batch
	// gave them.
	RecipientsDispatched = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ibmail_recipients_total", Help: "Send recipients by final state given by dispatch (accepted, rejected, failed).",
	}, []string{"state"})
	// SuppressionsApplied counts recipients skipped as suppressed.
	SuppressionsApplied = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ibmail_suppressions_applied_total", Help: "Send recipients skipped because their address is suppressed.",
	})
	// UnreadableRows counts stored rows skipped by a read or a stream
	// because they cannot be shown (a time outside what a protobuf
	// Timestamp holds, invalid UTF-8, params that do not decode, absurd
	// sizes), by what the row is: event, profile_match, report,
	// rejected_payload, send, recipient, suppression, connection, sender.
	// It counts every skip; the log names each row once.
	UnreadableRows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ibmail_unreadable_rows_total", Help: "Stored rows skipped by a read or a stream because they cannot be shown, by kind of row.",
	}, []string{"what"})
	// TrackingReportsIngested counts tracking reports stored for the first
	// time, by notification type (opened, clicked, complained,
	// late_bounce, unsubscribed, other) and outcome.
	TrackingReportsIngested = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ibmail_tracking_reports_ingested_total", Help: "Tracking reports stored for the first time, by notification type and outcome.",
	}, []string{"notification_type", "outcome"})
	// DomainEvents counts the sending-domain events this replica stored
	// for the first time, by type: Infobip's warnings and blocks, ibmail's
	// own pauses and unblocks.
	DomainEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ibmail_sending_domain_events_total", Help: "Sending-domain events stored (high_bounce_rate_warning, high_bounce_rate_blocked, paused, unblocked).",
	}, []string{"type"})
	// BatchesInHand is how many batches this replica's dispatcher holds.
	BatchesInHand = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ibmail_dispatch_batches_in_hand", Help: "Batches this replica's dispatcher is sending now.",
	})
)

// BuildInfo is always 1; its labels say which build runs, so that a
// dashboard can tell replicas of different builds apart during a rollout.
var BuildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "ibmail_build_info", Help: "The running build: always 1, labelled with version, revision (commit) and goversion.",
}, []string{"version", "revision", "goversion"})

func init() {
	bi := buildinfo.Read()
	BuildInfo.WithLabelValues(bi.Version, bi.Revision, bi.GoVersion).Set(1)
	Registry.MustRegister(
		BuildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		RPCs, RPCLatency, HTTPRequests, HTTPLatency,
		ReportsIngested, ReportsDuplicate, ReportsRejected,
		InfobipRequests, DispatchRetries, RecipientsDispatched, SuppressionsApplied, BatchesInHand,
		UnreadableRows, TrackingReportsIngested, DomainEvents,
	)
}

// Handler serves the registry in Prometheus' text format, together with
// collectors of one server's own, such as the backlog of its store: those
// cannot go in the process-wide Registry, since one process (a test, the
// load tool) may run several servers.
func Handler(own ...prometheus.Collector) http.Handler {
	local := prometheus.NewRegistry()
	local.MustRegister(own...)
	return promhttp.HandlerFor(prometheus.Gatherers{Registry, local}, promhttp.HandlerOpts{Registry: Registry})
}
