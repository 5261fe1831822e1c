package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
)

const sendColumns = `s.id, s.sender_id, s.connection_id, s.campaign_id, s.idempotency_key, s.subject,
	s.recipient_count, s.create_time, s.done_time, s.content, s.request_digest, s.from_domain`

// sendWithCountsSQL reads sends (aliased s) with their counts by state, in
// one statement so that both come from one snapshot. The counts read one
// range of the state index per send.
const sendWithCountsSQL = `SELECT ` + sendColumns + `, c.states, c.counts FROM sends s
	CROSS JOIN LATERAL (
		SELECT array_agg(state) AS states, array_agg(n) AS counts
		FROM (SELECT state, count(*) AS n FROM send_recipients WHERE send_id = s.id GROUP BY state) g
	) c`

func scanSendWithCounts(row pgx.Row) (store.Send, error) {
	var (
		sn     store.Send
		done   *time.Time
		states []int16
		counts []int64
	)
	if err := row.Scan(&sn.ID, &sn.SenderID, &sn.ConnectionID, &sn.CampaignID, &sn.IdempotencyKey, &sn.Subject,
		&sn.RecipientCount, &sn.CreateTime, &done, &sn.Content, &sn.RequestDigest, &sn.FromDomain, &states, &counts); err != nil {
		return store.Send{}, err
	}
	sn.CreateTime, sn.DoneTime = utc(sn.CreateTime), fromNullTime(done)
	sn.Counts = make(map[store.RecipientState]int, len(states))
	for i, st := range states {
		sn.Counts[store.RecipientState(st)] = int(counts[i])
	}
	return sn, nil
}

// CreateSend stores a send, its recipients and its batches in one
// transaction.
//
// The idempotency key, unique per sender account, is the arbiter of the
// send's INSERT ... ON CONFLICT DO NOTHING: of concurrent calls with one
// key, on any replica, one inserts and the others wait on its uncommitted
// row, then insert nothing once it commits. Those then read the send in a
// new statement, whose snapshot sees the winner's commit, and return it
// with created false if it was made by the same request (same digest), or
// else an *IdempotencyKeyReusedError naming it. A taken send id, or bulk
// id, is a unique violation instead: ErrAlreadyExists.
//
// The store owns two fields: RecipientCount is len(recipients), and
// DoneTime is the create time when no recipient is pending, else zero. A
// recipient must be pending exactly when it is in one of batches (BatchSeq
// >= 0), and a batch pending or ambiguous, or the send could never be done;
// anything else is refused.
func (s *Store) CreateSend(ctx context.Context, sn store.Send, recipients []store.Recipient, batches []store.Batch) (store.Send, bool, error) {
	counts, err := store.CheckNewSend(recipients, batches)
	if err != nil {
		return store.Send{}, false, fmt.Errorf("postgres: create send %q: %w", sn.ID, err)
	}
	sn.CreateTime = sn.CreateTime.Truncate(time.Microsecond).UTC()
	sn.RecipientCount = len(recipients)
	sn.DoneTime = time.Time{}
	if counts[store.RecipientPending] == 0 {
		sn.DoneTime = sn.CreateTime
		if sn.DoneTime.IsZero() {
			sn.DoneTime = time.Now().Truncate(time.Microsecond).UTC()
		}
	}
	sn.Counts = counts

	var (
		stored  store.Send
		created bool
	)
	err = s.inTx(ctx, "create send", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO sends (id, sender_id, connection_id, campaign_id, idempotency_key,
			subject, recipient_count, create_time, done_time, content, request_digest, from_domain)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (sender_id, idempotency_key) WHERE idempotency_key <> '' DO NOTHING`,
			sn.ID, sn.SenderID, sn.ConnectionID, sn.CampaignID, sn.IdempotencyKey, sn.Subject,
			sn.RecipientCount, sn.CreateTime, nullTime(sn.DoneTime), sn.Content, nullBytes(sn.RequestDigest), sn.FromDomain)
		if pgCode(err) == codeUniqueViolation {
			return fmt.Errorf("send %q: %w", sn.ID, store.ErrAlreadyExists)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			existing, err := scanSendWithCounts(tx.QueryRow(ctx, sendWithCountsSQL+`
				WHERE s.sender_id = $1 AND s.idempotency_key = $2 AND s.idempotency_key <> ''`,
				sn.SenderID, sn.IdempotencyKey))
			if err != nil {
				return fmt.Errorf("send with idempotency key %q: %w", sn.IdempotencyKey, err)
			}
			if !existing.SameRequest(sn.RequestDigest) {
				return &store.IdempotencyKeyReusedError{SendID: existing.ID}
			}
			stored, created = existing, false
			return nil
		}
		if len(recipients) > 0 {
			rows := newCopyStream(len(recipients), func(c *copyRows, i int) {
				rc := &recipients[i]
				c.row(10)
				c.text(sn.ID)
				c.int4(int32(rc.Seq))
				c.text(rc.ProfileID)
				c.text(rc.Email)
				c.int2(int16(rc.State))
				c.int4(int32(rc.BatchSeq))
				c.text(rc.BulkID)
				c.text(rc.MessageID)
				c.text(rc.Reason)
				c.jsonbMap(rc.Placeholders)
			})
			if _, err := tx.Conn().PgConn().CopyFrom(ctx, rows, copyRecipientsSQL); err != nil {
				return fmt.Errorf("copy recipients: %w", err)
			}
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

// copyRecipientsSQL writes a send's recipients, which CreateSend encodes
// itself as COPY reads them (see copyStream): pgx's CopyFrom would look an
// encode plan up for each of a million values of a big send.
const copyRecipientsSQL = `COPY send_recipients (send_id, seq, profile_id, email, state, batch_seq, bulk_id,
	message_id, reason, placeholders) FROM STDIN (FORMAT binary)`

// insertBatches writes a send's batches in one statement; at most 1000
// recipients each, a send has at most a hundred.
func insertBatches(ctx context.Context, tx pgx.Tx, sendID string, batches []store.Batch) error {
	if len(batches) == 0 {
		return nil
	}
	n := len(batches)
	seqs, bulks, states, attempts := make([]int32, n), make([]string, n), make([]int16, n), make([]int32, n)
	next, lastErrors := make([]time.Time, n), make([]string, n)
	for i, b := range batches {
		seqs[i], bulks[i], states[i], attempts[i] = int32(b.Seq), b.BulkID, int16(b.State), int32(b.Attempts)
		next[i], lastErrors[i] = b.NextAttemptTime, b.LastError
	}
	_, err := tx.Exec(ctx, `INSERT INTO send_batches (send_id, seq, bulk_id, state, attempts, next_attempt_time, last_error)
		SELECT $1, * FROM unnest($2::int4[], $3::text[], $4::int2[], $5::int4[], $6::timestamptz[], $7::text[])`,
		sendID, seqs, bulks, states, attempts, next, lastErrors)
	if pgCode(err) == codeUniqueViolation {
		return fmt.Errorf("batches of send %q (a bulk id is taken): %w", sendID, store.ErrAlreadyExists)
	}
	return err
}

// GetSend returns a send with its counts, both from one snapshot.
func (s *Store) GetSend(ctx context.Context, id string) (store.Send, error) {
	var sn store.Send
	err := s.run(ctx, "get send", func() error {
		var err error
		sn, err = scanSendWithCounts(s.pool.QueryRow(ctx, sendWithCountsSQL+` WHERE s.id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("send %q: %w", id, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return store.Send{}, err
	}
	return sn, nil
}

// ListSends returns sends newest first, by create time then id, on
// sends_created backwards. A beforeID that names no send answers
// ErrNotFound: there is no place to go on from. That is only checked when
// the page is empty, as sends are never deleted: a page after a send proves
// it exists.
func (s *Store) ListSends(ctx context.Context, beforeID string, limit int) ([]store.Send, error) {
	query := sendWithCountsSQL + ` ORDER BY s.create_time DESC, s.id DESC LIMIT $1`
	args := []any{limitOf(limit)}
	if beforeID != "" {
		query = sendWithCountsSQL + ` WHERE (s.create_time, s.id) < (SELECT create_time, id FROM sends WHERE id = $2)
			ORDER BY s.create_time DESC, s.id DESC LIMIT $1`
		args = append(args, beforeID)
	}
	var out []store.Send
	err := s.run(ctx, "list sends", func() error {
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Send, error) { return scanSendWithCounts(row) })
		if err != nil || len(out) > 0 || beforeID == "" {
			return err
		}
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sends WHERE id = $1)`, beforeID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("send %q to list before: %w", beforeID, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

const recipientColumns = `r.send_id, r.seq, r.profile_id, r.email, r.state, r.batch_seq, r.bulk_id, r.message_id, r.reason,
	r.last_event, r.last_event_time, r.placeholders`

func scanRecipient(row pgx.Row) (store.Recipient, error) {
	var (
		rc           store.Recipient
		seq, batch   int32
		state        int16
		lastEvent    *time.Time
		placeholders []byte
	)
	if err := row.Scan(&rc.SendID, &seq, &rc.ProfileID, &rc.Email, &state, &batch, &rc.BulkID, &rc.MessageID,
		&rc.Reason, &rc.LastEvent, &lastEvent, &placeholders); err != nil {
		return store.Recipient{}, err
	}
	rc.Seq, rc.BatchSeq, rc.State = int(seq), int(batch), store.RecipientState(state)
	rc.LastEventTime = fromNullTime(lastEvent)
	var err error
	if rc.Placeholders, err = decodeParams(placeholders); err != nil {
		return store.Recipient{}, fmt.Errorf("placeholders of recipient %s/%d: %w", rc.SendID, rc.Seq, err)
	}
	return rc, nil
}

func collectRecipient(row pgx.CollectableRow) (store.Recipient, error) { return scanRecipient(row) }

// ListRecipients returns a page of a send's recipients in request order: a
// range of the primary key, or with a state, of the state index, whose
// entries end in seq. A send that does not exist has no recipients.
func (s *Store) ListRecipients(ctx context.Context, q store.RecipientQuery) ([]store.Recipient, error) {
	query := `SELECT ` + recipientColumns + ` FROM send_recipients r
		WHERE r.send_id = $1 AND r.seq > $2 ORDER BY r.seq LIMIT $3`
	args := []any{q.SendID, int32(max(q.AfterSeq, -1)), limitOf(q.Limit)}
	if q.State != store.RecipientUnspecified {
		query = `SELECT ` + recipientColumns + ` FROM send_recipients r
			WHERE r.send_id = $1 AND r.state = $4 AND r.seq > $2 ORDER BY r.seq LIMIT $3`
		args = append(args, int16(q.State))
	}
	var out []store.Recipient
	err := s.run(ctx, "list recipients", func() error {
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, collectRecipient)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecipientsByMessageID looks every message id up in one statement, on the
// partial index of message ids; the query repeats the index's condition,
// which the planner must see to use it. With connectionID set, a recipient
// counts only if its send is the connection's.
func (s *Store) RecipientsByMessageID(ctx context.Context, connectionID string, messageIDs []string) (map[string]store.Recipient, error) {
	ids := make([]string, 0, len(messageIDs))
	for _, id := range messageIDs {
		if id != "" {
			ids = append(ids, id)
		}
	}
	out := make(map[string]store.Recipient, len(ids))
	if len(ids) == 0 {
		if s.closed.Load() {
			return nil, errClosed
		}
		return out, nil
	}
	// One id, what a webhook body of one report asks, is an equality on the
	// index, without an array to encode and unnest: the statement pgx
	// prepares once per connection and then only binds.
	query, arg := recipientsByMessageIDsSQL, any(ids)
	if len(ids) == 1 {
		query, arg = recipientByMessageIDSQL, ids[0]
	}
	err := s.run(ctx, "recipients by message id", func() error {
		clear(out)
		rows, err := s.pool.Query(ctx, query, arg, connectionID)
		if err != nil {
			return err
		}
		rs, err := pgx.CollectRows(rows, collectRecipient)
		for _, rc := range rs {
			out[rc.MessageID] = rc
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

var (
	recipientsByMessageIDsSQL = `SELECT ` + recipientColumns + ` FROM send_recipients r
		WHERE r.message_id = ANY($1) AND r.message_id <> ''` + ofConnectionSQL("$2")
	recipientByMessageIDSQL = `SELECT ` + recipientColumns + ` FROM send_recipients r
		WHERE r.message_id = $1 AND r.message_id <> ''` + ofConnectionSQL("$2")
)

// ofConnectionSQL keeps the recipients (aliased r) whose send is the
// connection's given by the parameter param, or every one when it is ”.
func ofConnectionSQL(param string) string {
	return ` AND (` + param + ` = '' OR EXISTS (SELECT 1 FROM sends s
		WHERE s.id = r.send_id AND s.connection_id = ` + param + `))`
}

// RecipientByEmail finds a send's recipient by address, the first in
// request order if the address repeats, and only if the send is
// connectionID's when that is set. Addresses compare exactly: the server
// lower-cases them, as it does those of reports.
func (s *Store) RecipientByEmail(ctx context.Context, connectionID, sendID, email string) (store.Recipient, error) {
	var rc store.Recipient
	err := s.run(ctx, "recipient by email", func() error {
		var err error
		rc, err = scanRecipient(s.pool.QueryRow(ctx, `SELECT `+recipientColumns+` FROM send_recipients r
			WHERE r.send_id = $1 AND r.email = $2`+ofConnectionSQL("$3")+` ORDER BY r.seq LIMIT 1`, sendID, email, connectionID))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("recipient %q of send %q: %w", email, sendID, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return store.Recipient{}, err
	}
	return rc, nil
}
