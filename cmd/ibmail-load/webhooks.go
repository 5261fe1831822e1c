package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
	"github.com/ibmail/ibmail/store"
)

// webhookKind is one of the server's webhooks as the ingest phase posts to
// it: its path, and bodies of n reports, each report unique in the store
// (by its webhook's dedup key) for a unique (run, seq).
type webhookKind struct {
	path string
	body func(run string, seq, n int) []byte
}

var webhookNames = []string{"delivery", "tracking", "platform"}

var webhookKinds = map[string]webhookKind{
	"delivery": {server.WebhookPath, sandbox.ExampleDeliveryReports},
	"tracking": {server.TrackingWebhookPath, sandbox.ExampleTrackingReports},
	"platform": {server.PlatformEventsWebhookPath, platformBody},
}

// platformDomains is how many sending domains the platform events of a run
// are spread over; their events are counted domain by domain.
const platformDomains = 8

// platformDomain is the i-th sending domain of a run's platform events:
// none a sender uses, so that no send is held by them.
func platformDomain(run string, i int) string {
	return fmt.Sprintf("d%d-%s.load.example", i, strings.ToLower(run))
}

// platformBody is a platform-events webhook body of n events (warnings and
// blocks in turn) with eventIds unique for (run, seq, i), all of one
// domain, as Infobip posts a domain's crossings together, and of a few
// domains in a run, so that the count check reads each domain's events.
func platformBody(run string, seq, n int) []byte {
	evs := make([]sandbox.PlatformEvent, n)
	for i := range evs {
		d := sandbox.PlatformEventDetails{
			Type: sandbox.HighBounceRateWarning, AccountKey: sandbox.AccountKey, Domain: platformDomain(run, seq%platformDomains),
			BounceRate: 3.5, Scope: sandbox.ScopeHourly, WarnThreshold: 3,
		}
		if (seq+i)%2 == 1 {
			d.Type, d.WarnThreshold, d.BlockThreshold, d.BounceRate = sandbox.HighBounceRateBlocked, 0, 5, 5.5
		}
		evs[i] = sandbox.PlatformEvent{EventID: fmt.Sprintf("%s-p-%d-%d", run, seq, i), CreatedAt: 1714557597628 + int64(seq), EventDetails: d}
	}
	return marshalBody(evs)
}

func marshalBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of strings and numbers
	}
	return b
}

// storeCounts are what the store holds of the load tool's webhooks.
type storeCounts struct {
	delivery, tracking, domain int64
}

// countReports counts the store's reports of kind with ids past afterID,
// newest first, page by page, so that the cost is that of the new rows.
func countReports(ctx context.Context, st store.Store, kind store.ReportKind, afterID int64) (n, top int64, err error) {
	top = afterID
	q := store.ReportQuery{Kind: kind, Limit: 1000}
	for {
		rs, err := st.ListReports(ctx, q)
		if err != nil {
			return n, top, err
		}
		for _, r := range rs {
			if r.ID <= afterID {
				return n, top, nil
			}
			top = max(top, r.ID)
			n++
		}
		if len(rs) < q.Limit {
			return n, top, nil
		}
		q.BeforeID = rs[len(rs)-1].ID
	}
}

// storeMark is where the store stood before a load run: the newest report
// of each kind.
type storeMark struct{ delivery, tracking int64 }

func markStore(ctx context.Context, st store.Store) (storeMark, error) {
	var m storeMark
	for _, k := range []struct {
		kind store.ReportKind
		top  *int64
	}{{store.ReportDelivery, &m.delivery}, {store.ReportTracking, &m.tracking}} {
		rs, err := st.ListReports(ctx, store.ReportQuery{Kind: k.kind, Limit: 1})
		if err != nil {
			return m, err
		}
		if len(rs) == 1 {
			*k.top = rs[0].ID
		}
	}
	return m, nil
}

// countSince counts what the store took since m: reports of both kinds,
// and the domain events of run's platform domains.
func countSince(ctx context.Context, st store.Store, m storeMark, run string) (storeCounts, error) {
	var c storeCounts
	var err error
	if c.delivery, _, err = countReports(ctx, st, store.ReportDelivery, m.delivery); err != nil {
		return c, err
	}
	if c.tracking, _, err = countReports(ctx, st, store.ReportTracking, m.tracking); err != nil {
		return c, err
	}
	for i := range platformDomains {
		evs, err := st.ListDomainEvents(ctx, platformDomain(run, i), 1<<30)
		if err != nil {
			return c, err
		}
		c.domain += int64(len(evs))
	}
	return c, nil
}

// checkCounts fails unless the store took exactly what was acknowledged.
func checkCounts(what string, got, want storeCounts) error {
	if got == want {
		return nil
	}
	return fmt.Errorf("%s: the store holds %d delivery reports, %d tracking reports and %d domain events, "+
		"but %d, %d and %d were acknowledged with 200: acknowledged reports were lost (or stored twice)",
		what, got.delivery, got.tracking, got.domain, want.delivery, want.tracking, want.domain)
}

// ingestPhase posts bodies of each size to each webhook from cfg.concurrency
// clients, then the same bodies to the empty handler on the same listener,
// and after each webhook run checks that the store holds exactly the
// reports acknowledged. Bodies are built ahead of the timed loop and
// reused for the empty handler.
func ingestPhase(ctx context.Context, cfg config, h *harness, t *table, logf func(string, ...any)) error {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.concurrency}}
	defer client.CloseIdleConnections()
	run := strconv.FormatInt(time.Now().UnixNano(), 36) // unique reports in a store that outlives the run
	if err := resetPeakRSS(h.pid); err != nil {
		logf("ingest: cannot reset the peak RSS (%v); the figure is the process's peak since it started", err)
	}
	var peak int64
	for _, name := range cfg.webhooks {
		kind := webhookKinds[name]
		for _, n := range cfg.bodies {
			logf("ingest: %s webhook, %d clients posting %d-report bodies for %s, then the empty handler", name, cfg.concurrency, n, cfg.duration)
			prefix := fmt.Sprintf("%s-%s-%d", run, name[:1], n)
			mark, err := markStore(ctx, h.store)
			if err != nil {
				return err
			}
			target := h.restURL + kind.path + "?token=" + webhookSecret
			var seq atomic.Int64
			bodies, lat, el, err := postLoop(ctx, cfg, client, target, func() []byte { return kind.body(prefix, int(seq.Add(1)), n) })
			if err != nil {
				return fmt.Errorf("%s webhook: %w", name, err)
			}
			if p, err := peakRSS(h.pid); err == nil {
				peak = max(peak, p)
			}
			acked := storeCounts{}
			switch name {
			case "delivery":
				acked.delivery = bodies * int64(n)
			case "tracking":
				acked.tracking = bodies * int64(n)
			case "platform":
				acked.domain = bodies * int64(n)
			}
			what := fmt.Sprintf("%s webhook, %d-report bodies", name, n)
			if cfg.afterLoad != nil {
				if err := cfg.afterLoad(ctx, h, what); err != nil {
					return err
				}
			}
			got, err := countSince(ctx, h.store, mark, prefix)
			if err != nil {
				return fmt.Errorf("counting what the store holds: %w", err)
			}
			if err := checkCounts(what, got, acked); err != nil {
				return err
			}
			// The empty handler with bodies of the same size (the first
			// body of the run, again and again).
			same := kind.body(prefix+"-empty", 0, n)
			emptyBodies, emptyLat, emptyEl, err := postLoop(ctx, cfg, client, h.restURL+emptyPath, func() []byte { return same })
			if err != nil {
				return fmt.Errorf("empty handler: %w", err)
			}
			rate := float64(bodies) / el.Seconds()
			emptyRate := float64(emptyBodies) / emptyEl.Seconds()
			label := fmt.Sprintf("%s %d-report bodies", name, n)
			if n == 1 {
				t.add("ingest", fmt.Sprintf("%s webhook 1-report bodies, %d clients", name, cfg.concurrency), rate, "bodies/s")
			} else {
				t.add("ingest", fmt.Sprintf("%s webhook %d-report bodies, %d clients", name, n, cfg.concurrency), rate*float64(n), "reports/s")
			}
			t.add("ingest", label+": p50 per body", ms(percentile(lat, 50)), "ms")
			t.add("ingest", label+": p99 per body", ms(percentile(lat, 99)), "ms")
			t.add("ingest", fmt.Sprintf("empty handler, same listener and %d-report %s bodies", n, name), emptyRate, "bodies/s")
			t.add("ingest", "empty handler: p99 per body", ms(percentile(emptyLat, 99)), "ms")
			t.add("ingest", fmt.Sprintf("ratio %s/empty, bodies/s", label), rate/emptyRate, "")
			t.add("ingest", fmt.Sprintf("stored = acknowledged, %s (checked)", label), float64(bodies*int64(n)), "reports")
		}
	}
	if peak > 0 {
		t.add("ingest", fmt.Sprintf("server peak RSS, %d clients (%s)", cfg.concurrency, h.memory), float64(peak)/(1<<20), "MiB")
	}
	return nil
}

// postLoop posts body() to target from cfg.concurrency clients for
// cfg.duration and gives the bodies answered 200, their latencies sorted
// and the time taken; any other answer ends it with an error. Bodies are
// built outside the latency timing (on the same cores).
func postLoop(ctx context.Context, cfg config, client *http.Client, target string, body func() []byte) (int64, []time.Duration, time.Duration, error) {
	lat := make([][]time.Duration, cfg.concurrency)
	n, el, err := closedLoop(ctx, cfg.concurrency, cfg.duration, func(ctx context.Context, c, _ int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, msg)
		}
		lat[c] = append(lat[c], time.Since(t0))
		return nil
	})
	if err != nil {
		return 0, nil, 0, err
	}
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return 0, nil, 0, errors.New("no body completed")
	}
	slices.Sort(all)
	return n, all, el, nil
}
