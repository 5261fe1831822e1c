package server

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ibmail/ibmail/events"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/readcheck"
	"github.com/ibmail/ibmail/store"
)

const (
	// watchBatch bounds the events one read of the log gives a watcher;
	// a full batch is followed by the next read at once.
	watchBatch = 500
	// watchPoll is how often a caught-up watcher reads the log again. The
	// sequencer of this process wakes it earlier; this is how it hears of
	// events that another replica sequenced.
	watchPoll = 500 * time.Millisecond
)

// EventService implements ibmail.v1.EventService: the event log, streamed.
type EventService struct {
	ibmailv1.UnimplementedEventServiceServer
	store    store.Store
	changed  func() <-chan struct{}
	stopping <-chan struct{}
	log      *slog.Logger
	rows     *rowSkippers
}

// NewEventService returns an EventService reading st. changed, if not nil,
// returns a channel closed when the log may have grown (the Sequencer's
// Changed), so that watchers get new events without waiting for a poll.
// Streams end when stopping is closed: they never end by themselves, and a
// graceful stop would otherwise wait for them until its grace ran out.
func NewEventService(st store.Store, changed func() <-chan struct{}, stopping <-chan struct{}, log *slog.Logger) *EventService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EventService{store: st, changed: changed, stopping: stopping, log: log, rows: newRowSkippers(log)}
}

// WatchEvents streams the log after a position, then new events as they
// come. Streams pass no unary interceptor, so errors get their codes here.
func (s *EventService) WatchEvents(req *ibmailv1.WatchEventsRequest, stream grpc.ServerStreamingServer[ibmailv1.WatchEventsResponse]) error {
	start := time.Now()
	err := toStatus(s.watch(req, stream))
	code := status.Code(err)
	// A stream ends in an error by nature (the client cancels, the server
	// stops): only the store failing is worth more than debug.
	level := slog.LevelDebug
	if reasonOf(status.Convert(err)) == ReasonStoreUnavailable || code == codes.Internal || code == codes.Unknown {
		level = slog.LevelError
	}
	s.log.LogAttrs(stream.Context(), level, "rpc", slog.String("method", ibmailv1.EventService_WatchEvents_FullMethodName),
		slog.String("code", code.String()), slog.Duration("duration", time.Since(start)))
	return err
}

func (s *EventService) watch(req *ibmailv1.WatchEventsRequest, stream grpc.ServerStreamingServer[ibmailv1.WatchEventsResponse]) error {
	ctx := stream.Context()
	names, err := eventNames("event_names", req.GetEventNames(), false)
	if err != nil {
		return err
	}
	after := req.GetAfterPosition()
	if after < 0 {
		return invalidField("after_position", "must not be negative")
	}
	if req.GetFromNow() && after != 0 {
		return invalidField("after_position", "must be 0 with from_now")
	}
	last, err := s.store.LastEventPosition(ctx)
	if err != nil {
		return err
	}
	switch {
	case req.GetFromNow():
		after = last
	case after > last:
		// Positions are read back from the store every replica shares, so
		// a client's position is never ahead of it: this one comes from
		// another log (another database, or one restored from a backup).
		return invalidField("after_position", fmt.Sprintf("%d is past the end of the event log (%d)", after, last))
	}
	// The headers tell the client that the start is fixed: with from_now,
	// whatever it causes from here on will be streamed.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}

	poll := time.NewTimer(watchPoll)
	defer poll.Stop()
	for {
		// Taken before reading, so that events sequenced during the read
		// still wake the wait below.
		var changed <-chan struct{}
		if s.changed != nil {
			changed = s.changed()
		}
		evs, err := s.store.ReadEventLog(ctx, store.EventLogQuery{After: after, Names: names, Limit: watchBatch})
		if err != nil {
			return err
		}
		for _, e := range evs {
			// A stored event that cannot be shown is skipped, not sent
			// again and again to a client that would fail on it: the
			// stream goes on past it.
			if ev, err := showEvent(e.Event); err != nil {
				s.rows.events.Skip(ctx, eventRowID(e.Event), err)
			} else if err := stream.Send(&ibmailv1.WatchEventsResponse{Position: e.Position, Event: ev, Retraction: e.Retraction}); err != nil {
				return err
			}
			after = e.Position
		}
		if len(evs) == watchBatch {
			continue
		}
		poll.Reset(watchPoll)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopping:
			return apiError(codes.Unavailable, ReasonShuttingDown, "the server is shutting down; reconnect with after_position")
		case <-changed:
		case <-poll.C:
		}
	}
}

// showEvent is an event as the API shows it, or why it cannot be shown.
func showEvent(e store.Event) (*ibmailv1.ProfileEvent, error) {
	if e.Unreadable != "" {
		return nil, errors.New(e.Unreadable)
	}
	ev := events.ProfileEvent(e)
	return ev, readcheck.Message(ev)
}

func eventRowID(e store.Event) string { return fmt.Sprint(e.ID) }
