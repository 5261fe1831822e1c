package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
)

// DomainReportCounts sums the counts of the buckets from since's on, every
// shard of them: one range of the primary key.
func (s *Store) DomainReportCounts(ctx context.Context, since time.Time) (map[string]store.DomainCounts, error) {
	var out map[string]store.DomainCounts
	err := s.run(ctx, "domain report counts", func() error {
		out = map[string]store.DomainCounts{}
		rows, err := s.pool.Query(ctx, `SELECT domain, sum(reports)::bigint, sum(bounces)::bigint FROM domain_report_counts
			WHERE bucket >= $1 GROUP BY domain`, store.DomainCountBucketOf(since))
		if err != nil {
			return err
		}
		var (
			domain string
			n      store.DomainCounts
		)
		_, err = pgx.ForEachRow(rows, []any{&domain, &n.Reports, &n.Bounces}, func() error {
			out[domain] = n
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

const (
	domainColumns = `domain, state, until_time, reason, reported_bounce_rate, reported_threshold, reported_scope, update_time`
	// addDomainSQL adds a domain, active, unless it is known already.
	addDomainSQL = `INSERT INTO sending_domains (` + domainColumns + `) VALUES ($1, 1, NULL, '', 0, 0, '', $2)
		ON CONFLICT (domain) DO NOTHING`
	domainEventColumns = `id, event_id, domain, type, time, receive_time, bounce_rate, threshold, scope, connection_id, payload`
	// The conflict target is the partial index of Infobip's event ids:
	// ibmail's own events ('') are not in it and always go in. A retry
	// that another transaction is storing waits for it, then skips.
	insertDomainEventSQL = `INSERT INTO domain_events (event_id, domain, type, time, receive_time, bounce_rate,
		threshold, scope, connection_id, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (event_id) WHERE event_id <> '' DO NOTHING
		RETURNING id`
)

func scanDomain(row pgx.Row) (store.SendingDomain, error) {
	var (
		d     store.SendingDomain
		state int16
		until *time.Time
	)
	if err := row.Scan(&d.Domain, &state, &until, &d.Reason, &d.ReportedBounceRate, &d.ReportedThreshold,
		&d.ReportedScope, &d.UpdateTime); err != nil {
		return store.SendingDomain{}, err
	}
	d.State, d.Until, d.UpdateTime = store.DomainState(state), fromNullTime(until), utc(d.UpdateTime)
	return d, nil
}

// IngestDomainEvents stores events and rejected payloads in one
// transaction, in three round trips whatever the body's size: the events'
// inserts, pipelined; then their domains, added when new and locked (FOR
// UPDATE, in order of name, so that two transactions never wait on each
// other's locks); then each domain's state as its events in order leave
// it, with the events' profile events. The locks last to the commit, so
// that two replicas applying events to one domain apply them one after
// the other, each to the state the other left.
func (s *Store) IngestDomainEvents(ctx context.Context, events []store.DomainEvent, rejected []store.RejectedPayload) (store.IngestResult, error) {
	if len(events) == 0 && len(rejected) == 0 {
		if s.closed.Load() {
			return store.IngestResult{}, errClosed
		}
		if err := ctx.Err(); err != nil {
			return store.IngestResult{}, err
		}
		return store.IngestResult{Stored: []bool{}}, nil
	}
	params := make([][]byte, len(events))
	for i := range events {
		if events[i].EventName != "" {
			params[i] = encodeParams(store.DomainEventParams(events[i]))
		}
	}
	var res store.IngestResult
	err := s.inTx(ctx, "ingest domain events", func(tx pgx.Tx) error {
		res = store.IngestResult{Stored: make([]bool, len(events))}
		ids := make([]int64, len(events))
		inserts := &pgx.Batch{}
		for i := range events {
			ev := &events[i]
			inserts.Queue(insertDomainEventSQL, ev.EventID, ev.Domain, ev.Type, ev.Time, ev.ReceiveTime,
				ev.BounceRate, ev.Threshold, ev.Scope, ev.ConnectionID, ev.Payload)
		}
		results := tx.SendBatch(ctx, inserts)
		for i := range events {
			err := results.QueryRow().Scan(&ids[i])
			if errors.Is(err, pgx.ErrNoRows) {
				res.Duplicates++
				continue
			}
			if err != nil {
				results.Close()
				return fmt.Errorf("insert domain event %d: %w", i, err)
			}
			res.Accepted++
			res.Stored[i] = true
		}
		if err := results.Close(); err != nil {
			return fmt.Errorf("insert domain events: %w", err)
		}
		if res.Accepted == 0 && len(rejected) == 0 {
			return nil
		}
		var names []string
		firstSeen := map[string]time.Time{}
		for i := range events {
			if _, ok := firstSeen[events[i].Domain]; res.Stored[i] && !ok {
				firstSeen[events[i].Domain] = events[i].ReceiveTime
				names = append(names, events[i].Domain)
			}
		}
		slices.Sort(names)
		domains := make(map[string]store.SendingDomain, len(names))
		if len(names) > 0 {
			lock := &pgx.Batch{}
			for _, name := range names {
				lock.Queue(addDomainSQL, name, firstSeen[name])
			}
			lock.Queue(`SELECT `+domainColumns+` FROM sending_domains WHERE domain = ANY($1) ORDER BY domain FOR UPDATE`, names)
			results := tx.SendBatch(ctx, lock)
			for _, name := range names {
				if _, err := results.Exec(); err != nil {
					results.Close()
					return fmt.Errorf("domain %q: %w", name, err)
				}
			}
			rows, err := results.Query()
			if err == nil {
				for rows.Next() {
					d, err := scanDomain(rows)
					if err != nil {
						rows.Close()
						results.Close()
						return fmt.Errorf("read domains: %w", err)
					}
					domains[d.Domain] = d
				}
				rows.Close()
				err = rows.Err()
			}
			if err != nil {
				results.Close()
				return fmt.Errorf("read domains: %w", err)
			}
			if err := results.Close(); err != nil {
				return fmt.Errorf("lock domains: %w", err)
			}
		}
		writes := &pgx.Batch{}
		for i := range events {
			ev := &events[i]
			if !res.Stored[i] {
				continue
			}
			domains[ev.Domain] = store.ApplyDomainEvent(domains[ev.Domain], *ev)
			if ev.EventName == "" {
				continue
			}
			// A domain's event has no profile, and takes the domain
			// event's id as a report's event takes the report's.
			writes.Queue(`WITH e AS (
					INSERT INTO profile_events (id, name, time, profile_id, email, params) VALUES ($1, $2, $3, '', '', $4)
				) INSERT INTO event_outbox (event_id) VALUES ($1)`,
				ids[i], ev.EventName, store.DomainEventTime(*ev), params[i])
			res.Events++
		}
		for _, name := range names {
			d := domains[name]
			writes.Queue(`UPDATE sending_domains SET state = $2, until_time = $3, reason = $4,
				reported_bounce_rate = $5, reported_threshold = $6, reported_scope = $7, update_time = $8 WHERE domain = $1`,
				d.Domain, int16(d.State), nullTime(d.Until), d.Reason, d.ReportedBounceRate, d.ReportedThreshold,
				d.ReportedScope, d.UpdateTime)
		}
		for i := range rejected {
			p := &rejected[i]
			writes.Queue(`INSERT INTO rejected_payloads (receive_time, content_type, reason, body)
				VALUES ($1, $2, $3, $4)`, p.ReceiveTime, p.ContentType, p.Reason, p.Body)
		}
		if err := tx.SendBatch(ctx, writes).Close(); err != nil {
			return fmt.Errorf("write domains and events: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.IngestResult{}, err
	}
	return res, nil
}

// GetSendingDomain returns one domain, or ErrNotFound.
func (s *Store) GetSendingDomain(ctx context.Context, domain string) (store.SendingDomain, error) {
	var d store.SendingDomain
	err := s.run(ctx, "get sending domain", func() error {
		var err error
		d, err = scanDomain(s.pool.QueryRow(ctx, `SELECT `+domainColumns+` FROM sending_domains WHERE domain = $1`, domain))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("sending domain %q: %w", domain, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return store.SendingDomain{}, err
	}
	return d, nil
}

// ListSendingDomains returns domains in order of name, after afterDomain.
func (s *Store) ListSendingDomains(ctx context.Context, afterDomain string, limit int) ([]store.SendingDomain, error) {
	var out []store.SendingDomain
	err := s.run(ctx, "list sending domains", func() error {
		rows, err := s.pool.Query(ctx, `SELECT `+domainColumns+` FROM sending_domains
			WHERE domain > $1 ORDER BY domain LIMIT $2`, afterDomain, limitOf(limit))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.SendingDomain, error) { return scanDomain(row) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListDomainEvents returns a domain's events, newest first, on
// domain_events_domain backwards.
func (s *Store) ListDomainEvents(ctx context.Context, domain string, limit int) ([]store.DomainEvent, error) {
	var out []store.DomainEvent
	err := s.run(ctx, "list domain events", func() error {
		rows, err := s.pool.Query(ctx, `SELECT `+domainEventColumns+` FROM domain_events
			WHERE domain = $1 ORDER BY id DESC LIMIT $2`, domain, limitOf(limit))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.DomainEvent, error) {
			var ev store.DomainEvent
			err := row.Scan(&ev.ID, &ev.EventID, &ev.Domain, &ev.Type, &ev.Time, &ev.ReceiveTime, &ev.BounceRate,
				&ev.Threshold, &ev.Scope, &ev.ConnectionID, &ev.Payload)
			ev.Time, ev.ReceiveTime = utc(ev.Time), utc(ev.ReceiveTime)
			return ev, err
		})
		return err
	})
	if err != nil {
		return nil, err
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
	tag, err := s.pool.Exec(ctx, `DELETE FROM domain_report_counts WHERE bucket < $1`,
		store.DomainCountBucketOf(before).Add(-store.DomainCountBucket))
	if err != nil {
		return 0, wrapErr(ctx, "prune report counts", err)
	}
	return tag.RowsAffected(), nil
}
