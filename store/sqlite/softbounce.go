package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ibmail/ibmail/store"
)

// The soft-bounce counts (migration 0013) are read and written in Go,
// inside the writer's transaction that stores the reports (see
// writer.apply): a count is a few ids, and the single write connection,
// which takes the write lock at BEGIN, keeps concurrent bodies from
// counting one address apart.

// countSoftBounces applies work, of one request of the writer's
// transaction, to the counts: clears the counts of its deliveries, adds
// its bounces, and suppresses (with ins, insertSuppressionSQL) and
// returns the addresses that reached the limit.
func countSoftBounces(ctx context.Context, tx *sql.Tx, ins *sql.Stmt, work store.SoftBounceWork) ([]store.SoftBounceLimitReached, error) {
	if len(work.Resets) > 0 {
		resets := make([]any, len(work.Resets))
		for i, e := range work.Resets {
			resets[i] = e
		}
		err := chunks(resets, func(chunk []any) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM soft_bounce_counts WHERE email IN (`+placeholders(len(chunk))+`)`, chunk...)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("reset: %w", err)
		}
	}
	if len(work.Bounces) == 0 {
		return nil, nil
	}
	reached, err := recordSoftBounces(ctx, tx, work.Bounces, work.Limit, work.Now)
	if err != nil {
		return nil, err
	}
	for _, sp := range work.SoftBounceSuppressions(reached) {
		if _, err := ins.ExecContext(ctx, sp.Email, sp.ProfileID, sp.EventName, sp.EventID, sp.Reason,
			micros(sp.CreateTime), expireMicros(sp.CreateTime, work.Limit.SuppressFor), int64(sp.Origin),
			joinIDs(sp.CauseEventIDs)); err != nil {
			return nil, fmt.Errorf("suppress %q: %w", sp.Email, err)
		}
	}
	return reached, nil
}

// recordSoftBounces reads the counts of the bounces' addresses, adds the
// bounces and writes them back, or deletes those that reached the limit
// (or hold only bounces older than the window), and returns those that
// reached it.
func recordSoftBounces(ctx context.Context, tx *sql.Tx, bounces []store.SoftBounce, limit store.SoftBounceLimit, now time.Time) ([]store.SoftBounceLimitReached, error) {
	byEmail := map[string][]store.SoftBounce{}
	var emails []any
	for _, b := range bounces {
		if _, seen := byEmail[b.Email]; !seen {
			emails = append(emails, b.Email)
		}
		byEmail[b.Email] = append(byEmail[b.Email], b)
	}
	counts := make(map[string][]store.SoftBounce, len(emails))
	err := chunks(emails, func(chunk []any) error {
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
			held, err := decodeSoftBounces(email, ids, times)
			if err != nil {
				return err
			}
			counts[email] = held
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	// One statement for the counts kept and one for those deleted
	// (reached, or every bounce older than the window), per chunk.
	var reached []store.SoftBounceLimitReached
	var kept, gone []any
	for _, e := range emails {
		email := e.(string)
		bs, r := store.CountSoftBounces(counts[email], byEmail[email], limit, now)
		switch {
		case r != nil:
			reached = append(reached, *r)
			gone = append(gone, email)
		case len(bs) == 0:
			gone = append(gone, email)
		default:
			ids, times := encodeSoftBounces(bs)
			kept = append(kept, softBounceRow{email, ids, times})
		}
	}
	err = chunks(gone, func(chunk []any) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM soft_bounce_counts WHERE email IN (`+placeholders(len(chunk))+`)`, chunk...)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = chunks(kept, func(chunk []any) error {
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
	if err != nil {
		return nil, err
	}
	return reached, nil
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
