package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/rules"
	"github.com/ibmail/ibmail/store"
)

// A reclassification runs the rules in force over stored reports as a
// long-running operation: a worker on every replica looks for unfinished
// operations, and the one that takes an operation's lease works on it in
// steps of reclassifyStep reports, each written with the operation's
// progress in one transaction. A replica that stops mid-job leaves its
// lease to run out; another (or the same, restarted) takes it and goes on
// after the last step committed, so the job is done once.

const (
	// operationKindReclassify is the store's kind of a reclassification.
	operationKindReclassify = "reclassify"
	// reclassifyStep is how many reports one step examines: small enough
	// that a step's transaction holds the writer briefly beside the
	// webhooks, large enough that progress costs little per report.
	reclassifyStep = 200
	// reclassifySampleSize bounds the changes an operation keeps to show.
	reclassifySampleSize = 100
	// DefaultOperationLease is how long a worker's lease on an operation
	// lasts without renewal: a replica that stopped mid-job is taken over
	// after it. Each step renews it.
	DefaultOperationLease = 15 * time.Second
	// DefaultOperationPoll is how often a worker looks for operations that
	// no replica works on.
	DefaultOperationPoll = time.Second
	// maxRequestIDLen bounds an AIP-155 request id.
	maxRequestIDLen = 64
)

// reclassifySpec is what a reclassification does, as the store keeps it.
type reclassifySpec struct {
	Since        time.Time `json:"since"`
	Until        time.Time `json:"until"`
	Outcomes     []int32   `json:"outcomes,omitempty"`
	DryRun       bool      `json:"dryRun"`
	RulesVersion int64     `json:"rulesVersion"`
}

// reclassifyCounts are ReclassifyCounts as the store keeps them.
type reclassifyCounts struct {
	Examined           int64 `json:"examined"`
	Unchanged          int64 `json:"unchanged"`
	Changed            int64 `json:"changed"`
	EventsAdded        int64 `json:"eventsAdded"`
	EventsRetracted    int64 `json:"eventsRetracted"`
	SuppressionsAdded  int64 `json:"suppressionsAdded"`
	SuppressionsLifted int64 `json:"suppressionsLifted"`
}

// reclassifySample is one change kept to show.
type reclassifySample struct {
	Report    string            `json:"report"`
	ProfileID string            `json:"profileId"`
	Before    classificationRow `json:"before"`
	After     classificationRow `json:"after"`
}

type classificationRow struct {
	Outcome   int32  `json:"outcome"`
	EventName string `json:"eventName,omitempty"`
	Rule      string `json:"rule,omitempty"`
}

// reclassifyProgress is how far a reclassification has got: the kind of
// report it is at (delivery, then tracking) and the last id done.
type reclassifyProgress struct {
	Kind    store.ReportKind   `json:"kind"`
	AfterID int64              `json:"afterId"`
	Counts  reclassifyCounts   `json:"counts"`
	Sample  []reclassifySample `json:"sample,omitempty"`
}

// reclassifier is the worker of one replica.
type reclassifier struct {
	store store.Store
	book  *rules.Book
	log   *slog.Logger
	owner string
	lease time.Duration
	poll  time.Duration
	wake  chan struct{}
	now   func() time.Time
	// stepDone, when set by a test, is called after each step an operation
	// committed; an error stops the worker there as if its process died,
	// keeping its lease until it runs out.
	stepDone func(op int64, step int) error
}

func newReclassifier(st store.Store, book *rules.Book, lease, poll time.Duration, log *slog.Logger) *reclassifier {
	if lease <= 0 {
		lease = DefaultOperationLease
	}
	if poll <= 0 {
		poll = DefaultOperationPoll
	}
	return &reclassifier{store: st, book: book, log: log, lease: lease, poll: poll, now: time.Now,
		owner: "reclassifier-" + strconv.FormatUint(rand.Uint64(), 36), wake: make(chan struct{}, 1)}
}

// notify wakes the worker for a new operation.
func (w *reclassifier) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// errWorkerStopped is a test's stop (see stepDone).
var errWorkerStopped = errors.New("worker stopped")

// Run works on operations until ctx ends.
func (w *reclassifier) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
		if err := w.runPending(ctx); errors.Is(err, errWorkerStopped) {
			return
		} else if err != nil && ctx.Err() == nil {
			w.log.Warn("reclassification worker", slog.String("error", err.Error()))
		}
		t.Reset(w.poll)
	}
}

// runPending works on every unfinished operation whose lease it can take.
func (w *reclassifier) runPending(ctx context.Context) error {
	ops, err := w.store.UnfinishedOperations(ctx)
	if err != nil {
		return err
	}
	for _, op := range ops {
		if op.Kind != operationKindReclassify {
			continue
		}
		held, err := w.store.AcquireLease(ctx, store.OperationLease(op.ID), w.owner, w.now(), w.lease)
		if err != nil || !held {
			if err != nil {
				return err
			}
			continue
		}
		err = w.work(ctx, op.ID)
		if errors.Is(err, errWorkerStopped) {
			return err
		}
		// Another replica may go on at once rather than after the lease.
		_ = w.store.ReleaseLease(context.WithoutCancel(ctx), store.OperationLease(op.ID), w.owner)
		if err != nil && !errors.Is(err, store.ErrLeaseLost) {
			return fmt.Errorf("operation %d: %w", op.ID, err)
		}
	}
	return nil
}

// work runs an operation's steps while it holds the lease.
func (w *reclassifier) work(ctx context.Context, id int64) error {
	for step := 1; ; step++ {
		op, err := w.store.GetOperation(ctx, id)
		if err != nil {
			return err
		}
		if op.Done {
			return nil
		}
		var (
			spec     reclassifySpec
			progress reclassifyProgress
		)
		if err := json.Unmarshal(op.Spec, &spec); err != nil {
			return w.fail(ctx, op, codes.Internal, "the operation's stored request does not decode: "+err.Error())
		}
		if err := json.Unmarshal(op.Progress, &progress); err != nil {
			return w.fail(ctx, op, codes.Internal, "the operation's stored progress does not decode: "+err.Error())
		}
		if op.CancelRequested {
			return w.finish(ctx, op, progress, codes.Canceled, "cancelled at the caller's request; what was done stays done")
		}
		snap, err := w.snapshot(ctx, spec.RulesVersion)
		if err != nil {
			return w.fail(ctx, op, codes.FailedPrecondition, fmt.Sprintf("rules version %d cannot be read: %v", spec.RulesVersion, err))
		}
		done, err := w.step(ctx, op, spec, &progress, snap)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if w.stepDone != nil {
			if err := w.stepDone(id, step); err != nil {
				return errWorkerStopped
			}
		}
		if held, err := w.store.AcquireLease(ctx, store.OperationLease(id), w.owner, w.now(), w.lease); err != nil {
			return err
		} else if !held {
			return store.ErrLeaseLost
		}
	}
}

// snapshot is the rules of version v: the one in force when it is, else
// the stored version, or the base for 0.
func (w *reclassifier) snapshot(ctx context.Context, v int64) (*rules.Snapshot, error) {
	if cur := w.book.Current(); cur.Version == v {
		return cur, nil
	}
	if v == 0 {
		return w.book.Base(), nil
	}
	return w.book.Get(ctx, v)
}

// step examines the next reports and writes what changed with the
// progress; done when the operation finished.
func (w *reclassifier) step(ctx context.Context, op store.Operation, spec reclassifySpec, progress *reclassifyProgress, snap *rules.Snapshot) (bool, error) {
	outcomes := make([]store.Outcome, len(spec.Outcomes))
	for i, o := range spec.Outcomes {
		outcomes[i] = store.Outcome(o)
	}
	rows, err := w.store.ScanReports(ctx, store.ReportScan{Kind: progress.Kind, AfterID: progress.AfterID,
		Since: spec.Since, Until: spec.Until, Outcomes: outcomes, Limit: reclassifyStep})
	if err != nil {
		return false, err
	}
	if len(rows) == 0 {
		if progress.Kind == store.ReportDelivery {
			progress.Kind, progress.AfterID = store.ReportTracking, 0
			return false, w.save(ctx, op, *progress, false, codes.OK, "")
		}
		return true, w.finish(ctx, op, *progress, codes.OK, "")
	}
	progress.AfterID = rows[len(rows)-1].ID
	batch := store.ReclassifyBatch{Operation: operationName(op.ID), RulesVersion: snap.Version,
		SuppressingNames: suppressingNames(snap)}
	for _, row := range rows {
		progress.Counts.Examined++
		c, changed, err := reclassifyRow(ctx, w.store, snap, row)
		if errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
			return false, err
		}
		if err != nil {
			// A row this server cannot read back is left as it is, as the
			// listings skip it.
			w.log.Warn("reclassification skips a stored report", slog.Int64("operation", op.ID),
				slog.Int64("report", row.ID), slog.String("error", err.Error()))
		}
		if !changed {
			progress.Counts.Unchanged++
			continue
		}
		progress.Counts.Changed++
		if len(progress.Sample) < reclassifySampleSize {
			progress.Sample = append(progress.Sample, reclassifySample{Report: reportName(row.Kind, row.ID), ProfileID: row.ProfileID,
				Before: classificationRow{Outcome: int32(row.Outcome), EventName: row.EventName, Rule: row.Rule},
				After:  classificationRow{Outcome: int32(c.Outcome), EventName: c.EventName, Rule: c.Rule}})
		}
		batch.Changes = append(batch.Changes, c)
	}
	if spec.DryRun {
		if err := w.countDry(ctx, batch, &progress.Counts); err != nil {
			return false, err
		}
		return false, w.save(ctx, op, *progress, false, codes.OK, "")
	}
	base := *progress
	step := store.OperationStep{OperationID: op.ID, Owner: w.owner, Now: w.now()}
	_, err = w.store.ReclassifyReports(ctx, step, batch, func(a store.ReclassifyApplied) ([]byte, error) {
		p := base
		p.Counts.EventsAdded += int64(a.EventsAdded)
		p.Counts.EventsRetracted += int64(a.EventsRetracted)
		p.Counts.SuppressionsAdded += int64(a.SuppressionsAdded)
		p.Counts.SuppressionsLifted += int64(a.SuppressionsLifted)
		return json.Marshal(p)
	})
	return false, err
}

// countDry counts what a batch would add and retract, writing nothing. A
// suppression counts as added when the address has none in force, and as
// lifted when it is held by the event retracted; one that would pass to
// another event of the address counts as lifted here.
func (w *reclassifier) countDry(ctx context.Context, batch store.ReclassifyBatch, counts *reclassifyCounts) error {
	emails := make([]string, 0, len(batch.Changes))
	for _, c := range batch.Changes {
		if c.Email != "" {
			emails = append(emails, c.Email)
		}
	}
	held, err := w.store.SuppressedAmong(ctx, emails)
	if err != nil {
		return err
	}
	now := w.now()
	for _, c := range batch.Changes {
		sp, ok := held[c.Email]
		if c.OldEventID != 0 {
			counts.EventsRetracted++
			if ok && sp.Origin == store.SuppressionFromEvent && sp.EventID == c.OldEventID {
				counts.SuppressionsLifted++
				ok = false
			}
		}
		if c.Outcome == store.OutcomeEvent {
			counts.EventsAdded++
			if c.Suppress && c.Email != "" && (!ok || !sp.Active(now)) {
				counts.SuppressionsAdded++
			}
		}
	}
	return nil
}

// reclassifyRow classifies a stored report under snap through the
// webhook's own door and says whether its outcome or event changed.
//
// A report that came with a connection's webhook secret suppresses only
// when it is about one of that connection's sends, as at ingest (see
// attribute), which is looked up again here for such a report.
func reclassifyRow(ctx context.Context, st store.SendStore, snap *rules.Snapshot, row store.ScannedReport) (store.ReportChange, bool, error) {
	var (
		rep          store.Report
		callbackSend string
	)
	if row.Kind == store.ReportTracking {
		r := &ibmailv1.TrackingReport{}
		if err := proto.Unmarshal(row.Payload, r); err != nil {
			return store.ReportChange{}, false, err
		}
		var err error
		if rep, callbackSend, err = toTrackingReport(snap, r, row.ConnectionID, row.ReceiveTime); err != nil {
			return store.ReportChange{}, false, err
		}
	} else {
		r := &ibmailv1.DeliveryReport{}
		if err := proto.Unmarshal(row.Payload, r); err != nil {
			return store.ReportChange{}, false, err
		}
		cb := parseCallback(r)
		var err error
		if rep, err = toStoreReport(snap, r, cb, row.ConnectionID, row.ReceiveTime, nil); err != nil {
			return store.ReportChange{}, false, err
		}
		rep.Suppress, _ = deliveryEffects(r, rep)
		if rep.Suppress {
			rep.SuppressFor = snap.Engine.SuppressionLifetime(rep.EventName)
		}
		callbackSend = strings.TrimSpace(cb.SendID)
	}
	if rep.Outcome == row.Outcome && rep.EventName == row.EventName {
		return store.ReportChange{}, false, nil
	}
	if rep.Suppress && row.ConnectionID != "" {
		// Only whether it is attributed matters here, not to which domain.
		rep.CountsAs = store.CountNone
		one := []store.Report{rep}
		if err := attribute(ctx, st, nil, row.ConnectionID, one, []string{callbackSend}); err != nil {
			return store.ReportChange{}, false, err
		}
		rep.Suppress = one[0].Suppress
	}
	c := store.ReportChange{
		Kind: row.Kind, ReportID: row.ID, ProfileID: row.ProfileID, Email: row.Email,
		OldEventID: row.EventID, OldRulesVersion: row.RulesVersion,
		Outcome: rep.Outcome, EventName: rep.EventName, Rule: rep.Rule, EventTime: rep.EventTime, Params: rep.Params,
		Suppress: rep.Suppress && rep.Outcome == store.OutcomeEvent, SuppressFor: rep.SuppressFor,
	}
	if c.Suppress {
		c.SuppressReason = store.SuppressionReason(&rep)
	}
	return c, true, nil
}

// suppressingNames are the event names that make a suppression under
// snap: the bounces a delivery report suppresses with, and the events of
// tracking rules that suppress.
func suppressingNames(snap *rules.Snapshot) []string {
	out := make([]string, 0, len(suppressingEvents)+4)
	for n := range suppressingEvents {
		out = append(out, n)
	}
	for _, r := range snap.Engine.TrackingRules() {
		if r.Suppress != "" {
			out = append(out, r.Event)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (w *reclassifier) save(ctx context.Context, op store.Operation, p reclassifyProgress, done bool, code codes.Code, msg string) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return w.store.SaveOperationStep(ctx, store.OperationStep{OperationID: op.ID, Owner: w.owner, Progress: b,
		Done: done, ErrorCode: int32(code), ErrorMessage: msg, Now: w.now()})
}

func (w *reclassifier) finish(ctx context.Context, op store.Operation, p reclassifyProgress, code codes.Code, msg string) error {
	if err := w.save(ctx, op, p, true, code, msg); err != nil {
		return err
	}
	w.log.Info("reclassification finished", slog.Int64("operation", op.ID), slog.String("code", code.String()),
		slog.Int64("examined", p.Counts.Examined), slog.Int64("changed", p.Counts.Changed))
	return nil
}

// fail ends an operation that cannot go on, keeping its progress.
func (w *reclassifier) fail(ctx context.Context, op store.Operation, code codes.Code, msg string) error {
	var p reclassifyProgress
	_ = json.Unmarshal(op.Progress, &p)
	return w.finish(ctx, op, p, code, msg)
}

// operationName is an operation's resource name.
func operationName(id int64) string { return "operations/" + strconv.FormatInt(id, 10) }

// reportName is a stored report's resource name.
func reportName(kind store.ReportKind, id int64) string {
	if kind == store.ReportTracking {
		return "trackingReports/" + strconv.FormatInt(id, 10)
	}
	return "deliveryReports/" + strconv.FormatInt(id, 10)
}

// parseOperationName reads `operations/{id}`.
func parseOperationName(field, name string) (int64, error) {
	rest, ok := bytes.CutPrefix([]byte(name), []byte("operations/"))
	id, err := strconv.ParseInt(string(rest), 10, 64)
	if !ok || err != nil || id <= 0 || strconv.FormatInt(id, 10) != string(rest) {
		return 0, invalidField(field, "must be an operation's name, such as operations/12")
	}
	return id, nil
}

// operationProto is an operation as the API shows it.
func operationProto(op store.Operation) (*ibmailv1.Operation, error) {
	var (
		spec     reclassifySpec
		progress reclassifyProgress
	)
	if err := json.Unmarshal(op.Spec, &spec); err != nil {
		return nil, fmt.Errorf("operation %d: request: %w", op.ID, err)
	}
	if err := json.Unmarshal(op.Progress, &progress); err != nil {
		return nil, fmt.Errorf("operation %d: progress: %w", op.ID, err)
	}
	counts := &ibmailv1.ReclassifyCounts{Examined: progress.Counts.Examined, Unchanged: progress.Counts.Unchanged,
		Changed: progress.Counts.Changed, EventsAdded: progress.Counts.EventsAdded, EventsRetracted: progress.Counts.EventsRetracted,
		SuppressionsAdded: progress.Counts.SuppressionsAdded, SuppressionsLifted: progress.Counts.SuppressionsLifted}
	meta := &ibmailv1.ReclassifyReportsMetadata{
		Window:          &ibmailv1.ReclassifyWindow{},
		DryRun:          spec.DryRun,
		RulesVersion:    spec.RulesVersion,
		Counts:          counts,
		CreateTime:      timestamppb.New(op.CreateTime),
		UpdateTime:      timestamppb.New(op.UpdateTime),
		CreatedBy:       op.CreatedBy,
		CancelRequested: op.CancelRequested,
	}
	if !spec.Since.IsZero() {
		meta.Window.StartTime = timestamppb.New(spec.Since)
	}
	if !spec.Until.IsZero() {
		meta.Window.EndTime = timestamppb.New(spec.Until)
	}
	for _, o := range spec.Outcomes {
		meta.Outcomes = append(meta.Outcomes, ibmailv1.ReportOutcome(o))
	}
	out := &ibmailv1.Operation{Name: operationName(op.ID), Done: op.Done,
		Metadata: &ibmailv1.Operation_ReclassifyMetadata{ReclassifyMetadata: meta}}
	if !op.Done {
		return out, nil
	}
	if op.ErrorCode != int32(codes.OK) {
		out.Result = &ibmailv1.Operation_Error{Error: &ibmailv1.OperationError{Code: op.ErrorCode, Message: op.ErrorMessage}}
		return out, nil
	}
	res := &ibmailv1.ReclassifyReportsResult{Counts: counts}
	for _, s := range progress.Sample {
		res.Sample = append(res.Sample, &ibmailv1.ReclassifyChange{Report: s.Report, ProfileId: s.ProfileID,
			Before: classificationOf(s.Before), After: classificationOf(s.After)})
	}
	out.Result = &ibmailv1.Operation_ReclassifyResult{ReclassifyResult: res}
	return out, nil
}

func classificationOf(c classificationRow) *ibmailv1.Classification {
	return &ibmailv1.Classification{Outcome: ibmailv1.ReportOutcome(c.Outcome), EventName: c.EventName,
		Classified: c.Outcome == int32(store.OutcomeEvent), Rule: c.Rule}
}
