package infobip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"testing"
	"time"
)

// referenceEncode is the form as multipart.Writer writes it, field by
// field, with boundary: what encode wrote before it appended parts itself.
func referenceEncode(t *testing.T, req *SendRequest, boundary string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary(boundary); err != nil {
		t.Fatal(err)
	}
	field := func(name, v string) {
		if v != "" {
			if err := w.WriteField(name, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	js := func(name string, v any) {
		b, _ := json.Marshal(v)
		field(name, string(b))
	}
	field("from", req.From)
	for k, list := range [][]Recipient{req.To, req.Cc, req.Bcc} {
		for _, r := range list {
			if len(r.Placeholders) == 0 {
				field(recipientFields[k], r.Email)
			} else {
				js(recipientFields[k], struct {
					To           string            `json:"to"`
					Placeholders map[string]string `json:"placeholders"`
				}{r.Email, r.Placeholders})
			}
		}
	}
	field("subject", req.Subject)
	field("text", req.Text)
	field("html", req.HTML)
	field("ampHtml", req.AMPHTML)
	if req.TemplateID != 0 {
		field("templateId", strconv.FormatInt(req.TemplateID, 10))
	}
	field("replyTo", req.ReplyTo)
	if len(req.DefaultPlaceholders) > 0 {
		js("defaultPlaceholders", req.DefaultPlaceholders)
	}
	if len(req.Headers) > 0 {
		js("headers", req.Headers)
	}
	for _, b := range []struct {
		name string
		v    *bool
	}{{"track", req.Track}, {"trackClicks", req.TrackClicks}, {"trackOpens", req.TrackOpens}} {
		if b.v != nil {
			field(b.name, strconv.FormatBool(*b.v))
		}
	}
	field("trackingUrl", req.TrackingURL)
	field("notifyUrl", req.NotifyURL)
	field("notifyContentType", req.NotifyContentType)
	if req.IntermediateReport {
		field("intermediateReport", "true")
	}
	field("callbackData", req.CallbackData)
	field("bulkId", req.BulkID)
	field("messageId", req.MessageID)
	field("campaignReferenceId", req.CampaignReferenceID)
	if !req.SendAt.IsZero() {
		field("sendAt", req.SendAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}
	if req.PreserveRecipients {
		field("preserveRecipients", "true")
	}
	field("applicationId", req.ApplicationID)
	field("entityId", req.EntityID)
	for k, list := range [][]Attachment{req.Attachments, req.InlineImages} {
		for _, a := range list {
			ct := a.ContentType
			if ct == "" {
				ct = "application/octet-stream"
			}
			h := make(textproto.MIMEHeader)
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, []string{"attachment", "inlineImage"}[k], quoteEscaper.Replace(a.Name)))
			h.Set("Content-Type", ct)
			p, err := w.CreatePart(h)
			if err != nil {
				t.Fatal(err)
			}
			p.Write(a.Data)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestEncodeMatchesMultipartWriter checks that encode writes, byte for
// byte, what multipart.Writer writes for the same fields and boundary.
func TestEncodeMatchesMultipartWriter(t *testing.T) {
	yes, no := true, false
	for name, req := range map[string]SendRequest{
		"minimal": {From: "a@example.com", To: []Recipient{{Email: "b@example.com"}}, Subject: "Hi", HTML: "<p>x</p>"},
		"every field": {
			From: "News <n@example.com>", Subject: "Ünïcode \"quoted\"", Text: "t\r\nline", HTML: "<p>h</p>", AMPHTML: "<amp>",
			To: []Recipient{{Email: "a@example.com"}, {Email: "b@example.com", Placeholders: map[string]string{"name": "B"}}},
			Cc: []Recipient{{Email: "c@example.com"}}, Bcc: []Recipient{{Email: "d@example.com"}},
			TemplateID: 42, ReplyTo: "r@example.com", DefaultPlaceholders: map[string]string{"x": "1", "a": "2"},
			Headers: map[string]string{"X-A": "b"}, Track: &yes, TrackClicks: &no, TrackOpens: &yes,
			TrackingURL: "https://h/t?token=s", NotifyURL: "https://h/n", NotifyContentType: "application/json", IntermediateReport: true,
			CallbackData: `{"sendId":"s"}`, BulkID: "bulk", MessageID: "m", CampaignReferenceID: "c",
			SendAt: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.FixedZone("x", 3600)), PreserveRecipients: true,
			ApplicationID: "app", EntityID: "ent",
			Attachments:  []Attachment{{Name: `a "b".pdf`, ContentType: "application/pdf", Data: []byte("%PDF")}, {Name: "raw", Data: []byte{0, 1}}},
			InlineImages: []Attachment{{Name: "logo.png", ContentType: "image/png", Data: []byte("png")}},
		},
		"1000 recipients": func() SendRequest {
			r := SendRequest{From: "a@example.com", Subject: "Hi", HTML: "<p>x</p>", BulkID: "b"}
			for i := range MaxRecipients {
				r.To = append(r.To, Recipient{Email: fmt.Sprintf("u%d@example.com", i)})
			}
			return r
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			got, ct, err := req.encode()
			if err != nil {
				t.Fatal(err)
			}
			mt, params, err := mime.ParseMediaType(ct)
			if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
				t.Fatalf("content type %q: %v", ct, err)
			}
			if want := referenceEncode(t, &req, params["boundary"]); !bytes.Equal(got, want) {
				t.Errorf("encode:\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestEncodeRefusesHeaderInjection: an attachment's content type with a
// line break would add headers to its part.
func TestEncodeRefusesHeaderInjection(t *testing.T) {
	req := SendRequest{From: "a@example.com", To: []Recipient{{Email: "b@example.com"}}, Subject: "Hi",
		Attachments: []Attachment{{Name: "x", ContentType: "text/plain\r\nX-Evil: 1", Data: []byte("x")}}}
	if _, _, err := req.encode(); err == nil {
		t.Fatal("encode accepted a content type with a line break")
	}
}

func BenchmarkEncode1000(b *testing.B) {
	r := SendRequest{From: "a@example.com", Subject: "Hi", HTML: "<p>x</p>", BulkID: "b", NotifyURL: "https://h/n", CallbackData: `{"sendId":"s"}`}
	for i := range MaxRecipients {
		r.To = append(r.To, Recipient{Email: fmt.Sprintf("u%d@example.com", i)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.encode(); err != nil {
			b.Fatal(err)
		}
	}
}
