package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Suppressions are written by IngestReports (see ingestSQL), in the
// statement that stores the event causing them.

const suppressionColumns = `s.email, s.profile_id, s.event_name, s.event_id, s.reason, s.create_time,
	s.expire_time, s.origin, s.cause_event_ids`

// suppressionRow is a row as it is scanned.
type suppressionRow struct {
	sp      store.Suppression
	expires *time.Time
	origin  int16
}

func (r *suppressionRow) targets() []any {
	return []any{&r.sp.Email, &r.sp.ProfileID, &r.sp.EventName, &r.sp.EventID, &r.sp.Reason, &r.sp.CreateTime,
		&r.expires, &r.origin, &r.sp.CauseEventIDs}
}

func (r *suppressionRow) suppression() store.Suppression {
	sp := r.sp
	sp.CreateTime = utc(sp.CreateTime)
	sp.ExpireTime = time.Time{}
	if r.expires != nil {
		sp.ExpireTime = utc(*r.expires)
	}
	sp.Origin = store.SuppressionOrigin(r.origin)
	if len(sp.CauseEventIDs) == 0 {
		sp.CauseEventIDs = nil
	}
	return sp
}

func scanSuppression(row pgx.CollectableRow) (store.Suppression, error) {
	var r suppressionRow
	err := row.Scan(r.targets()...)
	return r.suppression(), err
}

// AddSuppressions inserts the suppressions in one statement, with the
// conflict rule of an event's (suppressionConflictSQL).
func (s *Store) AddSuppressions(ctx context.Context, ss []store.Suppression) (int, error) {
	added := 0
	err := s.run(ctx, "add suppressions", func() error {
		var err error
		added, err = addSuppressions(ctx, s.pool, ss)
		return err
	})
	return added, err
}

// addSuppressions is AddSuppressions' statement, run on q: the pool, or
// an ingest's transaction (countSoftBounces).
func addSuppressions(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, ss []store.Suppression) (int, error) {
	n := len(ss)
	emails, profiles, events, reasons := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	eventIDs, origins := make([]int64, n), make([]int16, n)
	created, expires := make([]time.Time, n), make([]*time.Time, n)
	causes := make([]string, n)
	for i, sp := range ss {
		emails[i], profiles[i], events[i], reasons[i] = sp.Email, sp.ProfileID, sp.EventName, sp.Reason
		eventIDs[i], origins[i], created[i] = sp.EventID, int16(sp.Origin), sp.CreateTime
		if !sp.ExpireTime.IsZero() {
			t := sp.ExpireTime
			expires[i] = &t
		}
		ids := make([]string, len(sp.CauseEventIDs))
		for j, id := range sp.CauseEventIDs {
			ids[j] = strconv.FormatInt(id, 10)
		}
		causes[i] = "{" + strings.Join(ids, ",") + "}"
	}
	tag, err := q.Exec(ctx, `INSERT INTO suppressions (email, profile_id, event_name, event_id, reason,
			create_time, expire_time, origin, cause_event_ids)
		SELECT DISTINCT ON (email) email, profile_id, event_name, event_id, reason, create_time, expire_time, origin,
			cause_event_ids::bigint[]
		FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::timestamptz[],
			$7::timestamptz[], $8::int2[], $9::text[]) WITH ORDINALITY
			AS u(email, profile_id, event_name, event_id, reason, create_time, expire_time, origin, cause_event_ids, ord)
		ORDER BY email, ord
		`+suppressionConflictSQL, emails, profiles, events, eventIDs, reasons, created, expires, origins, causes)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
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
		var r suppressionRow
		_, err = pgx.ForEachRow(rows, r.targets(), func() error {
			sp := r.suppression()
			out[sp.Email] = sp
			r.sp.CauseEventIDs = nil
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListSuppressions returns suppressions in address order, after
// q.AfterEmail.
func (s *Store) ListSuppressions(ctx context.Context, q store.SuppressionQuery) ([]store.Suppression, error) {
	var out []store.Suppression
	err := s.run(ctx, "list suppressions", func() error {
		rows, err := s.pool.Query(ctx, `SELECT `+suppressionColumns+` FROM suppressions s
			WHERE s.email > $1 AND ($3 OR s.expire_time IS NULL OR s.expire_time > $4)
			ORDER BY s.email LIMIT $2`, q.AfterEmail, limitOf(q.Limit), q.IncludeExpired, q.Now)
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
