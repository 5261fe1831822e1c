package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/rules"
	"github.com/ibmail/ibmail/store"
)

// Bounds of a rule set given through the API, checked before the rules are
// compiled. A real rule set has tens of rules; these are far above that
// and keep one request's work bounded.
const (
	maxAPIRules         = 1000
	maxAPIErrorNames    = 1000
	maxRuleTextRunes    = 200
	maxRuleCommentRunes = 500
	maxTestReports      = 1000
	maxTestLastStored   = 10000
	maxTestResults      = 1000
)

// Reasons of the RuleService's refusals.
const (
	// ReasonRulesFromFile: the server runs with --rules-file, which is the
	// authority; the rules cannot be changed through the API.
	ReasonRulesFromFile Reason = "RULES_FROM_FILE"
	// ReasonRulesInvalid: the rules do not validate; the BadRequest names
	// each problem.
	ReasonRulesInvalid Reason = "RULES_INVALID"
	// ReasonRulesVersionStale: base_version is no longer the latest.
	ReasonRulesVersionStale Reason = "RULES_VERSION_STALE"
)

// RuleService shows and changes the rules in force (see rules.Book).
type RuleService struct {
	ibmailv1.UnimplementedRuleServiceServer
	book   *rules.Book
	store  store.Store
	caller func(context.Context) string
	log    *slog.Logger
}

// NewRuleService returns a RuleService changing the rules of book; caller
// names the token of a call, for the record of who changed what.
func NewRuleService(book *rules.Book, st store.Store, caller func(context.Context) string, log *slog.Logger) *RuleService {
	return &RuleService{book: book, store: st, caller: caller, log: log}
}

// GetRules returns the rules in force.
func (s *RuleService) GetRules(context.Context, *ibmailv1.GetRulesRequest) (*ibmailv1.GetRulesResponse, error) {
	return &ibmailv1.GetRulesResponse{Rules: ruleVersionProto(s.book.Current())}, nil
}

// UpdateRules stores a new version.
func (s *RuleService) UpdateRules(ctx context.Context, req *ibmailv1.UpdateRulesRequest) (*ibmailv1.UpdateRulesResponse, error) {
	if err := s.changeable(); err != nil {
		return nil, err
	}
	if req.GetBaseVersion() < 0 {
		return nil, invalidField("base_version", "must not be negative")
	}
	if err := checkRuleText("comment", req.GetComment(), maxRuleCommentRunes); err != nil {
		return nil, err
	}
	set, err := ruleSetFromProto("rules", req.GetRules())
	if err != nil {
		return nil, err
	}
	snap, err := s.book.Update(ctx, set, rules.Change{Base: req.GetBaseVersion(), CreatedBy: s.caller(ctx), Comment: req.GetComment()})
	if err != nil {
		return nil, s.changeError(err, "rules")
	}
	s.log.Info("rules changed", slog.Int64("version", snap.Version), slog.String("by", snap.CreatedBy))
	return &ibmailv1.UpdateRulesResponse{Rules: ruleVersionProto(snap)}, nil
}

// ListRuleVersions pages the history, newest first.
func (s *RuleService) ListRuleVersions(ctx context.Context, req *ibmailv1.ListRuleVersionsRequest) (*ibmailv1.ListRuleVersionsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 20, 100)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest("rule versions"))
	if err != nil {
		return nil, err
	}
	if tok.ID < 0 {
		return nil, apiError(codes.InvalidArgument, ReasonInvalidPageToken, "page_token: not a token of this query; start again without it")
	}
	versions, err := s.book.List(ctx, tok.ID, size+1)
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListRuleVersionsResponse{}
	versions, resp.NextPageToken = cutPage(versions, size, tok.Query, func(v *rules.Snapshot) pageToken { return pageToken{ID: v.Version} })
	for _, v := range versions {
		resp.Versions = append(resp.Versions, ruleVersionProto(v))
	}
	return resp, nil
}

// GetRuleVersion returns one stored version.
func (s *RuleService) GetRuleVersion(ctx context.Context, req *ibmailv1.GetRuleVersionRequest) (*ibmailv1.GetRuleVersionResponse, error) {
	if req.GetVersion() < 1 {
		return nil, invalidField("version", "must be 1 or more: versions are numbered from 1")
	}
	snap, err := s.book.Get(ctx, req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &ibmailv1.GetRuleVersionResponse{Rules: ruleVersionProto(snap)}, nil
}

// RestoreRuleVersion stores an earlier version's rules as the next one.
func (s *RuleService) RestoreRuleVersion(ctx context.Context, req *ibmailv1.RestoreRuleVersionRequest) (*ibmailv1.RestoreRuleVersionResponse, error) {
	if err := s.changeable(); err != nil {
		return nil, err
	}
	if req.GetVersion() < 1 {
		return nil, invalidField("version", "must be 1 or more: versions are numbered from 1")
	}
	if err := checkRuleText("comment", req.GetComment(), maxRuleCommentRunes); err != nil {
		return nil, err
	}
	snap, err := s.book.Restore(ctx, req.GetVersion(), rules.Change{CreatedBy: s.caller(ctx), Comment: req.GetComment()})
	if err != nil {
		return nil, s.changeError(err, "version")
	}
	s.log.Info("rules restored", slog.Int64("version", snap.Version), slog.Int64("restored_from", snap.RestoredFrom), slog.String("by", snap.CreatedBy))
	return &ibmailv1.RestoreRuleVersionResponse{Rules: ruleVersionProto(snap)}, nil
}

// TestRules classifies reports under proposed rules and the rules in force
// and says what would change. It writes nothing.
func (s *RuleService) TestRules(ctx context.Context, req *ibmailv1.TestRulesRequest) (*ibmailv1.TestRulesResponse, error) {
	switch {
	case len(req.GetReports()) > maxTestReports:
		return nil, invalidField("reports", fmt.Sprintf("has %d reports; at most %d", len(req.GetReports()), maxTestReports))
	case len(req.GetTrackingReports()) > maxTestReports:
		return nil, invalidField("tracking_reports", fmt.Sprintf("has %d reports; at most %d", len(req.GetTrackingReports()), maxTestReports))
	case req.GetLastStored() < 0 || req.GetLastStored() > maxTestLastStored:
		return nil, invalidField("last_stored", fmt.Sprintf("must be 0 to %d", maxTestLastStored))
	}
	if _, ok := ibmailv1.ReportOutcome_name[int32(req.GetStoredOutcome())]; !ok {
		return nil, invalidField("stored_outcome", fmt.Sprintf("%d is not a ReportOutcome", req.GetStoredOutcome()))
	}
	set, err := ruleSetFromProto("rules", req.GetRules())
	if err != nil {
		return nil, err
	}
	proposed, err := rules.Compile(set)
	if err != nil {
		return nil, rulesInvalid("rules", err)
	}
	current := s.book.Current()
	resp := &ibmailv1.TestRulesResponse{CurrentVersion: current.Version}
	// Every given report is listed; of the stored ones, the first
	// maxTestResults that change.
	storedListed := 0
	add := func(source string, cur, prop *ibmailv1.Classification, given bool) {
		resp.Examined++
		changed := cur.GetOutcome() != prop.GetOutcome() || cur.GetEventName() != prop.GetEventName()
		if changed {
			resp.Changed++
		}
		if !given && (!changed || storedListed >= maxTestResults) {
			return
		}
		if !given {
			storedListed++
		}
		resp.Results = append(resp.Results, &ibmailv1.RuleTestResult{Source: source, Current: cur, Proposed: prop, Changed: changed})
	}
	now := time.Now().UTC()
	for i, r := range req.GetReports() {
		// The webhook's door, so that what is tested is what the webhook
		// would store, and a report it would refuse is refused here.
		cb := parseCallback(r)
		if err := checkID("callbackData.ibmailSendId", cb.SendID, 256); err != nil {
			return nil, invalidField(fmt.Sprintf("reports[%d].callbackData.ibmailSendId", i), "must not contain control characters and is at most 256 bytes")
		}
		if _, err := toStoreReport(current, r, cb, "", now, nil); err != nil {
			return nil, invalidField(fmt.Sprintf("reports[%d].%s", i, faultField(err)), err.Error())
		}
		c, p := classify(current.Engine, r), classify(proposed, r)
		add(fmt.Sprintf("reports[%d]", i), classificationProto(c.Outcome, c.Event, c.Reason), classificationProto(p.Outcome, p.Event, p.Reason), true)
	}
	for i, r := range req.GetTrackingReports() {
		field := fmt.Sprintf("tracking_reports[%d]", i)
		c, err := trackingClassification(current, r, now)
		if err != nil {
			return nil, invalidField(field+"."+faultField(err), err.Error())
		}
		p, _ := trackingClassification(&rules.Snapshot{Engine: proposed}, r, now)
		add(field, c, p, true)
	}
	if n := int(req.GetLastStored()); n > 0 {
		for _, kind := range []store.ReportKind{store.ReportDelivery, store.ReportTracking} {
			rows, err := s.store.ListReports(ctx, store.ReportQuery{Kind: kind, Outcome: store.Outcome(req.GetStoredOutcome()), Limit: n})
			if err != nil {
				return nil, err
			}
			for _, row := range rows {
				// A stored row this server cannot read back is skipped, as
				// the listings skip it.
				_ = testStored(row, current, proposed, now, add)
			}
		}
	}
	return resp, nil
}

// testStored classifies one stored report under both rule sets.
func testStored(row store.StoredReport, current *rules.Snapshot, proposed *classifier.Engine, now time.Time,
	add func(source string, cur, prop *ibmailv1.Classification, given bool)) error {
	if row.Kind == store.ReportTracking {
		r := &ibmailv1.TrackingReport{}
		if err := proto.Unmarshal(row.Payload, r); err != nil {
			return err
		}
		c, err := trackingClassification(current, r, now)
		if err != nil {
			return err
		}
		p, err := trackingClassification(&rules.Snapshot{Engine: proposed}, r, now)
		if err != nil {
			return err
		}
		add(fmt.Sprintf("trackingReports/%d", row.ID), c, p, false)
		return nil
	}
	r := &ibmailv1.DeliveryReport{}
	if err := proto.Unmarshal(row.Payload, r); err != nil {
		return err
	}
	c, p := classify(current.Engine, r), classify(proposed, r)
	add(fmt.Sprintf("deliveryReports/%d", row.ID), classificationProto(c.Outcome, c.Event, c.Reason), classificationProto(p.Outcome, p.Event, p.Reason), false)
	return nil
}

// trackingClassification classifies a tracking report through the
// webhook's door, so that a test sees what the webhook would store.
func trackingClassification(snap *rules.Snapshot, r *ibmailv1.TrackingReport, now time.Time) (*ibmailv1.Classification, error) {
	rep, _, err := toTrackingReport(snap, r, "", now)
	if err != nil {
		return nil, err
	}
	return &ibmailv1.Classification{Outcome: ibmailv1.ReportOutcome(rep.Outcome), EventName: rep.EventName,
		Classified: rep.Outcome == store.OutcomeEvent, Rule: rep.Rule}, nil
}

func (s *RuleService) changeable() error {
	if s.book.FromFile() {
		return apiError(codes.FailedPrecondition, ReasonRulesFromFile, rules.ErrFromFile.Error())
	}
	return nil
}

// changeError maps the book's refusals; others go to toStatus.
func (s *RuleService) changeError(err error, field string) error {
	switch {
	case errors.Is(err, rules.ErrFromFile):
		return s.changeable()
	case errors.Is(err, rules.ErrInvalid):
		return rulesInvalid(field, err)
	case errors.Is(err, store.ErrChanged):
		return apiError(codes.Aborted, ReasonRulesVersionStale,
			"base_version: the rules changed since that version; read them again (GET /v1/rules), apply your edit and retry with the new version")
	}
	return err
}

// rulesInvalid names each problem of a rule set as a field violation.
func rulesInvalid(field string, err error) error {
	var violations []*errdetails.BadRequest_FieldViolation
	var walk func(error)
	walk = func(e error) {
		var re *classifier.RuleError
		if errors.As(e, &re) && e == error(re) {
			f := field
			switch {
			case re.Rule > 0 && re.Tracking:
				f = fmt.Sprintf("%s.tracking_rules[%d]", field, re.Rule-1)
			case re.Rule > 0:
				f = fmt.Sprintf("%s.rules[%d]", field, re.Rule-1)
			}
			violations = append(violations, &errdetails.BadRequest_FieldViolation{Field: f, Description: re.Problem})
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	msg := strings.TrimPrefix(err.Error(), rules.ErrInvalid.Error()+": ")
	msg = strings.TrimPrefix(msg, "classifier: ")
	if len(violations) == 0 {
		violations = append(violations, &errdetails.BadRequest_FieldViolation{Field: field, Description: msg})
	}
	return apiError(codes.InvalidArgument, ReasonRulesInvalid, field+": "+msg, violations...)
}

// checkRuleText is checkText refusing bidi controls too: rule names and
// comments are shown to operators, where a bidi control reorders them.
func checkRuleText(field, s string, maxRunes int) error {
	if err := checkText(field, s, maxRunes); err != nil {
		return err
	}
	if strings.IndexFunc(s, isBidiControl) >= 0 {
		return invalidField(field, "must not contain bidirectional control characters")
	}
	return nil
}

// ruleSetFromProto checks the sizes and characters of a rule set at the
// door and converts it; the rules' meaning is checked by rules.Compile,
// exactly as a rules file's.
func ruleSetFromProto(field string, p *ibmailv1.RuleSet) (classifier.RuleSet, error) {
	if p == nil {
		return classifier.RuleSet{}, invalidField(field, "is required: give the whole rule set (GET /v1/rules shows the one in force)")
	}
	switch {
	case len(p.GetRules()) > maxAPIRules:
		return classifier.RuleSet{}, invalidField(field+".rules", fmt.Sprintf("has %d rules; at most %d", len(p.GetRules()), maxAPIRules))
	case len(p.GetTrackingRules()) > maxAPIRules:
		return classifier.RuleSet{}, invalidField(field+".tracking_rules", fmt.Sprintf("has %d rules; at most %d", len(p.GetTrackingRules()), maxAPIRules))
	}
	set := classifier.RuleSet{SuppressionLifetimes: map[string]time.Duration{}}
	for i, r := range p.GetRules() {
		at := fmt.Sprintf("%s.rules[%d]", field, i)
		if err := checkRuleText(at+".group_name", r.GetGroupName(), maxRuleTextRunes); err != nil {
			return classifier.RuleSet{}, err
		}
		if err := checkRuleText(at+".event", r.GetEvent(), maxRuleTextRunes); err != nil {
			return classifier.RuleSet{}, err
		}
		if len(r.GetErrorNames()) > maxAPIErrorNames {
			return classifier.RuleSet{}, invalidField(at+".error_names", fmt.Sprintf("has %d names; at most %d", len(r.GetErrorNames()), maxAPIErrorNames))
		}
		for j, n := range r.GetErrorNames() {
			if err := checkRuleText(fmt.Sprintf("%s.error_names[%d]", at, j), n, maxRuleTextRunes); err != nil {
				return classifier.RuleSet{}, err
			}
		}
		set.Rules = append(set.Rules, classifier.Rule{GroupID: r.GetGroupId(), GroupName: r.GetGroupName(), ErrorNames: r.GetErrorNames(), Event: r.GetEvent()})
	}
	for i, r := range p.GetTrackingRules() {
		at := fmt.Sprintf("%s.tracking_rules[%d]", field, i)
		for _, f := range []struct{ name, v string }{{"notification_type", r.GetNotificationType()}, {"event", r.GetEvent()}, {"suppress", r.GetSuppress()}} {
			if err := checkRuleText(at+"."+f.name, f.v, maxRuleTextRunes); err != nil {
				return classifier.RuleSet{}, err
			}
		}
		set.TrackingRules = append(set.TrackingRules, classifier.TrackingRule{NotificationType: r.GetNotificationType(), Event: r.GetEvent(), Suppress: r.GetSuppress()})
	}
	if pol := p.GetSoftBouncePolicy(); pol == nil {
		set.SoftBounce = classifier.DefaultSoftBouncePolicy()
	} else {
		window, err := checkDuration(field+".soft_bounce_policy.window", pol.GetWindow())
		if err != nil {
			return classifier.RuleSet{}, err
		}
		set.SoftBounce = classifier.SoftBouncePolicy{Limit: int(pol.GetLimit()), Window: window}
	}
	if n := len(p.GetSuppressionLifetimes()); n > 100 {
		return classifier.RuleSet{}, invalidField(field+".suppression_lifetimes", fmt.Sprintf("has %d lifetimes; at most 100", n))
	}
	for i, l := range p.GetSuppressionLifetimes() {
		at := fmt.Sprintf("%s.suppression_lifetimes[%d]", field, i)
		if err := checkRuleText(at+".cause", l.GetCause(), maxRuleTextRunes); err != nil {
			return classifier.RuleSet{}, err
		}
		if _, dup := set.SuppressionLifetimes[l.GetCause()]; dup {
			return classifier.RuleSet{}, invalidField(at+".cause", fmt.Sprintf("%q is listed twice", l.GetCause()))
		}
		d, err := checkDuration(at+".lifetime", l.GetLifetime())
		if err != nil {
			return classifier.RuleSet{}, err
		}
		set.SuppressionLifetimes[l.GetCause()] = d
	}
	return set, nil
}

// checkDuration converts a Duration that protobuf itself would accept; an
// unset one is 0.
func checkDuration(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, invalidField(field, "is not a valid duration")
	}
	if d.GetSeconds() < 0 || d.GetNanos() < 0 {
		return 0, invalidField(field, "must not be negative")
	}
	if d.GetSeconds() > int64(100*366*24*time.Hour/time.Second) {
		return 0, invalidField(field, "is more than a century")
	}
	return d.AsDuration(), nil
}

// ruleVersionProto is the API form of a snapshot.
func ruleVersionProto(s *rules.Snapshot) *ibmailv1.RuleVersion {
	v := &ibmailv1.RuleVersion{
		Version:      s.Version,
		Rules:        rules.SetProto(s.Engine.RuleSet()),
		CreatedBy:    s.CreatedBy,
		RestoredFrom: s.RestoredFrom,
		Comment:      s.Comment,
	}
	switch s.Source {
	case rules.SourceDefault:
		v.Source = ibmailv1.RuleSource_RULE_SOURCE_DEFAULT
	case rules.SourceStore:
		v.Source = ibmailv1.RuleSource_RULE_SOURCE_STORE
	case rules.SourceFile:
		v.Source = ibmailv1.RuleSource_RULE_SOURCE_FILE
	}
	if !s.CreateTime.IsZero() {
		v.CreateTime = timestamppb.New(s.CreateTime)
	}
	return v
}
