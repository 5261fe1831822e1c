package main

import (
	"context"
	"flag"
	"fmt"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

var sendersCmd = &command{
	name:  "senders",
	args:  "[list | get ID | add ID | delete ID]",
	short: "manage sender accounts: the from address of a connection (admin)",
	summary: `A sender account is a from address (with an optional from name and reply-to)
on a connection; sends name it. list (the default) shows them, --connection
narrows to one connection; get ID shows one; add ID creates one with
--connection and --from; delete ID deletes it. All need an admin token.`,
	example: `ibmailctl senders add news --connection main --from news@example.com --from-name "Example News"
ibmailctl senders --connection main`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		o := &senderOptions{}
		fs.StringVar(&o.connection, "connection", "", "the connection's id (add; list narrows to it)")
		fs.StringVar(&o.from, "from", "", "the from address (add)")
		fs.StringVar(&o.fromName, "from-name", "", "the from name (add)")
		fs.StringVar(&o.replyTo, "reply-to", "", "the reply-to address (add)")
		return func(ctx context.Context, e *env, args []string) error { return runSenders(ctx, e, o, args) }
	},
}

type senderOptions struct{ connection, from, fromName, replyTo string }

func runSenders(ctx context.Context, e *env, o *senderOptions, args []string) error {
	action, id, err := actionAndID("senders", args, "list", "get ID", "add ID", "delete ID")
	if err != nil {
		return err
	}
	client := ibmailv1.NewSenderServiceClient(e.conn)
	switch action {
	case "list":
		all, err := allPages(func(token string) ([]*ibmailv1.Sender, string, error) {
			resp, err := client.ListSenders(ctx, &ibmailv1.ListSendersRequest{PageSize: 100, PageToken: token, ConnectionId: o.connection})
			return resp.GetSenders(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		if e.g.output == "json" {
			return writeJSONList(e.stdout, "senders", all)
		}
		tw := table(e.stdout)
		fmt.Fprintln(tw, "ID\tCONNECTION\tFROM\tFROM NAME\tREPLY-TO")
		for _, s := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.GetId(), s.GetConnectionId(), s.GetFromAddress(), orDash(s.GetFromName()), orDash(s.GetReplyTo()))
		}
		return tw.Flush()
	case "get":
		resp, err := client.GetSender(ctx, &ibmailv1.GetSenderRequest{SenderId: id})
		if err != nil {
			return err
		}
		return writeSender(e, resp.GetSender())
	case "add":
		if o.connection == "" || o.from == "" {
			return usagef("senders add: --connection and --from are required")
		}
		resp, err := client.CreateSender(ctx, &ibmailv1.CreateSenderRequest{Sender: &ibmailv1.Sender{
			Id: id, ConnectionId: o.connection, FromAddress: o.from, FromName: o.fromName, ReplyTo: o.replyTo,
		}})
		if err != nil {
			return err
		}
		return writeSender(e, resp.GetSender())
	default: // delete
		if _, err := client.DeleteSender(ctx, &ibmailv1.DeleteSenderRequest{SenderId: id}); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "deleted sender %s\n", id)
		return nil
	}
}

func writeSender(e *env, s *ibmailv1.Sender) error {
	if e.g.output == "json" {
		return writeJSON(e.stdout, s)
	}
	tw := table(e.stdout)
	for _, row := range [][2]string{
		{"id", s.GetId()}, {"connection", s.GetConnectionId()}, {"from", s.GetFromAddress()},
		{"from name", orDash(s.GetFromName())}, {"reply-to", orDash(s.GetReplyTo())}, {"created", formatTime(s.GetCreateTime())},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}
