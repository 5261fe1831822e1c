package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/rules"
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
	rules *rules.Book
	rows  *rowSkippers
	now   func() time.Time
}

// NewSuppressionService returns a SuppressionService; imports take their
// lifetime from the rules in force in book; rows it cannot show are logged
// to log.
func NewSuppressionService(st store.Store, book *rules.Book, log *slog.Logger) *SuppressionService {
	return &SuppressionService{store: st, rules: book, rows: newRowSkippers(log), now: time.Now}
}

// ListSuppressions lists suppressed addresses in order.
func (s *SuppressionService) ListSuppressions(ctx context.Context, req *ibmailv1.ListSuppressionsRequest) (*ibmailv1.ListSuppressionsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 100, 1000)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest("suppressions", fmt.Sprint(req.GetIncludeExpired())))
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ListSuppressions(ctx, store.SuppressionQuery{AfterEmail: tok.AfterKey, Limit: size + 1, IncludeExpired: req.GetIncludeExpired(), Now: s.now()})
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListSuppressionsResponse{}
	rows, resp.NextPageToken = cutPage(rows, size, tok.Query, func(s store.Suppression) pageToken { return pageToken{AfterKey: s.Email} })
	resp.Suppressions = showable(ctx, s.rows.suppressions, rows, func(r store.Suppression) string { return r.Email }, suppressionProto)
	return resp, nil
}

// suppressionProto is the API form of a suppression.
func suppressionProto(r store.Suppression) (*ibmailv1.Suppression, error) {
	p := &ibmailv1.Suppression{
		Email:      r.Email,
		ProfileId:  r.ProfileID,
		EventName:  r.EventName,
		Reason:     r.Reason,
		CreateTime: timestamppb.New(r.CreateTime),
		Origin:     ibmailv1.SuppressionOrigin(r.Origin),
	}
	if r.EventID != 0 {
		p.EventId = strconv.FormatInt(r.EventID, 10)
		p.CauseEventIds = append(p.CauseEventIds, p.EventId)
	}
	for _, id := range r.CauseEventIDs {
		p.CauseEventIds = append(p.CauseEventIds, strconv.FormatInt(id, 10))
	}
	if !r.ExpireTime.IsZero() {
		p.ExpireTime = timestamppb.New(r.ExpireTime)
	}
	return p, nil
}

// ImportSuppressions adds the suppressions of a CSV or JSON list.
func (s *SuppressionService) ImportSuppressions(ctx context.Context, req *ibmailv1.ImportSuppressionsRequest) (*ibmailv1.ImportSuppressionsResponse, error) {
	if err := checkRuleText("default_reason", req.GetDefaultReason(), maxReasonRunes); err != nil {
		return nil, err
	}
	if n := len(req.GetContent()); n > maxImportBytes {
		return nil, invalidField("content", fmt.Sprintf("has %d bytes; at most %d", n, maxImportBytes))
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	list := suppressionList{
		defaultReason: req.GetDefaultReason(),
		now:           now,
		lifetime:      s.rules.Current().Engine.SuppressionLifetime(classifier.CauseImport),
	}
	var err error
	switch req.GetFormat() {
	case ibmailv1.SuppressionFormat_SUPPRESSION_FORMAT_CSV:
		err = list.parseCSV(req.GetContent())
	case ibmailv1.SuppressionFormat_SUPPRESSION_FORMAT_JSON:
		err = list.parseJSON(req.GetContent())
	default:
		return nil, invalidField("format", "give SUPPRESSION_FORMAT_CSV or SUPPRESSION_FORMAT_JSON")
	}
	if err != nil {
		return nil, err
	}
	added := 0
	for chunk := range slices.Chunk(list.rows, 1000) {
		n, err := s.store.AddSuppressions(ctx, chunk)
		if err != nil {
			return nil, err
		}
		added += n
	}
	return &ibmailv1.ImportSuppressionsResponse{
		Imported:          int32(added),
		AlreadySuppressed: int32(len(list.rows) - added),
		Errors:            list.errors,
		Refused:           int32(list.refused),
	}, nil
}

// exportChunkBytes is the size past which an export sends what it has.
const exportChunkBytes = 256 << 10

// ExportSuppressions streams the list, a page at a time.
func (s *SuppressionService) ExportSuppressions(req *ibmailv1.ExportSuppressionsRequest, stream ibmailv1.SuppressionService_ExportSuppressionsServer) error {
	ctx := stream.Context()
	var w suppressionWriter
	switch req.GetFormat() {
	case ibmailv1.SuppressionFormat_SUPPRESSION_FORMAT_CSV:
		w = &csvSuppressions{}
	case ibmailv1.SuppressionFormat_SUPPRESSION_FORMAT_JSON:
		w = &jsonSuppressions{}
	default:
		return invalidField("format", "give SUPPRESSION_FORMAT_CSV or SUPPRESSION_FORMAT_JSON")
	}
	now := s.now()
	var buf bytes.Buffer
	w.begin(&buf)
	for after := ""; ; {
		rows, err := s.store.ListSuppressions(ctx, store.SuppressionQuery{AfterEmail: after, Limit: 1000, IncludeExpired: req.GetIncludeExpired(), Now: now})
		if err != nil {
			return err
		}
		flush := func() error {
			if buf.Len() == 0 {
				return nil
			}
			err := stream.Send(&ibmailv1.ExportSuppressionsResponse{Content: bytes.Clone(buf.Bytes())})
			buf.Reset()
			return err
		}
		for _, r := range rows {
			if err := w.row(&buf, r); err != nil {
				s.rows.suppressions.Skip(ctx, r.Email, err)
			}
			// Chunks stay well under any client's message limit (gRPC's
			// default is 4 MiB), however long the rows.
			if buf.Len() >= exportChunkBytes {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if len(rows) < 1000 {
			w.end(&buf)
		}
		if err := flush(); err != nil {
			return err
		}
		if len(rows) < 1000 {
			return nil
		}
		after = rows[len(rows)-1].Email
	}
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
