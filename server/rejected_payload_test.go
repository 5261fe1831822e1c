package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// TestLargeRejectedPayloadsKeepEveryPageReadable keeps six large refused
// bodies: a listing of 1000 would be megabytes over a gRPC client's default
// 4 MiB receive limit, so that the list of rejected payloads broke for every
// gRPC caller. Pages now end at a byte budget and shorten each body, and a
// Get gives the whole body back, byte for byte.
func TestLargeRejectedPayloadsKeepEveryPageReadable(t *testing.T) {
	env := newTestEnv(t)
	bodies := make([][]byte, 6)
	for i := range bodies {
		// Not JSON: refused whole and kept as it arrived.
		bodies[i] = append([]byte(fmt.Sprintf("not json %d ", i)), bytes.Repeat([]byte{'x'}, 900<<10)...)
		if code, got := env.postWebhook(t, string(bodies[i])); code != http.StatusBadRequest {
			t.Fatalf("body %d: status %d, %v; want 400", i, code, got)
		}
	}
	ctx := context.Background()
	client := ibmailv1.NewDeliveryReportServiceClient(env.conn)
	var ids []string
	token := ""
	for page := 0; ; page++ {
		resp, err := client.ListRejectedPayloads(ctx, &ibmailv1.ListRejectedPayloadsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatalf("page %d over gRPC: %v", page, err)
		}
		for _, p := range resp.GetPayloads() {
			if !p.GetBodyTruncated() || p.GetBodyBytes() != int64(len(bodies[0])) || len(p.GetBody()) >= len(bodies[0]) {
				t.Errorf("payload %s: truncated %v, %d of %d bytes; want a shortened body and its whole size",
					p.GetId(), p.GetBodyTruncated(), len(p.GetBody()), p.GetBodyBytes())
			}
			ids = append(ids, p.GetId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(ids) != len(bodies) {
		t.Fatalf("listed %d payloads over all pages, want %d", len(ids), len(bodies))
	}
	// Newest first: ids[0] is the last body posted.
	code, got := env.do(t, http.MethodGet, "/v1/rejectedPayloads/"+ids[0], "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/rejectedPayloads/%s = %d, %v", ids[0], code, got)
	}
	p, _ := got["payload"].(map[string]any)
	raw, _ := base64.StdEncoding.DecodeString(fmt.Sprint(p["body"]))
	if !bytes.Equal(raw, bodies[len(bodies)-1]) || p["bodyTruncated"] == true {
		t.Errorf("GET gave %d bytes (truncated %v), want the whole body of %d bytes", len(raw), p["bodyTruncated"], len(bodies[len(bodies)-1]))
	}
	for _, id := range []string{"0", "-1", "abc", "99999999"} {
		if code, got := env.do(t, http.MethodGet, "/v1/rejectedPayloads/"+id, "", nil); code != http.StatusBadRequest && code != http.StatusNotFound {
			t.Errorf("GET /v1/rejectedPayloads/%s = %d, %v; want 400 or 404", id, code, got)
		}
	}
}
