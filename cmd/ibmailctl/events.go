package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

var eventsCmd = &command{
	name:    "events",
	args:    "PROFILE_ID [--event NAME ...] [--limit N]",
	short:   "show a profile's activity list",
	summary: "Print a profile's activity list, newest first.",
	example: `ibmailctl events customer-42 --event newsletter.hardbounce --event newsletter.spambounce --limit 10`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		var names stringList
		fs.Var(&names, "event", "only events of this `NAME`; repeat for more")
		limit := fs.Int("limit", 50, "at most `N` events, 0 for all")
		return func(ctx context.Context, e *env, args []string) error {
			return runEvents(ctx, e, args, names, *limit)
		}
	},
}

func runEvents(ctx context.Context, e *env, args []string, names []string, limit int) error {
	if len(args) != 1 || args[0] == "" {
		return usagef("events takes one PROFILE_ID")
	}
	if limit < 0 {
		return usagef("--limit must not be negative")
	}
	client := ibmailv1.NewProfileServiceClient(e.conn)
	var events []*ibmailv1.ProfileEvent
	token := ""
	for {
		size := int32(1000)
		if limit > 0 && limit-len(events) < 1000 {
			size = int32(limit - len(events))
		}
		resp, err := client.ListProfileEvents(ctx, &ibmailv1.ListProfileEventsRequest{
			ProfileId: args[0], EventNames: names, PageSize: size, PageToken: token,
		})
		if err != nil {
			return err
		}
		events = append(events, resp.GetEvents()...)
		token = resp.GetNextPageToken()
		if token == "" || (limit > 0 && len(events) >= limit) {
			break
		}
	}
	if limit > 0 && len(events) > limit {
		events = events[:limit]
	}
	if e.g.output == "json" {
		out := make([]json.RawMessage, len(events))
		for i, ev := range events {
			out[i] = rawJSON(ev)
		}
		return writeValue(e.stdout, map[string]any{"events": out})
	}
	tw := table(e.stdout)
	fmt.Fprintln(tw, "TIME\tEVENT\tEMAIL\tMESSAGE_ID\tDETAIL")
	for _, ev := range events {
		p := ev.GetParams()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", formatTime(ev.GetTime()), cell(ev.GetAction()), cell(ev.GetEmail()),
			cell(p["messageId"]), cell(eventDetail(p)))
	}
	return tw.Flush()
}

// eventDetail picks the one param that says most about an event, for the
// DETAIL column; --output json has them all.
//   - a delivery report's event: Infobip's error, EC_HARD_BOUNCE;
//   - a click: the URL clicked;
//   - another tracking event: its notification type, COMPLAINED,
//     LATE_BOUNCE, UNSUBSCRIBED, OPENED;
//   - message.send: the send the email went out in.
func eventDetail(p map[string]string) string {
	for _, k := range []string{"errorName", "url", "notificationType", "sendId"} {
		if v := p[k]; v != "" {
			return v
		}
	}
	return ""
}
