package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

var domainsCmd = &command{
	name:  "domains",
	args:  "[DOMAIN]",
	short: "show sending domains: state, bounce rates, blocks",
	summary: `Without DOMAIN, list every sending domain (the domain of each sender account's
from address) by name, all pages: its state (ACTIVE, WARNED, BLOCKED or PAUSED),
ibmail's own bounce rate over the last hour and the last 24 hours as
RATE/REPORTS (the share of the domain's delivery reports that were bounces,
late bounces included, and how many reports that counts), what Infobip's last
platform event reported as RATE/THRESHOLD/SCOPE, when a warning or block ends
by itself, and the sender accounts of the domain. With DOMAIN, show that one
domain with the reason for its state and its last events. While a domain is
BLOCKED or PAUSED its sends are held; 'ibmailctl unblock DOMAIN' lets them go.`,
	example: `ibmailctl domains
ibmailctl domains example.com --output json`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		return runDomains
	},
}

var unblockCmd = &command{
	name:  "unblock",
	args:  "DOMAIN",
	short: "lift a sending domain's block or pause (admin)",
	summary: `Lift a sending domain's block (Infobip's, which otherwise lasts 24 hours) or
pause (ibmail's own, see ibmaild --pause-bounce-rate), clearing a warning too,
so that the domain's held sends go out; then show the domain as 'ibmailctl
domains DOMAIN' does. It needs an admin token. It lifts ibmail's hold only:
while Infobip still blocks the domain, its sends fail there with
EC_SENDER_DOMAIN_BOUNCE_BLOCKED (6016).`,
	example: `ibmailctl unblock example.com`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		return runUnblock
	},
}

// domainsPageSize is the page size for listing domains; the server's
// maximum, to make few calls.
const domainsPageSize = 1000

func runDomains(ctx context.Context, e *env, args []string) error {
	if len(args) > 1 {
		return usagef("domains takes at most one DOMAIN, got %d arguments", len(args))
	}
	client := ibmailv1.NewSendingDomainServiceClient(e.conn)
	if len(args) == 1 {
		if err := checkDomainArg(args[0]); err != nil {
			return err
		}
		resp, err := client.GetSendingDomain(ctx, &ibmailv1.GetSendingDomainRequest{Domain: args[0]})
		if err != nil {
			return err
		}
		return writeDomain(e, resp.GetSendingDomain())
	}
	var domains []*ibmailv1.SendingDomainStatus
	token := ""
	for {
		resp, err := client.ListSendingDomains(ctx, &ibmailv1.ListSendingDomainsRequest{PageSize: domainsPageSize, PageToken: token})
		if err != nil {
			return err
		}
		domains = append(domains, resp.GetSendingDomains()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if e.g.output == "json" {
		out := make([]json.RawMessage, len(domains))
		for i, d := range domains {
			out[i] = rawJSON(d)
		}
		return writeValue(e.stdout, map[string]any{"sendingDomains": out})
	}
	tw := table(e.stdout)
	fmt.Fprintln(tw, "DOMAIN\tSTATE\tHOURLY\tDAILY\tREPORTED\tUNTIL\tSENDERS")
	for _, d := range domains {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.GetDomain(), domainState(d),
			ownRate(d.GetHourlyBounceRate(), d.GetHourlyReports()), ownRate(d.GetDailyBounceRate(), d.GetDailyReports()),
			reportedRate(d), orDash(formatTime(d.GetUntil())), orDash(strings.Join(d.GetSenderIds(), ",")))
	}
	return tw.Flush()
}

func runUnblock(ctx context.Context, e *env, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return usagef("unblock takes one DOMAIN")
	}
	if err := checkDomainArg(args[0]); err != nil {
		return err
	}
	resp, err := ibmailv1.NewSendingDomainServiceClient(e.conn).UnblockSendingDomain(ctx, &ibmailv1.UnblockSendingDomainRequest{Domain: args[0]})
	if err != nil {
		return err
	}
	return writeDomain(e, resp.GetSendingDomain())
}

// checkDomainArg catches what cannot be a domain before the call, so that
// a mistyped argument (a flag's value, an address) is a usage error; the
// server checks the rest.
func checkDomainArg(d string) error {
	if d == "" || strings.ContainsAny(d, "@/ \t") || !strings.Contains(d, ".") {
		return usagef("%q is not a domain name such as example.com", d)
	}
	return nil
}

// writeDomain writes one domain: in JSON the API's SendingDomainStatus, in
// text one "name value" a line, as send-status does, then its last events.
func writeDomain(e *env, d *ibmailv1.SendingDomainStatus) error {
	if e.g.output == "json" {
		return writeJSON(e.stdout, d)
	}
	tw := table(e.stdout)
	fmt.Fprintf(tw, "domain\t%s\n", d.GetDomain())
	fmt.Fprintf(tw, "state\t%s\n", domainState(d))
	if r := d.GetReason(); r != "" {
		fmt.Fprintf(tw, "reason\t%s\n", r)
	}
	if u := formatTime(d.GetUntil()); u != "" {
		fmt.Fprintf(tw, "until\t%s\n", u)
	}
	fmt.Fprintf(tw, "hourly\t%s of %d reports\n", percent(d.GetHourlyBounceRate()), d.GetHourlyReports())
	fmt.Fprintf(tw, "daily\t%s of %d reports\n", percent(d.GetDailyBounceRate()), d.GetDailyReports())
	if d.GetReportedScope() != "" {
		fmt.Fprintf(tw, "reported\t%s over the %s window, threshold %s\n", percent(d.GetReportedBounceRate()),
			strings.ToLower(d.GetReportedScope()), percent(d.GetReportedThreshold()))
	}
	fmt.Fprintf(tw, "senders\t%s\n", orDash(strings.Join(d.GetSenderIds(), ",")))
	if u := formatTime(d.GetUpdateTime()); u != "" {
		fmt.Fprintf(tw, "updated\t%s\n", u)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeDomainEvents(e.stdout, d.GetLastEvents())
}

// writeDomainEvents writes a domain's last events, newest first, after a
// blank line; nothing when there are none.
func writeDomainEvents(w io.Writer, events []*ibmailv1.SendingDomainEvent) error {
	if len(events) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := table(w)
	fmt.Fprintln(tw, "TIME\tTYPE\tBOUNCE_RATE\tTHRESHOLD\tSCOPE\tEVENT_ID")
	for _, ev := range events {
		rate, threshold := "-", "-"
		if ev.GetScope() != "" {
			// ibmail's own actions (an unblock) carry no rate.
			rate, threshold = percent(ev.GetBounceRate()), percent(ev.GetThreshold())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", formatTime(ev.GetTime()), ev.GetType(), rate, threshold,
			orDash(ev.GetScope()), orDash(ev.GetEventId()))
	}
	return tw.Flush()
}

// domainState shortens a domain's state, SENDING_DOMAIN_STATE_BLOCKED to
// BLOCKED.
func domainState(d *ibmailv1.SendingDomainStatus) string {
	return enumName(d.GetState(), "SENDING_DOMAIN_STATE_")
}

// ownRate writes ibmail's own bounce rate of a window as RATE/REPORTS,
// one word so that the columns stay parseable.
func ownRate(rate float64, reports int64) string {
	return percent(rate) + "/" + strconv.FormatInt(reports, 10)
}

// reportedRate writes what Infobip's last platform event reported as
// RATE/THRESHOLD/SCOPE, or "-" when no event did.
func reportedRate(d *ibmailv1.SendingDomainStatus) string {
	if d.GetReportedScope() == "" {
		return "-"
	}
	return percent(d.GetReportedBounceRate()) + "/" + percent(d.GetReportedThreshold()) + "/" + d.GetReportedScope()
}

// percent writes a percentage as people read it, to two decimals at most:
// 6.6%, 5%, 33.33%.
func percent(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) + "%"
}
