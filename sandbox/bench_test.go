package sandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ibmail/ibmail/sandbox"
)

// BenchmarkSandboxSend measures the sandbox's own ceiling: 1000-recipient
// sends over HTTP, each recipient's report posted to a receiver that
// discards it, all reports delivered before the clock stops.
func BenchmarkSandboxSend(b *testing.B) {
	discard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer discard.Close()
	sb := sandbox.New(sandbox.Options{APIKey: key, ReportBatchSize: 500})
	defer sb.Close()
	srv := httptest.NewServer(sb)
	defer srv.Close()

	const n = 1000
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fields := [][2]string{{"from", "Shop <news@example.com>"}, {"subject", "Spring sale"},
		{"html", "<p>Hello {{name}}</p>"}, {"notifyUrl", discard.URL + "/dlr?token=t"}, {"callbackData", `{"campaign":"spring"}`}}
	for _, f := range fields {
		_ = mw.WriteField(f[0], f[1])
	}
	for i := range n {
		_ = mw.WriteField("to", fmt.Sprintf(`{"to":"customer-%d@example.com","placeholders":{"name":"C%d"}}`, i, i))
	}
	_ = mw.Close()
	body, contentType := buf.Bytes(), mw.FormDataContentType()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/email/3/send", bytes.NewReader(body))
			req.Header.Set("Content-Type", contentType)
			req.Header.Set("Authorization", "App "+key)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	if err := sb.WaitIdle(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st := sb.Stats()
	if st.ReportsPosted != st.Recipients || st.Recipients != int64(b.N*n) {
		b.Fatalf("stats %+v after %d sends", st, b.N)
	}
	b.ReportMetric(float64(st.Recipients)/b.Elapsed().Seconds(), "recipients/s")
}
