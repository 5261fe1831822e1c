package server

import (
	"bytes"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// TestWebhookAnswersAsProtojson checks the webhooks' answers against what
// protojson writes with the gateway's options, its spaces aside.
func TestWebhookAnswersAsProtojson(t *testing.T) {
	var answers []proto.Message
	for _, n := range []int32{0, 1, 7, -3, 2000, math.MaxInt32, math.MinInt32} {
		answers = append(answers,
			&ibmailv1.IngestDeliveryReportsResponse{Accepted: n, Duplicates: n / 2, Events: 1, Unclassified: n},
			&ibmailv1.IngestTrackingReportsResponse{Accepted: 1, Duplicates: n, Events: n, Unclassified: n / 3},
			&ibmailv1.IngestPlatformEventsResponse{Accepted: n, Duplicates: 1})
	}
	answers = append(answers, &ibmailv1.IngestDeliveryReportsResponse{}, &ibmailv1.IngestTrackingReportsResponse{}, &ibmailv1.IngestPlatformEventsResponse{})
	for _, a := range answers {
		got, err := gatewayMarshaler.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		want, err := gatewayJSON.JSONPb.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, bytes.ReplaceAll(want, []byte(" "), nil)) {
			t.Errorf("%T answer = %s, protojson %s", a, got, want)
		}
	}
	// An answer that refuses items is protojson's.
	refusing := &ibmailv1.IngestDeliveryReportsResponse{Rejected: []*ibmailv1.RejectedReport{{Index: 1, Reason: "a b"}}}
	got, _ := gatewayMarshaler.Marshal(refusing)
	if want, _ := gatewayJSON.JSONPb.Marshal(refusing); !bytes.Equal(got, want) {
		t.Errorf("refusing answer = %s, protojson %s", got, want)
	}
}
