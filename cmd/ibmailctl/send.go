package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// pollInterval is how often --wait asks for the send's progress; tests
// shorten it.
var pollInterval = time.Second

var sendCmd = &command{
	name:    "send",
	args:    "--sender ID --subject S (--html FILE | --text FILE | --template-id N) --recipients FILE.csv [flags]",
	short:   "send an email to the recipients of a CSV file",
	summary: "Send an email to the recipients of a CSV file (header email,profileId[,placeholder columns...]) and print the send's id.",
	example: `ibmailctl send --sender news --subject 'Hello {{name}}' --html hello.html \
  --recipients people.csv --idempotency-key spring-2024 --wait`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		o := &sendOpts{}
		fs.StringVar(&o.sender, "sender", "", "sender account `ID` (required)")
		fs.StringVar(&o.subject, "subject", "", "subject, with {{placeholders}}; required unless --template-id")
		fs.StringVar(&o.html, "html", "", "`FILE` with the HTML body")
		fs.StringVar(&o.text, "text", "", "`FILE` with the plain-text body")
		fs.Int64Var(&o.templateID, "template-id", 0, "Infobip template `N` instead of --html/--text")
		fs.StringVar(&o.recipients, "recipients", "", "recipients CSV `FILE` (required; - for stdin)")
		fs.StringVar(&o.idempotencyKey, "idempotency-key", "", "`key` that makes a retried command give the same send")
		fs.StringVar(&o.campaign, "campaign", "", "campaign `id`, echoed in Infobip's reports")
		fs.BoolVar(&o.wait, "wait", false, "poll until the send is done and print its counts (bounded by --timeout)")
		return o.run
	},
}

// sendOpts are the send subcommand's flags.
type sendOpts struct {
	sender, subject, html, text string
	templateID                  int64
	recipients                  string
	idempotencyKey, campaign    string
	wait                        bool
}

func (o *sendOpts) run(ctx context.Context, e *env, args []string) error {
	req, err := o.request(e.stdin, args)
	if err != nil {
		return err
	}
	client := ibmailv1.NewSendServiceClient(e.conn)
	resp, err := client.CreateSend(ctx, req)
	if err != nil {
		return err
	}
	send := resp.GetSend()
	if !o.wait {
		if e.g.output == "json" {
			return writeJSON(e.stdout, send)
		}
		_, err := fmt.Fprintln(e.stdout, send.GetId())
		return err
	}
	// Print the id at once so that a script, or a person who gives up
	// waiting, can still follow the send.
	if e.g.output == "text" {
		fmt.Fprintln(e.stdout, send.GetId())
	}
	send, err = waitDone(ctx, client, send)
	if err != nil {
		return err
	}
	if e.g.output == "json" {
		return writeJSON(e.stdout, send)
	}
	return writeSendCounts(e.stdout, send)
}

// request builds the CreateSendRequest from the flags and files.
func (o *sendOpts) request(stdin io.Reader, args []string) (*ibmailv1.CreateSendRequest, error) {
	if len(args) > 0 {
		return nil, usagef("send takes no arguments, got %q", args)
	}
	if o.sender == "" {
		return nil, usagef("--sender is required")
	}
	if o.recipients == "" {
		return nil, usagef("--recipients is required")
	}
	if o.templateID == 0 && o.html == "" && o.text == "" {
		return nil, usagef("one of --html, --text or --template-id is required")
	}
	if o.templateID != 0 && (o.html != "" || o.text != "") {
		return nil, usagef("--template-id excludes --html and --text")
	}
	req := &ibmailv1.CreateSendRequest{
		SenderId: o.sender, Subject: o.subject, TemplateId: o.templateID,
		IdempotencyKey: o.idempotencyKey, CampaignId: o.campaign,
	}
	var err error
	if req.Html, err = readBody(o.html); err != nil {
		return nil, err
	}
	if req.Text, err = readBody(o.text); err != nil {
		return nil, err
	}
	var r io.Reader = stdin
	if o.recipients != "-" {
		f, err := os.Open(o.recipients)
		if err != nil {
			return nil, usagef("%v", err)
		}
		defer f.Close()
		r = f
	}
	if req.Recipients, err = parseRecipients(r); err != nil {
		return nil, usagef("%s: %v", o.recipients, err)
	}
	return req, nil
}

// readBody reads a body file; an empty name means no body.
func readBody(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return "", usagef("%v", err)
	}
	return string(b), nil
}

// waitDone polls GetSend until the send is done or ctx ends.
func waitDone(ctx context.Context, client ibmailv1.SendServiceClient, send *ibmailv1.Send) (*ibmailv1.Send, error) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for send.GetState() != ibmailv1.SendState_SEND_STATE_DONE {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		resp, err := client.GetSend(ctx, &ibmailv1.GetSendRequest{SendId: send.GetId()})
		if err != nil {
			return nil, err
		}
		send = resp.GetSend()
	}
	return send, nil
}

// writeSendCounts writes a send's state and counts, one "name value" a
// line, easy to read and to grep.
func writeSendCounts(w io.Writer, s *ibmailv1.Send) error {
	tw := table(w)
	fmt.Fprintf(tw, "id\t%s\n", s.GetId())
	fmt.Fprintf(tw, "state\t%s\n", enumName(s.GetState(), "SEND_STATE_"))
	if h := s.GetHoldReason(); h != "" {
		// Why the pending recipients wait, such as a blocked sending
		// domain; only while something holds them.
		fmt.Fprintf(tw, "held\t%s\n", h)
	}
	for _, c := range []struct {
		name string
		n    int32
	}{
		{"recipients", s.GetRecipientCount()},
		{"pending", s.GetPendingCount()},
		{"accepted", s.GetAcceptedCount()},
		{"rejected", s.GetRejectedCount()},
		{"suppressed", s.GetSuppressedCount()},
		{"failed", s.GetFailedCount()},
	} {
		fmt.Fprintf(tw, "%s\t%d\n", c.name, c.n)
	}
	return tw.Flush()
}
