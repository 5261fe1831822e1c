package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ibmail/ibmail/store"
)

const operationColumns = `id, kind, request_id, request_digest, spec, progress, done, error_code, error_message,
	cancel_requested, created_by, create_time, update_time`

func scanOperation(row interface{ Scan(...any) error }) (store.Operation, error) {
	var (
		op               store.Operation
		created, updated int64
	)
	err := row.Scan(&op.ID, &op.Kind, &op.RequestID, &op.RequestDigest, &op.Spec, &op.Progress, &op.Done, &op.ErrorCode,
		&op.ErrorMessage, &op.CancelRequested, &op.CreatedBy, &created, &updated)
	op.CreateTime, op.UpdateTime = fromMicros(created), fromMicros(updated)
	return op, err
}

// CreateOperation inserts the operation, or returns the one of its request
// id, in one write transaction, so two calls with one request id make one.
func (s *Store) CreateOperation(ctx context.Context, op store.Operation) (store.Operation, bool, error) {
	var created bool
	err := s.writeTx(ctx, "create operation", func(tx *sql.Tx) error {
		if op.RequestID != "" {
			got, err := scanOperation(tx.QueryRowContext(ctx, `SELECT `+operationColumns+` FROM operations WHERE request_id = ?`, op.RequestID))
			if err == nil {
				op, created = got, false
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		op.CreateTime, op.UpdateTime, op.Done = now, now, false
		err := tx.QueryRowContext(ctx, `INSERT INTO operations (kind, request_id, request_digest, spec, progress, created_by, create_time, update_time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			op.Kind, op.RequestID, op.RequestDigest, op.Spec, op.Progress, op.CreatedBy, micros(now), micros(now)).Scan(&op.ID)
		created = err == nil
		return err
	})
	if err != nil {
		return store.Operation{}, false, err
	}
	return op, created, nil
}

// GetOperation reads one operation on the primary key.
func (s *Store) GetOperation(ctx context.Context, id int64) (store.Operation, error) {
	op, err := scanOperation(s.readDB.QueryRowContext(ctx, `SELECT `+operationColumns+` FROM operations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return op, fmt.Errorf("operation %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return op, readErr(ctx, "get operation", err)
	}
	return op, nil
}

// ListOperations pages operations newest first.
func (s *Store) ListOperations(ctx context.Context, before int64, limit int) ([]store.Operation, error) {
	if before <= 0 {
		before = 1 << 62
	}
	return s.queryOperations(ctx, "list operations", `SELECT `+operationColumns+` FROM operations
		WHERE id < ? ORDER BY id DESC LIMIT ?`, before, limitOf(limit))
}

// UnfinishedOperations reads the partial index of operations not done.
func (s *Store) UnfinishedOperations(ctx context.Context) ([]store.Operation, error) {
	return s.queryOperations(ctx, "unfinished operations", `SELECT `+operationColumns+` FROM operations
		WHERE done = 0 ORDER BY id`)
}

func (s *Store) queryOperations(ctx context.Context, op, query string, args ...any) ([]store.Operation, error) {
	rows, err := s.readDB.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, readErr(ctx, op, err)
	}
	defer rows.Close()
	var out []store.Operation
	for rows.Next() {
		o, err := scanOperation(rows)
		if err != nil {
			return nil, readErr(ctx, op, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, op, err)
	}
	return out, nil
}

// RequestCancel marks a running operation as asked to stop.
func (s *Store) RequestCancel(ctx context.Context, id int64, now time.Time) (store.Operation, error) {
	var op store.Operation
	err := s.writeTx(ctx, "cancel operation", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE operations SET cancel_requested = 1, update_time = ?
			WHERE id = ? AND done = 0`, micros(now), id); err != nil {
			return err
		}
		var err error
		op, err = scanOperation(tx.QueryRowContext(ctx, `SELECT `+operationColumns+` FROM operations WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("operation %d: %w", id, store.ErrNotFound)
		}
		return err
	})
	return op, err
}

// SaveOperationStep writes a step's progress under the operation's lease.
func (s *Store) SaveOperationStep(ctx context.Context, step store.OperationStep) error {
	return s.writeTx(ctx, "save operation step", func(tx *sql.Tx) error {
		return saveStep(ctx, tx, step)
	})
}

// saveStep checks the lease and writes the progress. A done operation is
// never written again: a worker that lost its lease to one that finished
// the job is refused.
func saveStep(ctx context.Context, tx *sql.Tx, step store.OperationStep) error {
	if err := checkLease(ctx, tx, store.OperationLease(step.OperationID), step.Owner); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE operations SET progress = ?, done = ?, error_code = ?, error_message = ?,
		update_time = ? WHERE id = ? AND done = 0`,
		step.Progress, step.Done, step.ErrorCode, step.ErrorMessage, micros(step.Now), step.OperationID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("operation %d is done: %w", step.OperationID, store.ErrLeaseLost)
	}
	return nil
}

// ScanReports reads one kind's table on its primary key from AfterID,
// filtering the window and outcomes as it goes: reports have no index on
// receive time, and ids follow it closely, so a window is read as the id
// range that holds it (the scan is the operation's, not the hot path's).
func (s *Store) ScanReports(ctx context.Context, q store.ReportScan) ([]store.ScannedReport, error) {
	var sb strings.Builder
	if q.Kind == store.ReportTracking {
		sb.WriteString(`SELECT id, event_id, notification_type, message_id, 0, 0, '', connection_id, profile_id,
			email, outcome, event_name, rule, receive_time, payload, rules_version, current_event_id FROM tracking_events`)
	} else {
		sb.WriteString(`SELECT id, '', '', message_id, status_id, error_id, done_at, connection_id, profile_id,
			email, outcome, event_name, rule, receive_time, payload, rules_version, current_event_id FROM delivery_reports`)
	}
	sb.WriteString(` WHERE id > ?`)
	args := []any{q.AfterID}
	if !q.Since.IsZero() {
		sb.WriteString(` AND receive_time >= ?`)
		args = append(args, micros(q.Since))
	}
	if !q.Until.IsZero() {
		sb.WriteString(` AND receive_time < ?`)
		args = append(args, micros(q.Until))
	}
	if len(q.Outcomes) > 0 {
		sb.WriteString(` AND outcome IN (` + placeholders(len(q.Outcomes)) + `)`)
		for _, o := range q.Outcomes {
			args = append(args, int64(o))
		}
	}
	sb.WriteString(` ORDER BY id LIMIT ?`)
	args = append(args, limitOf(q.Limit))
	rows, err := s.readDB.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, readErr(ctx, "scan reports", err)
	}
	defer rows.Close()
	var out []store.ScannedReport
	for rows.Next() {
		var (
			r        store.ScannedReport
			outcome  int64
			received int64
			current  int64
		)
		if err := rows.Scan(&r.ID, &r.TrackingKey, &r.NotificationType, &r.Key.MessageID, &r.Key.StatusID, &r.Key.ErrorID,
			&r.Key.DoneAt, &r.ConnectionID, &r.ProfileID, &r.Email, &outcome, &r.EventName, &r.Rule, &received,
			&r.Payload, &r.RulesVersion, &current); err != nil {
			return nil, readErr(ctx, "scan reports", err)
		}
		r.Kind = q.Kind
		r.Outcome = store.Outcome(outcome)
		r.ReceiveTime = fromMicros(received)
		r.EventID = store.CurrentEventID(r.ID, r.Outcome, current)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "scan reports", err)
	}
	return out, nil
}

// ReclassifyReports writes a step in one write transaction: for each
// change, the retraction of the old event (with its outbox entry), the
// new event (with its own), the suppressions, and the report's row; then
// the step's progress. New ids are counted on from nextIDSQL, as the
// writer does.
func (s *Store) ReclassifyReports(ctx context.Context, step store.OperationStep, batch store.ReclassifyBatch,
	progress func(store.ReclassifyApplied) ([]byte, error)) (store.ReclassifyApplied, error) {
	var applied store.ReclassifyApplied
	err := s.writeTx(ctx, "reclassify reports", func(tx *sql.Tx) error {
		applied = store.ReclassifyApplied{NewEventIDs: make([]int64, len(batch.Changes))}
		if err := checkLease(ctx, tx, store.OperationLease(step.OperationID), step.Owner); err != nil {
			return err
		}
		next, err := nextID(ctx, tx)
		if err != nil {
			return err
		}
		now := micros(step.Now)
		for i, c := range batch.Changes {
			// The retraction takes the lower id, so that consumers see the
			// old event go before the new one comes.
			var retractionID, newID int64
			if c.OldEventID != 0 {
				retractionID = next
				next++
			}
			if c.Outcome == store.OutcomeEvent {
				newID = next
				next++
			}
			if c.OldEventID != 0 {
				res, err := tx.ExecContext(ctx, `INSERT INTO event_retractions
					(id, event_id, retract_time, operation, rules_version, event_rules_version, replaced_by)
					VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`,
					retractionID, c.OldEventID, now, batch.Operation, batch.RulesVersion, c.OldRulesVersion, newID)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 1 {
					if _, err := tx.ExecContext(ctx, insertOutboxSQL, retractionID); err != nil {
						return err
					}
					applied.EventsRetracted++
					lifted, err := passOnSuppression(ctx, tx, c, batch.SuppressingNames)
					if err != nil {
						return err
					}
					if lifted {
						applied.SuppressionsLifted++
					}
				}
			}
			if newID != 0 {
				var params any
				if len(c.Params) > 0 {
					params = encodeParams(c.Params)
				}
				if _, err := tx.ExecContext(ctx, insertEventSQL, newID, c.EventName, micros(c.EventTime), c.ProfileID, c.Email, params); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, insertOutboxSQL, newID); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO reclassified_events (event_id, report_id, rules_version) VALUES (?, ?, ?)`,
					newID, c.ReportID, batch.RulesVersion); err != nil {
					return err
				}
				applied.EventsAdded++
				applied.NewEventIDs[i] = newID
				if c.Suppress && c.Email != "" {
					res, err := tx.ExecContext(ctx, insertSuppressionSQL, c.Email, c.ProfileID, c.EventName, newID,
						c.SuppressReason, now, expireMicros(step.Now, c.SuppressFor), int64(store.SuppressionFromEvent), "")
					if err != nil {
						return err
					}
					if n, _ := res.RowsAffected(); n == 1 {
						applied.SuppressionsAdded++
					}
				}
			}
			table := "delivery_reports"
			if c.Kind == store.ReportTracking {
				table = "tracking_events"
			}
			if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET outcome = ?, event_name = ?, rule = ?, rules_version = ?,
				current_event_id = ? WHERE id = ?`, int64(c.Outcome), c.EventName, c.Rule, batch.RulesVersion, newID, c.ReportID); err != nil {
				return err
			}
		}
		if progress != nil {
			if step.Progress, err = progress(applied); err != nil {
				return err
			}
		}
		return saveStep(ctx, tx, step)
	})
	if err != nil {
		return store.ReclassifyApplied{}, err
	}
	return applied, nil
}

// passOnSuppression deals with the suppression the retracted event of c
// held, if any: it passes to the newest live event of the same profile and
// address with a suppressing name, or is lifted when there is none, and
// reports whether it was lifted.
func passOnSuppression(ctx context.Context, tx *sql.Tx, c store.ReportChange, suppressing []string) (bool, error) {
	var held int64
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM suppressions WHERE email = ? AND event_id = ? AND origin = ?`,
		c.Email, c.OldEventID, int64(store.SuppressionFromEvent)).Scan(&held)
	if err != nil || held == 0 {
		return false, err
	}
	if names := uniqueNames(suppressing); len(names) > 0 {
		args := []any{c.ProfileID, c.Email}
		for _, n := range names {
			args = append(args, n)
		}
		var other int64
		var name string
		err := tx.QueryRowContext(ctx, `SELECT e.id, e.name FROM profile_events e
			WHERE e.profile_id = ? AND e.email = ? AND e.name IN (`+placeholders(len(names))+`)
			AND NOT EXISTS (SELECT 1 FROM event_retractions r WHERE r.event_id = e.id)
			ORDER BY e.time DESC, e.id DESC LIMIT 1`, args...).Scan(&other, &name)
		switch {
		case err == nil:
			_, err = tx.ExecContext(ctx, `UPDATE suppressions SET event_id = ?, event_name = ? WHERE email = ?`, other, name, c.Email)
			return false, err
		case !errors.Is(err, sql.ErrNoRows):
			return false, err
		}
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM suppressions WHERE email = ?`, c.Email)
	return err == nil, err
}
