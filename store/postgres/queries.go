package postgres

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
)

// uniqueNames sorts and deduplicates names, so that statements with the same
// set of names look the same to the plan cache.
func uniqueNames(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}

// sqlArgs builds a statement's parameter list, handing out $n placeholders.
type sqlArgs []any

func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// ListEvents returns one profile's events, newest first. The cursor is a row
// comparison, which PostgreSQL turns into one range of the activity index.
func (s *Store) ListEvents(ctx context.Context, q store.EventQuery) ([]store.Event, error) {
	var (
		sb   strings.Builder
		args sqlArgs
	)
	sb.WriteString(`SELECT e.id, e.name, e.time, e.profile_id, e.email, e.params, ` + eventExtrasSQL + `
		FROM profile_events e` + eventJoinsSQL + ` WHERE e.profile_id = ` + args.add(q.ProfileID))
	if names := uniqueNames(q.Names); len(names) > 0 {
		sb.WriteString(` AND e.name = ANY(` + args.add(names) + `)`)
	}
	if q.After != nil {
		sb.WriteString(` AND (e.time, e.id) < (` + args.add(q.After.Time) + `, ` + args.add(q.After.ID) + `)`)
	}
	if !q.IncludeRetracted {
		sb.WriteString(` AND rt.id IS NULL`)
	}
	sb.WriteString(` ORDER BY e.time DESC, e.id DESC LIMIT ` + args.add(limitOf(q.Limit)))

	var out []store.Event
	err := s.run(ctx, "list events", func() error {
		rows, err := s.pool.Query(ctx, sb.String(), args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Event, error) {
			var (
				e      store.Event
				params []byte
				extras eventExtras
			)
			if err := row.Scan(append([]any{&e.ID, &e.Name, &e.Time, &e.ProfileID, &e.Email, &params}, extras.dest()...)...); err != nil {
				return e, err
			}
			extras.apply(&e)
			e.ReportID = e.ID // an event's id is its report's, see the schema
			e.Time = utc(e.Time)
			if e.Params, err = decodeParams(params); err != nil {
				e.Params, e.Unreadable = nil, "params do not decode: "+err.Error()
			}
			return e, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// notRetractedSQL is the condition that the event row of table (or alias)
// t is not retracted: one probe of event_retractions' unique index, which
// finds nothing in the common case of a store never reclassified.
func notRetractedSQL(t string) string {
	return `NOT EXISTS (SELECT 1 FROM event_retractions r WHERE r.event_id = ` + t + `.id)`
}

// eventExtrasSQL are the columns eventExtras reads after an event's own,
// from the joins eventJoinsSQL adds for the event aliased e: the rules
// version that made it and its retraction, if any.
const (
	eventExtrasSQL = `coalesce(rc.rules_version, rt.event_rules_version, d.rules_version, t.rules_version, 0),
		rt.retract_time, rt.operation, rt.rules_version, rt.replaced_by`
	eventJoinsSQL = ` LEFT JOIN reclassified_events rc ON rc.event_id = e.id
		LEFT JOIN event_retractions rt ON rt.event_id = e.id
		LEFT JOIN delivery_reports d ON d.id = e.id
		LEFT JOIN tracking_events t ON t.id = e.id`
)

// eventExtras receives eventExtrasSQL.
type eventExtras struct {
	rulesVersion int64
	retractTime  *time.Time
	operation    *string
	retractRules *int64
	replacedBy   *int64
}

func (x *eventExtras) dest() []any {
	return []any{&x.rulesVersion, &x.retractTime, &x.operation, &x.retractRules, &x.replacedBy}
}

func (x *eventExtras) apply(e *store.Event) {
	e.RulesVersion = x.rulesVersion
	if x.retractTime != nil {
		r := &store.EventRetraction{Time: utc(*x.retractTime)}
		if x.operation != nil {
			r.Operation = *x.operation
		}
		if x.retractRules != nil {
			r.RulesVersion = *x.retractRules
		}
		if x.replacedBy != nil {
			r.ReplacedBy = *x.replacedBy
		}
		e.Retraction = r
	}
}

// SearchProfiles finds the profiles with matching events, by profile id,
// with each one's count, last time and the email of its latest matching
// event (ties going to the highest id).
//
// PostgreSQL keeps statistics, so unlike SQLite it is left to choose between
// the two plans that serve the two shapes of segment: reading the window on
// (name, time, profile_id) and grouping it, right for a window with few
// events, or walking (profile_id, time, id, name) in profile order and
// stopping after Limit profiles, right for a big one. Its estimate depends on
// the window, so the statement is never prepared (QueryExecModeExec): a
// cached generic plan would pick one plan for every window.
func (s *Store) SearchProfiles(ctx context.Context, q store.ProfileQuery) ([]store.ProfileMatch, error) {
	var (
		where strings.Builder
		args  sqlArgs
	)
	where.WriteString(`profile_id > ` + args.add(q.AfterProfileID))
	names := uniqueNames(q.Names)
	nameFilter := ""
	if len(names) > 0 {
		nameFilter = ` AND name = ANY(` + args.add(names) + `)`
		where.WriteString(nameFilter)
	}
	if !q.Since.IsZero() {
		where.WriteString(` AND time >= ` + args.add(q.Since))
	}
	if !q.Until.IsZero() {
		where.WriteString(` AND time < ` + args.add(q.Until))
	}
	if !q.IncludeRetracted {
		where.WriteString(` AND ` + notRetractedSQL("profile_events"))
		nameFilter += ` AND ` + notRetractedSQL("e")
	}
	query := `WITH g AS (
		SELECT profile_id, count(*) AS n, max(time) AS last FROM profile_events
		WHERE ` + where.String() + `
		GROUP BY profile_id ORDER BY profile_id LIMIT ` + args.add(limitOf(q.Limit)) + `)
	SELECT g.profile_id, g.n, g.last, (
		SELECT e.email FROM profile_events e
		WHERE e.profile_id = g.profile_id AND e.time = g.last` + nameFilter + `
		ORDER BY e.id DESC LIMIT 1)
	FROM g ORDER BY g.profile_id`

	var out []store.ProfileMatch
	err := s.run(ctx, "search profiles", func() error {
		// The mode goes first, and pgx does not count it as a parameter.
		rows, err := s.pool.Query(ctx, query, append([]any{pgx.QueryExecModeExec}, args...)...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.ProfileMatch, error) {
			var (
				m    store.ProfileMatch
				last time.Time
			)
			err := row.Scan(&m.ProfileID, &m.EventCount, &last, &m.Email)
			m.LastEventTime = utc(last)
			return m, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListReports returns stored reports of one kind, newest (highest id)
// first, each kind from its own table: on the primary key, or with an
// outcome on (outcome, id), backwards.
func (s *Store) ListReports(ctx context.Context, q store.ReportQuery) ([]store.StoredReport, error) {
	var (
		sb   strings.Builder
		args sqlArgs
	)
	tracking := q.Kind == store.ReportTracking
	if tracking {
		sb.WriteString(`SELECT id, event_id, notification_type, message_id, connection_id, profile_id,
			email, outcome, event_name, rule, receive_time, payload, rules_version FROM tracking_events WHERE true`)
	} else {
		sb.WriteString(`SELECT id, message_id, status_id, error_id, done_at, connection_id, profile_id,
			email, outcome, event_name, rule, receive_time, payload, rules_version FROM delivery_reports WHERE true`)
	}
	if q.Outcome != store.OutcomeUnspecified {
		sb.WriteString(` AND outcome = ` + args.add(int16(q.Outcome)))
	}
	if q.BeforeID > 0 {
		sb.WriteString(` AND id < ` + args.add(q.BeforeID))
	}
	sb.WriteString(` ORDER BY id DESC LIMIT ` + args.add(limitOf(q.Limit)))

	var out []store.StoredReport
	err := s.run(ctx, "list reports", func() error {
		rows, err := s.pool.Query(ctx, sb.String(), args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.StoredReport, error) {
			var (
				r       store.StoredReport
				outcome int16
				err     error
			)
			if tracking {
				r.Kind = store.ReportTracking
				err = row.Scan(&r.ID, &r.TrackingKey, &r.NotificationType, &r.Key.MessageID,
					&r.ConnectionID, &r.ProfileID, &r.Email, &outcome, &r.EventName, &r.Rule, &r.ReceiveTime, &r.Payload, &r.RulesVersion)
			} else {
				err = row.Scan(&r.ID, &r.Key.MessageID, &r.Key.StatusID, &r.Key.ErrorID, &r.Key.DoneAt,
					&r.ConnectionID, &r.ProfileID, &r.Email, &outcome, &r.EventName, &r.Rule, &r.ReceiveTime, &r.Payload, &r.RulesVersion)
			}
			r.Outcome = store.Outcome(outcome)
			r.ReceiveTime = utc(r.ReceiveTime)
			return r, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListRejectedPayloads returns rejected payloads, newest (highest id) first.
func (s *Store) ListRejectedPayloads(ctx context.Context, q store.RejectedQuery) ([]store.RejectedPayload, error) {
	query := `SELECT id, receive_time, content_type, reason, body FROM rejected_payloads
		WHERE id < $1 ORDER BY id DESC LIMIT $2`
	before := q.BeforeID
	if before <= 0 {
		before = 1<<63 - 1
	}
	var out []store.RejectedPayload
	err := s.run(ctx, "list rejected payloads", func() error {
		rows, err := s.pool.Query(ctx, query, before, limitOf(q.Limit))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.RejectedPayload, error) {
			var p store.RejectedPayload
			err := row.Scan(&p.ID, &p.ReceiveTime, &p.ContentType, &p.Reason, &p.Body)
			p.ReceiveTime = utc(p.ReceiveTime)
			return p, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
