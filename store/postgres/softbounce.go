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

// countSoftBounces applies work to the counts inside tx, the ingest's
// transaction, in one round trip: the deliveries' counts deleted, then
// recordSoftBouncesSQL and handOverSQL; then, only for addresses that
// reached the limit, their suppressions. Of two transactions counting one
// address at once, the second waits for the first's commit, and so for
// its hand-over, then counts on from what is left. (The delete takes its
// rows in no set order, so it can deadlock with another ingest's count,
// rarely; Store.run retries the whole ingest.)
func countSoftBounces(ctx context.Context, tx pgx.Tx, work store.SoftBounceWork) ([]store.SoftBounceLimitReached, error) {
	batch := &pgx.Batch{}
	if len(work.Resets) > 0 {
		batch.Queue(`DELETE FROM soft_bounce_counts WHERE email = ANY($1::text[])`, work.Resets)
	}
	var emails []string
	var ids []int64
	var times []time.Time
	if len(work.Bounces) > 0 {
		cutoff := work.Now.Add(-work.Limit.Window)
		// Of one call's bounces, only the newest limit of each address can
		// count; in address order, the order the rows are locked in.
		sorted := slices.Clone(work.Bounces)
		slices.SortStableFunc(sorted, func(a, b store.SoftBounce) int { return strings.Compare(a.Email, b.Email) })
		for len(sorted) > 0 {
			n := 1
			for n < len(sorted) && sorted[n].Email == sorted[0].Email {
				n++
			}
			for _, b := range store.KeepSoftBounces(sorted[:n], cutoff, work.Limit.Limit) {
				emails, ids, times = append(emails, b.Email), append(ids, b.EventID), append(times, b.Time)
			}
			sorted = sorted[n:]
		}
		if len(emails) > 0 {
			batch.Queue(recordSoftBouncesSQL, emails, ids, times, cutoff, work.Limit.Limit)
			batch.Queue(handOverSQL, emails, work.Limit.Limit)
		}
	}
	if batch.Len() == 0 {
		return nil, nil
	}
	res := tx.SendBatch(ctx, batch)
	defer res.Close()
	if len(work.Resets) > 0 {
		if _, err := res.Exec(); err != nil {
			return nil, fmt.Errorf("reset: %w", err)
		}
	}
	if len(emails) == 0 {
		return nil, res.Close()
	}
	if _, err := res.Exec(); err != nil {
		return nil, err
	}
	rows, err := res.Query()
	if err != nil {
		return nil, err
	}
	var reached []store.SoftBounceLimitReached
	var r store.SoftBounceLimitReached
	if _, err := pgx.ForEachRow(rows, []any{&r.Email, &r.EventIDs}, func() error {
		reached = append(reached, r)
		r.EventIDs = nil
		return nil
	}); err != nil {
		return nil, err
	}
	if err := res.Close(); err != nil {
		return nil, err
	}
	if len(reached) > 0 {
		if _, err := addSuppressions(ctx, tx, work.SoftBounceSuppressions(reached)); err != nil {
			return nil, fmt.Errorf("suppress: %w", err)
		}
	}
	return reached, nil
}
