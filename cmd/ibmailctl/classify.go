package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/encoding/protojson"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

var classifyCmd = &command{
	name:    "classify",
	args:    "[FILE]",
	short:   "classify delivery reports: event and rule per report",
	summary: "Classify Infobip delivery reports, one report or a whole webhook body, from FILE or stdin, and print each report's event and rule.",
	example: `ibmailctl classify report.json
curl -s ... | ibmailctl classify --output json`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		return runClassify
	},
}

// reportJSON reads Infobip's JSON leniently, as the server's webhook does:
// Infobip adds fields over time.
var reportJSON = protojson.UnmarshalOptions{DiscardUnknown: true}

func runClassify(ctx context.Context, e *env, args []string) error {
	if len(args) > 1 {
		return usagef("classify takes at most one FILE, got %d arguments", len(args))
	}
	raw, name, err := readInput(e.stdin, args)
	if err != nil {
		return err
	}
	reports, batch, err := parseReports(raw)
	if err != nil {
		return usagef("%s: %v", name, err)
	}
	client := ibmailv1.NewClassifierServiceClient(e.conn)
	if !batch {
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

// parseReports reads one report (an item of Infobip's `results`) or a
// webhook body `{"results": [...]}`; batch says which it was.
func parseReports(raw []byte) (reports []*ibmailv1.DeliveryReport, batch bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, false, fmt.Errorf("no input")
	}
	// Look at the top-level keys first: with unknown fields discarded, a
	// report would otherwise parse as an empty webhook body and vice versa.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, false, fmt.Errorf("not a JSON object: %v", err)
	}
	if _, ok := top["results"]; ok {
		var body ibmailv1.IngestDeliveryReportsRequest
		if err := reportJSON.Unmarshal(raw, &body); err != nil {
			return nil, true, fmt.Errorf("webhook body: %v", err)
		}
		if len(body.GetResults()) == 0 {
			return nil, true, fmt.Errorf("webhook body has no results")
		}
		return body.GetResults(), true, nil
	}
	var r ibmailv1.DeliveryReport
	if err := reportJSON.Unmarshal(raw, &r); err != nil {
		return nil, false, fmt.Errorf("report: %v", err)
	}
	return []*ibmailv1.DeliveryReport{&r}, false, nil
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
