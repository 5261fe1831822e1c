package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/ibmail/ibmail/events"
	"github.com/ibmail/ibmail/store"
)

// eventsRun moves stored events out: the sequencer, which gives events
// their positions for WatchEvents and always runs, and the NATS JetStream
// publisher when --nats-url is set. Without it nothing is published, and
// the outbox is still emptied by the sequencer.
type eventsRun struct {
	seq *events.Sequencer
	pub *events.Publisher // nil without --nats-url
	nc  *nats.Conn
}

// startEvents builds them and connects to NATS. An unreachable NATS does
// not stop the start: the connection keeps trying, and events wait in the
// store meanwhile.
func startEvents(cfg config, st store.Store, owner string, log *slog.Logger) (*eventsRun, error) {
	e := &eventsRun{seq: events.NewSequencer(events.SequencerOptions{
		Store: st, Owner: owner, Logger: log.With(slog.String("component", "events")),
	})}
	if cfg.natsURL == "" {
		return e, nil
	}
	plog := log.With(slog.String("component", "nats"))
	where := redactNATSURL(cfg.natsURL)
	nc, err := nats.Connect(cfg.natsURL,
		nats.Name("ibmaild "+owner),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: closed at shutdown
				plog.Warn("disconnected from NATS", slog.String("nats", where), slog.Any("error", err))
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { plog.Info("reconnected to NATS", slog.String("nats", where)) }),
	)
	if err != nil {
		return nil, fmt.Errorf("--nats-url %s: %w", where, err)
	}
	e.nc = nc
	if e.pub, err = events.NewPublisher(events.PublisherOptions{
		Store: st, Conn: nc, Owner: owner, Stream: cfg.natsStream, SubjectPrefix: cfg.natsSubjectPrefix,
		Sequenced: e.seq.Changed, Logger: plog,
	}); err != nil {
		nc.Close()
		return nil, err
	}
	plog.Info("publishing events to NATS JetStream", slog.String("nats", where),
		slog.String("stream", cfg.natsStream), slog.String("subjects", cfg.natsSubjectPrefix+".>"))
	return e, nil
}

// run runs them until ctx ends, counted in wg.
func (e *eventsRun) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Go(func() { e.seq.Run(ctx) }) //nolint:errcheck // returns nil when stopped
	if e.pub != nil {
		wg.Go(func() { e.pub.Run(ctx) }) //nolint:errcheck // returns nil when stopped
	}
}

func (e *eventsRun) close() {
	if e.nc != nil {
		e.nc.Close()
	}
}

// redactNATSURL drops the user, password or token from each server URL, so
// that the URLs can be logged.
func redactNATSURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.Host != "" {
			u.User = nil
			parts[i] = u.String()
		} else {
			parts[i] = "(unparsable URL)"
		}
	}
	return strings.Join(parts, ",")
}
