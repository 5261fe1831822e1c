package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

var classifyCmd = &command{
	name:  "classify",
	args:  "[FILE]",
	short: "classify delivery or tracking reports: event and rule per report",
	summary: `Classify Infobip reports from FILE or stdin and print each report's event and
rule. The input is what Infobip posts: a delivery report (an item of its
"results") or a delivery-report webhook body {"results": [...]}, or a tracking
report (an open, a click, a complaint, a late bounce, an unsubscribe, as posted
to a trackingUrl); or a JSON array of either kind, as for replaying a backlog.
An object with "notificationType" or "eventId" is a tracking report, which a
delivery report never has; a tracking report also shows the suppression its
rule makes (complaint, late bounce, unsubscribed). As the webhook does, a
tracking report may carry messageId as a number and geoLocationInfo for
geoLocation.`,
	example: `ibmailctl classify report.json
curl -s ... | ibmailctl classify --output json
echo '{"notificationType": "COMPLAINED", "eventId": "e-1", "recipient": "ann@example.com"}' | ibmailctl classify`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		return runClassify
	},
}

// maxClassifyItems bounds an array's reports, as the batch RPC does.
const maxClassifyItems = 10000

// reportJSON reads Infobip's JSON leniently, as the server's webhook does:
// Infobip adds fields over time.
var reportJSON = protojson.UnmarshalOptions{DiscardUnknown: true}

// classifyInput is what classify read: delivery reports or tracking
// reports, never both.
type classifyInput struct {
	delivery []*ibmailv1.DeliveryReport
	tracking []*ibmailv1.TrackingReport
	// batch is set for a webhook body or an array, whose output lists every
	// report, unset for one report.
	batch bool
}

func runClassify(ctx context.Context, e *env, args []string) error {
	if len(args) > 1 {
		return usagef("classify takes at most one FILE, got %d arguments", len(args))
	}
	raw, name, err := readInput(e.stdin, args)
	if err != nil {
		return err
	}
	in, err := parseClassifyInput(raw)
	if err != nil {
		return usagef("%s: %v", name, err)
	}
	client := ibmailv1.NewClassifierServiceClient(e.conn)
	if len(in.tracking) > 0 {
		return classifyTracking(ctx, e, client, in)
	}
	reports := in.delivery
	if !in.batch {
		resp, err := client.ClassifyReport(ctx, &ibmailv1.ClassifyReportRequest{Report: reports[0]})
		if err != nil {
			return err
		}
		if e.g.output == "json" {
			return writeJSON(e.stdout, resp)
		}
		return writeClassifications(e.stdout, reports, []*ibmailv1.Classification{{
			Outcome: resp.GetOutcome(), EventName: resp.GetEventName(), Classified: resp.GetClassified(), Rule: resp.GetRule(),
		}})
	}
	resp, err := client.BatchClassifyReports(ctx, &ibmailv1.BatchClassifyReportsRequest{Reports: reports})
	if err != nil {
		return err
	}
	if e.g.output == "json" {
		return writeJSON(e.stdout, resp)
	}
	return writeClassifications(e.stdout, reports, resp.GetClassifications())
}

// classifyTracking classifies tracking reports one call each (the RPC
// takes one) and writes them all once every one is classified. A refusal
// names the report's position in an array and keeps the server's code.
func classifyTracking(ctx context.Context, e *env, client ibmailv1.ClassifierServiceClient, in classifyInput) error {
	out := make([]*ibmailv1.ClassifyTrackingReportResponse, len(in.tracking))
	for i, r := range in.tracking {
		resp, err := client.ClassifyTrackingReport(ctx, &ibmailv1.ClassifyTrackingReportRequest{Report: r})
		if err != nil {
			if st, ok := status.FromError(err); ok && in.batch {
				return status.Errorf(st.Code(), "item %d: %s", i, st.Message())
			}
			return err
		}
		out[i] = resp
	}
	if e.g.output == "json" {
		if !in.batch {
			return writeJSON(e.stdout, out[0])
		}
		cs := make([]json.RawMessage, len(out))
		for i, c := range out {
			cs[i] = rawJSON(c)
		}
		return writeValue(e.stdout, map[string]any{"classifications": cs})
	}
	tw := table(e.stdout)
	fmt.Fprintln(tw, "EVENT_ID\tTYPE\tEVENT\tOUTCOME\tSUPPRESSION\tRULE")
	for i, c := range out {
		r := in.tracking[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(r.GetEventId()), cell(r.GetNotificationType()),
			orDash(c.GetEventName()), enumName(c.GetOutcome(), "REPORT_OUTCOME_"), cell(c.GetSuppressionReason()), c.GetRule())
	}
	return tw.Flush()
}

// readInput reads the one FILE argument, or stdin when there is none or it
// is "-". It returns the name to use in messages.
func readInput(stdin io.Reader, args []string) ([]byte, string, error) {
	if len(args) == 0 || args[0] == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, "stdin", usagef("read stdin: %v", err)
		}
		return b, "stdin", nil
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return nil, args[0], usagef("%v", err)
	}
	return b, args[0], nil
}

// parseClassifyInput reads one delivery report (an item of Infobip's
// `results`), a webhook body `{"results": [...]}`, one tracking report, or
// a JSON array of delivery or of tracking reports.
func parseClassifyInput(raw []byte) (classifyInput, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return classifyInput{}, fmt.Errorf("no input")
	}
	if raw[0] == '[' {
		return parseArray(raw)
	}
	// Look at the top-level keys first: with unknown fields discarded, a
	// report would otherwise parse as an empty webhook body and vice versa.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return classifyInput{}, fmt.Errorf("not a JSON object or array: %v", err)
	}
	if _, ok := top["results"]; ok {
		var body ibmailv1.IngestDeliveryReportsRequest
		if err := reportJSON.Unmarshal(raw, &body); err != nil {
			return classifyInput{}, fmt.Errorf("webhook body: %v", err)
		}
		if len(body.GetResults()) == 0 {
			return classifyInput{}, fmt.Errorf("webhook body has no results")
		}
		if len(body.GetResults()) > maxClassifyItems {
			return classifyInput{}, fmt.Errorf("webhook body has %d results; at most %d", len(body.GetResults()), maxClassifyItems)
		}
		return classifyInput{delivery: body.GetResults(), batch: true}, nil
	}
	if isTracking(top) {
		r, err := parseTracking(top)
		if err != nil {
			return classifyInput{}, fmt.Errorf("tracking report: %v", err)
		}
		return classifyInput{tracking: []*ibmailv1.TrackingReport{r}}, nil
	}
	var r ibmailv1.DeliveryReport
	if err := reportJSON.Unmarshal(raw, &r); err != nil {
		return classifyInput{}, fmt.Errorf("report: %v", err)
	}
	return classifyInput{delivery: []*ibmailv1.DeliveryReport{&r}}, nil
}

// parseArray reads a JSON array of reports, all of one kind, the kind of
// the first.
func parseArray(raw []byte) (classifyInput, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return classifyInput{}, fmt.Errorf("not a JSON array of reports: %v", err)
	}
	switch {
	case len(items) == 0:
		return classifyInput{}, fmt.Errorf("the array has no reports")
	case len(items) > maxClassifyItems:
		return classifyInput{}, fmt.Errorf("the array has %d reports; at most %d", len(items), maxClassifyItems)
	}
	in := classifyInput{batch: true}
	tracking := false
	for i, item := range items {
		var top map[string]json.RawMessage
		if err := json.Unmarshal(item, &top); err != nil || top == nil {
			return classifyInput{}, fmt.Errorf("item %d: not a JSON object", i)
		}
		if i == 0 {
			tracking = isTracking(top)
		} else if isTracking(top) != tracking {
			return classifyInput{}, fmt.Errorf("item %d is a %s and item 0 a %s: an array holds one kind", i, kindName(!tracking), kindName(tracking))
		}
		if tracking {
			r, err := parseTracking(top)
			if err != nil {
				return classifyInput{}, fmt.Errorf("item %d: tracking report: %v", i, err)
			}
			in.tracking = append(in.tracking, r)
			continue
		}
		var r ibmailv1.DeliveryReport
		if err := reportJSON.Unmarshal(item, &r); err != nil {
			return classifyInput{}, fmt.Errorf("item %d: report: %v", i, err)
		}
		in.delivery = append(in.delivery, &r)
	}
	return in, nil
}

// isTracking tells a tracking report from a delivery report by the keys
// only tracking reports have. eventId counts too, so that a tracking report
// that lacks its notificationType is refused for that by the server rather
// than read as an empty delivery report.
func isTracking(top map[string]json.RawMessage) bool {
	_, nt := top["notificationType"]
	_, id := top["eventId"]
	return nt || id
}

func kindName(tracking bool) string {
	if tracking {
		return "tracking report"
	}
	return "delivery report"
}

// parseTracking reads one tracking report, smoothing over what Infobip
// varies as the webhook does: messageId as a JSON number, geoLocationInfo
// for geoLocation.
func parseTracking(top map[string]json.RawMessage) (*ibmailv1.TrackingReport, error) {
	if v, ok := top["messageId"]; ok && len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
		top["messageId"] = json.RawMessage(strconv.Quote(string(v)))
	}
	if v, ok := top["geoLocationInfo"]; ok {
		if _, has := top["geoLocation"]; !has {
			top["geoLocation"] = v
		}
		delete(top, "geoLocationInfo")
	}
	b, err := json.Marshal(top)
	if err != nil {
		return nil, err
	}
	var r ibmailv1.TrackingReport
	if err := reportJSON.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// writeClassifications writes one line per report: its message id, event
// (or "-"), outcome and rule.
func writeClassifications(w io.Writer, reports []*ibmailv1.DeliveryReport, cs []*ibmailv1.Classification) error {
	tw := table(w)
	fmt.Fprintln(tw, "MESSAGE_ID\tEVENT\tOUTCOME\tRULE")
	for i, c := range cs {
		id := ""
		if i < len(reports) {
			id = reports[i].GetMessageId()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", orDash(id), orDash(c.GetEventName()),
			enumName(c.GetOutcome(), "REPORT_OUTCOME_"), c.GetRule())
	}
	return tw.Flush()
}
