package server

import (
	"strconv"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// Marshal writes a webhook's answer that refuses nothing itself, and
// leaves every other message to protojson: on a one-report body protojson's
// reflection over the answer's five fields was as costly as decoding the
// report. The JSON is what protojson writes with the gateway's options
// (every field, lowerCamel names, in field order), but for protojson's
// randomly placed spaces.
func (m *directJSONPb) Marshal(v any) ([]byte, error) {
	if b, ok := marshalWebhookAnswer(v); ok {
		return b, nil
	}
	return m.JSONPb.Marshal(v)
}

// marshalWebhookAnswer writes v when it is a webhook's answer without
// rejected items.
func marshalWebhookAnswer(v any) ([]byte, bool) {
	switch a := v.(type) {
	case *ibmailv1.IngestDeliveryReportsResponse:
		if a == nil || len(a.Rejected) > 0 {
			return nil, false
		}
		return reportCounts(a.Accepted, a.Duplicates, a.Events, a.Unclassified), true
	case *ibmailv1.IngestTrackingReportsResponse:
		if a == nil || len(a.Rejected) > 0 {
			return nil, false
		}
		return reportCounts(a.Accepted, a.Duplicates, a.Events, a.Unclassified), true
	case *ibmailv1.IngestPlatformEventsResponse:
		if a == nil || len(a.Rejected) > 0 {
			return nil, false
		}
		b := append(make([]byte, 0, 64), `{"accepted":`...)
		b = strconv.AppendInt(b, int64(a.Accepted), 10)
		b = append(b, `,"duplicates":`...)
		b = strconv.AppendInt(b, int64(a.Duplicates), 10)
		return append(b, `,"rejected":[]}`...), true
	}
	return nil, false
}

// reportCounts is the answer of the delivery and tracking webhooks.
func reportCounts(accepted, duplicates, events, unclassified int32) []byte {
	b := append(make([]byte, 0, 96), `{"accepted":`...)
	b = strconv.AppendInt(b, int64(accepted), 10)
	b = append(b, `,"duplicates":`...)
	b = strconv.AppendInt(b, int64(duplicates), 10)
	b = append(b, `,"events":`...)
	b = strconv.AppendInt(b, int64(events), 10)
	b = append(b, `,"unclassified":`...)
	b = strconv.AppendInt(b, int64(unclassified), 10)
	return append(b, `,"rejected":[]}`...)
}
