package postgres

import (
	"context"
	"time"

	"github.com/ibmail/ibmail/store"
)

// ingestSQL stores a webhook body in one statement: the reports, their
// events, their recipients' last events, their suppressions and the rejected
// payloads. One statement is one transaction and one round trip whatever
// the number of reports, and PostgreSQL runs every data-modifying CTE to
// completion whether or not the final SELECT reads it.
//
// Deduplication is the INSERT ... ON CONFLICT DO NOTHING into
// delivery_reports: a report whose key another transaction has inserted but
// not yet committed makes this one wait for that transaction, then skip the
// report if it committed. So of two replicas ingesting one report at once,
// exactly one gets it back from RETURNING, and only RETURNING's rows
// ("stored") make events, touch recipients or suppress: a retry never
// does any of it twice. newIngestArgs removes keys repeated within the
// call, so that the join back to the input by key is one to one.
//
// Ids are drawn in the order of the body (PostgreSQL evaluates a volatile
// select list after its ORDER BY), as listings expect, but the rows are
// inserted in key order. A report key another transaction holds is a lock
// this one waits on, and so are recipients and suppressed addresses: taken
// in one global order (keys, then recipients, then addresses, each sorted)
// by every ingest, two ingests cannot deadlock, whereas two webhook bodies
// sharing reports in different orders otherwise would, each time costing a
// second's deadlock_timeout and a retry. (An ingest and a CompleteBatch
// updating the same recipients still can, rarely; Store.run retries that.)
//
// Each new event also gets its outbox entry, from which the sequencer gives
// it a position in the event log (see store/events.go): being in the same
// statement, the entry commits, or not, with the event.
//
// The rules the SQL below decides, as the SQLite engine does:
//   - an event's last-event update keeps the newest event time, and of two
//     at one time the one ingested last, as a report older than the
//     recipient's last event does not replace it (Infobip does not deliver
//     reports in order);
//   - the first suppression of an address stays (ON CONFLICT DO NOTHING),
//     and within one call the first report to suppress it wins; its create
//     time is the report's receive time, when this server learnt of it.
const ingestSQL = `
WITH ins AS (
	INSERT INTO delivery_reports (id, message_id, status_id, error_id, done_at, connection_id, profile_id, email,
		outcome, event_name, rule, receive_time, payload)
	OVERRIDING SYSTEM VALUE
	SELECT id, message_id, status_id, error_id, done_at, connection_id, profile_id, email,
		outcome, event_name, rule, receive_time, payload
	FROM (
		SELECT nextval('delivery_reports_id_seq') AS id, u.*
		FROM unnest($1::text[], $2::int4[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::int2[], $9::text[], $10::text[], $11::timestamptz[], $12::bytea[])
			WITH ORDINALITY AS u(message_id, status_id, error_id, done_at, connection_id, profile_id, email,
				outcome, event_name, rule, receive_time, payload, ord)
		ORDER BY ord
	) numbered
	ORDER BY done_at, message_id, status_id, error_id
	ON CONFLICT DO NOTHING
	RETURNING id, done_at, message_id, status_id, error_id
),
stored AS (
	SELECT ins.id, u.*
	FROM ins JOIN unnest($1::text[], $2::int4[], $3::int4[], $4::text[], $6::text[], $7::text[], $8::int2[],
			$9::text[], $10::text[], $11::timestamptz[], $13::timestamptz[], $14::text[],
			$15::text[], $16::int4[], $17::bool[], $18::text[])
		WITH ORDINALITY AS u(message_id, status_id, error_id, done_at, profile_id, email, outcome,
			event_name, rule, receive_time, event_time, params, rcpt_send, rcpt_seq, suppress, reason, ord)
		USING (done_at, message_id, status_id, error_id)
),
events AS (
	INSERT INTO profile_events (id, name, time, profile_id, email, params)
	SELECT id, event_name, event_time, profile_id, email, params::jsonb
	FROM stored WHERE outcome = 1
),
outbox AS (
	INSERT INTO event_outbox (event_id)
	SELECT id FROM stored WHERE outcome = 1
),
recipients AS (
	UPDATE send_recipients r SET last_event = x.event_name, last_event_time = x.event_time
	FROM (
		SELECT DISTINCT ON (rcpt_send, rcpt_seq) rcpt_send, rcpt_seq, event_name, event_time
		FROM stored WHERE outcome = 1 AND rcpt_send IS NOT NULL
		ORDER BY rcpt_send, rcpt_seq, event_time DESC, ord DESC
	) x
	WHERE r.send_id = x.rcpt_send AND r.seq = x.rcpt_seq
		AND (r.last_event_time IS NULL OR r.last_event_time <= x.event_time)
),
suppressed AS (
	INSERT INTO suppressions (email, profile_id, event_name, event_id, reason, create_time)
	SELECT DISTINCT ON (email) email, profile_id, event_name, id, reason, receive_time
	FROM stored WHERE outcome = 1 AND suppress
	ORDER BY email, ord
	ON CONFLICT (email) DO NOTHING
),
rejected AS (
	INSERT INTO rejected_payloads (receive_time, content_type, reason, body)
	SELECT receive_time, content_type, reason, body
	FROM unnest($19::timestamptz[], $20::text[], $21::text[], $22::bytea[])
		WITH ORDINALITY AS p(receive_time, content_type, reason, body, ord)
	ORDER BY ord
)
SELECT ord FROM stored`

// ingestArgs are the columns of ingestSQL's input, one slice per column.
type ingestArgs struct {
	messageID, doneAt, connectionID, profileID, email []string
	statusID, errorID                                 []int32
	outcome                                           []int16
	eventName, rule                                   []string
	receiveTime, eventTime                            []time.Time
	payload                                           [][]byte
	params                                            []*string
	rcptSend                                          []*string
	rcptSeq                                           []int32
	suppress                                          []bool
	reason                                            []string

	rejTime            []time.Time
	rejType, rejReason []string
	rejBody            [][]byte
	origin             []int // per input row: its index in the reports given
}

// newIngestArgs lays the reports out as columns, keeping only the first of
// reports that repeat a key: the later ones are duplicates whatever the
// database holds. The work happens before a connection is taken.
func newIngestArgs(reports []store.Report, rejected []store.RejectedPayload) *ingestArgs {
	n := len(reports)
	a := &ingestArgs{
		messageID: make([]string, 0, n), doneAt: make([]string, 0, n), connectionID: make([]string, 0, n),
		profileID: make([]string, 0, n), email: make([]string, 0, n),
		statusID: make([]int32, 0, n), errorID: make([]int32, 0, n), outcome: make([]int16, 0, n),
		eventName: make([]string, 0, n), rule: make([]string, 0, n),
		receiveTime: make([]time.Time, 0, n), eventTime: make([]time.Time, 0, n),
		payload: make([][]byte, 0, n), params: make([]*string, 0, n),
		rcptSend: make([]*string, 0, n), rcptSeq: make([]int32, 0, n),
		suppress: make([]bool, 0, n), reason: make([]string, 0, n),
		origin: make([]int, 0, n),
	}
	seen := make(map[store.ReportKey]struct{}, n)
	for i := range reports {
		r := &reports[i]
		key := r.Key
		key.DoneAt = store.NormalizeDoneAt(key.DoneAt) // the instant, not its text, is the key
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = struct{}{}
		a.origin = append(a.origin, i)
		a.messageID = append(a.messageID, r.Key.MessageID)
		a.statusID = append(a.statusID, r.Key.StatusID)
		a.errorID = append(a.errorID, r.Key.ErrorID)
		a.doneAt = append(a.doneAt, key.DoneAt)
		a.connectionID = append(a.connectionID, r.ConnectionID)
		a.profileID = append(a.profileID, r.ProfileID)
		a.email = append(a.email, r.Email)
		a.outcome = append(a.outcome, int16(r.Outcome))
		a.eventName = append(a.eventName, r.EventName)
		a.rule = append(a.rule, r.Rule)
		a.receiveTime = append(a.receiveTime, r.ReceiveTime)
		a.eventTime = append(a.eventTime, r.EventTime)
		a.payload = append(a.payload, r.Payload)
		var params *string
		if r.Outcome == store.OutcomeEvent {
			if b := encodeParams(r.Params); b != nil {
				s := string(b)
				params = &s
			}
		}
		a.params = append(a.params, params)
		var send *string
		seq := int32(0)
		if r.Recipient != nil {
			send, seq = &r.Recipient.SendID, int32(r.Recipient.Seq)
		}
		a.rcptSend = append(a.rcptSend, send)
		a.rcptSeq = append(a.rcptSeq, seq)
		a.suppress = append(a.suppress, r.Suppress)
		a.reason = append(a.reason, suppressionReason(r))
	}
	m := len(rejected)
	a.rejTime, a.rejType, a.rejReason, a.rejBody = make([]time.Time, m), make([]string, m), make([]string, m), make([][]byte, m)
	for i, p := range rejected {
		a.rejTime[i], a.rejType[i], a.rejReason[i], a.rejBody[i] = p.ReceiveTime, p.ContentType, p.Reason, p.Body
	}
	return a
}

func (a *ingestArgs) values() []any {
	return []any{
		a.messageID, a.statusID, a.errorID, a.doneAt, a.connectionID, a.profileID, a.email, a.outcome,
		a.eventName, a.rule, a.receiveTime, a.payload, a.eventTime, a.params,
		a.rcptSend, a.rcptSeq, a.suppress, a.reason,
		a.rejTime, a.rejType, a.rejReason, a.rejBody,
	}
}

// suppressionReason is Infobip's error name when the event kept one, which
// says most to whoever reads the list, else the rule that matched.
func suppressionReason(r *store.Report) string {
	if name := r.Params["errorName"]; name != "" {
		return name
	}
	return r.Rule
}

// IngestReports stores reports, their events and rejected in one statement;
// see ingestSQL. Concurrent callers, in this process or another, each run
// their own: PostgreSQL groups the commits of concurrent transactions into
// one WAL flush by itself.
func (s *Store) IngestReports(ctx context.Context, reports []store.Report, rejected []store.RejectedPayload) (store.IngestResult, error) {
	if len(reports) == 0 && len(rejected) == 0 {
		// Nothing to make durable: no reason to take a connection.
		if s.closed.Load() {
			return store.IngestResult{}, errClosed
		}
		if err := ctx.Err(); err != nil {
			return store.IngestResult{}, err
		}
		return store.IngestResult{Stored: []bool{}}, nil
	}
	a := newIngestArgs(reports, rejected)
	var res store.IngestResult
	err := s.run(ctx, "ingest", func() error {
		res = store.IngestResult{Stored: make([]bool, len(reports))}
		rows, err := s.pool.Query(ctx, ingestSQL, a.values()...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var ord int64
		for rows.Next() {
			if err := rows.Scan(&ord); err != nil {
				return err
			}
			i := a.origin[ord-1]
			res.Stored[i] = true
			res.Accepted++
			if reports[i].Outcome == store.OutcomeEvent {
				res.Events++
			}
		}
		return rows.Err()
	})
	if err != nil {
		return store.IngestResult{}, err
	}
	res.Duplicates = len(reports) - res.Accepted
	return res, nil
}

// SaveRejectedPayload durably keeps a refused payload.
func (s *Store) SaveRejectedPayload(ctx context.Context, p store.RejectedPayload) error {
	return s.run(ctx, "save rejected payload", func() error {
		_, err := s.pool.Exec(ctx, `INSERT INTO rejected_payloads (receive_time, content_type, reason, body)
			VALUES ($1, $2, $3, $4)`, p.ReceiveTime, p.ContentType, p.Reason, p.Body)
		return err
	})
}
