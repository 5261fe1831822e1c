package server

import (
	"context"
	"time"

	"github.com/ibmail/ibmail/classifier"
	"github.com/ibmail/ibmail/rules"
	"github.com/ibmail/ibmail/store"
)

// isDeliveredStatus reports Infobip's status group 3, DELIVERED, with no
// bounce: the proof that an address takes mail, which resets its soft
// bounces.
func isDeliveredStatus(statusGroupID, errorGroupID int32) bool {
	return statusGroupID == 3 && errorGroupID != 2
}

// applySoftBounceLimit enforces the soft-bounce policy of rulesInForce,
// the rules that classified the body, on the reports just ingested: each
// newly stored newsletter.softbounce event counts towards its address's
// limit, and each newly stored delivery (delivered[i]; nil for a body
// that has none, as tracking reports) resets the address's count. An
// address reaching the limit is suppressed, naming the bounces, for the
// lifetime the rules give the cause. In a body holding both for one
// address, only the bounces after its last delivery count.
//
// Only reports that may suppress count: under a connection's webhook
// secret, those about that connection's own sends (see attribute), so
// that one connection's secret can neither suppress nor keep alive
// another's addresses. A body with neither bounces nor deliveries costs
// nothing, and one with deliveries only the store's lookup of their
// addresses.
func (s *DeliveryReportService) applySoftBounceLimit(ctx context.Context, rulesInForce *rules.Snapshot, connectionID string,
	reports []store.Report, res store.IngestResult, delivered []bool, received time.Time) error {
	policy := rulesInForce.Engine.SoftBouncePolicy()
	if !policy.Enabled() {
		return nil
	}
	var (
		bounces []store.SoftBounce
		at      []int // the report of each bounce
		resets  []string
	)
	counts := func(i int) bool {
		rep := &reports[i]
		return res.Stored[i] && rep.Email != "" && (connectionID == "" || rep.Recipient != nil)
	}
	isDelivery := func(i int) bool { return delivered != nil && delivered[i] && counts(i) }
	for i := range reports {
		rep := &reports[i]
		switch {
		case !counts(i):
		case rep.Outcome == store.OutcomeEvent && rep.EventName == classifier.SoftBounceEvent:
			bounces = append(bounces, store.SoftBounce{Email: rep.Email, EventID: res.IDs[i], Time: rep.ReceiveTime})
			at = append(at, i)
		case isDelivery(i):
			resets = append(resets, rep.Email)
		}
	}
	if len(resets) > 0 {
		if err := s.store.ResetSoftBounces(ctx, resets); err != nil {
			return err
		}
		if len(bounces) > 0 {
			bounces = bouncesAfterDeliveries(bounces, at, reports, isDelivery)
		}
	}
	if len(bounces) == 0 {
		return nil
	}
	reached, err := s.store.RecordSoftBounces(ctx, bounces, store.SoftBounceLimit{Limit: policy.Limit, Window: policy.Window}, received)
	if err != nil || len(reached) == 0 {
		return err
	}
	profiles := make(map[string]string, len(bounces))
	for _, i := range at {
		profiles[reports[i].Email] = reports[i].ProfileID
	}
	var expires time.Time
	if life := rulesInForce.Engine.SuppressionLifetime(classifier.CauseSoftBounceLimit); life > 0 {
		expires = received.Add(life)
	}
	ss := make([]store.Suppression, len(reached))
	for i, r := range reached {
		// The bounce that reached the limit is the suppression's event;
		// the earlier ones hold it too.
		last := len(r.EventIDs) - 1
		ss[i] = store.Suppression{
			Email: r.Email, ProfileID: profiles[r.Email], EventName: classifier.SoftBounceEvent, EventID: r.EventIDs[last],
			Reason: classifier.CauseSoftBounceLimit, CreateTime: received, ExpireTime: expires,
			Origin: store.SuppressionFromSoftBounceLimit, CauseEventIDs: r.EventIDs[:last],
		}
	}
	_, err = s.store.AddSuppressions(ctx, ss)
	return err
}

// bouncesAfterDeliveries drops the bounces (of the reports at) that come
// before a delivery to their address in the body: the delivery proved the
// address took mail since. The profiles of at stay as they are.
func bouncesAfterDeliveries(bounces []store.SoftBounce, at []int, reports []store.Report, isDelivery func(int) bool) []store.SoftBounce {
	lastDelivery := map[string]int{}
	for i := range reports {
		if isDelivery(i) {
			lastDelivery[reports[i].Email] = i
		}
	}
	kept := bounces[:0]
	for j, b := range bounces {
		if d, ok := lastDelivery[b.Email]; !ok || at[j] > d {
			kept = append(kept, b)
		}
	}
	return kept
}
