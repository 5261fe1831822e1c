package server

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/metrics"
	"github.com/ibmail/ibmail/store"
)

// infobipBlockLength is how long Infobip blocks a sending domain whose
// bounce rate passed the block threshold; a warning is shown as long.
const infobipBlockLength = 24 * time.Hour

// The event names domain events make in the event log, for WatchEvents
// and JetStream consumers (subjects ibmail.events.domain.blocked, ...).
const (
	eventDomainWarning   = "domain.bounce_warning"
	eventDomainBlocked   = "domain.blocked"
	eventDomainPaused    = "domain.paused"
	eventDomainUnblocked = "domain.unblocked"
)

// domainPattern is a DNS name as sending domains have them: labels of
// letters, digits and inner dashes (an IDN in its xn-- form), at least two.
var domainPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)

// checkDomain validates a domain name and returns it lower case.
func checkDomain(field, s string) (string, error) {
	d := strings.ToLower(strings.TrimSpace(s))
	if d == "" {
		return "", invalidField(field, "is required")
	}
	if len(d) > 253 || !domainPattern.MatchString(d) {
		return "", invalidField(field, "is not a domain name such as example.com")
	}
	return d, nil
}

// IngestPlatformEvents stores Infobip's platform events and applies each
// new one to its sending domain in one durable transaction before
// answering: a warning marks the domain warned, a block holds its batches
// for Infobip's 24 hours. Events are deduplicated by eventId; a malformed
// event is refused, named and kept as a rejected payload, as a malformed
// delivery report is.
func (s *DeliveryReportService) IngestPlatformEvents(ctx context.Context, req *ibmailv1.IngestPlatformEventsRequest) (*ibmailv1.IngestPlatformEventsResponse, error) {
	body, err := openWebhookBody(ctx, s.auth, "events", len(req.GetEvents()), req.GetUndecodableEvents(),
		"the body holds no platform events: Infobip posts one JSON object per event", s.now())
	if err != nil {
		return nil, err
	}
	var own map[string][]string // the domains a connection's secret may speak for
	if body.connectionID != "" {
		if own, err = sendersByDomain(ctx, s.store, body.connectionID); err != nil {
			return nil, err
		}
	}
	events := make([]store.DomainEvent, 0, body.size())
	payloads := newPayloadBuffer(body.size())
	body.walk(func(i, pos int) {
		e := req.GetEvents()[i]
		ev, err := toDomainEvent(e, body.connectionID, own, body.received, &payloads)
		if err != nil {
			body.refuseDecoded(pos, e.GetEventId(), e, err)
			return
		}
		events = append(events, ev)
	}, func([]byte) string { return "" })
	rejected := body.rejected
	resp := &ibmailv1.IngestPlatformEventsResponse{Rejected: body.refused}
	res, err := s.store.IngestDomainEvents(ctx, events, rejected)
	if err != nil {
		return nil, err
	}
	resp.Accepted, resp.Duplicates = int32(res.Accepted), int32(res.Duplicates)
	for i, stored := range res.Stored {
		if stored {
			noteDomainEvent(ctx, s.log, events[i])
		}
	}
	metrics.ReportsRejected.Add(float64(len(rejected)))
	return resp, nil
}

// toDomainEvent validates one platform event and says what it does to its
// domain.
func toDomainEvent(e *ibmailv1.PlatformEvent, connectionID string, own map[string][]string, received time.Time, payloads *payloadBuffer) (store.DomainEvent, error) {
	if f := nulField(e.ProtoReflect()); f != "" {
		return store.DomainEvent{}, &reportFault{f, fmt.Errorf("%w: %s", errNUL, f)}
	}
	id := strings.TrimSpace(e.GetEventId())
	if id == "" {
		return store.DomainEvent{}, &reportFault{"eventId", fmt.Errorf("eventId is missing: it is what a retried event is known by")}
	}
	if err := checkID("eventId", id, maxEventIDBytes); err != nil {
		return store.DomainEvent{}, &reportFault{"eventId", fmt.Errorf("eventId must not contain control characters and is at most %d bytes", maxEventIDBytes)}
	}
	ms := e.GetCreatedAt()
	at := time.UnixMilli(ms).UTC()
	if ms == 0 || at.Before(time.Unix(earliestReportTimeUnix, 0)) || at.After(received.Add(latestReportTimeLead)) {
		return store.DomainEvent{}, &reportFault{"createdAt", fmt.Errorf("createdAt %d is missing or lies outside the times an event can carry: from 2000-01-01 to a day after it arrived, in epoch milliseconds", ms)}
	}
	d := e.GetEventDetails()
	if d == nil {
		return store.DomainEvent{}, &reportFault{"eventDetails", fmt.Errorf("eventDetails is missing")}
	}
	domain, err := checkDomain("eventDetails.domain", d.GetDomain())
	if err != nil {
		return store.DomainEvent{}, &reportFault{"eventDetails.domain", fmt.Errorf("eventDetails.domain is missing or not a domain name such as example.com")}
	}
	if connectionID != "" && len(own[domain]) == 0 {
		// A connection's secret speaks for its own senders' domains only:
		// its holder must not be able to hold another connection's mail.
		return store.DomainEvent{}, &reportFault{"eventDetails.domain", fmt.Errorf("eventDetails.domain %s is not the domain of a sender account of the connection whose webhook secret came with the event", domain)}
	}
	scope := strings.ToUpper(strings.TrimSpace(d.GetScope()))
	if scope != "HOURLY" && scope != "DAILY" {
		return store.DomainEvent{}, &reportFault{"eventDetails.scope", fmt.Errorf("eventDetails.scope must be HOURLY or DAILY")}
	}
	rate := d.GetBounceRate()
	if !isPercent(rate) {
		return store.DomainEvent{}, &reportFault{"eventDetails.bounceRate", fmt.Errorf("eventDetails.bounceRate must be a percentage from 0 to 100")}
	}
	ev := store.DomainEvent{
		EventID: id, Domain: domain, Time: at, ReceiveTime: received,
		BounceRate: rate, Scope: scope, ConnectionID: connectionID, Until: at.Add(infobipBlockLength),
	}
	switch typ := strings.ToUpper(strings.TrimSpace(d.GetType())); typ {
	case store.DomainEventWarning:
		if !isPercent(d.GetWarnThreshold()) {
			return store.DomainEvent{}, &reportFault{"eventDetails.warnThreshold", fmt.Errorf("eventDetails.warnThreshold must be a percentage from 0 to 100")}
		}
		ev.Type, ev.State, ev.Threshold, ev.EventName = typ, store.DomainWarned, d.GetWarnThreshold(), eventDomainWarning
		ev.Reason = fmt.Sprintf("Infobip warned: bounce rate %s %% over the %s window passed the warning threshold of %s %%",
			percent(rate), strings.ToLower(scope), percent(ev.Threshold))
	case store.DomainEventBlocked:
		if !isPercent(d.GetBlockThreshold()) {
			return store.DomainEvent{}, &reportFault{"eventDetails.blockThreshold", fmt.Errorf("eventDetails.blockThreshold must be a percentage from 0 to 100")}
		}
		ev.Type, ev.State, ev.Threshold, ev.EventName = typ, store.DomainBlocked, d.GetBlockThreshold(), eventDomainBlocked
		ev.Reason = fmt.Sprintf("Infobip blocked the domain for 24 hours: bounce rate %s %% over the %s window passed the block threshold of %s %%",
			percent(rate), strings.ToLower(scope), percent(ev.Threshold))
	default:
		return store.DomainEvent{}, &reportFault{"eventDetails.type", fmt.Errorf("eventDetails.type must be HIGH_BOUNCE_RATE_WARNING or HIGH_BOUNCE_RATE_BLOCKED")}
	}
	payload, err := payloads.marshal(e)
	if err != nil {
		return store.DomainEvent{}, err
	}
	ev.Payload = payload
	return ev, nil
}

func isPercent(v float64) bool { return !math.IsNaN(v) && v >= 0 && v <= 100 }

// percent writes a rate as people read it: 4.6, 5, 0.25.
func percent(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// noteDomainEvent logs and counts a newly stored domain event.
func noteDomainEvent(ctx context.Context, log *slog.Logger, e store.DomainEvent) {
	metrics.DomainEvents.WithLabelValues(strings.ToLower(e.Type)).Inc()
	level := slog.LevelWarn
	if e.State == store.DomainActive {
		level = slog.LevelInfo
	}
	log.LogAttrs(ctx, level, "sending domain "+strings.ToLower(e.Type), slog.String("domain", e.Domain),
		slog.String("reason", e.Reason), slog.Float64("bounceRate", e.BounceRate), slog.String("scope", e.Scope))
}

// sendersByDomain are the ids of the senders of connectionID ("" : of
// every connection) by the domain of their from address.
func sendersByDomain(ctx context.Context, st store.ConnectionStore, connectionID string) (map[string][]string, error) {
	out := map[string][]string{}
	after := ""
	for {
		page, err := st.ListSenders(ctx, connectionID, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, s := range page {
			d := store.AddressDomain(s.FromAddress)
			out[d] = append(out[d], s.ID)
		}
		if len(page) < 1000 {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}
