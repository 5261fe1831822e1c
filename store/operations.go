package store

import (
	"context"
	"strconv"
	"time"
)

// Operation is a stored long-running operation (AIP-151), such as a
// reclassification. Spec and Progress are the server's encodings of what
// it does and how far it has got; the store never reads them. Any replica
// answers for an operation, and the one working on it holds the lease
// OperationLease(ID).
type Operation struct {
	ID int64
	// Kind says what the operation does, such as "reclassify".
	Kind string
	// RequestID is the caller's id of the request that started it
	// (AIP-155); "" when none was given.
	RequestID string
	// RequestDigest fingerprints the request that started it, so that a
	// retry with RequestID is told from another request reusing the id.
	RequestDigest []byte
	Spec          []byte
	Progress      []byte
	// Done is set when the operation has stopped, well or not; ErrorCode
	// (a gRPC code) and ErrorMessage say why when it did not finish.
	Done            bool
	ErrorCode       int32
	ErrorMessage    string
	CancelRequested bool
	CreatedBy       string
	CreateTime      time.Time
	UpdateTime      time.Time
}

// OperationLease names the lease under which one process at a time works
// on operation id.
func OperationLease(id int64) string { return "operation/" + strconv.FormatInt(id, 10) }

// OperationStep is what one step of an operation writes with its progress,
// in one transaction, under the operation's lease.
type OperationStep struct {
	OperationID int64
	// Owner must hold OperationLease(OperationID), else ErrLeaseLost.
	Owner string
	// Progress replaces the operation's progress.
	Progress []byte
	// Done finishes the operation, with ErrorCode and ErrorMessage when it
	// did not finish its job.
	Done         bool
	ErrorCode    int32
	ErrorMessage string
	Now          time.Time
}

// OperationStore keeps long-running operations.
type OperationStore interface {
	// CreateOperation stores op as a new operation and returns it with its
	// id and times. When op.RequestID is not empty and an operation with
	// that request id exists, that one is returned instead, with created
	// false.
	CreateOperation(ctx context.Context, op Operation) (stored Operation, created bool, err error)
	// GetOperation returns an operation, or ErrNotFound.
	GetOperation(ctx context.Context, id int64) (Operation, error)
	// ListOperations returns up to limit operations with ids below before
	// (all when before is 0), newest first.
	ListOperations(ctx context.Context, before int64, limit int) ([]Operation, error)
	// UnfinishedOperations returns every operation not done, oldest first.
	UnfinishedOperations(ctx context.Context) ([]Operation, error)
	// RequestCancel marks an operation as asked to stop and returns it; a
	// done operation is returned unchanged. ErrNotFound when there is none.
	RequestCancel(ctx context.Context, id int64, now time.Time) (Operation, error)
	// SaveOperationStep writes a step's progress (and end) alone, for a
	// step that changes nothing else, such as a dry run's.
	SaveOperationStep(ctx context.Context, step OperationStep) error
	// ReclassifyReports writes a reclassification step: the changes and the
	// step's progress in one transaction (see ReportChange). The progress
	// written is step.Progress, or progress(applied) when progress is not
	// nil, so that it can count what the step did; it may be called more
	// than once, when the transaction is run again.
	ReclassifyReports(ctx context.Context, step OperationStep, changes ReclassifyBatch,
		progress func(ReclassifyApplied) ([]byte, error)) (ReclassifyApplied, error)
	// ScanReports returns up to q.Limit stored reports of q.Kind with ids
	// above q.AfterID in the window and outcomes of q, by id.
	ScanReports(ctx context.Context, q ReportScan) ([]ScannedReport, error)
}

// ReportScan selects stored reports for a reclassification, in id order.
type ReportScan struct {
	Kind    ReportKind
	AfterID int64
	// Since and Until bound the receive time: [Since, Until); zero:
	// unbounded.
	Since, Until time.Time
	// Outcomes keeps only reports with these outcomes; empty: all.
	Outcomes []Outcome
	Limit    int
}

// ScannedReport is a stored report with the event it currently makes.
type ScannedReport struct {
	StoredReport
	// EventID is the report's current event: its own id, or the event a
	// reclassification gave it; 0 when its outcome makes no event.
	EventID int64
}

// ReportChange is a stored report whose classification under the rules in
// force differs from the stored one. Its current event (OldEventID, when
// not 0) is retracted; when Outcome is OutcomeEvent a new event is made
// with a new id, at the report's EventTime, and sent to consumers; the
// report's row takes the new classification.
type ReportChange struct {
	Kind       ReportKind
	ReportID   int64
	ProfileID  string
	Email      string
	OldEventID int64
	// OldRulesVersion is the version that made the old event.
	OldRulesVersion int64
	Outcome         Outcome
	EventName       string
	Rule            string
	EventTime       time.Time
	Params          map[string]string
	// Suppress adds the address to the suppression list with the new event
	// as the cause, unless it is suppressed already; SuppressFor is its
	// lifetime (0: for ever) and SuppressReason its reason.
	Suppress       bool
	SuppressFor    time.Duration
	SuppressReason string
}

// ReclassifyBatch is one step's changes.
type ReclassifyBatch struct {
	// Operation is the operation's name, recorded on each retraction.
	Operation    string
	RulesVersion int64
	Changes      []ReportChange
	// SuppressingNames are the event names whose events make a
	// suppression under the rules in force: a suppression whose event is
	// retracted passes to another live event of one of these names on the
	// same profile and address, and is lifted when there is none.
	SuppressingNames []string
}

// ReclassifyApplied counts what a step wrote.
type ReclassifyApplied struct {
	EventsAdded        int
	EventsRetracted    int
	SuppressionsAdded  int
	SuppressionsLifted int
	// NewEventIDs are the ids of the events made, in the order of Changes
	// (0 for a change that makes none).
	NewEventIDs []int64
}

// EventRetraction says when and why an event was retracted.
type EventRetraction struct {
	Time time.Time
	// Operation is the name of the operation that retracted it.
	Operation    string
	RulesVersion int64
	// ReplacedBy is the event made in its place; 0 when none.
	ReplacedBy int64
}

// CurrentEventID is the id of the event a stored report makes now: its own
// id, or current when a reclassification gave it another (current is the
// report's current_event_id column); 0 when its outcome makes no event.
func CurrentEventID(reportID int64, outcome Outcome, current int64) int64 {
	switch {
	case outcome != OutcomeEvent:
		return 0
	case current != 0:
		return current
	}
	return reportID
}
