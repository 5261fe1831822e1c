package postgres

import (
	"context"
	"fmt"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
)

// Suppressions are written by IngestReports (see ingestSQL), in the
// statement that stores the event causing them.

const suppressionColumns = `s.email, s.profile_id, s.event_name, s.event_id, s.reason, s.create_time`

func scanSuppression(row pgx.CollectableRow) (store.Suppression, error) {
	var sp store.Suppression
	err := row.Scan(&sp.Email, &sp.ProfileID, &sp.EventName, &sp.EventID, &sp.Reason, &sp.CreateTime)
	sp.CreateTime = utc(sp.CreateTime)
	return sp, err
}

// SuppressedAmong looks every address up in one statement, however many:
// the addresses travel as one array and are joined with the table. The
// statement is never prepared (QueryExecModeExec), so that the planner sees
// how long the array is: a cached generic plan takes any array for ten
// elements and probes the primary key once per address, which for a
// 100,000-recipient send took 1.5 to 3 times as long as the hash join it
// picks knowing the size (BenchmarkSuppressedAmong100k).
func (s *Store) SuppressedAmong(ctx context.Context, emails []string) (map[string]store.Suppression, error) {
	out := map[string]store.Suppression{}
	if len(emails) == 0 {
		if s.closed.Load() {
			return nil, errClosed
		}
		return out, nil
	}
	err := s.run(ctx, "suppressed among", func() error {
		clear(out)
		rows, err := s.pool.Query(ctx, `SELECT `+suppressionColumns+` FROM suppressions s
			WHERE s.email IN (SELECT unnest($1::text[]))`, pgx.QueryExecModeExec, emails)
		if err != nil {
			return err
		}
		var sp store.Suppression
		_, err = pgx.ForEachRow(rows, []any{&sp.Email, &sp.ProfileID, &sp.EventName, &sp.EventID, &sp.Reason, &sp.CreateTime}, func() error {
			sp.CreateTime = utc(sp.CreateTime)
			out[sp.Email] = sp
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListSuppressions returns suppressions in address order, after afterEmail.
func (s *Store) ListSuppressions(ctx context.Context, afterEmail string, limit int) ([]store.Suppression, error) {
	var out []store.Suppression
	err := s.run(ctx, "list suppressions", func() error {
		rows, err := s.pool.Query(ctx, `SELECT `+suppressionColumns+` FROM suppressions s
			WHERE s.email > $1 ORDER BY s.email LIMIT $2`, afterEmail, limitOf(limit))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanSuppression)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteSuppression lifts the suppression of an address; the next event
// that suppresses it adds it again.
func (s *Store) DeleteSuppression(ctx context.Context, email string) error {
	return s.run(ctx, "delete suppression", func() error {
		tag, err := s.pool.Exec(ctx, `DELETE FROM suppressions WHERE email = $1`, email)
		return mustAffect(tag, err, fmt.Sprintf("suppression of %q", email))
	})
}
