package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ibmail/ibmail/store"
)

// nextID reads the id the next row of any table sharing the event ids gets
// (see nextIDSQL), for a transaction run beside the writer's queue. The
// single write connection serialises it with the writer's transactions,
// which read it afresh each time, so the two never hand out one id.
func nextID(ctx context.Context, q querier) (int64, error) {
	var next int64
	if err := q.QueryRowContext(ctx, nextIDSQL).Scan(&next); err != nil {
		return 0, fmt.Errorf("next id: %w", err)
	}
	return next, nil
}

// countKey names one row of domain_report_counts.
type countKey struct {
	bucket int64 // unix microseconds
	domain string
}

// domainCounts adds up, in Go, what one transaction's reports count towards
// their domains' bounce rates, so that each domain and bucket costs one
// upsert however many of its reports the transaction stores.
type domainCounts map[countKey]*store.DomainCounts

// add counts a newly stored report, if it counts at all.
func (c domainCounts) add(rp *store.Report) {
	if rp.Domain == "" || (rp.CountsAs != store.CountSent && rp.CountsAs != store.CountBounce) {
		return
	}
	k := countKey{micros(store.DomainCountBucketOf(rp.ReceiveTime)), rp.Domain}
	n := c[k]
	if n == nil {
		n = &store.DomainCounts{}
		c[k] = n
	}
	n.Reports++
	if rp.CountsAs == store.CountBounce {
		n.Bounces++
	}
}

// write adds the counts to the table with addCountsSQL, in key order.
func (c domainCounts) write(ctx context.Context, add *sql.Stmt) error {
	if len(c) == 0 {
		return nil
	}
	keys := make([]countKey, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b countKey) int {
		return cmp.Or(cmp.Compare(a.bucket, b.bucket), cmp.Compare(a.domain, b.domain))
	})
	for _, k := range keys {
		n := c[k]
		if _, err := add.ExecContext(ctx, k.bucket, k.domain, n.Reports, n.Bounces); err != nil {
			return fmt.Errorf("add report counts of %s: %w", k.domain, err)
		}
	}
	return nil
}

// DomainReportCounts sums the counts of the buckets from since's on: one
// range of the primary key.
func (s *Store) DomainReportCounts(ctx context.Context, since time.Time) (map[string]store.DomainCounts, error) {
	rows, err := s.readDB.QueryContext(ctx, domainReportCountsSQL, micros(store.DomainCountBucketOf(since)))
	if err != nil {
		return nil, readErr(ctx, "domain report counts", err)
	}
	defer rows.Close()
	out := map[string]store.DomainCounts{}
	for rows.Next() {
		var (
			domain string
			n      store.DomainCounts
		)
		if err := rows.Scan(&domain, &n.Reports, &n.Bounces); err != nil {
			return nil, readErr(ctx, "domain report counts", err)
		}
		out[domain] = n
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "domain report counts", err)
	}
	return out, nil
}

const (
	domainColumns = `domain, state, until_time, reason, reported_bounce_rate, reported_threshold, reported_scope, update_time`
	// addDomainSQL adds a domain, active, unless it is known already.
	addDomainSQL = `INSERT INTO sending_domains (` + domainColumns + `) VALUES (?, 1, NULL, '', 0, 0, '', ?)
		ON CONFLICT (domain) DO NOTHING`
	putDomainSQL = `INSERT INTO sending_domains (` + domainColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (domain) DO UPDATE SET state = excluded.state, until_time = excluded.until_time,
		reason = excluded.reason, reported_bounce_rate = excluded.reported_bounce_rate,
		reported_threshold = excluded.reported_threshold, reported_scope = excluded.reported_scope,
		update_time = excluded.update_time`
	domainEventColumns = `id, event_id, domain, type, time, receive_time, bounce_rate, threshold, scope, connection_id, payload`
	// The conflict target is the partial index of Infobip's event ids:
	// ibmail's own events ('') are not in it and always go in.
	selectDomainSQL      = `SELECT ` + domainColumns + ` FROM sending_domains WHERE domain = ?`
	insertDomainEventSQL = `INSERT INTO domain_events (` + domainEventColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (event_id) WHERE event_id <> '' DO NOTHING`
)

// The reads whose plans TestSendingQueryPlans checks.
const (
	domainReportCountsSQL = `SELECT domain, SUM(reports), SUM(bounces) FROM domain_report_counts
		WHERE bucket >= ? GROUP BY domain`
	domainEventsSQL = `SELECT ` + domainEventColumns + ` FROM domain_events WHERE domain = ? ORDER BY id DESC LIMIT ?`
)

func scanDomain(row interface{ Scan(...any) error }) (store.SendingDomain, error) {
	var (
		d       store.SendingDomain
		state   int64
		until   sql.NullInt64
		updated int64
	)
	if err := row.Scan(&d.Domain, &state, &until, &d.Reason, &d.ReportedBounceRate, &d.ReportedThreshold,
		&d.ReportedScope, &updated); err != nil {
		return store.SendingDomain{}, err
	}
	d.State, d.Until, d.UpdateTime = store.DomainState(state), fromNullMicros(until), fromMicros(updated)
	return d, nil
}

// IngestDomainEvents stores events and rejected payloads in one
// transaction beside the writer's queue: domain events are few, and each
// reads its domain's state before it writes it, which the writer's shared
// transactions are not made for.
func (s *Store) IngestDomainEvents(ctx context.Context, events []store.DomainEvent, rejected []store.RejectedPayload) (store.IngestResult, error) {
	if len(events) == 0 && len(rejected) == 0 {
		if err := ctx.Err(); err != nil {
			return store.IngestResult{}, err
		}
		if s.w.isClosed() {
			return store.IngestResult{}, errClosed
		}
		return store.IngestResult{Stored: []bool{}}, nil
	}
	params := make([]string, len(events))
	for i := range events {
		if events[i].EventName != "" {
			params[i] = encodeParams(store.DomainEventParams(events[i]))
		}
	}
	var res store.IngestResult
	err := s.writeTx(ctx, "ingest domain events", func(tx *sql.Tx) error {
		res = store.IngestResult{Stored: make([]bool, len(events))}
		next, err := nextID(ctx, tx)
		if err != nil {
			return err
		}
		// A body holds up to hundreds of events: each statement is
		// prepared once for the transaction, not once an event, and each
		// domain is read once and written once, after its events apply in
		// order.
		stmts, err := prepareAll(ctx, tx, insertDomainEventSQL, selectDomainSQL, insertEventSQL, insertOutboxSQL, putDomainSQL)
		if err != nil {
			return err
		}
		defer closeAll(stmts)
		insDomainEvent, selDomain, insEvent, insOutbox, putDomain := stmts[0], stmts[1], stmts[2], stmts[3], stmts[4]
		domains := map[string]store.SendingDomain{}
		var order []string // domains in the order of their first event
		for i := range events {
			ev := &events[i]
			out, err := insDomainEvent.ExecContext(ctx, next, ev.EventID, ev.Domain, ev.Type,
				micros(ev.Time), micros(ev.ReceiveTime), ev.BounceRate, ev.Threshold, ev.Scope, ev.ConnectionID, ev.Payload)
			if err != nil {
				return fmt.Errorf("insert domain event %d: %w", i, err)
			}
			if n, err := out.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				res.Duplicates++
				continue
			}
			id := next
			next++
			res.Accepted++
			res.Stored[i] = true
			d, known := domains[ev.Domain]
			if !known {
				d, err = scanDomain(selDomain.QueryRowContext(ctx, ev.Domain))
				if errors.Is(err, sql.ErrNoRows) {
					d, err = store.NewSendingDomain(ev.Domain, ev.ReceiveTime), nil
				}
				if err != nil {
					return fmt.Errorf("domain of event %d: %w", i, err)
				}
				order = append(order, ev.Domain)
			}
			domains[ev.Domain] = store.ApplyDomainEvent(d, *ev)
			if ev.EventName == "" {
				continue
			}
			// A domain's event has no profile, and takes the domain
			// event's id as a report's event takes the report's.
			if _, err := insEvent.ExecContext(ctx, id, ev.EventName, micros(store.DomainEventTime(*ev)), "", "", params[i]); err != nil {
				return fmt.Errorf("insert event of domain event %d: %w", i, err)
			}
			if _, err := insOutbox.ExecContext(ctx, id); err != nil {
				return fmt.Errorf("insert outbox entry of domain event %d: %w", i, err)
			}
			res.Events++
		}
		for _, name := range order {
			d := domains[name]
			if _, err := putDomain.ExecContext(ctx, d.Domain, int64(d.State), nullMicros(d.Until), d.Reason,
				d.ReportedBounceRate, d.ReportedThreshold, d.ReportedScope, micros(d.UpdateTime)); err != nil {
				return fmt.Errorf("domain %q: %w", name, err)
			}
		}
		for i := range rejected {
			p := &rejected[i]
			if _, err := tx.ExecContext(ctx, insertRejectedSQL, micros(p.ReceiveTime), p.ContentType, p.Reason, p.Body); err != nil {
				return fmt.Errorf("insert rejected payload %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return store.IngestResult{}, err
	}
	return res, nil
}

// prepareAll prepares queries on tx, in order; on an error it closes
// those it prepared.
func prepareAll(ctx context.Context, tx *sql.Tx, queries ...string) ([]*sql.Stmt, error) {
	stmts := make([]*sql.Stmt, 0, len(queries))
	for _, q := range queries {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			closeAll(stmts)
			return nil, fmt.Errorf("prepare: %w", err)
		}
		stmts = append(stmts, st)
	}
	return stmts, nil
}

func closeAll(stmts []*sql.Stmt) {
	for _, st := range stmts {
		st.Close()
	}
}

// GetSendingDomain returns one domain, or ErrNotFound.
func (s *Store) GetSendingDomain(ctx context.Context, domain string) (store.SendingDomain, error) {
	d, err := scanDomain(s.readDB.QueryRowContext(ctx, selectDomainSQL, domain))
	if errors.Is(err, sql.ErrNoRows) {
		return store.SendingDomain{}, fmt.Errorf("sqlite: sending domain %q: %w", domain, store.ErrNotFound)
	}
	if err != nil {
		return store.SendingDomain{}, readErr(ctx, "get sending domain", err)
	}
	return d, nil
}

// ListSendingDomains returns domains in order of name, after afterDomain.
func (s *Store) ListSendingDomains(ctx context.Context, afterDomain string, limit int) ([]store.SendingDomain, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT `+domainColumns+` FROM sending_domains
		WHERE domain > ? ORDER BY domain LIMIT ?`, afterDomain, limitOf(limit))
	if err != nil {
		return nil, readErr(ctx, "list sending domains", err)
	}
	defer rows.Close()
	var out []store.SendingDomain
	for rows.Next() {
		d, err := scanDomain(rows)
		if err != nil {
			return nil, readErr(ctx, "list sending domains", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "list sending domains", err)
	}
	return out, nil
}

// ListDomainEvents returns a domain's events, newest first, on
// domain_events_domain backwards.
func (s *Store) ListDomainEvents(ctx context.Context, domain string, limit int) ([]store.DomainEvent, error) {
	rows, err := s.readDB.QueryContext(ctx, domainEventsSQL, domain, limitOf(limit))
	if err != nil {
		return nil, readErr(ctx, "list domain events", err)
	}
	defer rows.Close()
	var out []store.DomainEvent
	for rows.Next() {
		var (
			ev            store.DomainEvent
			occurred, rcv int64
		)
		if err := rows.Scan(&ev.ID, &ev.EventID, &ev.Domain, &ev.Type, &occurred, &rcv, &ev.BounceRate, &ev.Threshold,
			&ev.Scope, &ev.ConnectionID, &ev.Payload); err != nil {
			return nil, readErr(ctx, "list domain events", err)
		}
		ev.Time, ev.ReceiveTime = fromMicros(occurred), fromMicros(rcv)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "list domain events", err)
	}
	return out, nil
}

// domainTime is when a domain first seen with a sender account became
// active: the account's create time, or now if it has none.
func domainTime(created time.Time) time.Time {
	if created.IsZero() {
		return time.Now()
	}
	return created
}

// PruneDomainReportCounts deletes the buckets that end before before: a
// range of the table's primary key, which leads with the bucket.
func (s *Store) PruneDomainReportCounts(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.writeTx(ctx, "prune report counts", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM domain_report_counts WHERE bucket < ?`,
			micros(store.DomainCountBucketOf(before).Add(-store.DomainCountBucket)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
