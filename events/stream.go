package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// duplicateWindow is the duplicate window of a stream the Publisher
// creates: JetStream's default, ample next to DefaultLease.
const duplicateWindow = 2 * time.Minute

// EnsureStream creates the stream, taking every subject under the prefix,
// if it does not exist, and adds those subjects to it if it exists without
// them. An existing stream's other settings (retention, replicas, limits)
// are the operator's and are left alone. Run calls it before it first
// publishes.
func (p *Publisher) EnsureStream(ctx context.Context) error {
	subjects := p.opts.SubjectPrefix + ".>"
	for range 2 {
		st, err := p.js.Stream(ctx, p.opts.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = p.js.CreateStream(ctx, jetstream.StreamConfig{
				Name:        p.opts.Stream,
				Description: "ibmail profile events, one subject per event name",
				Subjects:    []string{subjects},
				Storage:     jetstream.FileStorage,
				Duplicates:  duplicateWindow,
			})
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				continue // another replica created it first: look again
			}
			if err != nil {
				return fmt.Errorf("create stream %s: %w", p.opts.Stream, err)
			}
			p.opts.Logger.Info("event publisher: stream created", slog.String("stream", p.opts.Stream), slog.String("subjects", subjects))
			return nil
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", p.opts.Stream, err)
		}
		cfg := st.CachedInfo().Config
		if slices.Contains(cfg.Subjects, subjects) {
			return nil
		}
		cfg.Subjects = append(cfg.Subjects, subjects)
		if _, err := p.js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("add %s to stream %s: %w", subjects, p.opts.Stream, err)
		}
		p.opts.Logger.Info("event publisher: subjects added to the stream", slog.String("stream", p.opts.Stream), slog.String("subjects", subjects))
		return nil
	}
	return fmt.Errorf("stream %s: created and gone again", p.opts.Stream)
}
