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

// The soft-bounce counts (migration 0013) are read and written in Go: a
// count is a few ids, and the single write connection, which takes the
// write lock at BEGIN, keeps concurrent callers from counting one address
// apart.

// RecordSoftBounces reads the counts of the bounces' addresses, adds the
// bounces and writes them back, or deletes those that reached the limit,
// in the writer's next transaction (groupTx): a webhook body with soft
// bounces then shares its commit with the bodies ingested meanwhile
// instead of paying one more.
func (s *Store) RecordSoftBounces(ctx context.Context, bounces []store.SoftBounce, limit store.SoftBounceLimit, now time.Time) ([]store.SoftBounceLimitReached, error) {
	if limit.Limit <= 0 {
		return nil, fmt.Errorf("sqlite: record soft bounces: limit %d: %w", limit.Limit, store.ErrInvalidArgument)
	}
	if len(bounces) == 0 {
		return nil, nil
	}
	byEmail := map[string][]store.SoftBounce{}
	var emails []any
	for _, b := range bounces {
		if _, seen := byEmail[b.Email]; !seen {
			emails = append(emails, b.Email)
		}
		byEmail[b.Email] = append(byEmail[b.Email], b)
	}
	cutoff := now.Add(-limit.Window)
	var reached []store.SoftBounceLimitReached
	err := s.groupTx(ctx, "record soft bounces", len(bounces), func(ctx context.Context, tx *sql.Tx) error {
		reached = nil
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
			return err
		}
		// One statement for the counts kept and one for those deleted
		// (reached, or every bounce older than the window), per chunk.
		var kept, gone []any
		for _, e := range emails {
			email := e.(string)
			bs := store.KeepSoftBounces(append(counts[email], byEmail[email]...), cutoff, limit.Limit)
			switch {
			case len(bs) >= limit.Limit:
				r := store.SoftBounceLimitReached{Email: email, EventIDs: make([]int64, len(bs))}
				for i, b := range bs {
					r.EventIDs[i] = b.EventID
				}
				reached = append(reached, r)
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
	})
	if err != nil {
		return nil, err
	}
	return reached, nil
}

// ResetSoftBounces looks the addresses up on the reader pool first (after
// one probe of whether any address has a count) and takes the writer only
// for those that have one, in its next shared transaction: most
// deliveries are to addresses that never soft-bounced, and a write for
// each body would queue behind ingest for nothing.
func (s *Store) ResetSoftBounces(ctx context.Context, emails []string) error {
	if len(emails) == 0 {
		return nil
	}
	if s.w.isClosed() {
		return errClosed
	}
	// One probe answers for every delivery while no address has a count.
	var counting bool
	if err := s.readDB.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM soft_bounce_counts)`).Scan(&counting); err != nil {
		return readErr(ctx, "reset soft bounces", err)
	}
	if !counting {
		return nil
	}
	args := make([]any, len(emails))
	for i, e := range emails {
		args[i] = e
	}
	var counted []any
	err := chunks(args, func(chunk []any) error {
		rows, err := s.readDB.QueryContext(ctx, `SELECT email FROM soft_bounce_counts WHERE email IN (`+placeholders(len(chunk))+`)`, chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var email string
			if err := rows.Scan(&email); err != nil {
				return err
			}
			counted = append(counted, email)
		}
		return rows.Err()
	})
	if err != nil {
		return readErr(ctx, "reset soft bounces", err)
	}
	if len(counted) == 0 {
		return nil
	}
	return s.groupTx(ctx, "reset soft bounces", len(counted), func(ctx context.Context, tx *sql.Tx) error {
		return chunks(counted, func(chunk []any) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM soft_bounce_counts WHERE email IN (`+placeholders(len(chunk))+`)`, chunk...)
			return err
		})
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
