package main

import (
	"context"
	"encoding/csv"
	"flag"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

var segmentCmd = &command{
	name:    "segment",
	args:    "--event NAME ... [--since RFC3339] [--until RFC3339] > out.csv",
	short:   "export a segmentation as CSV",
	summary: "Export the profiles with any of the given events in a time window as CSV (profileId,email,eventCount,lastEventTime), all pages.",
	example: `ibmailctl segment --event newsletter.hardbounce --event newsletter.spambounce \
  --since 2024-05-01T00:00:00Z --until 2024-06-01T00:00:00Z > bounced.csv`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		var names stringList
		fs.Var(&names, "event", "event `NAME` to look for (required); repeat for more")
		since := fs.String("since", "", "only events at or after this `time` (RFC 3339)")
		until := fs.String("until", "", "only events before this `time` (RFC 3339)")
		return func(ctx context.Context, e *env, args []string) error {
			return runSegment(ctx, e, args, names, *since, *until)
		}
	},
}

func runSegment(ctx context.Context, e *env, args []string, names []string, since, until string) error {
	if len(args) > 0 {
		return usagef("segment takes no arguments, got %q", args)
	}
	if len(names) == 0 {
		return usagef("at least one --event is required")
	}
	req := &ibmailv1.SearchProfilesRequest{EventNames: names, PageSize: 1000}
	var err error
	if req.Since, err = parseTimeFlag("since", since); err != nil {
		return err
	}
	if req.Until, err = parseTimeFlag("until", until); err != nil {
		return err
	}
	client := ibmailv1.NewProfileServiceClient(e.conn)
	// The CSV is the output whatever --output says: it is what the command
	// is for. Rows are written page by page, so a large segment streams.
	w := csv.NewWriter(e.stdout)
	w.Write([]string{"profileId", "email", "eventCount", "lastEventTime"}) //nolint:errcheck // w.Error below
	for {
		resp, err := client.SearchProfiles(ctx, req)
		if err != nil {
			return err
		}
		for _, p := range resp.GetProfiles() {
			w.Write([]string{p.GetProfileId(), p.GetEmail(), strconv.Itoa(int(p.GetEventCount())), formatTime(p.GetLastEventTime())}) //nolint:errcheck
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return nil
		}
	}
}

// parseTimeFlag parses an RFC 3339 flag value; empty means unset.
func parseTimeFlag(name, v string) (*timestamppb.Timestamp, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, usagef("--%s %q is not an RFC 3339 time such as 2024-05-01T00:00:00Z", name, v)
	}
	return timestamppb.New(t), nil
}
