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
// newest $5 of them, oldest first. The rows are taken in address order, as
// every writer of the table takes them, and a concurrent caller counting
// one address waits for this one's row and then counts on from it.
// RETURNING says which addresses reached the limit.
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
	) k)
RETURNING email, event_ids`

// RecordSoftBounces counts in recordSoftBouncesSQL and deletes the counts
// that reached the limit, in one transaction: of two callers reaching the
// limit of one address at once, the second waits for the first's delete
// and then counts afresh.
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
	err := s.inTx(ctx, "record soft bounces", func(tx pgx.Tx) error {
		reached = nil
		rows, err := tx.Query(ctx, recordSoftBouncesSQL, emails, ids, times, cutoff, limit.Limit)
		if err != nil {
			return err
		}
		var (
			email string
			held  []int64
		)
		_, err = pgx.ForEachRow(rows, []any{&email, &held}, func() error {
			if len(held) >= limit.Limit {
				reached = append(reached, store.SoftBounceLimitReached{Email: email, EventIDs: slices.Clone(held)})
			}
			return nil
		})
		if err != nil || len(reached) == 0 {
			return err
		}
		done := make([]string, len(reached))
		for i, r := range reached {
			done[i] = r.Email
		}
		_, err = tx.Exec(ctx, `DELETE FROM soft_bounce_counts WHERE email = ANY($1::text[])`, done)
		return err
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
