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
	// addDomainsSQL adds the domains $1, first seen at $2, active, unless
	// they are known already, in order of name (the order every writer
	// locks domains in).
	addDomainsSQL = `INSERT INTO sending_domains (` + domainColumns + `)
		SELECT d, 1, NULL, '', 0, 0, '', t FROM unnest($1::text[], $2::timestamptz[]) AS u(d, t) ORDER BY d
		ON CONFLICT (domain) DO NOTHING`
	// putDomainsSQL writes the states of the domains $1, which the
	// transaction holds locked.
	putDomainsSQL = `UPDATE sending_domains s SET state = u.state, until_time = u.until_time, reason = u.reason,
		reported_bounce_rate = u.rate, reported_threshold = u.threshold, reported_scope = u.scope, update_time = u.update_time
		FROM unnest($1::text[], $2::int2[], $3::timestamptz[], $4::text[], $5::float8[], $6::float8[], $7::text[], $8::timestamptz[])
			AS u(domain, state, until_time, reason, rate, threshold, scope, update_time)
		WHERE s.domain = u.domain`
	domainEventColumns = `id, event_id, domain, type, time, receive_time, bounce_rate, threshold, scope, connection_id, payload`
)

// insertDomainEventsSQL stores a body's domain events in one statement
// and says, of each in body order (ord), the id it drew and whether it was
// stored now: the ids are drawn in body order, as listings expect, once
// each (the CTE, read twice, is computed once), and the rows go in in the
// order of Infobip's event ids, so that two bodies sharing events take
// their index entries' locks in one order. The conflict target is the
// partial index of Infobip's event ids: ibmail's own events (”) are not
// in it and always go in; one that another transaction is storing makes
// this one wait for it, then skip it; one repeated in the body is stored
// once, the first time.
const insertDomainEventsSQL = `
WITH numbered AS (
	SELECT nextval('delivery_reports_id_seq') AS id, u.*
	FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::float8[],
		$7::float8[], $8::text[], $9::text[], $10::bytea[])
		WITH ORDINALITY AS u(event_id, domain, type, time, receive_time, bounce_rate, threshold, scope, connection_id, payload, ord)
	ORDER BY ord
),
ins AS (
	INSERT INTO domain_events (id, event_id, domain, type, time, receive_time, bounce_rate, threshold, scope, connection_id, payload)
	SELECT id, event_id, domain, type, time, receive_time, bounce_rate, threshold, scope, connection_id, payload
	FROM numbered
	ORDER BY event_id, ord
	ON CONFLICT (event_id) WHERE event_id <> '' DO NOTHING
	RETURNING id
)
SELECT n.ord, n.id, ins.id IS NOT NULL FROM numbered n LEFT JOIN ins USING (id) ORDER BY n.ord`

// insertDomainProfileEventsSQL writes the profile events of a body's
// stored domain events, with their outbox entries: a domain's event has
// no profile, and takes the domain event's id as a report's event takes
// the report's.
const insertDomainProfileEventsSQL = `
WITH e AS (
	INSERT INTO profile_events (id, name, time, profile_id, email, params)
	SELECT id, name, time, '', '', params::jsonb FROM unnest($1::int8[], $2::text[], $3::timestamptz[], $4::text[]) AS u(id, name, time, params)
)
INSERT INTO event_outbox (event_id) SELECT unnest($1::int8[])`

// domainEventArgs are insertDomainEventsSQL's input, a slice a column.
type domainEventArgs struct {
	eventID, domain, typ, scope, connectionID []string
	time, receiveTime                         []time.Time
	bounceRate, threshold                     []float64
	payload                                   [][]byte
}

func newDomainEventArgs(events []store.DomainEvent) *domainEventArgs {
	n := len(events)
	c := &domainEventArgs{
		eventID: make([]string, n), domain: make([]string, n), typ: make([]string, n), scope: make([]string, n),
		connectionID: make([]string, n), time: make([]time.Time, n), receiveTime: make([]time.Time, n),
		bounceRate: make([]float64, n), threshold: make([]float64, n), payload: make([][]byte, n),
	}
	for i := range events {
		ev := &events[i]
		c.eventID[i], c.domain[i], c.typ[i], c.scope[i], c.connectionID[i] = ev.EventID, ev.Domain, ev.Type, ev.Scope, ev.ConnectionID
		c.time[i], c.receiveTime[i], c.bounceRate[i], c.threshold[i], c.payload[i] = ev.Time, ev.ReceiveTime, ev.BounceRate, ev.Threshold, ev.Payload
	}
	return c
}

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
// the other, each to the state the other left. Concurrent calls are merged
// into one such transaction (see coalesce.go).
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
	return s.domainEvents.ingest(ctx, events, rejected)
}

// ingestDomainEventsNow is IngestDomainEvents of one call, or of several
// merged (see coalesce.go), in one transaction; calls is not needed, the
// events of the calls applying in the merge's order.
func (s *Store) ingestDomainEventsNow(ctx context.Context, events []store.DomainEvent, rejected []store.RejectedPayload, _ []int) (store.IngestResult, []int, error) {
	params := make([][]byte, len(events))
	for i := range events {
		if events[i].EventName != "" {
			params[i] = encodeParams(store.DomainEventParams(events[i]))
		}
	}
	cols := newDomainEventArgs(events)
	var res store.IngestResult
	err := s.inTx(ctx, "ingest domain events", func(tx pgx.Tx) error {
		res = store.IngestResult{Stored: make([]bool, len(events))}
		ids := make([]int64, len(events))
		if len(events) > 0 {
			rows, err := tx.Query(ctx, insertDomainEventsSQL, cols.eventID, cols.domain, cols.typ, cols.time,
				cols.receiveTime, cols.bounceRate, cols.threshold, cols.scope, cols.connectionID, cols.payload)
			if err != nil {
				return fmt.Errorf("insert domain events: %w", err)
			}
			var ord, id int64
			var stored bool
			_, err = pgx.ForEachRow(rows, []any{&ord, &id, &stored}, func() error {
				if stored {
					ids[ord-1], res.Stored[ord-1] = id, true
					res.Accepted++
				} else {
					res.Duplicates++
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("insert domain events: %w", err)
			}
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
			seen := make([]time.Time, len(names))
			for i, name := range names {
				seen[i] = firstSeen[name]
			}
			lock.Queue(addDomainsSQL, names, seen)
			lock.Queue(`SELECT `+domainColumns+` FROM sending_domains WHERE domain = ANY($1) ORDER BY domain FOR UPDATE`, names)
			results := tx.SendBatch(ctx, lock)
			if _, err := results.Exec(); err != nil {
				results.Close()
				return fmt.Errorf("add domains: %w", err)
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
		var evIDs []int64
		var evNames []string
		var evTimes []time.Time
		var evParams [][]byte
		for i := range events {
			ev := &events[i]
			if !res.Stored[i] {
				continue
			}
			domains[ev.Domain] = store.ApplyDomainEvent(domains[ev.Domain], *ev)
			if ev.EventName == "" {
				continue
			}
			evIDs, evNames = append(evIDs, ids[i]), append(evNames, ev.EventName)
			evTimes, evParams = append(evTimes, store.DomainEventTime(*ev)), append(evParams, params[i])
			res.Events++
		}
		if len(evIDs) > 0 {
			writes.Queue(insertDomainProfileEventsSQL, evIDs, evNames, evTimes, evParams)
		}
		if len(names) > 0 {
			n := len(names)
			states, untils, reasons := make([]int16, n), make([]*time.Time, n), make([]string, n)
			rates, thresholds, scopes, updated := make([]float64, n), make([]float64, n), make([]string, n), make([]time.Time, n)
			for i, name := range names {
				d := domains[name]
				states[i], untils[i], reasons[i] = int16(d.State), nullTime(d.Until), d.Reason
				rates[i], thresholds[i], scopes[i], updated[i] = d.ReportedBounceRate, d.ReportedThreshold, d.ReportedScope, d.UpdateTime
			}
			writes.Queue(putDomainsSQL, names, states, untils, reasons, rates, thresholds, scopes, updated)
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
		return store.IngestResult{}, nil, err
	}
	return res, nil, nil
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
