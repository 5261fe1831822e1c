package server

import (
	"context"
	"fmt"
	"time"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/rules"
	"github.com/ibmail/ibmail/store"
)

// maxBatchClassify bounds BatchClassifyReports so one call cannot hold a
// server thread for long.
const maxBatchClassify = 10000

// ClassifierService implements ibmail.v1.ClassifierService: pure
// classification with the server's rule list, storing nothing.
type ClassifierService struct {
	ibmailv1.UnimplementedClassifierServiceServer
	rules *rules.Book
}

// NewClassifierService returns a ClassifierService classifying with the
// rules in force in book.
func NewClassifierService(book *rules.Book) *ClassifierService {
	return &ClassifierService{rules: book}
}

// ClassifyReport classifies one report.
func (s *ClassifierService) ClassifyReport(_ context.Context, req *ibmailv1.ClassifyReportRequest) (*ibmailv1.ClassifyReportResponse, error) {
	if req.GetReport() == nil {
		return nil, invalidField("report", "is required: send an Infobip delivery report (an item of results[])")
	}
	c := s.classification(req.GetReport())
	return &ibmailv1.ClassifyReportResponse{
		EventName:  c.GetEventName(),
		Classified: c.GetClassified(),
		Rule:       c.GetRule(),
		Outcome:    c.GetOutcome(),
	}, nil
}

// BatchClassifyReports classifies many reports, in order.
func (s *ClassifierService) BatchClassifyReports(_ context.Context, req *ibmailv1.BatchClassifyReportsRequest) (*ibmailv1.BatchClassifyReportsResponse, error) {
	if n := len(req.GetReports()); n > maxBatchClassify {
		return nil, invalidField("reports", fmt.Sprintf("has %d reports; at most %d fit in one call", n, maxBatchClassify))
	}
	out := make([]*ibmailv1.Classification, len(req.GetReports()))
	for i, r := range req.GetReports() {
		out[i] = s.classification(r)
	}
	return &ibmailv1.BatchClassifyReportsResponse{Classifications: out}, nil
}

func (s *ClassifierService) classification(r *ibmailv1.DeliveryReport) *ibmailv1.Classification {
	res := classify(s.rules.Current().Engine, r)
	return classificationProto(res.Outcome, res.Event, res.Reason)
}

// classificationProto builds the API form of a classification.
func classificationProto(o classifier.Outcome, event, rule string) *ibmailv1.Classification {
	return &ibmailv1.Classification{
		Outcome:    outcomeProto(o),
		EventName:  event,
		Classified: o == classifier.OutcomeEvent,
		Rule:       rule,
	}
}

// ClassifyTrackingReport classifies one tracking report with the tracking
// rules, as the tracking webhook does.
func (s *ClassifierService) ClassifyTrackingReport(_ context.Context, req *ibmailv1.ClassifyTrackingReportRequest) (*ibmailv1.ClassifyTrackingReportResponse, error) {
	if req.GetReport() == nil {
		return nil, invalidField("report", "is required: send an Infobip tracking report, as posted to a trackingUrl")
	}
	// The same door as the webhook's, so that what classifies here is what
	// the webhook would store.
	rep, _, err := toTrackingReport(s.rules.Current(), req.GetReport(), "", time.Now().UTC())
	if err != nil {
		return nil, invalidField("report."+faultField(err), err.Error())
	}
	return &ibmailv1.ClassifyTrackingReportResponse{
		EventName:         rep.EventName,
		Classified:        rep.Outcome == store.OutcomeEvent,
		Rule:              rep.Rule,
		Outcome:           ibmailv1.ReportOutcome(rep.Outcome),
		SuppressionReason: rep.SuppressReason,
	}, nil
}
