package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ibmail/ibmail/store"
)

const sendColumns = `id, sender_id, connection_id, campaign_id, idempotency_key, subject,
	recipient_count, create_time, done_time, content, request_digest, from_domain`

func scanSend(row interface{ Scan(...any) error }) (store.Send, error) {
	var (
		sn      store.Send
		created int64
		done    sql.NullInt64
	)
	if err := row.Scan(&sn.ID, &sn.SenderID, &sn.ConnectionID, &sn.CampaignID, &sn.IdempotencyKey, &sn.Subject,
		&sn.RecipientCount, &created, &done, &sn.Content, &sn.RequestDigest, &sn.FromDomain); err != nil {
		return store.Send{}, err
	}
	sn.CreateTime, sn.DoneTime = fromMicros(created), fromNullMicros(done)
	return sn, nil
}

// CreateSend stores a send, its recipients and its batches in one
// transaction on the write connection. The idempotency key is looked up,
// among the sends of the sender account, in that transaction, which holds
// the write lock from its BEGIN: of concurrent calls with one key, the
// first to get the connection creates the send and the others find it,
// then compare request digests.
//
// The store owns two fields: RecipientCount is len(recipients), and
// DoneTime is the create time when no recipient is pending, else zero. A
// recipient must be pending exactly when it is in one of batches (BatchSeq
// >= 0), and a batch pending or ambiguous, or the send could never be done;
// anything else is refused.
func (s *Store) CreateSend(ctx context.Context, sn store.Send, recipients []store.Recipient, batches []store.Batch) (store.Send, bool, error) {
	// The work that needs no database happens before the write lock.
	counts, err := store.CheckNewSend(recipients, batches)
	if err != nil {
		return store.Send{}, false, fmt.Errorf("sqlite: create send %q: %w", sn.ID, err)
	}
	if len(recipients) > 0 {
		s.mayHoldRecipients.Store(true)
	}
	placeholders := make([]any, len(recipients))
	for i := range recipients {
		if len(recipients[i].Placeholders) > 0 {
			placeholders[i] = encodeParams(recipients[i].Placeholders)
		}
	}
	sn.CreateTime = fromMicros(micros(sn.CreateTime))
	sn.RecipientCount = len(recipients)
	sn.DoneTime = time.Time{}
	if counts[store.RecipientPending] == 0 {
		sn.DoneTime = sn.CreateTime
		if sn.DoneTime.IsZero() {
			sn.DoneTime = fromMicros(micros(time.Now()))
		}
	}
	sn.Counts = counts

	var (
		stored  store.Send
		created bool
	)
	err = s.writeTx(ctx, "create send", func(tx *sql.Tx) error {
		if sn.IdempotencyKey != "" {
			existing, err := scanSend(tx.QueryRowContext(ctx, sendByKeySQL, sn.SenderID, sn.IdempotencyKey))
			if err == nil {
				if !existing.SameRequest(sn.RequestDigest) {
					return &store.IdempotencyKeyReusedError{SendID: existing.ID}
				}
				if existing.Counts, err = countsOf(ctx, tx, existing.ID); err != nil {
					return err
				}
				stored = existing
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sends (`+sendColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sn.ID, sn.SenderID, sn.ConnectionID, sn.CampaignID, sn.IdempotencyKey, sn.Subject,
			sn.RecipientCount, micros(sn.CreateTime), nullMicros(sn.DoneTime), sn.Content, nullBytes(sn.RequestDigest),
			sn.FromDomain)
		if isUniqueViolation(err) {
			return fmt.Errorf("send %q: %w", sn.ID, store.ErrAlreadyExists)
		}
		if err != nil {
			return err
		}
		if err := insertRecipients(ctx, tx, sn.ID, recipients, placeholders); err != nil {
			return err
		}
		if err := insertBatches(ctx, tx, sn.ID, batches); err != nil {
			return err
		}
		stored, created = sn, true
		return nil
	})
	if err != nil {
		return store.Send{}, false, err
	}
	return stored, created, nil
}

// recipientRowsPerInsert is how many recipients one INSERT writes: a
// statement per row would spend most of a 100,000-recipient send in the
// driver's per-call overhead rather than in SQLite.
const recipientRowsPerInsert = 100

const recipientInsertColumns = `send_id, seq, profile_id, email, state, batch_seq, bulk_id, message_id, reason, placeholders`

func insertRecipientsSQL(rows int) string {
	return `INSERT INTO send_recipients (` + recipientInsertColumns + `) VALUES ` +
		strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?), `, rows), ", ")
}

// insertRecipients writes recipients in statements of recipientRowsPerInsert
// rows, the full-size one prepared once.
func insertRecipients(ctx context.Context, tx *sql.Tx, sendID string, recipients []store.Recipient, placeholders []any) error {
	var full *sql.Stmt
	if len(recipients) >= recipientRowsPerInsert {
		var err error
		if full, err = tx.PrepareContext(ctx, insertRecipientsSQL(recipientRowsPerInsert)); err != nil {
			return err
		}
		defer full.Close()
	}
	args := make([]any, 0, 10*min(len(recipients), recipientRowsPerInsert))
	for start := 0; start < len(recipients); start += recipientRowsPerInsert {
		end := min(start+recipientRowsPerInsert, len(recipients))
		args = args[:0]
		for i := start; i < end; i++ {
			r := &recipients[i]
			args = append(args, sendID, r.Seq, r.ProfileID, r.Email, int64(r.State), r.BatchSeq, r.BulkID,
				r.MessageID, r.Reason, placeholders[i])
		}
		var err error
		if end-start == recipientRowsPerInsert {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertRecipientsSQL(end-start), args...)
		}
		if err != nil {
			return fmt.Errorf("insert recipients %d to %d: %w", start, end-1, err)
		}
	}
	return nil
}

// insertBatches writes a send's batches; at most 1000 recipients each, a
// send has at most a hundred.
func insertBatches(ctx context.Context, tx *sql.Tx, sendID string, batches []store.Batch) error {
	if len(batches) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO send_batches
		(send_id, seq, bulk_id, state, attempts, next_attempt_time, last_error) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, b := range batches {
		if _, err := stmt.ExecContext(ctx, sendID, b.Seq, b.BulkID, int64(b.State), b.Attempts,
			micros(b.NextAttemptTime), b.LastError); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("batch %d (bulk %q): %w", b.Seq, b.BulkID, store.ErrAlreadyExists)
			}
			return fmt.Errorf("insert batch %d: %w", b.Seq, err)
		}
	}
	return nil
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// The queries whose plans matter, named for TestSendingQueryPlans. Without
// statistics SQLite prefers the primary key of send_recipients, which
// satisfies "ORDER BY seq" but reads every recipient of the send; INDEXED BY
// pins the index that reads only the rows asked for, whose entries end in
// seq (WITHOUT ROWID) so that no sort is needed either.
const (
	// sendByKeySQL repeats the partial index's condition: SQLite uses a
	// partial index only when the query implies its WHERE.
	sendByKeySQL = `SELECT ` + sendColumns + ` FROM sends WHERE sender_id = ? AND idempotency_key = ? AND idempotency_key <> ''`
	// countsSQL reads one range of the state index, already grouped.
	countsSQL        = `SELECT state, COUNT(*) FROM send_recipients WHERE send_id = ? GROUP BY state`
	sendsPageSQL     = `SELECT ` + sendColumns + ` FROM sends ORDER BY create_time DESC, id DESC LIMIT ?`
	sendsPageFromSQL = `SELECT ` + sendColumns + ` FROM sends WHERE (create_time, id) < (?, ?)
		ORDER BY create_time DESC, id DESC LIMIT ?`
	recipientsSQL = `SELECT ` + recipientColumns + ` FROM send_recipients
		WHERE send_id = ? AND seq > ? ORDER BY seq LIMIT ?`
	recipientsByStateSQL = `SELECT ` + recipientColumns + ` FROM send_recipients INDEXED BY send_recipients_state
		WHERE send_id = ? AND state = ? AND seq > ? ORDER BY seq LIMIT ?`
)

// recipientByEmailSQL finds a send's recipient by address, only if the
// send is the connection's (its id the third parameter) when scoped.
func recipientByEmailSQL(scoped bool) string {
	q := `SELECT ` + recipientColumns + ` FROM send_recipients INDEXED BY send_recipients_email
		WHERE send_id = ? AND email = ?`
	if scoped {
		q += ofConnectionSQL
	}
	return q + ` ORDER BY seq LIMIT 1`
}

// countsOf counts a send's recipients by state.
func countsOf(ctx context.Context, q querier, sendID string) (map[store.RecipientState]int, error) {
	rows, err := q.QueryContext(ctx, countsSQL, sendID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[store.RecipientState]int{}
	for rows.Next() {
		var state int64
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		counts[store.RecipientState(state)] = n
	}
	return counts, rows.Err()
}

// GetSend returns a send with its counts, both from one snapshot.
func (s *Store) GetSend(ctx context.Context, id string) (store.Send, error) {
	var sn store.Send
	err := s.readTx(ctx, "get send", func(tx *sql.Tx) error {
		var err error
		sn, err = scanSend(tx.QueryRowContext(ctx, `SELECT `+sendColumns+` FROM sends WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("send %q: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		sn.Counts, err = countsOf(ctx, tx, id)
		return err
	})
	if err != nil {
		return store.Send{}, err
	}
	return sn, nil
}

// ListSends returns sends newest first, by create time then id. A beforeID
// that names no send answers ErrNotFound: there is no place to go on from.
func (s *Store) ListSends(ctx context.Context, beforeID string, limit int) ([]store.Send, error) {
	var out []store.Send
	err := s.readTx(ctx, "list sends", func(tx *sql.Tx) error {
		query := sendsPageSQL
		args := []any{limitOf(limit)}
		if beforeID != "" {
			var created int64
			err := tx.QueryRowContext(ctx, `SELECT create_time FROM sends WHERE id = ?`, beforeID).Scan(&created)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("send %q to list before: %w", beforeID, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
			query = sendsPageFromSQL
			args = append([]any{created, beforeID}, args...)
		}
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			sn, err := scanSend(rows)
			if err != nil {
				return err
			}
			sn.Counts = map[store.RecipientState]int{}
			out = append(out, sn)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return fillCounts(ctx, tx, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// fillCounts counts the recipients of a page of sends in one query.
func fillCounts(ctx context.Context, tx *sql.Tx, sends []store.Send) error {
	if len(sends) == 0 {
		return nil
	}
	index := make(map[string]int, len(sends))
	args := make([]any, len(sends))
	for i, sn := range sends {
		index[sn.ID] = i
		args[i] = sn.ID
	}
	rows, err := tx.QueryContext(ctx, `SELECT send_id, state, COUNT(*) FROM send_recipients
		WHERE send_id IN (`+placeholders(len(args))+`) GROUP BY send_id, state`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id    string
			state int64
			n     int
		)
		if err := rows.Scan(&id, &state, &n); err != nil {
			return err
		}
		sends[index[id]].Counts[store.RecipientState(state)] = n
	}
	return rows.Err()
}

const recipientColumns = `send_id, seq, profile_id, email, state, batch_seq, bulk_id, message_id, reason,
	last_event, last_event_time, placeholders`

func scanRecipient(row interface{ Scan(...any) error }) (store.Recipient, error) {
	var (
		r            store.Recipient
		state        int64
		lastEvent    sql.NullInt64
		placeholders sql.NullString
	)
	if err := row.Scan(&r.SendID, &r.Seq, &r.ProfileID, &r.Email, &state, &r.BatchSeq, &r.BulkID, &r.MessageID,
		&r.Reason, &r.LastEvent, &lastEvent, &placeholders); err != nil {
		return store.Recipient{}, err
	}
	r.State = store.RecipientState(state)
	r.LastEventTime = fromNullMicros(lastEvent)
	if placeholders.Valid {
		if err := json.Unmarshal([]byte(placeholders.String), &r.Placeholders); err != nil {
			return store.Recipient{}, fmt.Errorf("placeholders of recipient %s/%d: %w", r.SendID, r.Seq, err)
		}
	}
	return r, nil
}

// scanRecipients reads every row of rows, which it closes.
func scanRecipients(rows *sql.Rows, fn func(store.Recipient)) error {
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecipient(rows)
		if err != nil {
			return err
		}
		fn(r)
	}
	return rows.Err()
}

// ListRecipients returns a page of a send's recipients in request order:
// a range of the primary key, or with a state, of the state index, whose
// entries end in seq. A send that does not exist has no recipients.
func (s *Store) ListRecipients(ctx context.Context, q store.RecipientQuery) ([]store.Recipient, error) {
	query := recipientsSQL
	args := []any{q.SendID, q.AfterSeq, limitOf(q.Limit)}
	if q.State != store.RecipientUnspecified {
		query = recipientsByStateSQL
		args = []any{q.SendID, int64(q.State), q.AfterSeq, limitOf(q.Limit)}
	}
	rows, err := s.readDB.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, readErr(ctx, "list recipients", err)
	}
	var out []store.Recipient
	if err := scanRecipients(rows, func(r store.Recipient) { out = append(out, r) }); err != nil {
		return nil, readErr(ctx, "list recipients", err)
	}
	return out, nil
}

// ofConnectionSQL keeps the recipients (of send_recipients) whose send is
// the connection's given as its one parameter; it looks each send up by
// its primary key, after the recipient was found by its own index.
const ofConnectionSQL = ` AND EXISTS (SELECT 1 FROM sends
		WHERE sends.id = send_recipients.send_id AND sends.connection_id = ?)`

// byMessageIDSQL looks up n message ids, of the sends of one connection
// (its id the last parameter) when scoped.
func byMessageIDSQL(n int, scoped bool) string {
	q := `SELECT ` + recipientColumns + ` FROM send_recipients
		WHERE message_id IN (` + placeholders(n) + `) AND message_id <> ''`
	if scoped {
		q += ofConnectionSQL
	}
	return q
}

// RecipientsByMessageID looks message ids up on their partial index, in IN
// lists of inChunk ids. The query repeats the index's condition (not the
// empty string), which SQLite must see in it to use the index. With
// connectionID set, a recipient counts only if its send is the
// connection's.
func (s *Store) RecipientsByMessageID(ctx context.Context, connectionID string, messageIDs []string) (map[string]store.Recipient, error) {
	ids := make([]any, 0, len(messageIDs))
	for _, id := range messageIDs {
		if id != "" {
			ids = append(ids, id)
		}
	}
	out := make(map[string]store.Recipient, len(ids))
	scoped := connectionID != ""
	// lookup runs a chunk's statement, bound to a transaction by bind.
	lookup := func(bind func(*sql.Stmt) *sql.Stmt, chunk []any) error {
		args := padPow2(chunk)
		st, err := s.reads.stmt(ctx, byMessageIDSQL(len(args), scoped))
		if err != nil {
			return err
		}
		if scoped {
			args = append(slices.Clip(args), connectionID)
		}
		rows, err := bind(st).QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		return scanRecipients(rows, func(r store.Recipient) { out[r.MessageID] = r })
	}
	if len(ids) == 0 || !s.mayHoldRecipients.Load() {
		// Nothing to find: no query at all.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return out, nil
	}
	if len(ids) <= inChunk {
		// One statement reads one snapshot: no transaction needed, which
		// for a webhook body of one report saves two of its three
		// statements.
		if err := lookup(func(st *sql.Stmt) *sql.Stmt { return st }, ids); err != nil {
			return nil, readErr(ctx, "recipients by message id", err)
		}
		return out, nil
	}
	err := s.readTx(ctx, "recipients by message id", func(tx *sql.Tx) error {
		bind := func(st *sql.Stmt) *sql.Stmt { return tx.StmtContext(ctx, st) }
		return chunks(ids, func(chunk []any) error { return lookup(bind, chunk) })
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecipientByEmail finds a send's recipient by address, the first in
// request order if the address repeats, and only if the send is
// connectionID's when that is set. Addresses compare exactly: the server
// lower-cases them, as it does those of reports.
func (s *Store) RecipientByEmail(ctx context.Context, connectionID, sendID, email string) (store.Recipient, error) {
	if !s.mayHoldRecipients.Load() {
		if err := ctx.Err(); err != nil {
			return store.Recipient{}, readErr(ctx, "recipient by email", err)
		}
		return store.Recipient{}, recipientNotFound(sendID, email)
	}
	args := []any{sendID, email}
	if connectionID != "" {
		args = append(args, connectionID)
	}
	st, err := s.reads.stmt(ctx, recipientByEmailSQL(connectionID != ""))
	if err != nil {
		return store.Recipient{}, readErr(ctx, "recipient by email", err)
	}
	r, err := scanRecipient(st.QueryRowContext(ctx, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Recipient{}, recipientNotFound(sendID, email)
	}
	if err != nil {
		return store.Recipient{}, readErr(ctx, "recipient by email", err)
	}
	return r, nil
}

func recipientNotFound(sendID, email string) error {
	return fmt.Errorf("sqlite: recipient %q of send %q: %w", email, sendID, store.ErrNotFound)
}
