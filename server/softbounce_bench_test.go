package server_test

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/server"
)

// BenchmarkWebhookIngestDelivered is BenchmarkWebhookIngest with bodies of
// deliveries only (status DELIVERED, no error): the soft-bounce limit's
// cost on the commonest body, each of whose addresses is looked up for a
// count to reset. BenchmarkWebhookIngest's bodies hold a soft bounce in
// four, which are counted.
func BenchmarkWebhookIngestDelivered(b *testing.B) {
	b.Run("store=sqlite", func(b *testing.B) { benchIngest(b, server.WebhookPath, exampleDeliveries, 100) })
	b.Run("store=postgres", func(b *testing.B) {
		benchIngest(b, server.WebhookPath, exampleDeliveries, 100, withPostgres())
	})
}

var (
	exampleStatus = regexp.MustCompile(`"status":\{[^}]*\}`)
	exampleError  = regexp.MustCompile(`"error":\{[^}]*\}`)
)

// exampleDeliveries is sandbox.ExampleDeliveryReports with every report
// delivered.
func exampleDeliveries(prefix string, seq, n int) []byte {
	body := sandbox.ExampleDeliveryReports(prefix, seq, n)
	body = exampleStatus.ReplaceAll(body, []byte(`"status":{"id":5,"groupId":3,"groupName":"DELIVERED","name":"DELIVERED_TO_HANDSET","description":"Message delivered"}`))
	body = exampleError.ReplaceAll(body, []byte(`"error":{"id":0,"name":"NO_ERROR","description":"No Error","groupId":0,"groupName":"OK","permanent":false}`))
	if bytes.Contains(body, []byte("UNDELIVERABLE")) {
		panic("exampleDeliveries: a report is not delivered")
	}
	return body
}
