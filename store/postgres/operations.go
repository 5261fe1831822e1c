package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
)

const operationColumns = `id, kind, request_id, request_digest, spec, progress, done, error_code, error_message,
	cancel_requested, created_by, create_time, update_time`

func scanOperation(row pgx.Row) (store.Operation, error) {
	var op store.Operation
	err := row.Scan(&op.ID, &op.Kind, &op.RequestID, &op.RequestDigest, &op.Spec, &op.Progress, &op.Done, &op.ErrorCode,
		&op.ErrorMessage, &op.CancelRequested, &op.CreatedBy, &op.CreateTime, &op.UpdateTime)
	op.CreateTime, op.UpdateTime = utc(op.CreateTime), utc(op.UpdateTime)
	return op, err
}

// CreateOperation inserts the operation; on the partial unique index of
// request ids, two replicas given one request at once make one operation,
// and the second returns it.
func (s *Store) CreateOperation(ctx context.Context, op store.Operation) (store.Operation, bool, error) {
	var created bool
	err := s.inTx(ctx, "create operation", func(tx pgx.Tx) error {
		got, err := scanOperation(tx.QueryRow(ctx, `INSERT INTO operations
			(kind, request_id, request_digest, spec, progress, created_by, create_time, update_time)
			VALUES ($1, $2, $3, $4, $5, $6, date_trunc('microseconds', now()), date_trunc('microseconds', now()))
			ON CONFLICT (request_id) WHERE request_id <> '' DO NOTHING
			RETURNING `+operationColumns, op.Kind, op.RequestID, op.RequestDigest, op.Spec, op.Progress, op.CreatedBy))
		if err == nil {
			op, created = got, true
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		op, err = scanOperation(tx.QueryRow(ctx, `SELECT `+operationColumns+` FROM operations WHERE request_id = $1`, op.RequestID))
		created = false
		return err
	})
	if err != nil {
		return store.Operation{}, false, err
	}
	return op, created, nil
}

// GetOperation reads one operation on the primary key.
func (s *Store) GetOperation(ctx context.Context, id int64) (store.Operation, error) {
	var op store.Operation
	err := s.run(ctx, "get operation", func() error {
		var err error
		op, err = scanOperation(s.pool.QueryRow(ctx, `SELECT `+operationColumns+` FROM operations WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("operation %d: %w", id, store.ErrNotFound)
		}
		return err
	})
	return op, err
}

// ListOperations pages operations newest first.
func (s *Store) ListOperations(ctx context.Context, before int64, limit int) ([]store.Operation, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	return s.queryOperations(ctx, "list operations", `SELECT `+operationColumns+` FROM operations
		WHERE id < $1 ORDER BY id DESC LIMIT $2`, before, limitOf(limit))
}

// UnfinishedOperations reads the partial index of operations not done.
func (s *Store) UnfinishedOperations(ctx context.Context) ([]store.Operation, error) {
	return s.queryOperations(ctx, "unfinished operations", `SELECT `+operationColumns+` FROM operations
		WHERE NOT done ORDER BY id`)
}

func (s *Store) queryOperations(ctx context.Context, op, query string, args ...any) ([]store.Operation, error) {
	var out []store.Operation
	err := s.run(ctx, op, func() error {
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Operation, error) { return scanOperation(row) })
		return err
	})
	return out, err
}

// RequestCancel marks a running operation as asked to stop.
func (s *Store) RequestCancel(ctx context.Context, id int64, now time.Time) (store.Operation, error) {
	var op store.Operation
	err := s.inTx(ctx, "cancel operation", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE operations SET cancel_requested = true, update_time = $1
			WHERE id = $2 AND NOT done`, now, id); err != nil {
			return err
		}
		var err error
		op, err = scanOperation(tx.QueryRow(ctx, `SELECT `+operationColumns+` FROM operations WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("operation %d: %w", id, store.ErrNotFound)
		}
		return err
	})
	return op, err
}

// SaveOperationStep writes a step's progress under the operation's lease.
func (s *Store) SaveOperationStep(ctx context.Context, step store.OperationStep) error {
	return s.inTx(ctx, "save operation step", func(tx pgx.Tx) error {
		return saveStep(ctx, tx, step)
	})
}

// saveStep locks the operation's lease row for the rest of tx (see
// lockLease: a worker taken over while it worked cannot interleave with
// the one that took over) and writes the progress. A done operation is
// never written again.
func saveStep(ctx context.Context, tx pgx.Tx, step store.OperationStep) error {
	if err := lockLease(ctx, tx, store.OperationLease(step.OperationID), step.Owner); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE operations SET progress = $1, done = $2, error_code = $3, error_message = $4,
		update_time = $5 WHERE id = $6 AND NOT done`,
		step.Progress, step.Done, step.ErrorCode, step.ErrorMessage, step.Now, step.OperationID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("operation %d is done: %w", step.OperationID, store.ErrLeaseLost)
	}
	return nil
}

// ScanReports reads one kind's table on its primary key from AfterID,
// filtering the window and outcomes as it goes: reports have no index on
// receive time, and ids follow it closely.
func (s *Store) ScanReports(ctx context.Context, q store.ReportScan) ([]store.ScannedReport, error) {
	var (
		sb   strings.Builder
		args sqlArgs
	)
	if q.Kind == store.ReportTracking {
		sb.WriteString(`SELECT id, event_id, notification_type, message_id, 0, 0, '', connection_id, profile_id,
			email, outcome, event_name, rule, receive_time, payload, rules_version, current_event_id FROM tracking_events`)
	} else {
		sb.WriteString(`SELECT id, '', '', message_id, status_id, error_id, done_at, connection_id, profile_id,
			email, outcome, event_name, rule, receive_time, payload, rules_version, current_event_id FROM delivery_reports`)
	}
	sb.WriteString(` WHERE id > ` + args.add(q.AfterID))
	if !q.Since.IsZero() {
		sb.WriteString(` AND receive_time >= ` + args.add(q.Since))
	}
	if !q.Until.IsZero() {
		sb.WriteString(` AND receive_time < ` + args.add(q.Until))
	}
	if len(q.Outcomes) > 0 {
		outcomes := make([]int16, len(q.Outcomes))
		for i, o := range q.Outcomes {
			outcomes[i] = int16(o)
		}
		sb.WriteString(` AND outcome = ANY(` + args.add(outcomes) + `)`)
	}
	sb.WriteString(` ORDER BY id LIMIT ` + args.add(limitOf(q.Limit)))
	var out []store.ScannedReport
	err := s.run(ctx, "scan reports", func() error {
		rows, err := s.pool.Query(ctx, sb.String(), args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.ScannedReport, error) {
			var (
				r       store.ScannedReport
				outcome int16
				current int64
			)
			err := row.Scan(&r.ID, &r.TrackingKey, &r.NotificationType, &r.Key.MessageID, &r.Key.StatusID, &r.Key.ErrorID,
				&r.Key.DoneAt, &r.ConnectionID, &r.ProfileID, &r.Email, &outcome, &r.EventName, &r.Rule, &r.ReceiveTime,
				&r.Payload, &r.RulesVersion, &current)
			r.Kind = q.Kind
			r.Outcome = store.Outcome(outcome)
			r.ReceiveTime = utc(r.ReceiveTime)
			r.EventID = store.CurrentEventID(r.ID, r.Outcome, current)
			return r, err
		})
		return err
	})
	return out, err
}

// ReclassifyReports writes a step in one transaction, under the lease row
// lock that saveStep takes first: the retraction of each old event and the
// new event, each with an id from the shared sequence and an outbox entry,
// the suppressions, the reports' rows, then the step's progress.
func (s *Store) ReclassifyReports(ctx context.Context, step store.OperationStep, batch store.ReclassifyBatch,
	progress func(store.ReclassifyApplied) ([]byte, error)) (store.ReclassifyApplied, error) {
	var applied store.ReclassifyApplied
	err := s.inTx(ctx, "reclassify reports", func(tx pgx.Tx) error {
		applied = store.ReclassifyApplied{NewEventIDs: make([]int64, len(batch.Changes))}
		if err := lockLease(ctx, tx, store.OperationLease(step.OperationID), step.Owner); err != nil {
			return err
		}
		for i, c := range batch.Changes {
			// The retraction takes the lower id, so that consumers see the
			// old event go before the new one comes.
			var retractionID, newID int64
			if c.OldEventID != 0 {
				if err := tx.QueryRow(ctx, `SELECT nextval('delivery_reports_id_seq')`).Scan(&retractionID); err != nil {
					return err
				}
			}
			if c.Outcome == store.OutcomeEvent {
				if err := tx.QueryRow(ctx, `INSERT INTO profile_events (id, name, time, profile_id, email, params)
					VALUES (nextval('delivery_reports_id_seq'), $1, $2, $3, $4, $5) RETURNING id`,
					c.EventName, c.EventTime, c.ProfileID, c.Email, encodeParams(c.Params)).Scan(&newID); err != nil {
					return err
				}
			}
			if c.OldEventID != 0 {
				err := tx.QueryRow(ctx, `INSERT INTO event_retractions
					(id, event_id, retract_time, operation, rules_version, event_rules_version, replaced_by)
					VALUES ($1, $2, $3, $4, $5, $6, $7)
					ON CONFLICT (event_id) DO NOTHING RETURNING id`,
					retractionID, c.OldEventID, step.Now, batch.Operation, batch.RulesVersion, c.OldRulesVersion, newID).Scan(&retractionID)
				switch {
				case err == nil:
					if _, err := tx.Exec(ctx, `INSERT INTO event_outbox (event_id) VALUES ($1)`, retractionID); err != nil {
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
				case !errors.Is(err, pgx.ErrNoRows):
					return err
				}
			}
			if newID != 0 {
				if _, err := tx.Exec(ctx, `INSERT INTO event_outbox (event_id) VALUES ($1)`, newID); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `INSERT INTO reclassified_events (event_id, report_id, rules_version) VALUES ($1, $2, $3)`,
					newID, c.ReportID, batch.RulesVersion); err != nil {
					return err
				}
				applied.EventsAdded++
				applied.NewEventIDs[i] = newID
				if c.Suppress && c.Email != "" {
					var expires *time.Time
					if c.SuppressFor > 0 {
						t := step.Now.Add(c.SuppressFor)
						expires = &t
					}
					tag, err := tx.Exec(ctx, `INSERT INTO suppressions
						(email, profile_id, event_name, event_id, reason, create_time, expire_time, origin, cause_event_ids)
						VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '{}') `+suppressionConflictSQL,
						c.Email, c.ProfileID, c.EventName, newID, c.SuppressReason, step.Now, expires, int16(store.SuppressionFromEvent))
					if err != nil {
						return err
					}
					if tag.RowsAffected() == 1 {
						applied.SuppressionsAdded++
					}
				}
			}
			table := "delivery_reports"
			if c.Kind == store.ReportTracking {
				table = "tracking_events"
			}
			if _, err := tx.Exec(ctx, `UPDATE `+table+` SET outcome = $1, event_name = $2, rule = $3, rules_version = $4,
				current_event_id = $5 WHERE id = $6`, int16(c.Outcome), c.EventName, c.Rule, batch.RulesVersion, newID, c.ReportID); err != nil {
				return err
			}
		}
		if progress != nil {
			var err error
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
func passOnSuppression(ctx context.Context, tx pgx.Tx, c store.ReportChange, suppressing []string) (bool, error) {
	var held bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM suppressions WHERE email = $1 AND event_id = $2 AND origin = $3)`,
		c.Email, c.OldEventID, int16(store.SuppressionFromEvent)).Scan(&held); err != nil || !held {
		return false, err
	}
	if names := uniqueNames(suppressing); len(names) > 0 {
		var (
			other int64
			name  string
		)
		err := tx.QueryRow(ctx, `SELECT e.id, e.name FROM profile_events e
			WHERE e.profile_id = $1 AND e.email = $2 AND e.name = ANY($3)
			AND NOT EXISTS (SELECT 1 FROM event_retractions r WHERE r.event_id = e.id)
			ORDER BY e.time DESC, e.id DESC LIMIT 1`, c.ProfileID, c.Email, names).Scan(&other, &name)
		switch {
		case err == nil:
			_, err = tx.Exec(ctx, `UPDATE suppressions SET event_id = $1, event_name = $2 WHERE email = $3`, other, name, c.Email)
			return false, err
		case !errors.Is(err, pgx.ErrNoRows):
			return false, err
		}
	}
	_, err := tx.Exec(ctx, `DELETE FROM suppressions WHERE email = $1`, c.Email)
	return err == nil, err
}
