package store

import (
	"fmt"
	"unicode/utf8"
)

// SuppressionReason is the reason a suppression made by r records:
// r.SuppressReason when set, else Infobip's error name when the event kept
// one, which says most to whoever reads the list, else the rule that
// matched.
func SuppressionReason(r *Report) string {
	reason := r.Rule
	switch {
	case r.SuppressReason != "":
		reason = r.SuppressReason
	case r.Params["errorName"] != "":
		reason = r.Params["errorName"]
	}
	return capReason(reason)
}

// MaxSuppressionReasonBytes bounds a stored suppression reason, whatever
// the report it came from held: every listing and export shows it, and a
// reason of megabytes would break their pages and chunks.
const MaxSuppressionReasonBytes = 1024

// capReason cuts s to MaxSuppressionReasonBytes on a rune boundary.
func capReason(s string) string {
	if len(s) <= MaxSuppressionReasonBytes {
		return s
	}
	cut := MaxSuppressionReasonBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// CheckReportKinds refuses a report of a kind the engines do not know,
// which would otherwise be stored as whichever kind an engine falls back
// on, and a soft-bounce role they cannot count by.
func CheckReportKinds(reports []Report) error {
	for i := range reports {
		if k := reports[i].Kind; k != ReportDelivery && k != ReportTracking {
			return fmt.Errorf("report %d: kind %d: %w", i, k, ErrInvalidArgument)
		}
		switch sb := &reports[i]; {
		case sb.SoftBounce > SoftBounceResets:
			return fmt.Errorf("report %d: soft-bounce role %d: %w", i, sb.SoftBounce, ErrInvalidArgument)
		case sb.SoftBounce == SoftBounceCounted && (sb.SoftBounceLimit.Limit <= 0 || sb.SoftBounceLimit.Window <= 0):
			return fmt.Errorf("report %d: soft-bounce limit %d in %v: %w", i, sb.SoftBounceLimit.Limit, sb.SoftBounceLimit.Window, ErrInvalidArgument)
		}
	}
	return nil
}
