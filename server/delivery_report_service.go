package server

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/metrics"
	"github.com/ibmail/ibmail/rules"
	"github.com/ibmail/ibmail/store"
)

// maxReportsPerBody bounds one webhook body; Infobip's buckets hold at most
// 2000 reports.
const maxReportsPerBody = 10000

// DeliveryReportService implements ibmail.v1.DeliveryReportService: the
// webhook that stores Infobip's reports and makes their events.
type DeliveryReportService struct {
	ibmailv1.UnimplementedDeliveryReportServiceServer
	rules *rules.Book
	store store.Store
	auth  WebhookAuthenticator
	log   *slog.Logger
	now   func() time.Time
	rows  *rowSkippers
	// sendDomains caches each send's sending domain, for bounce rates.
	sendDomains *sendDomainCache
	// ops runs reclassifications (see ReclassifyReports).
	ops Operations
}

// NewDeliveryReportService returns a DeliveryReportService.
func NewDeliveryReportService(book *rules.Book, st store.Store, auth WebhookAuthenticator, log *slog.Logger) *DeliveryReportService {
	return &DeliveryReportService{rules: book, store: st, auth: auth, log: log, now: time.Now, rows: newRowSkippers(log),
		sendDomains: newSendDomainCache(st)}
}

// IngestDeliveryReports authenticates the caller, then stores every valid
// report with its event in one durable transaction before answering. A
// report that cannot be stored as such (no messageId, say) is kept as a
// rejected payload in the same transaction and named in the answer (its
// index in the body, the field at fault, why), so that one bad report
// neither loses the others nor makes Infobip retry them. That includes the
// items the REST gateway could not decode (undecodable_results) and
// reports whose doneAt or sentAt lies outside the times a report can carry
// (see earliestReportTimeUnix).
func (s *DeliveryReportService) IngestDeliveryReports(ctx context.Context, req *ibmailv1.IngestDeliveryReportsRequest) (*ibmailv1.IngestDeliveryReportsResponse, error) {
	body, err := openWebhookBody(ctx, s.auth, "results", len(req.GetResults()), req.GetUndecodableResults(),
		`results: the body holds no reports; Infobip sends {"results":[...]} with at least one`, s.now())
	if err != nil {
		return nil, err
	}
	n := body.size()
	reports := make([]store.Report, 0, n)
	callbackSends := make([]string, 0, n)
	// domainBlocked says, per report, whether it is Infobip's error 6016.
	domainBlocked := make([]bool, 0, n)
	// delivered says, per report, whether it is a delivery, which resets
	// the address's soft bounces.
	delivered := make([]bool, 0, n)
	payloads := newPayloadBuffer(n)
	// One version of the rules classifies the whole body.
	rulesInForce := s.rules.Current()
	body.walk(func(i, pos int) {
		r := req.GetResults()[i]
		payload, err := payloads.marshal(r)
		if err == nil {
			cb := parseCallback(r)
			var rep store.Report
			err = checkID("callbackData.ibmailSendId", cb.SendID, 256)
			if err == nil {
				rep, err = toStoreReport(rulesInForce, r, cb, body.connectionID, body.received, payload)
			}
			if err == nil {
				rep.Suppress, rep.CountsAs = deliveryEffects(r, rep)
				if rep.Suppress {
					rep.SuppressFor = rulesInForce.Engine.SuppressionLifetime(rep.EventName)
				}
				reports = append(reports, rep)
				domainBlocked = append(domainBlocked, isDomainBlockedError(r.GetError()))
				delivered = append(delivered, isDeliveredStatus(r.GetStatus().GetGroupId(), r.GetError().GetGroupId()))
				callbackSends = append(callbackSends, strings.TrimSpace(cb.SendID))
				return
			}
		}
		body.refuseDecoded(pos, r.GetMessageId(), r, err)
	}, rawMessageID)
	connectionID, received, rejected := body.connectionID, body.received, body.rejected
	resp := &ibmailv1.IngestDeliveryReportsResponse{Rejected: body.refused}
	if err := attribute(ctx, s.store, s.sendDomains, connectionID, reports, callbackSends); err != nil {
		return nil, err
	}
	markSoftBounces(rulesInForce, connectionID, reports, delivered)
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
	if err := s.noteBlockedDomains(ctx, reports, res.Stored, domainBlocked, received); err != nil {
		// The reports are stored; the block is learnt again from the next
		// one, or from the platform event.
		s.log.Warn("recording a blocked sending domain failed", slog.Any("error", err))
	}
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
	resp.Reports = showable(ctx, s.rows.reports, rows, func(r store.StoredReport) string { return fmt.Sprint(r.ID) },
		func(row store.StoredReport) (*ibmailv1.StoredDeliveryReport, error) {
			report := &ibmailv1.DeliveryReport{}
			if err := proto.Unmarshal(row.Payload, report); err != nil {
				return nil, fmt.Errorf("payload does not decode: %w", err)
			}
			return &ibmailv1.StoredDeliveryReport{
				Id:             fmt.Sprint(row.ID),
				Report:         report,
				Classification: &ibmailv1.Classification{Outcome: ibmailv1.ReportOutcome(row.Outcome), EventName: row.EventName, Classified: row.Outcome == store.OutcomeEvent, Rule: row.Rule},
				ProfileId:      row.ProfileID,
				ReceiveTime:    timestamppb.New(row.ReceiveTime),
				ConnectionId:   row.ConnectionID,
				RulesVersion:   row.RulesVersion,
			}, nil
		})
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
	// A page ends early once its bodies add up to the budget (at least one
	// row), so that a page of large kept bodies still fits a client's
	// default message size.
	budget := 0
	for i, row := range rows {
		budget += min(len(row.Body), listedBodyBytes)
		if budget > rejectedPageBytes && i > 0 {
			rows = rows[:i]
			resp.NextPageToken = encodePageToken(pageToken{ID: rows[i-1].ID, Query: tok.Query})
			break
		}
	}
	resp.Payloads = showable(ctx, s.rows.rejected, rows, func(p store.RejectedPayload) string { return fmt.Sprint(p.ID) },
		func(row store.RejectedPayload) (*ibmailv1.RejectedPayload, error) {
			return rejectedProto(row, listedBodyBytes), nil
		})
	return resp, nil
}

// The listing's bounds on kept bodies: each body shortened to
// listedBodyBytes, and a page's bodies to about rejectedPageBytes.
const (
	listedBodyBytes   = 64 << 10
	rejectedPageBytes = 1 << 20
)

// GetRejectedPayload returns one rejected payload with its whole body.
func (s *DeliveryReportService) GetRejectedPayload(ctx context.Context, req *ibmailv1.GetRejectedPayloadRequest) (*ibmailv1.GetRejectedPayloadResponse, error) {
	id, err := strconv.ParseInt(req.GetRejectedPayloadId(), 10, 64)
	if err != nil || id <= 0 || id == math.MaxInt64 {
		return nil, invalidField("rejected_payload_id", "is not a payload id: ids are the positive whole numbers a listing gives")
	}
	rows, err := s.store.ListRejectedPayloads(ctx, store.RejectedQuery{Limit: 1, BeforeID: id + 1})
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 || rows[0].ID != id {
		return nil, apiError(codes.NotFound, ReasonNotFound, "rejected payload "+strconv.FormatInt(id, 10)+" not found")
	}
	p, err := showOne(ctx, s.rows.rejected, "rejected payload", req.GetRejectedPayloadId(), rejectedProto(rows[0], math.MaxInt))
	if err != nil {
		return nil, err
	}
	return &ibmailv1.GetRejectedPayloadResponse{Payload: p}, nil
}

// rejectedProto shows a kept payload with at most limit bytes of its body.
func rejectedProto(row store.RejectedPayload, limit int) *ibmailv1.RejectedPayload {
	p := &ibmailv1.RejectedPayload{
		Id:          fmt.Sprint(row.ID),
		ReceiveTime: timestamppb.New(row.ReceiveTime),
		ContentType: row.ContentType,
		Reason:      row.Reason,
		Body:        row.Body,
		BodyBytes:   int64(len(row.Body)),
	}
	if len(row.Body) > limit {
		p.Body, p.BodyTruncated = row.Body[:limit], true
	}
	return p
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

// noteBlockedDomains learns a block from the reports themselves: a newly
// stored report of one of this server's sends with Infobip's error 6016
// (EC_SENDER_DOMAIN_BOUNCE_BLOCKED) says Infobip has blocked the send's
// domain, for its 24 hours. Holding the domain's batches at once, without
// waiting for a platform event (which needs a subscription of its own),
// keeps the rest of a send from being dropped message by message.
func (s *DeliveryReportService) noteBlockedDomains(ctx context.Context, reports []store.Report, stored, domainBlocked []bool, received time.Time) error {
	seen := map[string]bool{}
	for i, rep := range reports {
		if !stored[i] || !domainBlocked[i] || rep.Recipient == nil {
			continue
		}
		domain, err := s.sendDomains.of(ctx, rep.Recipient.SendID)
		if err != nil || domain == "" || seen[domain] {
			if err != nil {
				return err
			}
			continue
		}
		seen[domain] = true
		d, err := s.store.GetSendingDomain(ctx, domain)
		if err == nil && d.Holds(received) {
			continue
		}
		ev := store.DomainEvent{
			Domain: domain, Type: store.DomainEventBlocked, Time: received, ReceiveTime: received,
			Until: received.Add(infobipBlockLength), State: store.DomainBlocked, EventName: eventDomainBlocked,
			Reason: "Infobip answered message " + rep.Key.MessageID + " with error 6016 EC_SENDER_DOMAIN_BOUNCE_BLOCKED: it blocks a domain for 24 hours",
		}
		if _, err := s.store.IngestDomainEvents(ctx, []store.DomainEvent{ev}, nil); err != nil {
			return err
		}
		noteDomainEvent(ctx, s.log, ev)
	}
	return nil
}
