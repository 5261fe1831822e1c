package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/store"
)

// The windows of a domain's own bounce rate, those of Infobip's platform
// events (scope HOURLY and DAILY).
const (
	hourlyWindow = time.Hour
	dailyWindow  = 24 * time.Hour
)

// lastDomainEvents is how many of a domain's events a listing shows.
const lastDomainEvents = 10

// SendingDomainService implements ibmail.v1.SendingDomainService.
type SendingDomainService struct {
	ibmailv1.UnimplementedSendingDomainServiceServer
	store store.Store
	// wake, when set, tells the dispatcher that held batches may go.
	wake func()
	log  *slog.Logger
	now  func() time.Time
	rows *rowSkippers
}

// NewSendingDomainService returns a SendingDomainService.
func NewSendingDomainService(st store.Store, wake func(), log *slog.Logger) *SendingDomainService {
	return &SendingDomainService{store: st, wake: wake, log: log, now: time.Now, rows: newRowSkippers(log)}
}

// ListSendingDomains lists sending domains by name, with their own bounce
// rates, their senders and their last events.
func (s *SendingDomainService) ListSendingDomains(ctx context.Context, req *ibmailv1.ListSendingDomainsRequest) (*ibmailv1.ListSendingDomainsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 100, 1000)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest("sendingDomains"))
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ListSendingDomains(ctx, tok.AfterKey, size+1)
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListSendingDomainsResponse{}
	rows, resp.NextPageToken = cutPage(rows, size, tok.Query, func(d store.SendingDomain) pageToken { return pageToken{AfterKey: d.Domain} })
	view, err := s.loadView(ctx)
	if err != nil {
		return nil, err
	}
	resp.SendingDomains = make([]*ibmailv1.SendingDomainStatus, 0, len(rows))
	for _, d := range rows {
		p, err := s.show(ctx, view, d)
		if err != nil {
			return nil, err
		}
		resp.SendingDomains = append(resp.SendingDomains, p)
	}
	return resp, nil
}

// GetSendingDomain returns one sending domain.
func (s *SendingDomainService) GetSendingDomain(ctx context.Context, req *ibmailv1.GetSendingDomainRequest) (*ibmailv1.GetSendingDomainResponse, error) {
	p, err := s.showOne(ctx, req.GetDomain())
	if err != nil {
		return nil, err
	}
	return &ibmailv1.GetSendingDomainResponse{SendingDomain: p}, nil
}

// UnblockSendingDomain lifts a block, a pause or a warning: the domain's
// held batches go out (this replica's dispatcher at once, the others at
// their next poll), and the unblock is recorded and published as an event.
func (s *SendingDomainService) UnblockSendingDomain(ctx context.Context, req *ibmailv1.UnblockSendingDomainRequest) (*ibmailv1.UnblockSendingDomainResponse, error) {
	d, err := s.get(ctx, req.GetDomain())
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	ev := store.DomainEvent{
		Domain: d.Domain, Type: store.DomainEventUnblocked, Time: now, ReceiveTime: now,
		State: store.DomainActive, Reason: "unblocked by an operator", EventName: eventDomainUnblocked,
	}
	if _, err := s.store.IngestDomainEvents(ctx, []store.DomainEvent{ev}, nil); err != nil {
		return nil, err
	}
	noteDomainEvent(ctx, s.log, ev)
	if s.wake != nil {
		s.wake()
	}
	p, err := s.showOne(ctx, d.Domain)
	if err != nil {
		return nil, err
	}
	return &ibmailv1.UnblockSendingDomainResponse{SendingDomain: p}, nil
}

// showOne reads one domain afresh and shows it.
func (s *SendingDomainService) showOne(ctx context.Context, domain string) (*ibmailv1.SendingDomainStatus, error) {
	d, err := s.get(ctx, domain)
	if err != nil {
		return nil, err
	}
	view, err := s.loadView(ctx)
	if err != nil {
		return nil, err
	}
	return s.show(ctx, view, d)
}

func (s *SendingDomainService) get(ctx context.Context, raw string) (store.SendingDomain, error) {
	domain, err := checkDomain("domain", raw)
	if err != nil {
		return store.SendingDomain{}, err
	}
	d, err := s.store.GetSendingDomain(ctx, domain)
	if errors.Is(err, store.ErrNotFound) {
		return store.SendingDomain{}, apiError(codes.NotFound, ReasonNotFound, "sending domain "+domain+" not found: a domain is known once a sender account or a platform event names it")
	}
	return d, err
}

// domainView is what every domain of a page is shown with, read once: the
// reports of each window and the senders by domain.
type domainView struct {
	now           time.Time
	hourly, daily map[string]store.DomainCounts
	senders       map[string][]string
}

func (s *SendingDomainService) loadView(ctx context.Context) (*domainView, error) {
	v := &domainView{now: s.now().UTC()}
	var err error
	if v.hourly, err = s.store.DomainReportCounts(ctx, v.now.Add(-hourlyWindow)); err != nil {
		return nil, err
	}
	if v.daily, err = s.store.DomainReportCounts(ctx, v.now.Add(-dailyWindow)); err != nil {
		return nil, err
	}
	if v.senders, err = sendersByDomain(ctx, s.store, ""); err != nil {
		return nil, err
	}
	return v, nil
}

func (s *SendingDomainService) show(ctx context.Context, v *domainView, d store.SendingDomain) (*ibmailv1.SendingDomainStatus, error) {
	events, err := s.store.ListDomainEvents(ctx, d.Domain, lastDomainEvents)
	if err != nil {
		return nil, err
	}
	return domainStatus(d, v, events), nil
}

// domainStatus shows a stored domain as the API does, in its effective
// state: a warning or block whose time has passed shows as active.
func domainStatus(d store.SendingDomain, v *domainView, events []store.DomainEvent) *ibmailv1.SendingDomainStatus {
	state := d.Effective(v.now)
	p := &ibmailv1.SendingDomainStatus{
		Domain:             d.Domain,
		State:              ibmailv1.SendingDomainState(state),
		Reason:             d.Reason,
		ReportedBounceRate: d.ReportedBounceRate,
		ReportedThreshold:  d.ReportedThreshold,
		ReportedScope:      d.ReportedScope,
		SenderIds:          slices.Clone(v.senders[d.Domain]),
	}
	if state != d.State {
		p.Reason = ""
	}
	if !d.UpdateTime.IsZero() {
		p.UpdateTime = timestamppb.New(d.UpdateTime)
	}
	if (state == store.DomainWarned || state == store.DomainBlocked) && !d.Until.IsZero() {
		p.Until = timestamppb.New(d.Until)
	}
	h, day := v.hourly[d.Domain], v.daily[d.Domain]
	p.HourlyReports, p.HourlyBounceRate = h.Reports, h.BounceRate()
	p.DailyReports, p.DailyBounceRate = day.Reports, day.BounceRate()
	for _, e := range events {
		p.LastEvents = append(p.LastEvents, &ibmailv1.SendingDomainEvent{
			EventId: e.EventID, Type: e.Type, Time: timestamppb.New(e.Time),
			BounceRate: e.BounceRate, Threshold: e.Threshold, Scope: e.Scope,
		})
	}
	return p
}
