package server

import (
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

// markSoftBounces gives the reports of a body their part in the
// soft-bounce policy of rulesInForce, the rules that classified the body,
// for the store to count in the ingest's own transaction (see
// store.SoftBounceWork): each newsletter.softbounce event counts towards
// its address's limit, and each delivery (delivered[i]; nil for a body
// that has none, as tracking reports) resets the address's count. An
// address reaching the limit is suppressed, naming the bounces, for the
// lifetime the rules give the cause. In a body holding both for one
// address, only the bounces after its last delivery count.
//
// Only reports that may suppress count: under a connection's webhook
// secret, those about that connection's own sends (see attribute), so
// that one connection's secret can neither suppress nor keep alive
// another's addresses. It must follow attribute, which finds the sends.
func markSoftBounces(rulesInForce *rules.Snapshot, connectionID string, reports []store.Report, delivered []bool) {
	policy := rulesInForce.Engine.SoftBouncePolicy()
	if !policy.Enabled() {
		return
	}
	limit := store.SoftBounceLimit{Limit: policy.Limit, Window: policy.Window, Reason: classifier.CauseSoftBounceLimit,
		SuppressFor: rulesInForce.Engine.SuppressionLifetime(classifier.CauseSoftBounceLimit)}
	for i := range reports {
		rep := &reports[i]
		switch {
		case rep.Email == "" || (connectionID != "" && rep.Recipient == nil):
		case rep.Outcome == store.OutcomeEvent && rep.EventName == classifier.SoftBounceEvent:
			rep.SoftBounce, rep.SoftBounceLimit = store.SoftBounceCounted, limit
		case delivered != nil && delivered[i]:
			rep.SoftBounce = store.SoftBounceResets
		}
	}
}
