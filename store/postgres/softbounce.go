package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
)

// recordSoftBouncesSQL adds bounces to their addresses' counts (migration
// 0014) in one statement: a new address's count is its bounces, a counted
// one's is its held bounces and the new ones after the cutoff ($4), the
// newest $5 of them, oldest first, each once. The rows are taken in
// address order, as every writer of the table takes them.
const recordSoftBouncesSQL = `
INSERT INTO soft_bounce_counts AS c (email, event_ids, bounce_times)
SELECT email, array_agg(id ORDER BY t, id), array_agg(t ORDER BY t, id)
FROM unnest($1::text[], $2::int8[], $3::timestamptz[]) AS u(email, id, t)
GROUP BY email
ORDER BY email
ON CONFLICT (email) DO UPDATE SET (event_ids, bounce_times) = (
	SELECT coalesce(array_agg(k.id ORDER BY k.t, k.id), '{}'), coalesce(array_agg(k.t ORDER BY k.t, k.id), '{}')
	FROM (
		SELECT DISTINCT ON (m.t, m.id) m.id, m.t
		FROM unnest(c.event_ids || excluded.event_ids, c.bounce_times || excluded.bounce_times) AS m(id, t)
		WHERE m.t > $4
		ORDER BY m.t DESC, m.id DESC
		LIMIT $5
	) k)`

// handOverSQL deletes, after recordSoftBouncesSQL in its transaction, the
// counts that statement made full: the rows are its own until the commit,
// so what it returns is exactly what that statement counted.
const handOverSQL = `DELETE FROM soft_bounce_counts WHERE email = ANY($1::text[]) AND cardinality(event_ids) >= $2
RETURNING email, event_ids`

// RecordSoftBounces sends recordSoftBouncesSQL and handOverSQL as one
// batch, which PostgreSQL runs as one implicit transaction: one round trip
// and one commit for a body's bounces. Of two callers counting one address
// at once, the second waits for the first's commit, and so for its
// hand-over, then counts on from what is left.
func (s *Store) RecordSoftBounces(ctx context.Context, bounces []store.SoftBounce, limit store.SoftBounceLimit, now time.Time) ([]store.SoftBounceLimitReached, error) {
	if limit.Limit <= 0 {
		return nil, fmt.Errorf("postgres: record soft bounces: limit %d: %w", limit.Limit, store.ErrInvalidArgument)
	}
	if len(bounces) == 0 {
		if s.closed.Load() {
			return nil, errClosed
		}
		return nil, nil
	}
	cutoff := now.Add(-limit.Window)
	// Of one call's bounces, only the newest limit of each address can
	// count; in address order, the order the rows are locked in.
	sorted := slices.Clone(bounces)
	slices.SortStableFunc(sorted, func(a, b store.SoftBounce) int { return strings.Compare(a.Email, b.Email) })
	var emails []string
	var ids []int64
	var times []time.Time
	for len(sorted) > 0 {
		n := 1
		for n < len(sorted) && sorted[n].Email == sorted[0].Email {
			n++
		}
		for _, b := range store.KeepSoftBounces(sorted[:n], cutoff, limit.Limit) {
			emails, ids, times = append(emails, b.Email), append(ids, b.EventID), append(times, b.Time)
		}
		sorted = sorted[n:]
	}
	if len(emails) == 0 {
		return nil, nil
	}
	var reached []store.SoftBounceLimitReached
	err := s.run(ctx, "record soft bounces", func() error {
		reached = nil
		batch := &pgx.Batch{}
		batch.Queue(recordSoftBouncesSQL, emails, ids, times, cutoff, limit.Limit)
		batch.Queue(handOverSQL, emails, limit.Limit)
		res := s.pool.SendBatch(ctx, batch)
		defer res.Close()
		if _, err := res.Exec(); err != nil {
			return err
		}
		rows, err := res.Query()
		if err != nil {
			return err
		}
		var r store.SoftBounceLimitReached
		if _, err := pgx.ForEachRow(rows, []any{&r.Email, &r.EventIDs}, func() error {
			reached = append(reached, r)
			r.EventIDs = nil
			return nil
		}); err != nil {
			return err
		}
		return res.Close()
	})
	if err != nil {
		return nil, err
	}
	return reached, nil
}

// ResetSoftBounces deletes the counts in one statement. A DELETE that
// matches no row changes nothing, so PostgreSQL gives it no transaction id
// and its commit writes no WAL: a delivery to an address that never
// soft-bounced costs one round trip and an index probe. (An index scan
// takes the array's keys in order, so rows are locked in address order
// as RecordSoftBounces takes them; a deadlock all the same is retried.)
func (s *Store) ResetSoftBounces(ctx context.Context, emails []string) error {
	if len(emails) == 0 {
		if s.closed.Load() {
			return errClosed
		}
		return nil
	}
	return s.run(ctx, "reset soft bounces", func() error {
		_, err := s.pool.Exec(ctx, `DELETE FROM soft_bounce_counts WHERE email = ANY($1::text[])`, emails)
		return err
	})
}
