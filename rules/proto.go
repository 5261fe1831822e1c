package rules

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// SetProto is the API form (ibmail.v1.RuleSet) of a rule set, as a rules
// file decides it: what the RuleService shows, and what ibmailctl sends to
// UpdateRules from a file.
func SetProto(set classifier.RuleSet) *ibmailv1.RuleSet {
	p := &ibmailv1.RuleSet{SoftBouncePolicy: &ibmailv1.SoftBouncePolicy{Limit: int32(set.SoftBounce.Limit)}}
	if set.SoftBounce.Window > 0 {
		p.SoftBouncePolicy.Window = durationpb.New(set.SoftBounce.Window)
	}
	for _, r := range set.Rules {
		p.Rules = append(p.Rules, &ibmailv1.BounceRule{GroupId: r.GroupID, GroupName: r.GroupName, ErrorNames: r.ErrorNames, Event: r.Event})
	}
	for _, r := range set.TrackingRules {
		p.TrackingRules = append(p.TrackingRules, &ibmailv1.TrackingRule{NotificationType: r.NotificationType, Event: r.Event, Suppress: r.Suppress})
	}
	for _, l := range classifier.SortedLifetimes(set.SuppressionLifetimes) {
		sl := &ibmailv1.SuppressionLifetime{Cause: l.Cause}
		if l.Lifetime > 0 {
			sl.Lifetime = durationpb.New(l.Lifetime)
		}
		p.SuppressionLifetimes = append(p.SuppressionLifetimes, sl)
	}
	return p
}
