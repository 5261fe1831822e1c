package server

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/protobuf/types/known/timestamppb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/store"
)

// suppressingEvents are the events after which later sends skip an
// address: a hard bounce will bounce again, and mailing a complainer again
// gets the sending domain blocked.
var suppressingEvents = map[string]bool{
	"newsletter.hardbounce": true,
	"newsletter.spambounce": true,
}

// SuppressionService implements ibmail.v1.SuppressionService.
type SuppressionService struct {
	ibmailv1.UnimplementedSuppressionServiceServer
	store store.Store
	rows  *rowSkippers
}

// NewSuppressionService returns a SuppressionService; rows it cannot show
// are logged to log.
func NewSuppressionService(st store.Store, log *slog.Logger) *SuppressionService {
	return &SuppressionService{store: st, rows: newRowSkippers(log)}
}

// ListSuppressions lists suppressed addresses in order.
func (s *SuppressionService) ListSuppressions(ctx context.Context, req *ibmailv1.ListSuppressionsRequest) (*ibmailv1.ListSuppressionsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 100, 1000)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest("suppressions"))
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ListSuppressions(ctx, tok.AfterKey, size+1)
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListSuppressionsResponse{}
	rows, resp.NextPageToken = cutPage(rows, size, tok.Query, func(s store.Suppression) pageToken { return pageToken{AfterKey: s.Email} })
	resp.Suppressions = showable(ctx, s.rows.suppressions, rows, func(r store.Suppression) string { return r.Email },
		func(r store.Suppression) (*ibmailv1.Suppression, error) {
			return &ibmailv1.Suppression{
				Email:      r.Email,
				ProfileId:  r.ProfileID,
				EventName:  r.EventName,
				EventId:    fmt.Sprint(r.EventID),
				Reason:     r.Reason,
				CreateTime: timestamppb.New(r.CreateTime),
			}, nil
		})
	return resp, nil
}

// DeleteSuppression lifts a suppression, so later sends reach the address
// again.
func (s *SuppressionService) DeleteSuppression(ctx context.Context, req *ibmailv1.DeleteSuppressionRequest) (*ibmailv1.DeleteSuppressionResponse, error) {
	email := normalizeEmail(req.GetEmail())
	if email == "" {
		return nil, invalidField("email", "is required")
	}
	// Not parsed as an address: a suppression keeps the address a report
	// named, whatever its form, and must stay liftable.
	if err := checkText("email", email, 254); err != nil {
		return nil, err
	}
	if err := s.store.DeleteSuppression(ctx, email); err != nil {
		return nil, notFoundAs(err, "suppression of", email)
	}
	return &ibmailv1.DeleteSuppressionResponse{}, nil
}
