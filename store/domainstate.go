package store

import (
	"strconv"
	"time"
)

// The engines share what a domain event does to its domain and the params
// of the profile event it makes, so that the two cannot drift apart.

// domainStrength orders the states a domain event may put a domain in:
// blocked beats paused beats warned, and active is the weakest.
func domainStrength(s DomainState) int {
	switch s {
	case DomainBlocked:
		return 3
	case DomainPaused:
		return 2
	case DomainWarned:
		return 1
	}
	return 0
}

// NewSendingDomain is the row a domain gets when it is first seen, by a
// sender account or a domain event: active since at.
func NewSendingDomain(domain string, at time.Time) SendingDomain {
	return SendingDomain{Domain: domain, State: DomainActive, UpdateTime: at}
}

// ApplyDomainEvent returns d as the newly stored event ev leaves it (see
// DomainEvent): ev's State, Until and Reason replace d's unless d's
// effective state at ev's receive time is stronger, an unblock
// (DomainActive) always applies, and DomainUnspecified leaves the state as
// it is. Infobip's platform events (a warning or a block) also replace
// what d says was last reported, whether or not they change its state.
// UpdateTime becomes ev's receive time when the state is replaced.
func ApplyDomainEvent(d SendingDomain, ev DomainEvent) SendingDomain {
	if ev.Type == DomainEventWarning || ev.Type == DomainEventBlocked {
		d.ReportedBounceRate, d.ReportedThreshold, d.ReportedScope = ev.BounceRate, ev.Threshold, ev.Scope
	}
	if ev.State == DomainUnspecified {
		return d
	}
	if ev.State != DomainActive && domainStrength(d.Effective(ev.ReceiveTime)) > domainStrength(ev.State) {
		return d
	}
	d.State, d.Until, d.Reason, d.UpdateTime = ev.State, ev.Until, ev.Reason, ev.ReceiveTime
	return d
}

// DomainEventParams are the params of the profile event a domain event
// makes (see DomainEvent.EventName), numbers written as the shortest
// decimal that reads back as the same float.
func DomainEventParams(ev DomainEvent) map[string]string {
	return map[string]string{
		"domain":     ev.Domain,
		"type":       ev.Type,
		"bounceRate": strconv.FormatFloat(ev.BounceRate, 'f', -1, 64),
		"threshold":  strconv.FormatFloat(ev.Threshold, 'f', -1, 64),
		"scope":      ev.Scope,
		"eventId":    ev.EventID,
	}
}

// DomainEventTime is the time of the profile event a domain event makes:
// when it occurred, or when it was received if Infobip gave no time.
func DomainEventTime(ev DomainEvent) time.Time {
	if ev.Time.IsZero() {
		return ev.ReceiveTime
	}
	return ev.Time
}

// DomainCountBucket is the width of the buckets the engines keep
// DomainReportCounts in.
const DomainCountBucket = 5 * time.Minute

// DomainCountBucketOf is the start of the bucket t falls in. time.Truncate
// counts from the zero time, a midnight in UTC, so buckets start on the
// five minutes of the UTC clock whatever t's zone.
func DomainCountBucketOf(t time.Time) time.Time {
	return t.Truncate(DomainCountBucket).UTC()
}
