package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/ibmail/ibmail/store"
)

// countsKept is how far back the bounce-rate counts are kept: the longest
// window (a day) and an hour more, so that a window read as the prune runs
// still finds all of its buckets.
const countsKept = dailyWindow + time.Hour

// pruneCountsEvery is how often the old counts go: they grow by a row per
// domain every five minutes, so once an hour keeps the table a day long.
const pruneCountsEvery = time.Hour

// pruneDomainCounts deletes the bounce-rate counts no window reads any
// more, now and then every pruneCountsEvery, until ctx ends or the server
// closes. Every replica may run it; deleting what another replica deleted
// deletes nothing.
func (s *Server) pruneDomainCounts(ctx context.Context, st store.DomainStore) {
	tick := time.NewTicker(pruneCountsEvery)
	defer tick.Stop()
	for {
		n, err := st.PruneDomainReportCounts(ctx, time.Now().Add(-countsKept))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("pruning old bounce-rate counts failed; retried within the hour", slog.Any("error", err))
		case n > 0:
			s.log.Debug("old bounce-rate counts pruned", slog.Int64("rows", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-s.closed:
			return
		case <-tick.C:
		}
	}
}
