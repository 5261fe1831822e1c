package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/metrics"
	"github.com/ibmail/ibmail/store"
)

// maxReportsPerBody bounds one webhook body; Infobip's buckets hold at most
// 2000 reports.
const maxReportsPerBody = 10000

// DeliveryReportService implements ibmail.v1.DeliveryReportService: the
// webhook that stores Infobip's reports and makes their events.
type DeliveryReportService struct {
	ibmailv1.UnimplementedDeliveryReportServiceServer
	engine *classifier.Engine
	store  store.Store
	auth   WebhookAuthenticator
	log    *slog.Logger
	now    func() time.Time
}

// NewDeliveryReportService returns a DeliveryReportService.
func NewDeliveryReportService(engine *classifier.Engine, st store.Store, auth WebhookAuthenticator, log *slog.Logger) *DeliveryReportService {
	return &DeliveryReportService{engine: engine, store: st, auth: auth, log: log, now: time.Now}
}

// IngestDeliveryReports authenticates the caller, then stores every valid
// report with its event in one durable transaction before answering. A
// report that cannot be stored as such (no messageId, say) is kept as a
// rejected payload in the same transaction and named in the answer, so that
// one bad report neither loses the others nor makes Infobip retry them.
func (s *DeliveryReportService) IngestDeliveryReports(ctx context.Context, req *ibmailv1.IngestDeliveryReportsRequest) (*ibmailv1.IngestDeliveryReportsResponse, error) {
	connectionID, err := authenticateWebhook(ctx, s.auth, webhookCredential(ctx))
	if err != nil {
		return nil, err
	}
	n := len(req.GetResults())
	if n == 0 {
		return nil, apiError(codes.InvalidArgument, ReasonMalformedBody,
			`results: the body holds no reports; Infobip sends {"results":[...]} with at least one`)
	}
	if n > maxReportsPerBody {
		return nil, invalidField("results", fmt.Sprintf("has %d reports; at most %d fit in one body", n, maxReportsPerBody))
	}
	received := s.now().UTC()
	reports := make([]store.Report, 0, n)
	callbackSends := make([]string, 0, n)
	var rejected []store.RejectedPayload
	resp := &ibmailv1.IngestDeliveryReportsResponse{}
	for i, r := range req.GetResults() {
		payload, err := proto.Marshal(r)
		if err == nil {
			cb := parseCallback(r)
			var rep store.Report
			err = checkID("callbackData.ibmailSendId", cb.SendID, 256)
			if err == nil {
				rep, err = toStoreReport(s.engine, r, cb, connectionID, received, payload)
			}
			if err == nil {
				reports = append(reports, rep)
				callbackSends = append(callbackSends, strings.TrimSpace(cb.SendID))
				continue
			}
		}
		reason := safeText(fmt.Sprintf("results[%d]: %v", i, err), maxMessageBytes)
		body, _ := protojson.Marshal(r)
		rejected = append(rejected, store.RejectedPayload{
			ReceiveTime: received, ContentType: "application/json", Reason: reason, Body: body,
		})
		resp.Rejected = append(resp.Rejected, &ibmailv1.RejectedReport{
			Index: int32(i), MessageId: r.GetMessageId(), Reason: reason,
		})
	}
	if err := s.attribute(ctx, reports, callbackSends); err != nil {
		return nil, err
	}
	res, err := s.store.IngestReports(ctx, reports, rejected)
	if err != nil {
		return nil, err
	}
	resp.Accepted, resp.Duplicates, resp.Events = int32(res.Accepted), int32(res.Duplicates), int32(res.Events)
	for i, stored := range res.Stored {
		if !stored {
			continue
		}
		if reports[i].Outcome == store.OutcomeUnclassified {
			resp.Unclassified++
		}
		metrics.ReportsIngested.WithLabelValues(outcomeLabel(reports[i].Outcome), reports[i].EventName).Inc()
	}
	metrics.ReportsDuplicate.Add(float64(res.Duplicates))
	metrics.ReportsRejected.Add(float64(len(rejected)))
	if resp.Unclassified > 0 || len(resp.Rejected) > 0 {
		s.log.LogAttrs(ctx, slog.LevelWarn, "delivery reports need attention",
			slog.Int("unclassified", int(resp.Unclassified)), slog.Int("rejected", len(resp.Rejected)))
	}
	return resp, nil
}

// ListDeliveryReports lists stored reports, newest first.
func (s *DeliveryReportService) ListDeliveryReports(ctx context.Context, req *ibmailv1.ListDeliveryReportsRequest) (*ibmailv1.ListDeliveryReportsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 50, 1000)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest("reports", req.GetOutcome().String()))
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ListReports(ctx, store.ReportQuery{
		Outcome: store.Outcome(req.GetOutcome()), Limit: size + 1, BeforeID: tok.ID,
	})
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListDeliveryReportsResponse{}
	rows, resp.NextPageToken = cutPage(rows, size, tok.Query, func(r store.StoredReport) pageToken { return pageToken{ID: r.ID} })
	for _, row := range rows {
		report := &ibmailv1.DeliveryReport{}
		if err := proto.Unmarshal(row.Payload, report); err != nil {
			return nil, fmt.Errorf("stored report %d: %w", row.ID, err)
		}
		resp.Reports = append(resp.Reports, &ibmailv1.StoredDeliveryReport{
			Id:             fmt.Sprint(row.ID),
			Report:         report,
			Classification: &ibmailv1.Classification{Outcome: ibmailv1.ReportOutcome(row.Outcome), EventName: row.EventName, Classified: row.Outcome == store.OutcomeEvent, Rule: row.Rule},
			ProfileId:      row.ProfileID,
			ReceiveTime:    timestamppb.New(row.ReceiveTime),
			ConnectionId:   row.ConnectionID,
		})
	}
	return resp, nil
}

// ListRejectedPayloads lists refused payloads, newest first.
func (s *DeliveryReportService) ListRejectedPayloads(ctx context.Context, req *ibmailv1.ListRejectedPayloadsRequest) (*ibmailv1.ListRejectedPayloadsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 50, 1000)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest("rejected"))
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ListRejectedPayloads(ctx, store.RejectedQuery{Limit: size + 1, BeforeID: tok.ID})
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListRejectedPayloadsResponse{}
	rows, resp.NextPageToken = cutPage(rows, size, tok.Query, func(p store.RejectedPayload) pageToken { return pageToken{ID: p.ID} })
	for _, row := range rows {
		resp.Payloads = append(resp.Payloads, &ibmailv1.RejectedPayload{
			Id:          fmt.Sprint(row.ID),
			ReceiveTime: timestamppb.New(row.ReceiveTime),
			ContentType: row.ContentType,
			Reason:      row.Reason,
			Body:        row.Body,
		})
	}
	return resp, nil
}

// attribute ties reports to the recipients of this server's sends: by
// Infobip's messageId, stored when Infobip accepted the message, or, for a
// report that beats that answer, by the send id in callbackData and the
// address. Attributed reports land on the profile given at send time, and
// bounces that warrant it suppress the address.
func (s *DeliveryReportService) attribute(ctx context.Context, reports []store.Report, callbackSends []string) error {
	for i := range reports {
		reports[i].Suppress = suppressingEvents[reports[i].EventName]
	}
	ids := make([]string, len(reports))
	for i, r := range reports {
		ids[i] = r.Key.MessageID
	}
	byMessage, err := s.store.RecipientsByMessageID(ctx, ids)
	if err != nil {
		return err
	}
	for i := range reports {
		r := &reports[i]
		rec, ok := byMessage[r.Key.MessageID]
		if !ok && callbackSends[i] != "" {
			found, err := s.store.RecipientByEmail(ctx, callbackSends[i], r.Email)
			switch {
			case err == nil:
				rec, ok = found, true
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		if ok {
			r.ProfileID = rec.ProfileID
			r.Recipient = &store.RecipientRef{SendID: rec.SendID, Seq: rec.Seq}
		}
	}
	return nil
}

// outcomeLabel names an outcome in metrics.
func outcomeLabel(o store.Outcome) string {
	switch o {
	case store.OutcomeEvent:
		return "event"
	case store.OutcomeNoError:
		return "no_error"
	case store.OutcomeUnclassified:
		return "unclassified"
	default:
		return "unspecified"
	}
}
