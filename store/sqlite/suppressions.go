package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ibmail/ibmail/store"
)

// Suppressions are written by IngestReports (see applySending in
// writer.go), in the transaction of the event that causes them.

const suppressionColumns = `email, profile_id, event_name, event_id, reason, create_time`

func scanSuppressions(rows *sql.Rows, fn func(store.Suppression)) error {
	defer rows.Close()
	for rows.Next() {
		var (
			sp      store.Suppression
			created int64
		)
		if err := rows.Scan(&sp.Email, &sp.ProfileID, &sp.EventName, &sp.EventID, &sp.Reason, &created); err != nil {
			return err
		}
		sp.CreateTime = fromMicros(created)
		fn(sp)
	}
	return rows.Err()
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

// ListSuppressions returns suppressions in address order, after afterEmail.
func (s *Store) ListSuppressions(ctx context.Context, afterEmail string, limit int) ([]store.Suppression, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT `+suppressionColumns+` FROM suppressions
		WHERE email > ? ORDER BY email LIMIT ?`, afterEmail, limitOf(limit))
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
