package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

var suppressionsCmd = &command{
	name:  "suppressions",
	args:  "[list | delete EMAIL | import FILE | export]",
	short: "list, lift, import and export suppressed addresses (admin)",
	summary: `list (the default) shows the suppressed addresses in order, with why, since
when, until when and how each came to be (an event, the soft-bounce limit, an
import); --include-expired adds those that expired. delete EMAIL lifts one.
import FILE (- for standard input) adds another provider's list: CSV with a
header row naming email and optionally reason, create_time, expire_time (RFC
3339), or with --format json an array of Suppression objects; addresses
already suppressed keep their suppression, and each refused line is printed
with its number and field. export writes the list to standard output as CSV
(cells a spreadsheet would run as formulas are prefixed with ') or JSON, in
the form import takes back. All need an admin token.`,
	example: `ibmailctl suppressions import old-provider.csv --default-reason "moved from Acme"
ibmailctl suppressions export --format json --include-expired > suppressions.json
ibmailctl suppressions delete ann@example.com`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		o := &suppressionOptions{}
		fs.StringVar(&o.format, "format", "csv", "file format: csv or json (import, export)")
		fs.BoolVar(&o.includeExpired, "include-expired", false, "also suppressions that expired (list, export)")
		fs.StringVar(&o.defaultReason, "default-reason", "", "the reason of lines that give none (import); default: import")
		return func(ctx context.Context, e *env, args []string) error { return runSuppressions(ctx, e, o, args) }
	},
}

type suppressionOptions struct {
	format, defaultReason string
	includeExpired        bool
}

// maxImportFile is the server's bound on an import.
const maxImportFile = 16 << 20

func runSuppressions(ctx context.Context, e *env, o *suppressionOptions, args []string) error {
	action, arg, err := actionAndID("suppressions", args, "list", "delete EMAIL", "import FILE", "export")
	if err != nil {
		return err
	}
	var format ibmailv1.SuppressionFormat
	switch o.format {
	case "csv":
		format = ibmailv1.SuppressionFormat_SUPPRESSION_FORMAT_CSV
	case "json":
		format = ibmailv1.SuppressionFormat_SUPPRESSION_FORMAT_JSON
	default:
		return usagef("--format %q: give csv or json", o.format)
	}
	client := ibmailv1.NewSuppressionServiceClient(e.conn)
	switch action {
	case "list":
		all, err := allPages(func(token string) ([]*ibmailv1.Suppression, string, error) {
			resp, err := client.ListSuppressions(ctx, &ibmailv1.ListSuppressionsRequest{PageSize: 1000, PageToken: token, IncludeExpired: o.includeExpired})
			return resp.GetSuppressions(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		if e.g.output == "json" {
			return writeJSONList(e.stdout, "suppressions", all)
		}
		tw := table(e.stdout)
		fmt.Fprintln(tw, "EMAIL\tREASON\tSINCE\tUNTIL\tORIGIN\tEVENTS")
		for _, s := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.GetEmail(), orDash(s.GetReason()), formatTime(s.GetCreateTime()),
				orDash(formatTime(s.GetExpireTime())), strings.ToLower(strings.TrimPrefix(s.GetOrigin().String(), "SUPPRESSION_ORIGIN_")),
				orDash(strings.Join(s.GetCauseEventIds(), ",")))
		}
		return tw.Flush()
	case "delete":
		if _, err := client.DeleteSuppression(ctx, &ibmailv1.DeleteSuppressionRequest{Email: arg}); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "lifted the suppression of %s\n", arg)
		return nil
	case "import":
		var r io.Reader = e.stdin
		if arg != "-" {
			f, err := os.Open(arg)
			if err != nil {
				return usagef("%v", err)
			}
			defer f.Close()
			r = f
		}
		content, err := io.ReadAll(io.LimitReader(r, maxImportFile+1))
		if err != nil {
			return usagef("%s: %v", arg, err)
		}
		if len(content) > maxImportFile {
			return usagef("%s is larger than %d bytes: split it", arg, maxImportFile)
		}
		resp, err := client.ImportSuppressions(ctx, &ibmailv1.ImportSuppressionsRequest{Format: format, Content: content, DefaultReason: o.defaultReason})
		if err != nil {
			return err
		}
		if e.g.output == "json" {
			return writeJSON(e.stdout, resp)
		}
		fmt.Fprintf(e.stdout, "%d imported, %d already suppressed, %d refused\n", resp.GetImported(), resp.GetAlreadySuppressed(), resp.GetRefused())
		for _, le := range resp.GetErrors() {
			fmt.Fprintf(e.stdout, "line %d: %s: %s\n", le.GetLine(), le.GetField(), le.GetDescription())
		}
		if resp.GetRefused() > int32(len(resp.GetErrors())) {
			fmt.Fprintf(e.stdout, "... and %d more refused lines\n", resp.GetRefused()-int32(len(resp.GetErrors())))
		}
		return nil
	default: // export
		stream, err := client.ExportSuppressions(ctx, &ibmailv1.ExportSuppressionsRequest{Format: format, IncludeExpired: o.includeExpired})
		if err != nil {
			return err
		}
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if _, err := e.stdout.Write(chunk.GetContent()); err != nil {
				return err
			}
		}
	}
}
