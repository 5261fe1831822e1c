package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
)

// ingestSQL stores a webhook body in one statement: the reports, their
// events, their recipients' last events, their suppressions and the rejected
// payloads. One statement is one transaction and one round trip whatever
// the number of reports, and PostgreSQL runs every data-modifying CTE to
// completion whether or not the final SELECT reads it.
//
// Deduplication is the INSERT ... ON CONFLICT DO NOTHING into
// delivery_reports, whose conflict target is the report key: a clash on the
// id (a bug) fails the statement instead of passing for a duplicate. A
// report whose key another transaction has inserted but not yet committed
// makes this one wait for that transaction, then skip the report if it
// committed. So of two replicas ingesting one report at once,
// exactly one gets it back from RETURNING, and only RETURNING's rows
// ("stored") make events, touch recipients or suppress: a retry never
// does any of it twice. newIngestArgs removes keys repeated within the
// call, so that the join back to the input by key is one to one.
//
// Ids are drawn in the order of the body (PostgreSQL evaluates a volatile
// select list after its ORDER BY), as listings expect, but the rows are
// inserted in key order. A report key another transaction holds is a lock
// this one waits on, and so are recipients and suppressed addresses: taken
// in one global order (keys, then recipients, then addresses, then
// bounce-rate counts, each sorted) by every ingest, two ingests cannot
// deadlock, whereas two webhook bodies
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
//     reports in order); but any report replaces the MessageSendEvent that
//     CompleteBatch gave, whatever its time: every report about a message
//     comes after it was sent, though its doneAt can be earlier than the
//     store's clock when it stored Infobip's answer;
//   - the first suppression of an address stays (ON CONFLICT DO NOTHING),
//     and within one call the first report to suppress it wins; its create
//     time is the report's receive time, when this server learnt of it;
//   - a stored report with a domain counts towards its bounce rate, in the
//     bucket of its receive time.
var ingestSQL = `
WITH ins AS (
	INSERT INTO delivery_reports (id, message_id, status_id, error_id, done_at, connection_id, profile_id, email,
		outcome, event_name, rule, receive_time, payload, rules_version)
	OVERRIDING SYSTEM VALUE
	SELECT id, message_id, status_id, error_id, done_at, connection_id, profile_id, email,
		outcome, event_name, rule, receive_time, payload, rules_version
	FROM (
		SELECT nextval('delivery_reports_id_seq') AS id, u.*
		FROM unnest($1::text[], $2::int4[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::int2[], $9::text[], $10::text[], $11::timestamptz[], $12::bytea[], $26::int8[])
			WITH ORDINALITY AS u(message_id, status_id, error_id, done_at, connection_id, profile_id, email,
				outcome, event_name, rule, receive_time, payload, rules_version, ord)
		ORDER BY ord
	) numbered
	ORDER BY done_at, message_id, status_id, error_id
	ON CONFLICT (done_at, message_id, status_id, error_id) DO NOTHING
	RETURNING id, done_at, message_id, status_id, error_id
),
stored AS (
	SELECT ins.id, u.*
	FROM ins JOIN unnest($1::text[], $2::int4[], $3::int4[], $4::text[], $6::text[], $7::text[], $8::int2[],
			$9::text[], $10::text[], $11::timestamptz[], $13::timestamptz[], $14::text[],
			$15::text[], $16::int4[], $17::bool[], $18::text[], $19::text[], $20::int2[], $21::timestamptz[],
			$27::timestamptz[])
		WITH ORDINALITY AS u(message_id, status_id, error_id, done_at, profile_id, email, outcome,
			event_name, rule, receive_time, event_time, params, rcpt_send, rcpt_seq, suppress, reason,
			domain, counts_as, bucket, suppress_until, ord)
		USING (done_at, message_id, status_id, error_id)
),` + ingestTailSQL(22)

// trackingIngestSQL is ingestSQL for tracking reports: the same statement
// on tracking_events, keyed by Infobip's eventId, whose rows are inserted
// in the order of that key for the same reason. Its ids come from the
// delivery reports' sequence, so that no event id is ever two events'.
var trackingIngestSQL = `
WITH ins AS (
	INSERT INTO tracking_events (id, event_id, notification_type, message_id, connection_id, profile_id, email,
		outcome, event_name, rule, receive_time, payload, rules_version)
	SELECT id, event_id, notification_type, message_id, connection_id, profile_id, email,
		outcome, event_name, rule, receive_time, payload, rules_version
	FROM (
		SELECT nextval('delivery_reports_id_seq') AS id, u.*
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
			$7::int2[], $8::text[], $9::text[], $10::timestamptz[], $11::bytea[], $25::int8[])
			WITH ORDINALITY AS u(event_id, notification_type, message_id, connection_id, profile_id, email,
				outcome, event_name, rule, receive_time, payload, rules_version, ord)
		ORDER BY ord
	) numbered
	ORDER BY event_id
	ON CONFLICT (event_id) DO NOTHING
	RETURNING id, event_id
),
stored AS (
	SELECT ins.id, u.*
	FROM ins JOIN unnest($1::text[], $5::text[], $6::text[], $7::int2[], $8::text[], $10::timestamptz[],
			$12::timestamptz[], $13::text[], $14::text[], $15::int4[], $16::bool[], $17::text[],
			$18::text[], $19::int2[], $20::timestamptz[], $26::timestamptz[])
		WITH ORDINALITY AS u(event_id, profile_id, email, outcome, event_name, receive_time, event_time,
			params, rcpt_send, rcpt_seq, suppress, reason, domain, counts_as, bucket, suppress_until, ord)
		USING (event_id)
),` + ingestTailSQL(21)

// suppressionConflictSQL keeps the first suppression of an address: it
// says why the address was first suppressed, and later causes add nothing
// a send needs. Only an expired one is replaced, by the next cause.
const suppressionConflictSQL = `ON CONFLICT (email) DO UPDATE SET profile_id = excluded.profile_id,
		event_name = excluded.event_name, event_id = excluded.event_id, reason = excluded.reason,
		create_time = excluded.create_time, expire_time = excluded.expire_time, origin = excluded.origin,
		cause_event_ids = excluded.cause_event_ids
	WHERE suppressions.expire_time IS NOT NULL AND suppressions.expire_time <= excluded.create_time`

// countShards is how many rows of domain_report_counts one domain's bucket
// is spread over; see migration 0008.
const countShards = 16

// ingestTailSQL is what both ingest statements do with the reports they
// stored (the CTE stored): make their events and outbox entries, update
// their recipients, suppress, count them towards their domains' bounce
// rates; and store the rejected payloads, whose four columns are the
// parameters from $first on.
//
// The counts are added up per domain and bucket first: an upsert may not
// touch one row twice. Their rows are locked in (bucket, domain) order,
// after the report keys, like the other locks of the statement.
func ingestTailSQL(first int) string {
	return `
events AS (
	INSERT INTO profile_events (id, name, time, profile_id, email, params)
	SELECT id, event_name, event_time, profile_id, email, params::jsonb
	FROM stored WHERE outcome = 1
),
outbox AS (
	INSERT INTO event_outbox (event_id)
	SELECT id FROM stored WHERE outcome = 1
),` + ingestEffectsSQL(first)
}

// ingestEffectsSQL is the part of ingestTailSQL that follows the events:
// the recipients, suppressions, counts and rejected payloads, which the
// COPY path (see copyingest.go) runs on its own.
func ingestEffectsSQL(first int) string {
	p := func(i int) string { return "$" + strconv.Itoa(first+i) }
	return `
recipients AS (
	UPDATE send_recipients r SET last_event = x.event_name, last_event_time = x.event_time
	FROM (
		SELECT DISTINCT ON (rcpt_send, rcpt_seq) rcpt_send, rcpt_seq, event_name, event_time
		FROM stored WHERE outcome = 1 AND rcpt_send IS NOT NULL
		ORDER BY rcpt_send, rcpt_seq, event_time DESC, ord DESC
	) x
	WHERE r.send_id = x.rcpt_send AND r.seq = x.rcpt_seq
		AND (r.last_event_time IS NULL OR r.last_event_time <= x.event_time OR r.last_event = '` + store.MessageSendEvent + `')
),
suppressed AS (
	INSERT INTO suppressions (email, profile_id, event_name, event_id, reason, create_time, expire_time)
	SELECT DISTINCT ON (email) email, profile_id, event_name, id, reason, receive_time, suppress_until
	FROM stored WHERE outcome = 1 AND suppress
	ORDER BY email, ord
	` + suppressionConflictSQL + `
),
counted AS (
	INSERT INTO domain_report_counts (bucket, domain, shard, reports, bounces)
	SELECT bucket, domain, pg_backend_pid() % ` + strconv.Itoa(countShards) + `, count(*), count(*) FILTER (WHERE counts_as = 2)
	FROM stored WHERE domain <> '' AND counts_as IN (1, 2)
	GROUP BY bucket, domain
	ORDER BY bucket, domain
	ON CONFLICT (bucket, domain, shard) DO UPDATE
	SET reports = domain_report_counts.reports + excluded.reports,
		bounces = domain_report_counts.bounces + excluded.bounces
),
rejected AS (
	INSERT INTO rejected_payloads (receive_time, content_type, reason, body)
	SELECT receive_time, content_type, reason, body
	FROM unnest(` + p(0) + `::timestamptz[], ` + p(1) + `::text[], ` + p(2) + `::text[], ` + p(3) + `::bytea[])
		WITH ORDINALITY AS p(receive_time, content_type, reason, body, ord)
	ORDER BY ord
)
SELECT ord, id FROM stored`
}

// ingestArgs are the columns of one ingest statement's input, one slice
// per column: those of ingestSQL for delivery reports, of
// trackingIngestSQL for tracking reports.
type ingestArgs struct {
	kind store.ReportKind
	// Delivery reports' key.
	messageID, doneAt []string
	statusID, errorID []int32
	// Tracking reports' key and type.
	trackingKey, notificationType []string

	connectionID, profileID, email []string
	outcome                        []int16
	eventName, rule                []string
	rulesVersion                   []int64
	suppressUntil                  []*time.Time
	receiveTime, eventTime         []time.Time
	payload                        [][]byte
	paramsJSON                     [][]byte // nil: no params
	paramsBuf                      []byte
	paramsAt                       []int
	rcptSend                       []*string
	rcptSeq                        []int32
	suppress                       []bool
	reason                         []string
	domain                         []string
	countsAs                       []int16
	bucket                         []time.Time

	rejTime            []time.Time
	rejType, rejReason []string
	rejBody            [][]byte
	origin             []int // per input row: its index in the reports given
}

func newKindArgs(kind store.ReportKind, n int) *ingestArgs {
	a := &ingestArgs{
		kind:         kind,
		connectionID: make([]string, 0, n), profileID: make([]string, 0, n), email: make([]string, 0, n),
		outcome: make([]int16, 0, n), eventName: make([]string, 0, n), rule: make([]string, 0, n), rulesVersion: make([]int64, 0, n), suppressUntil: make([]*time.Time, 0, n),
		receiveTime: make([]time.Time, 0, n), eventTime: make([]time.Time, 0, n),
		payload: make([][]byte, 0, n), paramsJSON: make([][]byte, 0, n), paramsAt: make([]int, 0, n),
		rcptSend: make([]*string, 0, n), rcptSeq: make([]int32, 0, n),
		suppress: make([]bool, 0, n), reason: make([]string, 0, n),
		domain: make([]string, 0, n), countsAs: make([]int16, 0, n), bucket: make([]time.Time, 0, n),
		origin: make([]int, 0, n),
	}
	if kind == store.ReportTracking {
		a.trackingKey, a.notificationType, a.messageID = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	} else {
		a.messageID, a.doneAt = make([]string, 0, n), make([]string, 0, n)
		a.statusID, a.errorID = make([]int32, 0, n), make([]int32, 0, n)
	}
	return a
}

// newIngestArgs lays the reports out as columns, delivery and tracking
// reports apart, keeping only the first of reports of one kind that repeat
// a key: the later ones are duplicates whatever the database holds. The
// rejected payloads go with the delivery reports, or with the tracking
// reports if there are none. tracking is nil when there are no tracking
// reports, delivery when there are only tracking reports. The work happens
// before a connection is taken.
func newIngestArgs(reports []store.Report, rejected []store.RejectedPayload) (delivery, tracking *ingestArgs) {
	nTracking := 0
	for i := range reports {
		if reports[i].Kind == store.ReportTracking {
			nTracking++
		}
	}
	if nTracking < len(reports) || len(reports) == 0 {
		delivery = newKindArgs(store.ReportDelivery, len(reports)-nTracking)
	}
	if nTracking > 0 {
		tracking = newKindArgs(store.ReportTracking, nTracking)
	}
	seen := make(map[store.ReportKey]struct{}, len(reports)-nTracking)
	seenTracking := make(map[string]struct{}, nTracking)
	lastDoneAt, lastKey := "", ""
	for i := range reports {
		r := &reports[i]
		a := delivery
		if r.Kind == store.ReportTracking {
			if _, dup := seenTracking[r.TrackingKey]; dup {
				continue
			}
			seenTracking[r.TrackingKey] = struct{}{}
			a = tracking
			a.trackingKey = append(a.trackingKey, r.TrackingKey)
			a.notificationType = append(a.notificationType, r.NotificationType)
			a.messageID = append(a.messageID, r.Key.MessageID)
		} else {
			key := r.Key
			// The instant, not its text, is the key. A body's reports often
			// share one doneAt: it is parsed once.
			if key.DoneAt != lastDoneAt {
				lastDoneAt, lastKey = key.DoneAt, store.NormalizeDoneAt(key.DoneAt)
			}
			key.DoneAt = lastKey
			if _, dup := seen[key]; dup {
				continue
			}
			seen[key] = struct{}{}
			a.messageID = append(a.messageID, r.Key.MessageID)
			a.statusID = append(a.statusID, r.Key.StatusID)
			a.errorID = append(a.errorID, r.Key.ErrorID)
			a.doneAt = append(a.doneAt, key.DoneAt)
		}
		a.origin = append(a.origin, i)
		a.connectionID = append(a.connectionID, r.ConnectionID)
		a.profileID = append(a.profileID, r.ProfileID)
		a.email = append(a.email, r.Email)
		a.outcome = append(a.outcome, int16(r.Outcome))
		a.eventName = append(a.eventName, r.EventName)
		a.rule = append(a.rule, r.Rule)
		a.rulesVersion = append(a.rulesVersion, r.RulesVersion)
		var until *time.Time
		if r.Suppress && r.SuppressFor > 0 {
			t := r.ReceiveTime.Add(r.SuppressFor)
			until = &t
		}
		a.suppressUntil = append(a.suppressUntil, until)
		a.receiveTime = append(a.receiveTime, r.ReceiveTime)
		a.eventTime = append(a.eventTime, r.EventTime)
		a.payload = append(a.payload, r.Payload)
		// The params of all events go in one buffer (paramsAt marks where
		// each ends), sliced once it has stopped growing.
		if r.Outcome == store.OutcomeEvent {
			before := len(a.paramsBuf)
			a.paramsBuf = appendEventParams(a.paramsBuf, r.Params)
			if before == 0 && len(a.paramsBuf) > 0 {
				// Room for as many more as the first, saving the copies
				// of growing one byte at a time.
				a.paramsBuf = slices.Grow(a.paramsBuf, len(a.paramsBuf)*(len(reports)-i))
			}
		}
		a.paramsAt = append(a.paramsAt, len(a.paramsBuf))
		var send *string
		seq := int32(0)
		if r.Recipient != nil {
			send, seq = &r.Recipient.SendID, int32(r.Recipient.Seq)
		}
		a.rcptSend = append(a.rcptSend, send)
		a.rcptSeq = append(a.rcptSeq, seq)
		a.suppress = append(a.suppress, r.Suppress)
		a.reason = append(a.reason, store.SuppressionReason(r))
		a.domain = append(a.domain, r.Domain)
		a.countsAs = append(a.countsAs, int16(r.CountsAs))
		a.bucket = append(a.bucket, store.DomainCountBucketOf(r.ReceiveTime))
	}
	for _, a := range []*ingestArgs{delivery, tracking} {
		if a == nil {
			continue
		}
		start := 0
		for _, end := range a.paramsAt {
			var p []byte
			if end > start {
				p = a.paramsBuf[start:end:end]
			}
			a.paramsJSON = append(a.paramsJSON, p)
			start = end
		}
	}
	first := delivery
	if first == nil {
		first = tracking
	}
	m := len(rejected)
	first.rejTime, first.rejType, first.rejReason, first.rejBody = make([]time.Time, m), make([]string, m), make([]string, m), make([][]byte, m)
	for i, p := range rejected {
		first.rejTime[i], first.rejType[i], first.rejReason[i], first.rejBody[i] = p.ReceiveTime, p.ContentType, p.Reason, p.Body
	}
	if delivery != nil && tracking != nil {
		tracking.rejTime, tracking.rejType, tracking.rejReason, tracking.rejBody = []time.Time{}, []string{}, []string{}, [][]byte{}
	}
	return delivery, tracking
}

// statement is the SQL and parameters that ingest a.
func (a *ingestArgs) statement() (string, []any) {
	params := make([]*string, len(a.paramsJSON))
	for i, b := range a.paramsJSON {
		if b != nil {
			s := string(b)
			params[i] = &s
		}
	}
	common := []any{a.connectionID, a.profileID, a.email, a.outcome, a.eventName, a.rule, a.receiveTime}
	tail := []any{a.rcptSend, a.rcptSeq, a.suppress, a.reason, a.domain, a.countsAs, a.bucket,
		a.rejTime, a.rejType, a.rejReason, a.rejBody, a.rulesVersion, a.suppressUntil}
	if a.kind == store.ReportTracking {
		args := append([]any{a.trackingKey, a.notificationType, a.messageID}, common...)
		args = append(args, a.payload, a.eventTime, params)
		return trackingIngestSQL, append(args, tail...)
	}
	args := append([]any{a.messageID, a.statusID, a.errorID, a.doneAt}, common...)
	args = append(args, a.payload, a.eventTime, params)
	return ingestSQL, append(args, tail...)
}

// copyMinReports is the smallest call that goes by COPY: its transaction
// takes about six round trips, the statement one, so a webhook body of a
// few reports (Infobip posts many of one) is faster by the statement, as
// one of hundreds is by COPY.
const copyMinReports = 16

// IngestReports stores reports, their events and rejected: by COPY (see
// copyingest.go) when the call has copyMinReports or more of one kind,
// else, and when the COPY meets a report already stored, in one statement
// per kind of report;
// see ingestSQL. A call with both kinds, which the
// server does not make (each webhook has its kind), runs its two
// statements in one transaction, delivery reports first; its second
// statement takes its keys' locks after the first one's counts, so it can
// deadlock with another ingest, which Store.run retries. Concurrent calls
// of one kind in this process are merged into one transaction (see
// coalesce.go); other replicas run their own.
func (s *Store) IngestReports(ctx context.Context, reports []store.Report, rejected []store.RejectedPayload) (store.IngestResult, error) {
	if err := store.CheckReportKinds(reports); err != nil {
		return store.IngestResult{}, fmt.Errorf("postgres: ingest: %w", err)
	}
	if len(reports) == 0 && len(rejected) == 0 {
		// Nothing to make durable: no reason to take a connection.
		if s.closed.Load() {
			return store.IngestResult{}, errClosed
		}
		if err := ctx.Err(); err != nil {
			return store.IngestResult{}, err
		}
		return store.IngestResult{Stored: []bool{}, IDs: []int64{}}, nil
	}
	switch kinds := reportKinds(reports); kinds {
	case 1 << store.ReportDelivery, 0:
		return s.deliveries.ingest(ctx, reports, rejected)
	case 1 << store.ReportTracking:
		return s.tracking.ingest(ctx, reports, rejected)
	}
	res, _, err := s.ingestNow(ctx, reports, rejected, nil)
	return res, err
}

// reportKinds is the set of the reports' kinds, a bit each.
func reportKinds(reports []store.Report) int {
	kinds := 0
	for i := range reports {
		kinds |= 1 << reports[i].Kind
	}
	return kinds
}

// ingestNow is IngestReports in one transaction of the reports of one
// call, or of several merged: calls are then their lengths, in order, for
// the soft-bounce work of each (see coalesce.go), and reachedBy says, of
// each limit reached, which call's bounces reached it.
func (s *Store) ingestNow(ctx context.Context, reports []store.Report, rejected []store.RejectedPayload, calls []int) (res store.IngestResult, reachedBy []int, err error) {
	delivery, tracking := newIngestArgs(reports, rejected)
	// run reads what one statement stored into res.
	run := func(q interface {
		Query(context.Context, string, ...any) (pgx.Rows, error)
	}, a *ingestArgs) error {
		query, args := a.statement()
		rows, err := q.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var ord, id int64
		for rows.Next() {
			if err := rows.Scan(&ord, &id); err != nil {
				return err
			}
			i := a.origin[ord-1]
			res.Stored[i], res.IDs[i] = true, id
			res.Accepted++
			if reports[i].Outcome == store.OutcomeEvent {
				res.Events++
			}
		}
		return rows.Err()
	}
	// The COPY path (see copyingest.go) for a call of one kind, unless it
	// meets a report stored concurrently: then the statement.
	var (
		single *ingestArgs
		kind   *copyKind
	)
	switch {
	case tracking == nil:
		single, kind = delivery, &deliveryCopy
	case delivery == nil:
		single, kind = tracking, &trackingCopy
	}
	useCopy := single != nil && len(reports) >= s.copyMin
	// The soft-bounce counts of what was stored, in the same transaction
	// (see countSoftBounces): a call that may change them is never the
	// statement's own implicit transaction. Merged calls count one after
	// the other, each clearing its deliveries' counts before the bounces
	// of the calls that follow; deliveries alone are gathered into the
	// next call's work that counts bounces, or into a last one.
	counting := slices.ContainsFunc(reports, func(r store.Report) bool { return r.SoftBounce != store.SoftBounceIgnored })
	count := func(tx pgx.Tx) error {
		if calls == nil {
			calls = []int{len(reports)}
		}
		var resets store.SoftBounceWork
		at := 0
		reachedBy = reachedBy[:0]
		for call, n := range calls {
			work := store.SoftBounceWorkOf(reports[at:at+n], res.Stored[at:at+n], res.IDs[at:at+n])
			at += n
			resets.Resets = append(resets.Resets, work.Resets...)
			if len(work.Bounces) == 0 {
				continue
			}
			work.Resets, resets.Resets = resets.Resets, nil
			reached, err := countSoftBounces(ctx, tx, work)
			if err != nil {
				return err
			}
			res.SoftBounceLimitsReached = append(res.SoftBounceLimitsReached, reached...)
			for range reached {
				reachedBy = append(reachedBy, call)
			}
		}
		if resets.Empty() {
			return nil
		}
		_, err := countSoftBounces(ctx, tx, resets)
		return err
	}
	err = s.run(ctx, "ingest", func() error {
		res = store.IngestResult{Stored: make([]bool, len(reports)), IDs: make([]int64, len(reports))}
		if useCopy {
			err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
				if err := copyIngest(ctx, tx, kind, single, reports, &res); err != nil {
					return err
				}
				return count(tx)
			})
			if !errors.Is(err, errKeyRace) {
				return err
			}
			useCopy = false
			res = store.IngestResult{Stored: make([]bool, len(reports)), IDs: make([]int64, len(reports))}
		}
		if single != nil && !counting {
			return run(s.pool, single)
		}
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			for _, a := range []*ingestArgs{delivery, tracking} {
				if a == nil {
					continue
				}
				if err := run(tx, a); err != nil {
					return err
				}
			}
			return count(tx)
		})
	})
	if err != nil {
		return store.IngestResult{}, nil, err
	}
	res.Duplicates = len(reports) - res.Accepted
	return res, reachedBy, nil
}

// SaveRejectedPayload durably keeps a refused payload.
func (s *Store) SaveRejectedPayload(ctx context.Context, p store.RejectedPayload) error {
	return s.run(ctx, "save rejected payload", func() error {
		_, err := s.pool.Exec(ctx, `INSERT INTO rejected_payloads (receive_time, content_type, reason, body)
			VALUES ($1, $2, $3, $4)`, p.ReceiveTime, p.ContentType, p.Reason, p.Body)
		return err
	})
}
