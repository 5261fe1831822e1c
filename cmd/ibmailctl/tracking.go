package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

var trackingCmd = &command{
	name:  "tracking",
	args:  "[--outcome OUTCOME] [--limit N]",
	short: "list stored tracking reports: opens, clicks, complaints",
	summary: `List the tracking reports the server stored from Infobip's tracking webhook
(opens, clicks, complaints, late bounces, unsubscribes), newest first, with
the event each became and the profile it went to. --outcome unclassified
shows the notification types no rule covers, to add a rule for.`,
	example: `ibmailctl tracking --limit 20
ibmailctl tracking --outcome unclassified --output json`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		outcome := fs.String("outcome", "", "only reports of this `OUTCOME`: event or unclassified (default all)")
		limit := fs.Int("limit", 50, "at most `N` reports, 0 for all")
		return func(ctx context.Context, e *env, args []string) error {
			return runTracking(ctx, e, args, *outcome, *limit)
		}
	},
}

// parseOutcome reads an --outcome value: event, no-error or unclassified,
// in any case, with or without the API's REPORT_OUTCOME_ prefix.
func parseOutcome(v string) (ibmailv1.ReportOutcome, error) {
	if v == "" {
		return ibmailv1.ReportOutcome_REPORT_OUTCOME_UNSPECIFIED, nil
	}
	name := strings.ReplaceAll(strings.ToUpper(strings.TrimSpace(v)), "-", "_")
	name = strings.TrimPrefix(name, "REPORT_OUTCOME_")
	n, ok := ibmailv1.ReportOutcome_value["REPORT_OUTCOME_"+name]
	if !ok || n == int32(ibmailv1.ReportOutcome_REPORT_OUTCOME_UNSPECIFIED) {
		return 0, usagef("--outcome must be event, no-error or unclassified, not %q", v)
	}
	return ibmailv1.ReportOutcome(n), nil
}

func runTracking(ctx context.Context, e *env, args []string, outcomeFlag string, limit int) error {
	if len(args) > 0 {
		return usagef("tracking takes no arguments, got %q", args)
	}
	if limit < 0 {
		return usagef("--limit must not be negative")
	}
	outcome, err := parseOutcome(outcomeFlag)
	if err != nil {
		return err
	}
	client := ibmailv1.NewDeliveryReportServiceClient(e.conn)
	var reports []*ibmailv1.StoredTrackingReport
	token := ""
	for {
		size := int32(1000)
		if limit > 0 && limit-len(reports) < 1000 {
			size = int32(limit - len(reports))
		}
		resp, err := client.ListTrackingReports(ctx, &ibmailv1.ListTrackingReportsRequest{
			Outcome: outcome, PageSize: size, PageToken: token,
		})
		if err != nil {
			return err
		}
		reports = append(reports, resp.GetReports()...)
		token = resp.GetNextPageToken()
		if token == "" || (limit > 0 && len(reports) >= limit) {
			break
		}
	}
	if limit > 0 && len(reports) > limit {
		reports = reports[:limit]
	}
	if e.g.output == "json" {
		out := make([]json.RawMessage, len(reports))
		for i, r := range reports {
			out[i] = rawJSON(r)
		}
		return writeValue(e.stdout, map[string]any{"reports": out})
	}
	tw := table(e.stdout)
	fmt.Fprintln(tw, "RECEIVED\tTYPE\tEVENT\tPROFILE_ID\tRECIPIENT\tMESSAGE_ID\tEVENT_ID")
	for _, r := range reports {
		rep := r.GetReport()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", formatTime(r.GetReceiveTime()), cell(rep.GetNotificationType()),
			cell(r.GetClassification().GetEventName()), cell(r.GetProfileId()), cell(rep.GetRecipient()),
			cell(rep.GetMessageId()), cell(rep.GetEventId()))
	}
	return tw.Flush()
}
