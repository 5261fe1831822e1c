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
	// putDomainConflictSQL ends the multi-row INSERT of domains
	// (tableDomains in writer.go): a domain stored already takes the new
	// state.
	putDomainConflictSQL = ` ON CONFLICT (domain) DO UPDATE SET state = excluded.state, until_time = excluded.until_time,
		reason = excluded.reason, reported_bounce_rate = excluded.reported_bounce_rate,
		reported_threshold = excluded.reported_threshold, reported_scope = excluded.reported_scope,
		update_time = excluded.update_time`
	// The multi-row INSERT of domain events (tableDomainEvents) has the
	// partial index of Infobip's event ids as its conflict target:
	// ibmail's own events ('') are not in it and always go in.
	domainEventColumns = `id, event_id, domain, type, time, receive_time, bounce_rate, threshold, scope, connection_id, payload`
	selectDomainSQL    = `SELECT ` + domainColumns + ` FROM sending_domains WHERE domain = ?`
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

// IngestDomainEvents stores events and rejected payloads in the writer's
// next transaction (groupTx), shared with the ingests queued at the time:
// a platform-events body then pays no commit, and no fsync, of its own.
// The writer runs its jobs one after another on the single write
// connection, so each reads its domains' state as the jobs before it left
// them and writes it back before the next one runs.
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
	params := make([]any, len(events))
	for i := range events {
		if events[i].EventName != "" {
			params[i] = encodeParams(store.DomainEventParams(events[i]))
		}
	}
	var res store.IngestResult
	err := s.groupTx(ctx, "ingest domain events", len(events)+len(rejected), func(ctx context.Context, tx *sql.Tx) error {
		// A run whose transaction fails is retried alone: res is always
		// the last run's, and the caller reads it only if that one
		// committed.
		var err error
		res, err = s.w.applyDomainEvents(ctx, tx, events, params, rejected)
		return err
	})
	if err != nil {
		return store.IngestResult{}, err
	}
	return res, nil
}

// applyDomainEvents writes events and rejected inside the writer's current
// transaction, in multi-row statements as the writer writes reports.
// Events take ids from the next free one on, read inside the transaction
// after whatever the transaction wrote before (the batch's reports and
// events, earlier jobs): ids the writer counted out in Go for reports that
// turned out duplicates were never stored, so nothing holds them. An event
// that turns out a duplicate leaves its id unused, as a report does. A
// stored event makes its profile event with its own id.
func (w *writer) applyDomainEvents(ctx context.Context, tx *sql.Tx, events []store.DomainEvent, params []any,
	rejected []store.RejectedPayload) (store.IngestResult, error) {
	res := store.IngestResult{Stored: make([]bool, len(events))}
	bound := map[int]*sql.Stmt{}
	defer func() {
		for _, st := range bound {
			st.Close()
		}
	}()
	var first int64
	if err := tx.StmtContext(ctx, w.nextID).QueryRowContext(ctx).Scan(&first); err != nil {
		return res, fmt.Errorf("next id: %w", err)
	}
	var args []any
	for from := 0; from < len(events); {
		n := chunkRows(len(events) - from)
		args = args[:0]
		for i := from; i < from+n; i++ {
			ev := &events[i]
			args = append(args, first+int64(i), ev.EventID, ev.Domain, ev.Type, micros(ev.Time), micros(ev.ReceiveTime),
				ev.BounceRate, ev.Threshold, ev.Scope, ev.ConnectionID, ev.Payload)
		}
		out, err := w.multi(ctx, tx, bound, tableDomainEvents, n).ExecContext(ctx, args...)
		if err != nil {
			return res, fmt.Errorf("insert domain events: %w", err)
		}
		stored, err := out.RowsAffected()
		if err != nil {
			return res, err
		}
		if int(stored) == n {
			for i := from; i < from+n; i++ {
				res.Stored[i] = true
			}
		} else if err := markDomainEventsStored(ctx, tx, res.Stored, from, n, first); err != nil {
			return res, fmt.Errorf("stored domain events: %w", err)
		}
		from += n
	}

	// Each domain is read once and written once, after its events apply
	// in order.
	var order []any // the domains of stored events, in the order of their first
	domains := map[string]store.SendingDomain{}
	for i := range events {
		if !res.Stored[i] {
			res.Duplicates++
			continue
		}
		res.Accepted++
		if _, seen := domains[events[i].Domain]; !seen {
			domains[events[i].Domain] = store.SendingDomain{}
			order = append(order, events[i].Domain)
		}
	}
	known := make(map[string]bool, len(order))
	err := chunks(order, func(chunk []any) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+domainColumns+` FROM sending_domains WHERE domain IN (`+
			placeholders(len(chunk))+`)`, chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDomain(rows)
			if err != nil {
				return err
			}
			domains[d.Domain], known[d.Domain] = d, true
		}
		return rows.Err()
	})
	if err != nil {
		return res, fmt.Errorf("read domains: %w", err)
	}
	for i := range events {
		ev := &events[i]
		if !res.Stored[i] {
			continue
		}
		d := domains[ev.Domain]
		if !known[ev.Domain] {
			d, known[ev.Domain] = store.NewSendingDomain(ev.Domain, ev.ReceiveTime), true
		}
		domains[ev.Domain] = store.ApplyDomainEvent(d, *ev)
	}
	for ps := order; len(ps) > 0; {
		chunk := ps[:chunkRows(len(ps))]
		ps = ps[len(chunk):]
		args = args[:0]
		for _, name := range chunk {
			d := domains[name.(string)]
			args = append(args, d.Domain, int64(d.State), nullMicros(d.Until), d.Reason,
				d.ReportedBounceRate, d.ReportedThreshold, d.ReportedScope, micros(d.UpdateTime))
		}
		if _, err := w.multi(ctx, tx, bound, tableDomains, len(chunk)).ExecContext(ctx, args...); err != nil {
			return res, fmt.Errorf("write domains: %w", err)
		}
	}

	// A domain's event has no profile, and takes the domain event's id as
	// a report's event takes the report's.
	var made []int
	for i := range events {
		if res.Stored[i] && events[i].EventName != "" {
			made = append(made, i)
		}
	}
	res.Events = len(made)
	for ps := made; len(ps) > 0; {
		chunk := ps[:chunkRows(len(ps))]
		ps = ps[len(chunk):]
		args = args[:0]
		for _, i := range chunk {
			ev := &events[i]
			args = append(args, first+int64(i), ev.EventName, micros(store.DomainEventTime(*ev)), "", "", params[i])
		}
		if _, err := w.multi(ctx, tx, bound, tableEvents, len(chunk)).ExecContext(ctx, args...); err != nil {
			return res, fmt.Errorf("insert events of domain events: %w", err)
		}
	}
	if len(made) > 0 {
		// The ids from first on are this run's own: the transaction runs
		// nothing else meanwhile.
		if _, err := tx.StmtContext(ctx, w.insOutbox).ExecContext(ctx, first); err != nil {
			return res, fmt.Errorf("insert outbox entries of domain events: %w", err)
		}
	}
	if len(rejected) > 0 {
		insRejected := tx.StmtContext(ctx, w.insRejected)
		defer insRejected.Close()
		for i := range rejected {
			p := &rejected[i]
			if _, err := insRejected.ExecContext(ctx, micros(p.ReceiveTime), p.ContentType, p.Reason, p.Body); err != nil {
				return res, fmt.Errorf("insert rejected payload %d: %w", i, err)
			}
		}
	}
	return res, nil
}

// markDomainEventsStored marks which of the n events from from on, with
// ids from first+from on, domain_events holds: their INSERT stored fewer
// rows than it had, the others being duplicates.
func markDomainEventsStored(ctx context.Context, tx *sql.Tx, stored []bool, from, n int, first int64) error {
	lo := first + int64(from)
	rows, err := tx.QueryContext(ctx, storedIDsSQL[tableDomainEvents], lo, lo+int64(n)-1)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		stored[id-first] = true
	}
	return rows.Err()
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
