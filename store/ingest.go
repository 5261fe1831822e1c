package store

import "fmt"

// SuppressionReason is the reason a suppression made by r records:
// r.SuppressReason when set, else Infobip's error name when the event kept
// one, which says most to whoever reads the list, else the rule that
// matched.
func SuppressionReason(r *Report) string {
	if r.SuppressReason != "" {
		return r.SuppressReason
	}
	if name := r.Params["errorName"]; name != "" {
		return name
	}
	return r.Rule
}

// CheckReportKinds refuses a report of a kind the engines do not know,
// which would otherwise be stored as whichever kind an engine falls back
// on.
func CheckReportKinds(reports []Report) error {
	for i := range reports {
		if k := reports[i].Kind; k != ReportDelivery && k != ReportTracking {
			return fmt.Errorf("report %d: kind %d: %w", i, k, ErrInvalidArgument)
		}
	}
	return nil
}
