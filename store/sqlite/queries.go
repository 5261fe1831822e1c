package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ibmail/ibmail/store"
)

// defaultLimit applies when a query gives no positive Limit.
const defaultLimit = 50

func limitOf(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return n
}

// readErr reports the caller's own context error as such rather than as the
// "interrupted" failure SQLite turns it into.
func readErr(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("sqlite: %s: %w", op, ctxErr)
	}
	return wrapErr(op, err)
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// uniqueNames sorts and deduplicates names, so that a repeated name does not
// count its events twice in a segmentation.
func uniqueNames(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}

// ListEvents returns one profile's events, newest first. The cursor is
// "(time, id) before the last one seen"; written as time <= ? it stays a
// range on the activity index, and the OR only filters the boundary time.
func (s *Store) ListEvents(ctx context.Context, q store.EventQuery) ([]store.Event, error) {
	var sb strings.Builder
	args := []any{q.ProfileID}
	sb.WriteString(`SELECT e.id, e.name, e.time, e.profile_id, e.email, e.params, ` + eventExtrasSQL + `
		FROM profile_events e INDEXED BY profile_events_activity` + eventJoinsSQL + ` WHERE e.profile_id = ?`)
	if names := uniqueNames(q.Names); len(names) > 0 {
		sb.WriteString(` AND e.name IN (` + placeholders(len(names)) + `)`)
		for _, n := range names {
			args = append(args, n)
		}
	}
	if q.After != nil {
		t := micros(q.After.Time)
		sb.WriteString(` AND e.time <= ? AND (e.time < ? OR e.id < ?)`)
		args = append(args, t, t, q.After.ID)
	}
	if !q.IncludeRetracted {
		sb.WriteString(` AND rt.id IS NULL`)
	}
	sb.WriteString(` ORDER BY e.time DESC, e.id DESC LIMIT ?`)
	args = append(args, limitOf(q.Limit))

	rows, err := s.readDB.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, readErr(ctx, "list events", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var (
			e      store.Event
			t      int64
			params sql.NullString
			extras eventExtras
		)
		if err := rows.Scan(append([]any{&e.ID, &e.Name, &t, &e.ProfileID, &e.Email, &params}, extras.dest()...)...); err != nil {
			return nil, readErr(ctx, "list events", err)
		}
		extras.apply(&e)
		e.ReportID = e.ID // an event's id is its report's, see the schema
		e.Time = fromMicros(t)
		if params.Valid {
			if err := json.Unmarshal([]byte(params.String), &e.Params); err != nil {
				e.Params, e.Unreadable = nil, "params do not decode: "+err.Error()
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "list events", err)
	}
	return out, nil
}

// windowProbeCap is how many matching events SearchProfiles counts, at most,
// to choose its plan: below it, grouping the whole window is cheap.
const windowProbeCap = 20000

// SearchProfiles finds the profiles with matching events, by profile id.
//
// Two plans, because no single index serves both shapes of segment:
//   - window first, on (name, time, profile_id): reads every matching
//     event of the window and groups them, so a page costs the size of the
//     window however small the page. Right for a window with few events.
//   - profile first, on (profile_id, time, id, name): walks profiles in
//     order, filtering in the index, and stops after Limit profiles, so a
//     page costs the events of the profiles it passes, and paging through a
//     big segment stays linear instead of re-grouping the window per page.
//
// A capped count on the window index picks one. With no names, every event
// counts, and only the profile-first plan applies.
func (s *Store) SearchProfiles(ctx context.Context, q store.ProfileQuery) ([]store.ProfileMatch, error) {
	names := uniqueNames(q.Names)
	profileFirst := len(names) == 0
	if !profileFirst {
		probe, args := windowProbeSQL(q, names, s.windowProbeCap)
		var n int
		if err := s.readDB.QueryRowContext(ctx, probe, args...).Scan(&n); err != nil {
			return nil, readErr(ctx, "search profiles", err)
		}
		profileFirst = n >= s.windowProbeCap
	}
	query, args := searchProfilesSQL(q, names, profileFirst)
	rows, err := s.readDB.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, readErr(ctx, "search profiles", err)
	}
	defer rows.Close()
	var out []store.ProfileMatch
	for rows.Next() {
		var (
			m    store.ProfileMatch
			last int64
		)
		if err := rows.Scan(&m.ProfileID, &m.EventCount, &last, &m.Email); err != nil {
			return nil, readErr(ctx, "search profiles", err)
		}
		m.LastEventTime = fromMicros(last)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "search profiles", err)
	}
	return out, nil
}

// segmentFilter is the WHERE clause shared by the probe and both plans.
func segmentFilter(q store.ProfileQuery, names []string) (string, []any) {
	var sb strings.Builder
	args := []any{q.AfterProfileID}
	sb.WriteString(`profile_id > ?`)
	if len(names) > 0 {
		sb.WriteString(` AND name IN (` + placeholders(len(names)) + `)`)
		for _, n := range names {
			args = append(args, n)
		}
	}
	if !q.Since.IsZero() {
		sb.WriteString(` AND time >= ?`)
		args = append(args, micros(q.Since))
	}
	if !q.Until.IsZero() {
		sb.WriteString(` AND time < ?`)
		args = append(args, micros(q.Until))
	}
	if !q.IncludeRetracted {
		sb.WriteString(` AND ` + notRetractedSQL("profile_events"))
	}
	return sb.String(), args
}

// notRetractedSQL is the condition that the event row of table (or alias)
// t is not retracted: one probe of event_retractions' unique index, which
// finds nothing in the common case of a store never reclassified.
func notRetractedSQL(t string) string {
	return `NOT EXISTS (SELECT 1 FROM event_retractions r WHERE r.event_id = ` + t + `.id)`
}

// eventExtrasSQL are the columns scanEventExtras reads after an event's
// own, from the joins eventJoinsSQL adds for the event aliased e: the
// rules version that made it and its retraction, if any.
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
	retractTime  sql.NullInt64
	operation    sql.NullString
	retractRules sql.NullInt64
	replacedBy   sql.NullInt64
}

func (x *eventExtras) dest() []any {
	return []any{&x.rulesVersion, &x.retractTime, &x.operation, &x.retractRules, &x.replacedBy}
}

func (x *eventExtras) apply(e *store.Event) {
	e.RulesVersion = x.rulesVersion
	if x.retractTime.Valid {
		e.Retraction = &store.EventRetraction{Time: fromMicros(x.retractTime.Int64), Operation: x.operation.String,
			RulesVersion: x.retractRules.Int64, ReplacedBy: x.replacedBy.Int64}
	}
}

func windowProbeSQL(q store.ProfileQuery, names []string, limit int) (string, []any) {
	where, args := segmentFilter(q, names)
	return `SELECT COUNT(*) FROM (SELECT 1 FROM profile_events INDEXED BY profile_events_window
		WHERE ` + where + ` LIMIT ?)`, append(args, limit)
}

// searchProfilesSQL builds the segmentation; see SearchProfiles. INDEXED BY
// pins the plan that was chosen: without statistics SQLite would take the
// window index for both, as an equality on name looks the most selective.
func searchProfilesSQL(q store.ProfileQuery, names []string, profileFirst bool) (string, []any) {
	index := "profile_events_window"
	if profileFirst {
		index = "profile_events_activity"
	}
	where, args := segmentFilter(q, names)
	var sb strings.Builder
	sb.WriteString(`WITH g AS (
		SELECT profile_id, COUNT(*) AS n, MAX(time) AS last
		FROM profile_events INDEXED BY ` + index + `
		WHERE ` + where + `
		GROUP BY profile_id ORDER BY profile_id LIMIT ?)
		SELECT g.profile_id, g.n, g.last, (
			SELECT e.email FROM profile_events e INDEXED BY profile_events_activity
			WHERE e.profile_id = g.profile_id AND e.time = g.last`)
	args = append(args, limitOf(q.Limit))
	if !q.IncludeRetracted {
		sb.WriteString(` AND ` + notRetractedSQL("e"))
	}
	// The email of the latest matching event, ties going to the highest
	// id: one short range of the activity index per returned profile.
	if len(names) > 0 {
		sb.WriteString(` AND e.name IN (` + placeholders(len(names)) + `)`)
		for _, n := range names {
			args = append(args, n)
		}
	}
	sb.WriteString(` ORDER BY e.id DESC LIMIT 1)
		FROM g ORDER BY g.profile_id`)
	return sb.String(), args
}

// ListReports returns stored reports of one kind, newest (highest id)
// first: delivery reports, or tracking reports, each from its own table.
func (s *Store) ListReports(ctx context.Context, q store.ReportQuery) ([]store.StoredReport, error) {
	var sb strings.Builder
	var args []any
	tracking := q.Kind == store.ReportTracking
	if tracking {
		sb.WriteString(`SELECT id, event_id, notification_type, message_id, connection_id, profile_id,
			email, outcome, event_name, rule, receive_time, payload, rules_version FROM tracking_events WHERE 1`)
	} else {
		sb.WriteString(`SELECT id, message_id, status_id, error_id, done_at, connection_id, profile_id,
			email, outcome, event_name, rule, receive_time, payload, rules_version FROM delivery_reports WHERE 1`)
	}
	if q.Outcome != store.OutcomeUnspecified {
		sb.WriteString(` AND outcome = ?`)
		args = append(args, int64(q.Outcome))
	}
	if q.BeforeID > 0 {
		sb.WriteString(` AND id < ?`)
		args = append(args, q.BeforeID)
	}
	sb.WriteString(` ORDER BY id DESC LIMIT ?`)
	args = append(args, limitOf(q.Limit))

	rows, err := s.readDB.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, readErr(ctx, "list reports", err)
	}
	defer rows.Close()
	var out []store.StoredReport
	for rows.Next() {
		var (
			r       store.StoredReport
			outcome int64
			recv    int64
		)
		if tracking {
			r.Kind = store.ReportTracking
			err = rows.Scan(&r.ID, &r.TrackingKey, &r.NotificationType, &r.Key.MessageID,
				&r.ConnectionID, &r.ProfileID, &r.Email, &outcome, &r.EventName, &r.Rule, &recv, &r.Payload, &r.RulesVersion)
		} else {
			err = rows.Scan(&r.ID, &r.Key.MessageID, &r.Key.StatusID, &r.Key.ErrorID, &r.Key.DoneAt,
				&r.ConnectionID, &r.ProfileID, &r.Email, &outcome, &r.EventName, &r.Rule, &recv, &r.Payload, &r.RulesVersion)
		}
		if err != nil {
			return nil, readErr(ctx, "list reports", err)
		}
		r.Outcome = store.Outcome(outcome)
		r.ReceiveTime = fromMicros(recv)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "list reports", err)
	}
	return out, nil
}

// ListRejectedPayloads returns rejected payloads, newest (highest id) first.
func (s *Store) ListRejectedPayloads(ctx context.Context, q store.RejectedQuery) ([]store.RejectedPayload, error) {
	var sb strings.Builder
	var args []any
	sb.WriteString(`SELECT id, receive_time, content_type, reason, body FROM rejected_payloads`)
	if q.BeforeID > 0 {
		sb.WriteString(` WHERE id < ?`)
		args = append(args, q.BeforeID)
	}
	sb.WriteString(` ORDER BY id DESC LIMIT ?`)
	args = append(args, limitOf(q.Limit))

	rows, err := s.readDB.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, readErr(ctx, "list rejected payloads", err)
	}
	defer rows.Close()
	var out []store.RejectedPayload
	for rows.Next() {
		var (
			p    store.RejectedPayload
			recv int64
		)
		if err := rows.Scan(&p.ID, &recv, &p.ContentType, &p.Reason, &p.Body); err != nil {
			return nil, readErr(ctx, "list rejected payloads", err)
		}
		p.ReceiveTime = fromMicros(recv)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "list rejected payloads", err)
	}
	return out, nil
}
