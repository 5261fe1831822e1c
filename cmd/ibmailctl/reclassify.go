package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

var reclassifyCmd = &command{
	name:  "reclassify",
	args:  "[--dry-run] [--outcome OUTCOME]... [--since RFC3339] [--until RFC3339] [--no-wait]",
	short: "run the rules in force over stored reports (admin)",
	summary: `reclassify starts a long-running operation that classifies the stored delivery
and tracking reports received in the window again, under the rules in force. A
report that now makes another event gets it (sent to WatchEvents and JetStream
like any event); the event that no longer applies is retracted, and a
suppression only it held is lifted. --dry-run counts and samples what would
change and writes nothing. It waits for the operation and prints its counts,
unless --no-wait, which prints the operation's name at once; follow it with
ibmailctl operations get NAME.`,
	example: `ibmailctl reclassify --outcome UNCLASSIFIED --dry-run
ibmailctl reclassify --outcome UNCLASSIFIED --since 2026-11-01T00:00:00Z
ibmailctl reclassify --no-wait`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		o := &reclassifyOptions{}
		fs.BoolVar(&o.dryRun, "dry-run", false, "count and sample what would change, writing nothing")
		fs.Func("outcome", "only reports of this outcome: EVENT, NO_ERROR or UNCLASSIFIED (repeatable)", func(v string) error {
			n, ok := ibmailv1.ReportOutcome_value["REPORT_OUTCOME_"+strings.ToUpper(v)]
			if !ok || n == 0 {
				return fmt.Errorf("%q: use EVENT, NO_ERROR or UNCLASSIFIED", v)
			}
			o.outcomes = append(o.outcomes, ibmailv1.ReportOutcome(n))
			return nil
		})
		fs.StringVar(&o.since, "since", "", "only reports received at or after this time")
		fs.StringVar(&o.until, "until", "", "only reports received before this time (default: now)")
		fs.StringVar(&o.requestID, "request-id", "", "the request's id: a retry with it returns the operation the first call started")
		fs.BoolVar(&o.noWait, "no-wait", false, "print the operation's name and return at once")
		return func(ctx context.Context, e *env, args []string) error { return runReclassify(ctx, e, o, args) }
	},
}

type reclassifyOptions struct {
	dryRun, noWait bool
	outcomes       []ibmailv1.ReportOutcome
	since, until   string
	requestID      string
}

func runReclassify(ctx context.Context, e *env, o *reclassifyOptions, args []string) error {
	if len(args) != 0 {
		return usagef("reclassify takes no arguments, got %q", args)
	}
	since, err := parseTimeFlag("since", o.since)
	if err != nil {
		return err
	}
	until, err := parseTimeFlag("until", o.until)
	if err != nil {
		return err
	}
	resp, err := ibmailv1.NewDeliveryReportServiceClient(e.conn).ReclassifyReports(ctx, &ibmailv1.ReclassifyReportsRequest{
		Window: &ibmailv1.ReclassifyWindow{StartTime: since, EndTime: until}, Outcomes: o.outcomes,
		DryRun: o.dryRun, RequestId: o.requestID})
	if err != nil {
		return err
	}
	op := resp.GetOperation()
	if !o.noWait {
		if op, err = waitOperation(ctx, ibmailv1.NewOperationServiceClient(e.conn), op.GetName()); err != nil {
			return err
		}
	}
	return writeOperation(e, op)
}

// waitOperation polls an operation until it is done.
func waitOperation(ctx context.Context, client ibmailv1.OperationServiceClient, name string) (*ibmailv1.Operation, error) {
	for {
		resp, err := client.GetOperation(ctx, &ibmailv1.GetOperationRequest{Name: name})
		if err != nil || resp.GetOperation().GetDone() {
			return resp.GetOperation(), err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

var operationsCmd = &command{
	name:  "operations",
	args:  "[list | get NAME | cancel NAME]",
	short: "follow and cancel long-running operations",
	summary: `list (the default) prints the operations, newest first. get NAME prints one
operation's state and counts; cancel NAME asks it to stop at its next step,
keeping what it did (admin).`,
	example: `ibmailctl operations
ibmailctl operations get operations/3
ibmailctl operations cancel operations/3`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error { return runOperations(ctx, e, args) }
	},
}

func runOperations(ctx context.Context, e *env, args []string) error {
	action := "list"
	if len(args) > 0 {
		action, args = args[0], args[1:]
	}
	client := ibmailv1.NewOperationServiceClient(e.conn)
	switch {
	case action == "list" && len(args) == 0:
		ops, err := allPages(func(token string) ([]*ibmailv1.Operation, string, error) {
			resp, err := client.ListOperations(ctx, &ibmailv1.ListOperationsRequest{PageSize: 100, PageToken: token})
			return resp.GetOperations(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		if e.g.output == "json" {
			return writeJSONList(e.stdout, "operations", ops)
		}
		tw := table(e.stdout)
		fmt.Fprintln(tw, "NAME\tSTATE\tDRY RUN\tRULES\tEXAMINED\tCHANGED\tCREATED\tBY")
		for _, op := range ops {
			m := op.GetReclassifyMetadata()
			fmt.Fprintf(tw, "%s\t%s\t%t\t%d\t%d\t%d\t%s\t%s\n", op.GetName(), operationState(op), m.GetDryRun(), m.GetRulesVersion(),
				m.GetCounts().GetExamined(), m.GetCounts().GetChanged(), formatTime(m.GetCreateTime()), orDash(m.GetCreatedBy()))
		}
		return tw.Flush()
	case action == "get" && len(args) == 1:
		resp, err := client.GetOperation(ctx, &ibmailv1.GetOperationRequest{Name: args[0]})
		if err != nil {
			return err
		}
		return writeOperation(e, resp.GetOperation())
	case action == "cancel" && len(args) == 1:
		resp, err := client.CancelOperation(ctx, &ibmailv1.CancelOperationRequest{Name: args[0]})
		if err != nil {
			return err
		}
		return writeOperation(e, resp.GetOperation())
	}
	return usagef("operations: use list, get NAME or cancel NAME")
}

func operationState(op *ibmailv1.Operation) string {
	switch {
	case !op.GetDone() && op.GetReclassifyMetadata().GetCancelRequested():
		return "cancelling"
	case !op.GetDone():
		return "running"
	case op.GetError() != nil:
		return "failed"
	}
	return "done"
}

func writeOperation(e *env, op *ibmailv1.Operation) error {
	if e.g.output == "json" {
		return writeJSON(e.stdout, op)
	}
	m := op.GetReclassifyMetadata()
	fmt.Fprintf(e.stdout, "%s: %s (rules version %d", op.GetName(), operationState(op), m.GetRulesVersion())
	if m.GetDryRun() {
		fmt.Fprint(e.stdout, ", dry run")
	}
	fmt.Fprintln(e.stdout, ")")
	if err := op.GetError(); err != nil {
		fmt.Fprintf(e.stdout, "error: %s\n", err.GetMessage())
	}
	c := m.GetCounts()
	fmt.Fprintf(e.stdout, "examined %d, unchanged %d, changed %d; events added %d, retracted %d; suppressions added %d, lifted %d\n",
		c.GetExamined(), c.GetUnchanged(), c.GetChanged(), c.GetEventsAdded(), c.GetEventsRetracted(), c.GetSuppressionsAdded(), c.GetSuppressionsLifted())
	sample := op.GetReclassifyResult().GetSample()
	if len(sample) == 0 {
		return nil
	}
	tw := table(e.stdout)
	fmt.Fprintln(tw, "REPORT\tPROFILE\tBEFORE\tAFTER")
	for _, s := range sample {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.GetReport(), s.GetProfileId(), classificationText(s.GetBefore()), classificationText(s.GetAfter()))
	}
	return tw.Flush()
}
