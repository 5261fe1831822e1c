// Command infobip-sandbox serves the sandbox package's stand-in for
// Infobip's Email API on a local address, with faults set by flags, for
// manual runs, demos and other processes' tests.
//
//	infobip-sandbox --addr 127.0.0.1:8089 --api-key secret --rate 50 --lose-rate 0.01
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ibmail/ibmail/buildinfo"
	"github.com/ibmail/ibmail/cmd/internal/envflag"
	"github.com/ibmail/ibmail/sandbox"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "infobip-sandbox:", err)
		os.Exit(2)
	}
}

// run parses args, serves until ctx ends, then shuts down; ready, if set,
// learns the address actually bound (useful with port 0).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("infobip-sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o sandbox.Options
	addr := fs.String("addr", "127.0.0.1:8089", "`host:port` to listen on")
	fs.StringVar(&o.APIKey, "api-key", "", "the accepted API `key` (Authorization: App <key>); empty accepts any key")
	fs.Func("limited-key", "a `key` without the email scopes, answered 403 FORBIDDEN (repeatable)", func(v string) error {
		o.LimitedKeys = append(o.LimitedKeys, v)
		return nil
	})
	domains := fs.String("domains", "example.com", "comma-separated sending `domains`; suffix :blocked or :inactive to mark one")
	fs.DurationVar(&o.Latency, "latency", 0, "`delay` before each API answer")
	fs.Float64Var(&o.Rate, "rate", 0, "`requests` per second past which the API answers 429 (0: unlimited)")
	fs.DurationVar(&o.RetryAfter, "retry-after", 0, "send Retry-After with this `wait` on 429s (0: no header)")
	fs.BoolVar(&o.E429Body, "e429-body", false, `answer 429 with the newer {"errorCode":"E429"} body instead of TOO_MANY_REQUESTS`)
	fs.Float64Var(&o.FailRate, "fail-rate", 0, "`share` (0..1) of API requests answered 500 and not processed")
	fs.Float64Var(&o.LoseRate, "lose-rate", 0, "`share` (0..1) of API requests processed (sends accepted) whose answer never arrives")
	loseMode := fs.String("lose-mode", string(sandbox.LoseClose), "how answers are lost: close (drop the connection) or hold (until the client gives up)")
	fs.DurationVar(&o.ReportDelay, "report-delay", 200*time.Millisecond, "`delay` between accepting a send and posting its delivery reports")
	fs.IntVar(&o.ReportBatchSize, "report-batch", 100, "most delivery reports per POST")
	fs.IntVar(&o.ReportWorkers, "report-workers", 4, "delivery report POSTs in flight at once")
	fs.IntVar(&o.ReportRetries, "report-retries", 5, "retries of a report POST not answered 200 (0: none)")
	fs.DurationVar(&o.ReportRetryBase, "report-retry-base", time.Second, "retry n waits `base` + base*n*n (Infobip uses a minute)")
	fs.IntVar(&o.MaxPendingReports, "max-pending-reports", 1_000_000, "queued reports past which sends wait")
	fs.StringVar(&o.NotifyURL, "notify-url", "", "`URL` for the reports of sends without a notifyUrl (empty: none)")
	fs.StringVar(&o.TrackingURL, "tracking-url", "", "`URL` for the tracking events of sends without a trackingUrl (empty: none); may carry ?token=")
	fs.StringVar(&o.PlatformEventsURL, "platform-events-url", "", "`URL` receiving platform events (bounce-rate warnings and blocks; empty: none, domains are still blocked); may carry ?token=")
	fs.Float64Var(&o.BounceWarnPercent, "bounce-warn-percent", sandbox.DefaultBounceWarnPercent, "a sending domain's hourly bounce rate, in `percent`, that posts HIGH_BOUNCE_RATE_WARNING (0: never)")
	fs.Float64Var(&o.BounceBlockPercent, "bounce-block-percent", sandbox.DefaultBounceBlockPercent, "a sending domain's hourly bounce rate, in `percent`, that blocks it: HIGH_BOUNCE_RATE_BLOCKED, then error 6016 for every recipient (0: never)")
	fs.IntVar(&o.BounceMinRecipients, "bounce-min-recipients", sandbox.DefaultBounceMinRecipients, "`recipients` a domain needs in the hour before its bounce rate counts")
	fs.DurationVar(&o.BlockDuration, "block-duration", sandbox.DefaultBlockDuration, "how long a blocked domain's sends fail with 6016 (POST /sandbox/domains/{domain}/unblock ends it)")
	fs.Float64Var(&o.DuplicateRate, "duplicate-rate", 0, "`share` (0..1) of delivery reports posted twice")
	fs.Float64Var(&o.BounceRate, "bounce-rate", 0, "`share` (0..1) of otherwise delivered recipients that hard-bounce")
	fs.BoolVar(&o.GenericGroupNames, "generic-group-names", false, "name error groups HANDSET_ERRORS and USER_ERRORS (real traffic) instead of DROPPED and BOUNCED (the seed)")
	fs.Int64Var(&o.Seed, "seed", 0, "seed for ids and random faults, for repeatable runs (0: random)")
	fs.IntVar(&o.MaxLogs, "max-logs", 200_000, "messages kept for GET /email/1/logs")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: infobip-sandbox [flags]\n\n"+
			"Serves Infobip's Email API (POST /email/3/send, GET /email/1/domains, GET /email/1/logs)\n"+
			"and posts delivery reports to each send's notifyUrl. A recipient's outcome follows the start\n"+
			"of its local part: hardbounce, softbounce, inboxfull, spam, suppressed, dropped, userunknown;\n"+
			"complain, latebounce and unsubscribe are delivered, then get COMPLAINED, LATE_BOUNCE or\n"+
			"UNSUBSCRIBED at the send's trackingUrl; anything else is delivered, with OPENED and CLICKED\n"+
			"events when the send tracks opens and clicks (trackOpens, trackClicks, else track, else on).\n"+
			"A domain whose hourly bounce rate (hardbounce, spam, userunknown, latebounce) reaches the\n"+
			"thresholds is warned and then blocked: platform events go to --platform-events-url, and its\n"+
			"sends are accepted with error 6016 EC_SENDER_DOMAIN_BOUNCE_BLOCKED for every recipient.\n"+
			"GET /sandbox/stats shows counters, POST /sandbox/reset clears them, GET /sandbox/domains shows\n"+
			"the bounce counts, POST /sandbox/domains/{domain}/unblock lifts a block.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Fprintln(stdout, "infobip-sandbox", buildinfo.Read())
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := finishOptions(&o, *loseMode, *domains); err != nil {
		return err
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	if err := envflag.HostPort(*addr); err != nil {
		return fmt.Errorf("--addr %q: %w", *addr, err)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	sb := sandbox.New(o)
	defer sb.Close()
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "infobip-sandbox listening on http://%s\n", l.Addr())
	if o.APIKey == "" {
		fmt.Fprintln(stdout, "infobip-sandbox: no --api-key: any App key is accepted")
	}
	if ready != nil {
		ready(l.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = sb.Close() // releases held answers so Shutdown can finish
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	return nil
}

func finishOptions(o *sandbox.Options, loseMode, domains string) error {
	for name, v := range map[string]float64{"fail-rate": o.FailRate, "lose-rate": o.LoseRate, "duplicate-rate": o.DuplicateRate, "bounce-rate": o.BounceRate} {
		if v < 0 || v > 1 {
			return fmt.Errorf("--%s %v: want a share between 0 and 1", name, v)
		}
	}
	for name, v := range map[string]time.Duration{"latency": o.Latency, "retry-after": o.RetryAfter, "report-delay": o.ReportDelay} {
		if v < 0 || v > time.Hour {
			return fmt.Errorf("--%s %v: want 0 to 1h", name, v)
		}
	}
	if o.ReportRetryBase <= 0 || o.ReportRetryBase > time.Hour {
		return fmt.Errorf("--report-retry-base %v: want more than 0, at most 1h", o.ReportRetryBase)
	}
	for name, v := range map[string][2]int{"report-batch": {o.ReportBatchSize, 1000}, "report-workers": {o.ReportWorkers, 1000}, "max-pending-reports": {o.MaxPendingReports, 100_000_000}, "max-logs": {o.MaxLogs, 100_000_000}} {
		if v[0] < 1 || v[0] > v[1] {
			return fmt.Errorf("--%s %d: want 1 to %d", name, v[0], v[1])
		}
	}
	if o.ReportRetries < 0 || o.ReportRetries > 100 {
		return fmt.Errorf("--report-retries %d: want 0 to 100", o.ReportRetries)
	}
	if o.NotifyURL != "" {
		if err := envflag.BaseURL("http", "https")(o.NotifyURL); err != nil {
			return fmt.Errorf("--notify-url: %w", err)
		}
	}
	// These two may carry the receiver's ?token=, so errors never echo them.
	for name, v := range map[string]string{"tracking-url": o.TrackingURL, "platform-events-url": o.PlatformEventsURL} {
		if v == "" {
			continue
		}
		if err := envflag.URL("http", "https")(v); err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
	}
	for name, p := range map[string]*float64{"bounce-warn-percent": &o.BounceWarnPercent, "bounce-block-percent": &o.BounceBlockPercent} {
		if *p < 0 || *p > 100 {
			return fmt.Errorf("--%s %v: want a percentage from 0 to 100", name, *p)
		}
		if *p == 0 {
			*p = -1 // never; the package reads 0 as its default
		}
	}
	if o.BounceWarnPercent > 0 && o.BounceBlockPercent > 0 && o.BounceWarnPercent > o.BounceBlockPercent {
		return fmt.Errorf("--bounce-warn-percent %v: want at most --bounce-block-percent %v", o.BounceWarnPercent, o.BounceBlockPercent)
	}
	if o.BounceMinRecipients < 1 || o.BounceMinRecipients > 1_000_000_000 {
		return fmt.Errorf("--bounce-min-recipients %d: want 1 to 1000000000", o.BounceMinRecipients)
	}
	if o.BlockDuration < time.Second || o.BlockDuration > 30*24*time.Hour {
		return fmt.Errorf("--block-duration %v: want 1s to 720h", o.BlockDuration)
	}
	if o.ReportRetries <= 0 {
		o.ReportRetries = -1 // the package reads 0 as its default
	}
	if o.Rate < 0 {
		return fmt.Errorf("--rate %v: want 0 or more", o.Rate)
	}
	switch m := sandbox.LoseMode(loseMode); m {
	case sandbox.LoseClose, sandbox.LoseHold:
		o.LoseMode = m
	default:
		return fmt.Errorf("--lose-mode %q: want close or hold", loseMode)
	}
	o.Domains = nil
	for _, d := range strings.Split(domains, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		name, mark, _ := strings.Cut(d, ":")
		dom := sandbox.Domain{Name: name, Active: true}
		switch mark {
		case "":
		case "blocked":
			dom.Blocked = true
		case "inactive":
			dom.Active = false
		default:
			return fmt.Errorf("--domains: %q: want :blocked or :inactive after a name", d)
		}
		o.Domains = append(o.Domains, dom)
	}
	if o.Domains == nil {
		o.Domains = []sandbox.Domain{}
	}
	return nil
}
