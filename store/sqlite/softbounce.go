package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/ibmail/ibmail/store"
)

// The soft-bounce counts (migration 0013) are read and written in Go,
// inside the writer's transaction that stores the reports (see
// writer.apply): a count is a few ids, and the single write connection,
// which takes the write lock at BEGIN, keeps concurrent bodies from
// counting one address apart.

// countSoftBounces applies works, those of the writer transaction's
// requests, to the counts, one request after the other as if each had a
// transaction of its own: each clears the counts of its deliveries, adds
// its bounces, and suppresses (with ins, insertSuppressionSQL) the
// addresses that reach the limit, which it returns per request. The
// counts are read once and written once for the whole transaction; while
// the table holds none, which one probe tells, deliveries have none to
// clear but those counted in this transaction: most bodies are
// deliveries to addresses that never soft-bounced.
func countSoftBounces(ctx context.Context, tx *sql.Tx, ins *sql.Stmt, works []store.SoftBounceWork) ([][]store.SoftBounceLimitReached, error) {
	var stored bool // the table holds counts from earlier transactions
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM soft_bounce_counts)`).Scan(&stored); err != nil {
		return nil, err
	}
	held := map[string][]store.SoftBounce{} // the counts this transaction has read or changed
	dirty := map[string]bool{}
	if stored {
		var emails []any
		for _, w := range works {
			for _, b := range w.Bounces {
				if _, ok := held[b.Email]; !ok {
					held[b.Email] = nil
					emails = append(emails, b.Email)
				}
			}
		}
		if err := readSoftBounces(ctx, tx, emails, held); err != nil {
			return nil, err
		}
	}
	reached := make([][]store.SoftBounceLimitReached, len(works))
	for k, w := range works {
		for _, e := range w.Resets {
			if _, ok := held[e]; ok || stored {
				held[e], dirty[e] = nil, true
			}
		}
		byEmail := map[string][]store.SoftBounce{}
		var order []string
		for _, b := range w.Bounces {
			if _, seen := byEmail[b.Email]; !seen {
				order = append(order, b.Email)
			}
			byEmail[b.Email] = append(byEmail[b.Email], b)
		}
		for _, e := range order {
			bs, r := store.CountSoftBounces(held[e], byEmail[e], w.Limit, w.Now)
			held[e], dirty[e] = bs, true
			if r != nil {
				reached[k] = append(reached[k], *r)
			}
		}
		for _, sp := range w.SoftBounceSuppressions(reached[k]) {
			if _, err := ins.ExecContext(ctx, sp.Email, sp.ProfileID, sp.EventName, sp.EventID, sp.Reason,
				micros(sp.CreateTime), expireMicros(sp.CreateTime, w.Limit.SuppressFor), int64(sp.Origin),
				joinIDs(sp.CauseEventIDs)); err != nil {
				return nil, fmt.Errorf("suppress %q: %w", sp.Email, err)
			}
		}
	}
	return reached, writeSoftBounces(ctx, tx, held, dirty)
}

// readSoftBounces reads the counts of emails into held.
func readSoftBounces(ctx context.Context, tx *sql.Tx, emails []any, held map[string][]store.SoftBounce) error {
	return chunks(emails, func(chunk []any) error {
		rows, err := tx.QueryContext(ctx, `SELECT email, event_ids, bounce_times FROM soft_bounce_counts
			WHERE email IN (`+placeholders(len(chunk))+`)`, chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var email, ids, times string
			if err := rows.Scan(&email, &ids, &times); err != nil {
				return err
			}
			bs, err := decodeSoftBounces(email, ids, times)
			if err != nil {
				return err
			}
			held[email] = bs
		}
		return rows.Err()
	})
}

// writeSoftBounces writes the dirty counts of held: one statement for the
// counts kept and one for those emptied (cleared, reached, or holding only
// bounces older than the window), per chunk.
func writeSoftBounces(ctx context.Context, tx *sql.Tx, held map[string][]store.SoftBounce, dirty map[string]bool) error {
	var kept, gone []any
	for e := range dirty {
		if bs := held[e]; len(bs) == 0 {
			gone = append(gone, e)
		} else {
			ids, times := encodeSoftBounces(bs)
			kept = append(kept, softBounceRow{e, ids, times})
		}
	}
	err := chunks(gone, func(chunk []any) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM soft_bounce_counts WHERE email IN (`+placeholders(len(chunk))+`)`, chunk...)
		return err
	})
	if err != nil {
		return err
	}
	return chunks(kept, func(chunk []any) error {
		args := make([]any, 0, 3*len(chunk))
		for _, r := range chunk {
			r := r.(softBounceRow)
			args = append(args, r.email, r.ids, r.times)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO soft_bounce_counts (email, event_ids, bounce_times) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(chunk)), ", ")+`
			ON CONFLICT (email) DO UPDATE SET event_ids = excluded.event_ids, bounce_times = excluded.bounce_times`, args...)
		return err
	})
}

// softBounceRow is a count as written.
type softBounceRow struct{ email, ids, times string }

// encodeSoftBounces writes a count's columns: ids and times, space-separated.
func encodeSoftBounces(bs []store.SoftBounce) (ids, times string) {
	var is, ts []byte
	for i, b := range bs {
		if i > 0 {
			is, ts = append(is, ' '), append(ts, ' ')
		}
		is = strconv.AppendInt(is, b.EventID, 10)
		ts = strconv.AppendInt(ts, micros(b.Time), 10)
	}
	return string(is), string(ts)
}

// decodeSoftBounces reads a count's columns back.
func decodeSoftBounces(email, ids, times string) ([]store.SoftBounce, error) {
	is, ts := strings.Fields(ids), strings.Fields(times)
	if len(is) != len(ts) {
		return nil, fmt.Errorf("soft-bounce count of %q: %d event ids but %d times", email, len(is), len(ts))
	}
	out := make([]store.SoftBounce, len(is))
	for i := range is {
		id, err := strconv.ParseInt(is[i], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("soft-bounce count of %q: event id %q: %w", email, is[i], err)
		}
		us, err := strconv.ParseInt(ts[i], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("soft-bounce count of %q: time %q: %w", email, ts[i], err)
		}
		out[i] = store.SoftBounce{Email: email, EventID: id, Time: fromMicros(us)}
	}
	return out, nil
}
