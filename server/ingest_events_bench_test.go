package server_test

import (
	"testing"

	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
)

// The benchmarks of the webhooks of issue 10, apart from
// ingest_bench_test.go so that scripts/bench.sh can run that file's
// benchmarks against builds from before them.

// BenchmarkTrackingIngest is BenchmarkWebhookIngest for the tracking
// webhook: 100 opens, clicks, complaints, late bounces and unsubscribes a
// body.
func BenchmarkTrackingIngest(b *testing.B) {
	b.Run("store=sqlite", func(b *testing.B) {
		benchIngest(b, server.TrackingWebhookPath, sandbox.ExampleTrackingReports, 100)
	})
	b.Run("store=postgres", func(b *testing.B) {
		benchIngest(b, server.TrackingWebhookPath, sandbox.ExampleTrackingReports, 100, withPostgres())
	})
}

// BenchmarkPlatformEventsIngest is BenchmarkWebhookIngest for the
// platform-events webhook: 100 bounce-rate warnings and blocks a body.
func BenchmarkPlatformEventsIngest(b *testing.B) {
	b.Run("store=sqlite", func(b *testing.B) {
		benchIngest(b, server.PlatformEventsWebhookPath, sandbox.ExamplePlatformEvents, 100)
	})
	b.Run("store=postgres", func(b *testing.B) {
		benchIngest(b, server.PlatformEventsWebhookPath, sandbox.ExamplePlatformEvents, 100, withPostgres())
	})
}
