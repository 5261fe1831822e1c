package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/store"
)

// ReasonRequestIDReused: an operation was started with this request id by
// a different request; a new request needs a new id.
const ReasonRequestIDReused Reason = "REQUEST_ID_REUSED"

// Operations is what ReclassifyReports needs beside the delivery report
// service: the worker to wake and the name of the caller's token.
type Operations struct {
	worker *reclassifier
	caller func(context.Context) string
}

// ReclassifyReports validates the request and stores it as an operation
// for a worker to run (see reclassify.go); the answer is the operation as
// stored, not yet begun.
func (s *DeliveryReportService) ReclassifyReports(ctx context.Context, req *ibmailv1.ReclassifyReportsRequest) (*ibmailv1.ReclassifyReportsResponse, error) {
	if err := checkRequestID("request_id", req.GetRequestId()); err != nil {
		return nil, err
	}
	spec := reclassifySpec{DryRun: req.GetDryRun(), RulesVersion: s.rules.Current().Version}
	if w := req.GetWindow(); w != nil {
		if w.GetStartTime() != nil {
			if err := w.GetStartTime().CheckValid(); err != nil {
				return nil, invalidField("window.start_time", err.Error())
			}
			spec.Since = w.GetStartTime().AsTime()
		}
		if w.GetEndTime() != nil {
			if err := w.GetEndTime().CheckValid(); err != nil {
				return nil, invalidField("window.end_time", err.Error())
			}
			spec.Until = w.GetEndTime().AsTime()
		}
	}
	if !spec.Since.IsZero() && !spec.Until.IsZero() && !spec.Since.Before(spec.Until) {
		return nil, invalidField("window.end_time", "must be after window.start_time")
	}
	if len(req.GetOutcomes()) > 3 {
		return nil, invalidField("outcomes", fmt.Sprintf("has %d outcomes; there are 3 (EVENT, NO_ERROR, UNCLASSIFIED)", len(req.GetOutcomes())))
	}
	for i, o := range req.GetOutcomes() {
		switch o {
		case ibmailv1.ReportOutcome_REPORT_OUTCOME_EVENT, ibmailv1.ReportOutcome_REPORT_OUTCOME_NO_ERROR, ibmailv1.ReportOutcome_REPORT_OUTCOME_UNCLASSIFIED:
			spec.Outcomes = append(spec.Outcomes, int32(o))
		default:
			return nil, invalidField(fmt.Sprintf("outcomes[%d]", i), "must be EVENT, NO_ERROR or UNCLASSIFIED")
		}
	}
	slices.Sort(spec.Outcomes)
	spec.Outcomes = slices.Compact(spec.Outcomes)
	if spec.Until.IsZero() {
		// What arrives while the job runs was classified by the rules it
		// runs, so the window ends where the job begins.
		spec.Until = s.now().UTC().Truncate(time.Microsecond)
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	digest, err := reclassifyDigest(req)
	if err != nil {
		return nil, err
	}
	progress, _ := json.Marshal(reclassifyProgress{})
	op, created, err := s.store.CreateOperation(ctx, store.Operation{Kind: operationKindReclassify, RequestID: req.GetRequestId(),
		Spec: specJSON, Progress: progress, CreatedBy: s.ops.caller(ctx), RequestDigest: digest})
	if err != nil {
		return nil, err
	}
	if !created && !bytes.Equal(op.RequestDigest, digest) {
		return nil, apiError(codes.AlreadyExists, ReasonRequestIDReused,
			fmt.Sprintf("request_id: %s started with it by a different request; give a new request_id", operationName(op.ID)))
	}
	if created {
		s.log.LogAttrs(ctx, slog.LevelInfo, "reclassification requested", slog.Int64("operation", op.ID),
			slog.Bool("dry_run", spec.DryRun), slog.Int64("rules_version", spec.RulesVersion))
		s.ops.worker.notify()
	}
	out, err := operationProto(op)
	if err != nil {
		return nil, err
	}
	return &ibmailv1.ReclassifyReportsResponse{Operation: out}, nil
}

// reclassifyDigest fingerprints a request without its request id, so that
// a retry is told from another request that reuses the id.
func reclassifyDigest(req *ibmailv1.ReclassifyReportsRequest) ([]byte, error) {
	c := proto.CloneOf(req)
	c.RequestId = ""
	return requestDigest(c)
}

// checkRequestID checks an AIP-155 request id: empty, or up to 64 letters,
// digits, '-' and '_' (a UUID fits).
func checkRequestID(field, id string) error {
	if len(id) > maxRequestIDLen {
		return invalidField(field, fmt.Sprintf("is %d bytes; at most %d", len(id), maxRequestIDLen))
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return invalidField(field, "must hold only letters, digits, '-' and '_'")
		}
	}
	return nil
}

// OperationService implements ibmail.v1.OperationService.
type OperationService struct {
	ibmailv1.UnimplementedOperationServiceServer
	store store.Store
	rows  *rowSkippers
}

// NewOperationService returns an OperationService reading st.
func NewOperationService(st store.Store, log *slog.Logger) *OperationService {
	return &OperationService{store: st, rows: newRowSkippers(log)}
}

// GetOperation returns an operation's state.
func (s *OperationService) GetOperation(ctx context.Context, req *ibmailv1.GetOperationRequest) (*ibmailv1.GetOperationResponse, error) {
	id, err := parseOperationName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	op, err := s.store.GetOperation(ctx, id)
	if err != nil {
		return nil, err
	}
	out, err := operationProto(op)
	if err != nil {
		return nil, err
	}
	return &ibmailv1.GetOperationResponse{Operation: out}, nil
}

// ListOperations pages operations newest first.
func (s *OperationService) ListOperations(ctx context.Context, req *ibmailv1.ListOperationsRequest) (*ibmailv1.ListOperationsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 20, 100)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest("operations"))
	if err != nil {
		return nil, err
	}
	if tok.ID < 0 {
		return nil, apiError(codes.InvalidArgument, ReasonInvalidPageToken, "page_token: not a token of this query; start again without it")
	}
	ops, err := s.store.ListOperations(ctx, tok.ID, size+1)
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListOperationsResponse{}
	ops, resp.NextPageToken = cutPage(ops, size, tok.Query, func(op store.Operation) pageToken { return pageToken{ID: op.ID} })
	resp.Operations = showable(ctx, s.rows.operations, ops, func(op store.Operation) string { return operationName(op.ID) }, operationProto)
	return resp, nil
}

// CancelOperation asks a running operation to stop at its next step.
func (s *OperationService) CancelOperation(ctx context.Context, req *ibmailv1.CancelOperationRequest) (*ibmailv1.CancelOperationResponse, error) {
	id, err := parseOperationName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	op, err := s.store.RequestCancel(ctx, id, time.Now())
	if err != nil {
		return nil, err
	}
	out, err := operationProto(op)
	if err != nil {
		return nil, err
	}
	return &ibmailv1.CancelOperationResponse{Operation: out}, nil
}
