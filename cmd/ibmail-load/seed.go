package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ibmail/ibmail/store"
)

// The ways the segment phase seeds its event log (--seed).
//
// "store" goes through store.IngestReports, as the webhook does: faithful,
// but the engines' ingest is built for a stream of small bodies, and on
// SQLite it falls from ~20k to ~2k events/s past a million events (random
// inserts into profile_events_activity, one WAL commit per batch), so ten
// million events take hours.
//
// "sql" writes the same kind of rows with INSERT ... SELECT statements that
// generate them inside the engine, a million rows a transaction: 25-30k
// events/s on either engine on a busy 2-core machine, about 6 minutes for
// ten million. It is the way to the target of 10,000,000.
const (
	seedStore = "store"
	seedSQL   = "sql"
)

// sqlSeedChunk is the rows of one seeding transaction of --seed sql: big
// enough that per-statement costs vanish, small enough to log progress and
// to bound the WAL (SQLite) a transaction leaves behind.
const sqlSeedChunk = 1_000_000

// seed fills the event log with n events for profiles profiles at times in
// the year before now, the way cfg.seed says, and describes that way for
// the result table.
func seed(ctx context.Context, cfg config, h *harness, n, profiles int, now time.Time, logf func(string, ...any)) (seeded int, how string, err error) {
	if cfg.seed == seedSQL {
		return seedViaSQL(ctx, cfg, h, n, profiles, now, logf)
	}
	return seedViaStore(ctx, h, n, profiles, now, logf)
}

// scramble spreads a sequence over the key space (splitmix64's finalizer).
func scramble(n uint64) uint64 {
	n ^= n >> 33
	n *= 0xff51afd7ed558ccd
	n ^= n >> 33
	n *= 0xc4ceb9fe1a85ec53
	return n ^ n>>33
}

// seedReports makes reports [from, from+n) of the seeded event log: every
// one an event of one of 4 names, for one of profiles profiles, at a time
// spread over the year before now.
func seedReports(from, n, profiles int, now time.Time) []store.Report {
	rs := make([]store.Report, n)
	for k := range rs {
		i := uint64(from + k)
		h := scramble(i + 1)
		profile := fmt.Sprintf("prof-%08d", scramble(h)%uint64(profiles))
		at := now.Add(-time.Duration(h % uint64(year)))
		done := at.Format("2006-01-02T15:04:05.000-0700")
		msg := fmt.Sprintf("seed-%016x-%d", h, i)
		name := seedNames[h>>60%uint64(len(seedNames))]
		email := profile + "@example.com"
		rs[k] = store.Report{
			Key:          store.ReportKey{MessageID: msg, StatusID: 4, ErrorID: 6012, DoneAt: done},
			ConnectionID: "conn-load",
			ProfileID:    profile,
			Email:        email,
			Outcome:      store.OutcomeEvent,
			EventName:    name,
			Rule:         "seed",
			EventTime:    at,
			ReceiveTime:  at,
			Payload: []byte(`{"bulkId":"bulk-seed","messageId":"` + msg + `","to":"` + email + `","doneAt":"` + done +
				`","status":{"id":4,"groupId":2,"name":"UNDELIVERABLE_REJECTED_OPERATOR"},"error":{"id":6012,"name":"EC_HARD_BOUNCE","permanent":true}}`),
			Params: map[string]string{
				"messageId": msg, "bulkId": "bulk-seed", "errorId": "6012", "errorName": "EC_HARD_BOUNCE",
				"permanent": "true", "rule": "seed",
			},
		}
	}
	return rs
}

// seedViaStore seeds through the store in large batches (one goroutine
// builds the next batch while the store writes the last).
func seedViaStore(ctx context.Context, h *harness, n, profiles int, now time.Time, logf func(string, ...any)) (int, string, error) {
	batches := make(chan []store.Report, 2)
	genCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(batches)
		for from := 0; from < n; from += seedBatch {
			select {
			case batches <- seedReports(from, min(seedBatch, n-from), profiles, now):
			case <-genCtx.Done():
				return
			}
		}
	}()
	start := time.Now()
	lastLog := start
	seeded := 0
	for b := range batches {
		res, err := h.store.IngestReports(ctx, b, nil)
		if err != nil {
			return seeded, "", err
		}
		seeded += res.Events
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			logf("segment: seeded %d of %d events in %s", seeded, n, time.Since(start).Round(time.Second))
		}
	}
	if seeded == 0 {
		return 0, "", errors.New("no event stored (a store already seeded? use a fresh --db)")
	}
	return seeded, fmt.Sprintf("via IngestReports (--seed store, %d a batch)", seedBatch), nil
}
