package server

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/ibmail/ibmail/readcheck"
)

// ReasonUnreadableRow: the one row a Get names is stored but cannot be
// shown (see readcheck); listings skip such rows instead.
const ReasonUnreadableRow Reason = "UNREADABLE_ROW"

// rowSkippers account, per kind of row, for the stored rows that the reads
// of one server leave out because they cannot be shown: no stored row may
// break a listing or stall a stream. The kinds are the label of
// ibmail_unreadable_rows_total.
type rowSkippers struct {
	events, matches, reports, tracking, rejected, sends, recipients, suppressions, connections, senders, domains, operations *readcheck.Skipper
}

func newRowSkippers(log *slog.Logger) *rowSkippers {
	return &rowSkippers{
		events:       readcheck.NewSkipper("event", log),
		matches:      readcheck.NewSkipper("profile_match", log),
		reports:      readcheck.NewSkipper("report", log),
		tracking:     readcheck.NewSkipper("tracking_report", log),
		domains:      readcheck.NewSkipper("sending_domain", log),
		rejected:     readcheck.NewSkipper("rejected_payload", log),
		sends:        readcheck.NewSkipper("send", log),
		recipients:   readcheck.NewSkipper("recipient", log),
		suppressions: readcheck.NewSkipper("suppression", log),
		connections:  readcheck.NewSkipper("connection", log),
		senders:      readcheck.NewSkipper("sender", log),
		operations:   readcheck.NewSkipper("operation", log),
	}
}

// showable keeps the rows of a page that can be shown, in order, skipping
// (logging once and counting) the others. Pages are cut before, so that the
// next page token moves past skipped rows too; a page may come out shorter.
func showable[R any, M proto.Message](ctx context.Context, sk *readcheck.Skipper, rows []R, id func(R) string, show func(R) (M, error)) []M {
	out := make([]M, 0, len(rows))
	for _, r := range rows {
		m, err := show(r)
		if err == nil {
			err = readcheck.Message(m)
		}
		if err != nil {
			sk.Skip(ctx, id(r), err)
			continue
		}
		out = append(out, m)
	}
	return out
}

// showOne is showable for the one row of a Get: a row that cannot be shown
// is an error naming it, not an empty answer.
func showOne[M proto.Message](ctx context.Context, sk *readcheck.Skipper, kind, id string, m M) (M, error) {
	if err := readcheck.Message(m); err != nil {
		sk.Skip(ctx, id, err)
		var zero M
		return zero, apiError(codes.DataLoss, ReasonUnreadableRow,
			fmt.Sprintf("%s %q is stored but cannot be shown (%v); it is logged and counted in ibmail_unreadable_rows_total", kind, id, err))
	}
	return m, nil
}
