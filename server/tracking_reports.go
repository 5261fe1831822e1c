package server

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/metrics"
	"github.com/ibmail/ibmail/rules"
	"github.com/ibmail/ibmail/store"
)

// Bounds on a tracking report's fields. Infobip's ids are short; a URL is
// kept whole up to a length no real link reaches; callbackData is
// Infobip's own limit of 4000 characters.
const (
	maxEventIDBytes          = 200
	maxNotificationTypeBytes = 64
	maxTrackingURLBytes      = 8 << 10
	maxCallbackDataBytes     = 4000 * 4
	maxTrackingFieldBytes    = 1000
)

// IngestTrackingReports stores tracking reports (opens, clicks,
// complaints, late bounces, unsubscribes) with their events in one durable
// transaction before answering, exactly as IngestDeliveryReports stores
// delivery reports: same authentication, attribution and refusals, with
// reports deduplicated by Infobip's eventId.
func (s *DeliveryReportService) IngestTrackingReports(ctx context.Context, req *ibmailv1.IngestTrackingReportsRequest) (*ibmailv1.IngestTrackingReportsResponse, error) {
	body, err := openWebhookBody(ctx, s.auth, "reports", len(req.GetReports()), req.GetUndecodableReports(),
		"the body holds no tracking reports: Infobip posts one JSON object per report", s.now())
	if err != nil {
		return nil, err
	}
	reports := make([]store.Report, 0, body.size())
	callbackSends := make([]string, 0, body.size())
	payloads := newPayloadBuffer(body.size())
	// One version of the rules classifies the whole body.
	rulesInForce := s.rules.Current()
	body.walk(func(i, pos int) {
		r := req.GetReports()[i]
		rep, sendID, err := toTrackingReportInto(rulesInForce, r, body.connectionID, body.received, &payloads)
		if err != nil {
			body.refuseDecoded(pos, r.GetMessageId(), r, err)
			return
		}
		reports = append(reports, rep)
		callbackSends = append(callbackSends, sendID)
	}, rawMessageID)
	connectionID, rejected := body.connectionID, body.rejected
	resp := &ibmailv1.IngestTrackingReportsResponse{Rejected: body.refused}
	if err := attribute(ctx, s.store, s.sendDomains, connectionID, reports, callbackSends); err != nil {
		return nil, err
	}
	// A tracking report is never a delivery, but a rule may make a late
	// bounce a soft bounce.
	markSoftBounces(rulesInForce, connectionID, reports, nil)
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
		metrics.TrackingReportsIngested.WithLabelValues(notificationLabel(reports[i].NotificationType), outcomeLabel(reports[i].Outcome)).Inc()
	}
	metrics.ReportsDuplicate.Add(float64(res.Duplicates))
	metrics.ReportsRejected.Add(float64(len(rejected)))
	if resp.Unclassified > 0 || len(resp.Rejected) > 0 {
		s.log.LogAttrs(ctx, slog.LevelWarn, "tracking reports need attention",
			slog.Int("unclassified", int(resp.Unclassified)), slog.Int("rejected", len(resp.Rejected)))
	}
	return resp, nil
}

// toTrackingReport validates and classifies one tracking report, and says
// which send its callbackData names. The error names the field at fault
// (see faultField).
func toTrackingReport(snap *rules.Snapshot, r *ibmailv1.TrackingReport, connectionID string, received time.Time) (store.Report, string, error) {
	return toTrackingReportInto(snap, r, connectionID, received, nil)
}

// toTrackingReportInto is toTrackingReport with the payload encoded into
// payloads, shared by a body's reports.
func toTrackingReportInto(snap *rules.Snapshot, r *ibmailv1.TrackingReport, connectionID string, received time.Time, payloads *payloadBuffer) (store.Report, string, error) {
	if f := nulField(r.ProtoReflect()); f != "" {
		return store.Report{}, "", &reportFault{f, fmt.Errorf("%w: %s", errNUL, f)}
	}
	eventID := strings.TrimSpace(r.GetEventId())
	if eventID == "" {
		return store.Report{}, "", &reportFault{"eventId", fmt.Errorf("eventId is missing: it is what a retried report is known by")}
	}
	if err := checkID("eventId", eventID, maxEventIDBytes); err != nil {
		return store.Report{}, "", &reportFault{"eventId", fmt.Errorf("eventId: must not contain control characters")}
	}
	notification := strings.ToUpper(strings.TrimSpace(r.GetNotificationType()))
	if notification == "" {
		return store.Report{}, "", &reportFault{"notificationType", fmt.Errorf("notificationType is missing")}
	}
	if strings.IndexFunc(notification, isControlOrLineBreak) >= 0 {
		return store.Report{}, "", &reportFault{"notificationType", fmt.Errorf("notificationType must not contain control characters")}
	}
	var sent time.Time
	if ms := r.GetSendDateTime(); ms != 0 {
		t := time.UnixMilli(ms).UTC()
		if t.Before(time.Unix(earliestReportTimeUnix, 0)) || t.After(received.Add(latestReportTimeLead)) {
			return store.Report{}, "", &reportFault{"sendDateTime", fmt.Errorf("sendDateTime %d lies outside the times a report can carry: from 2000-01-01 to a day after it arrived", ms)}
		}
		sent = t
	}
	cb := parseCallbackData(r.GetCallbackData())
	if err := checkID("callbackData.ibmailSendId", cb.SendID, 256); err != nil {
		return store.Report{}, "", &reportFault{"callbackData.ibmailSendId", fmt.Errorf("callbackData.ibmailSendId must not contain control characters and is at most 256 bytes")}
	}
	profileID, err := profileFor(cb, r.GetRecipient(), "recipient")
	if err != nil {
		return store.Report{}, "", err
	}
	// After the callbackData's own fields, so that an error names the
	// innermost field at fault.
	if f, max := longField(r.ProtoReflect()); f != "" {
		return store.Report{}, "", &reportFault{f, fmt.Errorf("%s is longer than %d bytes", f, max)}
	}
	payload, err := payloads.marshal(r)
	if err != nil {
		return store.Report{}, "", err
	}
	res := snap.Engine.ClassifyTracking(notification)
	rep := store.Report{
		RulesVersion:     snap.Version,
		Kind:             store.ReportTracking,
		Key:              store.ReportKey{MessageID: strings.TrimSpace(r.GetMessageId())},
		TrackingKey:      eventID,
		NotificationType: notification,
		ConnectionID:     connectionID,
		ProfileID:        profileID,
		Email:            normalizeEmail(r.GetRecipient()),
		Outcome:          store.Outcome(outcomeProto(res.Outcome)),
		Rule:             res.Reason,
		// A tracking report carries no time of its own (sendDateTime is
		// when the email went out): the event happened as it arrived.
		EventTime:   received,
		ReceiveTime: received,
		Payload:     payload,
	}
	if res.Outcome == classifier.OutcomeEvent {
		rep.EventName = res.Event
		rep.Params = trackingParams(r, notification, sent, res)
		if res.Suppress != "" {
			rep.Suppress, rep.SuppressReason = true, res.Suppress
			rep.SuppressFor = snap.Engine.SuppressionLifetime(rep.EventName)
		}
	}
	if notification == "LATE_BOUNCE" {
		rep.CountsAs = store.CountBounce
	}
	return rep, strings.TrimSpace(cb.SendID), nil
}

// trackingParams are the facts of a tracking report its event keeps, as a
// bounce event keeps its report's; empty ones are left out.
func trackingParams(r *ibmailv1.TrackingReport, notification string, sent time.Time, res classifier.TrackingResult) map[string]string {
	p := make(map[string]string, 16)
	put := func(k, v string) {
		if v != "" {
			p[k] = v
		}
	}
	put("notificationType", notification)
	put("eventId", strings.TrimSpace(r.GetEventId()))
	put("url", r.GetUrl())
	put("deviceType", r.GetRecipientInfo().GetDeviceType())
	put("os", r.GetRecipientInfo().GetOs())
	put("deviceName", r.GetRecipientInfo().GetDeviceName())
	put("countryName", r.GetGeoLocation().GetCountryName())
	put("city", r.GetGeoLocation().GetCity())
	put("sender", r.GetSender())
	put("domain", r.GetDomain())
	put("messageId", r.GetMessageId())
	put("bulkId", r.GetBulkId())
	put("campaignReferenceId", r.GetCampaignReferenceId())
	put("applicationId", r.GetApplicationId())
	put("entityId", r.GetEntityId())
	if !sent.IsZero() {
		put("sendDateTime", sent.Format(time.RFC3339Nano))
	}
	put("rule", res.Reason)
	return p
}

// longField names the first string field of m (or of a message in it)
// longer than its bound, and the bound; "" when none is.
func longField(m protoreflect.Message) (string, int) {
	found, bound := "", 0
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap():
			limit := maxTrackingFieldBytes
			switch fd.JSONName() {
			case "url":
				limit = maxTrackingURLBytes
			case "callbackData":
				limit = maxCallbackDataBytes
			case "notificationType":
				limit = maxNotificationTypeBytes
			}
			if len(v.String()) > limit {
				found, bound = fd.JSONName(), limit
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap():
			if sub, b := longField(v.Message()); sub != "" {
				found, bound = fd.JSONName()+"."+sub, b
			}
		}
		return found == ""
	})
	return found, bound
}

// notificationLabel names a notification type in metrics: Infobip's five,
// or "other", so that a hostile body cannot mint series.
func notificationLabel(t string) string {
	switch t {
	case "OPENED", "CLICKED", "COMPLAINED", "LATE_BOUNCE", "UNSUBSCRIBED":
		return strings.ToLower(t)
	}
	return "other"
}

// ListTrackingReports lists stored tracking reports, newest first.
func (s *DeliveryReportService) ListTrackingReports(ctx context.Context, req *ibmailv1.ListTrackingReportsRequest) (*ibmailv1.ListTrackingReportsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 50, 1000)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest("tracking", req.GetOutcome().String()))
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ListReports(ctx, store.ReportQuery{
		Kind: store.ReportTracking, Outcome: store.Outcome(req.GetOutcome()), Limit: size + 1, BeforeID: tok.ID,
	})
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListTrackingReportsResponse{}
	rows, resp.NextPageToken = cutPage(rows, size, tok.Query, func(r store.StoredReport) pageToken { return pageToken{ID: r.ID} })
	resp.Reports = showable(ctx, s.rows.tracking, rows, func(r store.StoredReport) string { return fmt.Sprint(r.ID) },
		func(row store.StoredReport) (*ibmailv1.StoredTrackingReport, error) {
			report := &ibmailv1.TrackingReport{}
			if err := proto.Unmarshal(row.Payload, report); err != nil {
				return nil, fmt.Errorf("payload does not decode: %w", err)
			}
			return &ibmailv1.StoredTrackingReport{
				Id:             strconv.FormatInt(row.ID, 10),
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
