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

// Suppressions are written by IngestReports (see applySending in
// writer.go), in the transaction of the event that causes them.

const suppressionColumns = `email, profile_id, event_name, event_id, reason, create_time, expire_time, origin, cause_event_ids`

func scanSuppressions(rows *sql.Rows, fn func(store.Suppression)) error {
	defer rows.Close()
	for rows.Next() {
		var (
			sp      store.Suppression
			created int64
			expires sql.NullInt64
			origin  int64
			causes  string
		)
		if err := rows.Scan(&sp.Email, &sp.ProfileID, &sp.EventName, &sp.EventID, &sp.Reason, &created, &expires, &origin, &causes); err != nil {
			return err
		}
		sp.CreateTime = fromMicros(created)
		if expires.Valid {
			sp.ExpireTime = fromMicros(expires.Int64)
		}
		sp.Origin = store.SuppressionOrigin(origin)
		for _, f := range strings.Fields(causes) {
			id, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return fmt.Errorf("suppression of %q: cause event id %q: %w", sp.Email, f, err)
			}
			sp.CauseEventIDs = append(sp.CauseEventIDs, id)
		}
		fn(sp)
	}
	return rows.Err()
}

// expireMicros is the expire_time of a suppression made at created that
// lasts life; NULL (nil) for ever.
func expireMicros(created time.Time, life time.Duration) any {
	if life <= 0 {
		return nil
	}
	return micros(created.Add(life))
}

// AddSuppressions inserts with the conflict rule of an event's (see
// insertSuppressionSQL), in one write transaction.
func (s *Store) AddSuppressions(ctx context.Context, ss []store.Suppression) (int, error) {
	added := 0
	err := s.writeTx(ctx, "add suppressions", func(tx *sql.Tx) error {
		added = 0
		st, err := tx.PrepareContext(ctx, insertSuppressionSQL)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, sp := range ss {
			var expires any
			if !sp.ExpireTime.IsZero() {
				expires = micros(sp.ExpireTime)
			}
			res, err := st.ExecContext(ctx, sp.Email, sp.ProfileID, sp.EventName, sp.EventID, sp.Reason,
				micros(sp.CreateTime), expires, int64(sp.Origin), joinIDs(sp.CauseEventIDs))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				added++
			}
		}
		return nil
	})
	return added, err
}

// joinIDs is the cause_event_ids column of a suppression: the ids,
// space-separated.
func joinIDs(ids []int64) string {
	var b []byte
	for i, id := range ids {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(b)
}

// SuppressedAmong looks addresses up on the primary key, in IN lists of
// inChunk addresses, all in one snapshot. The full-size statement is
// prepared once per call: a send of 100,000 recipients runs it 200 times.
func (s *Store) SuppressedAmong(ctx context.Context, emails []string) (map[string]store.Suppression, error) {
	out := map[string]store.Suppression{}
	if len(emails) == 0 {
		return out, nil
	}
	args := make([]any, len(emails))
	for i, e := range emails {
		args[i] = e
	}
	query := func(n int) string {
		return `SELECT ` + suppressionColumns + ` FROM suppressions WHERE email IN (` + placeholders(n) + `)`
	}
	err := s.readTx(ctx, "suppressed among", func(tx *sql.Tx) error {
		var full *sql.Stmt
		if len(args) >= inChunk {
			var err error
			if full, err = tx.PrepareContext(ctx, query(inChunk)); err != nil {
				return err
			}
			defer full.Close()
		}
		return chunks(args, func(chunk []any) error {
			var (
				rows *sql.Rows
				err  error
			)
			if len(chunk) == inChunk {
				rows, err = full.QueryContext(ctx, chunk...)
			} else {
				rows, err = tx.QueryContext(ctx, query(len(chunk)), chunk...)
			}
			if err != nil {
				return err
			}
			return scanSuppressions(rows, func(sp store.Suppression) { out[sp.Email] = sp })
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListSuppressions returns suppressions in address order, after
// q.AfterEmail.
func (s *Store) ListSuppressions(ctx context.Context, q store.SuppressionQuery) ([]store.Suppression, error) {
	query, args := `SELECT `+suppressionColumns+` FROM suppressions WHERE email > ?`, []any{q.AfterEmail}
	if !q.IncludeExpired {
		query += ` AND (expire_time IS NULL OR expire_time > ?)`
		args = append(args, micros(q.Now))
	}
	rows, err := s.readDB.QueryContext(ctx, query+` ORDER BY email LIMIT ?`, append(args, limitOf(q.Limit))...)
	if err != nil {
		return nil, readErr(ctx, "list suppressions", err)
	}
	var out []store.Suppression
	if err := scanSuppressions(rows, func(sp store.Suppression) { out = append(out, sp) }); err != nil {
		return nil, readErr(ctx, "list suppressions", err)
	}
	return out, nil
}

// DeleteSuppression lifts the suppression of an address; the next event
// that suppresses it adds it again.
func (s *Store) DeleteSuppression(ctx context.Context, email string) error {
	return s.writeTx(ctx, "delete suppression", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM suppressions WHERE email = ?`, email)
		return mustAffect(res, err, fmt.Sprintf("suppression of %q", email))
	})
}
