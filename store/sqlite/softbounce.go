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
// count is a few ids, and the write transaction, which takes the write
// lock at BEGIN, keeps concurrent callers from counting one address apart.

// RecordSoftBounces reads the counts of the bounces' addresses, adds the
// bounces and writes them back, or deletes those that reached the limit,
// in one write transaction.
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
	err := s.writeTx(ctx, "record soft bounces", func(tx *sql.Tx) error {
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
		for _, e := range emails {
			email := e.(string)
			kept := store.KeepSoftBounces(append(counts[email], byEmail[email]...), cutoff, limit.Limit)
			switch {
			case len(kept) >= limit.Limit:
				r := store.SoftBounceLimitReached{Email: email, EventIDs: make([]int64, len(kept))}
				for i, b := range kept {
					r.EventIDs[i] = b.EventID
				}
				reached = append(reached, r)
				_, err = tx.ExecContext(ctx, `DELETE FROM soft_bounce_counts WHERE email = ?`, email)
			case len(kept) == 0:
				// Every bounce was older than the window.
				_, err = tx.ExecContext(ctx, `DELETE FROM soft_bounce_counts WHERE email = ?`, email)
			default:
				ids, times := encodeSoftBounces(kept)
				_, err = tx.ExecContext(ctx, `INSERT INTO soft_bounce_counts (email, event_ids, bounce_times) VALUES (?, ?, ?)
					ON CONFLICT (email) DO UPDATE SET event_ids = excluded.event_ids, bounce_times = excluded.bounce_times`,
					email, ids, times)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return reached, nil
}

// ResetSoftBounces looks the addresses up on the reader pool first and
// takes the write connection only for those that have a count: most
// deliveries are to addresses that never soft-bounced, and a write
// transaction for each would queue behind ingest for nothing.
func (s *Store) ResetSoftBounces(ctx context.Context, emails []string) error {
	if len(emails) == 0 {
		return nil
	}
	if s.w.isClosed() {
		return errClosed
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
	return s.writeTx(ctx, "reset soft bounces", func(tx *sql.Tx) error {
		return chunks(counted, func(chunk []any) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM soft_bounce_counts WHERE email IN (`+placeholders(len(chunk))+`)`, chunk...)
			return err
		})
	})
}

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
