package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

var sendStatusCmd = &command{
	name:    "send-status",
	args:    "SEND_ID [--recipients]",
	short:   "show a send's progress and, optionally, its recipients",
	summary: "Print a send's state and progress counts, and with --recipients every recipient's state, message id and reason.",
	example: `ibmailctl send-status send-99b3e4d0a1 --recipients`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		withRecipients := fs.Bool("recipients", false, "also list every recipient (all pages)")
		return func(ctx context.Context, e *env, args []string) error {
			return runSendStatus(ctx, e, args, *withRecipients)
		}
	},
}

// recipientsPageSize is the page size for listing recipients; the server's
// maximum, to make few calls.
const recipientsPageSize = 1000

func runSendStatus(ctx context.Context, e *env, args []string, withRecipients bool) error {
	if len(args) != 1 || args[0] == "" {
		return usagef("send-status takes one SEND_ID")
	}
	client := ibmailv1.NewSendServiceClient(e.conn)
	resp, err := client.GetSend(ctx, &ibmailv1.GetSendRequest{SendId: args[0]})
	if err != nil {
		return err
	}
	send := resp.GetSend()
	var recipients []*ibmailv1.SendRecipient
	if withRecipients {
		if recipients, err = allRecipients(ctx, client, send.GetId()); err != nil {
			return err
		}
	}
	if e.g.output == "json" {
		if !withRecipients {
			return writeJSON(e.stdout, send)
		}
		rs := make([]json.RawMessage, len(recipients))
		for i, r := range recipients {
			rs[i] = rawJSON(r)
		}
		return writeValue(e.stdout, map[string]any{"send": rawJSON(send), "recipients": rs})
	}
	if err := writeSendCounts(e.stdout, send); err != nil {
		return err
	}
	if !withRecipients {
		return nil
	}
	fmt.Fprintln(e.stdout)
	tw := table(e.stdout)
	fmt.Fprintln(tw, "EMAIL\tPROFILE_ID\tSTATE\tMESSAGE_ID\tREASON")
	for _, r := range recipients {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.GetEmail(), orDash(r.GetProfileId()),
			enumName(r.GetState(), "RECIPIENT_STATE_"), orDash(r.GetMessageId()), orDash(r.GetReason()))
	}
	return tw.Flush()
}

// allRecipients follows the page tokens to the last page.
func allRecipients(ctx context.Context, client ibmailv1.SendServiceClient, sendID string) ([]*ibmailv1.SendRecipient, error) {
	var out []*ibmailv1.SendRecipient
	token := ""
	for {
		resp, err := client.ListSendRecipients(ctx, &ibmailv1.ListSendRecipientsRequest{
			SendId: sendID, PageSize: recipientsPageSize, PageToken: token,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetRecipients()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}
