package infobip

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits Infobip documents for POST /email/3/send.
const (
	// MaxRecipients is the most recipients of one request, to, cc and bcc
	// together.
	MaxRecipients = 1000
	// MaxSubjectLength is the longest subject, in characters.
	MaxSubjectLength = 1000
	// MaxCallbackDataLength is the longest callbackData, in characters.
	MaxCallbackDataLength = 4000
	// MaxSendAhead is how far ahead sendAt may schedule a message.
	MaxSendAhead = 30 * 24 * time.Hour
)

// SendRequest is one POST /email/3/send. Zero fields are left out of the
// form, so Infobip applies its defaults.
type SendRequest struct {
	// From is "Name <address>" or an address; required unless TemplateID.
	From string
	// To, Cc and Bcc hold at most MaxRecipients together; To at least one.
	To  []Recipient
	Cc  []Recipient
	Bcc []Recipient
	// Subject is 1 to MaxSubjectLength characters; required unless TemplateID.
	Subject string
	// HTML wins over Text; AMPHTML needs HTML.
	Text    string
	HTML    string
	AMPHTML string
	// TemplateID, when not 0, makes Infobip ignore HTML and Text.
	TemplateID int64
	ReplyTo    string
	// DefaultPlaceholders apply to every recipient; Recipient.Placeholders
	// override them per recipient.
	DefaultPlaceholders map[string]string
	// Headers are extra email headers (not To, From, Subject and the like).
	Headers map[string]string
	// Track, TrackClicks and TrackOpens are left to the account's settings
	// when nil.
	Track       *bool
	TrackClicks *bool
	TrackOpens  *bool
	TrackingURL string
	// NotifyURL receives the delivery reports. Credentials may ride in it,
	// as ?token=... or https://user:pass@host/...
	NotifyURL string
	// NotifyContentType is application/json (the default when NotifyURL is
	// set) or application/xml.
	NotifyContentType  string
	IntermediateReport bool
	// CallbackData comes back in every delivery report of the request; at
	// most MaxCallbackDataLength characters.
	CallbackData string
	// BulkID names the request. Send makes one up when empty, so that an
	// ambiguous send can always be looked up in the logs.
	BulkID string
	// MessageID names the message; only allowed when the request makes a
	// single message (one recipient, or PreserveRecipients), because Infobip
	// gives every other recipient its own message.
	MessageID           string
	CampaignReferenceID string
	// SendAt schedules the send, at most MaxSendAhead from now.
	SendAt time.Time
	// PreserveRecipients shows all To recipients to each other and yields
	// one messageId for all.
	PreserveRecipients bool
	// ApplicationID and EntityID override the client's.
	ApplicationID string
	EntityID      string
	// Attachments are sent as "attachment" file parts and InlineImages as
	// "inlineImage" parts (at most 20 files, 20 MB, in Infobip's older docs).
	Attachments  []Attachment
	InlineImages []Attachment
}

// Recipient is an address with optional placeholders of its own; with any,
// it goes out as Infobip's {"to": ..., "placeholders": {...}} form.
type Recipient struct {
	Email        string
	Placeholders map[string]string
}

// Attachment is a file part: an attachment, or an inline image that the HTML
// refers to as cid:Name.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// SendResponse is Infobip's acceptance: one entry per message, each PENDING
// (group 1) until its delivery report arrives.
type SendResponse struct {
	BulkID   string        `json:"bulkId"`
	Messages []SentMessage `json:"messages"`
}

// SentMessage is one accepted message.
type SentMessage struct {
	To        string `json:"to"`
	MessageID string `json:"messageId"`
	Status    Status `json:"status"`
}

// Send validates req, then POSTs it to /email/3/send as multipart/form-data.
// A *FieldError means nothing was sent. On a *RequestError, BulkID tells
// which bulk to look for in Logs when IsAmbiguous(err).
func (c *Client) Send(ctx context.Context, req SendRequest) (*SendResponse, error) {
	if req.ApplicationID == "" {
		req.ApplicationID = c.applicationID
	}
	if req.EntityID == "" {
		req.EntityID = c.entityID
	}
	if req.NotifyURL != "" && req.NotifyContentType == "" {
		req.NotifyContentType = "application/json"
	}
	if err := req.Validate(c.now()); err != nil {
		return nil, err
	}
	if req.BulkID == "" {
		req.BulkID = NewBulkID()
	}
	body, contentType, err := req.encode()
	if err != nil {
		return nil, err
	}
	var out SendResponse
	err = c.do(ctx, call{method: "POST", path: "/email/3/send", body: body, contentType: contentType}, &out)
	if re, ok := errors.AsType[*RequestError](err); ok {
		re.BulkID = req.BulkID
	}
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Validate checks req against Infobip's documented rules, naming the field
// at fault. now bounds SendAt.
func (req *SendRequest) Validate(now time.Time) error {
	n := len(req.To) + len(req.Cc) + len(req.Bcc)
	switch {
	case len(req.To) == 0:
		return &FieldError{Field: "to", Problem: "at least one recipient is required"}
	case n > MaxRecipients:
		return &FieldError{Field: "to", Problem: fmt.Sprintf("%d recipients in to, cc and bcc together, at most %d allowed", n, MaxRecipients)}
	}
	for k, list := range [][]Recipient{req.To, req.Cc, req.Bcc} {
		for i, r := range list {
			if err := checkAddress(r.Email); err != "" {
				return &FieldError{Field: fmt.Sprintf("%s[%d]", recipientFields[k], i), Problem: err}
			}
		}
	}
	subject := utf8.RuneCountInString(req.Subject)
	switch {
	case req.TemplateID == 0 && strings.TrimSpace(req.From) == "":
		return &FieldError{Field: "from", Problem: "required unless templateId is set"}
	case req.TemplateID == 0 && subject == 0:
		return &FieldError{Field: "subject", Problem: "required unless templateId is set"}
	case subject > MaxSubjectLength:
		return &FieldError{Field: "subject", Problem: fmt.Sprintf("%d characters, at most %d allowed", subject, MaxSubjectLength)}
	case utf8.RuneCountInString(req.CallbackData) > MaxCallbackDataLength:
		return &FieldError{Field: "callbackData", Problem: fmt.Sprintf("%d characters, at most %d allowed", utf8.RuneCountInString(req.CallbackData), MaxCallbackDataLength)}
	case req.AMPHTML != "" && req.HTML == "":
		return &FieldError{Field: "ampHtml", Problem: "needs html as well"}
	case req.NotifyContentType != "" && req.NotifyContentType != "application/json" && req.NotifyContentType != "application/xml":
		return &FieldError{Field: "notifyContentType", Problem: "must be application/json or application/xml"}
	case req.MessageID != "" && n > 1 && !req.PreserveRecipients:
		return &FieldError{Field: "messageId", Problem: fmt.Sprintf("%d recipients make %d messages; a messageId names only one", n, n)}
	case !req.SendAt.IsZero() && req.SendAt.After(now.Add(MaxSendAhead)):
		return &FieldError{Field: "sendAt", Problem: "more than 30 days ahead"}
	case utf8.RuneCountInString(req.ApplicationID) > MaxIDLength:
		return &FieldError{Field: "applicationId", Problem: fmt.Sprintf("longer than %d characters", MaxIDLength)}
	case utf8.RuneCountInString(req.EntityID) > MaxIDLength:
		return &FieldError{Field: "entityId", Problem: fmt.Sprintf("longer than %d characters", MaxIDLength)}
	}
	return nil
}

var recipientFields = [...]string{"to", "cc", "bcc"}

func checkAddress(a string) string {
	switch {
	case strings.TrimSpace(a) == "":
		return "empty address"
	case strings.ContainsAny(a, "\r\n"):
		return "address contains a line break"
	case !strings.Contains(a, "@"):
		return "address has no @"
	}
	return ""
}

// encode writes the form the way Infobip's examples do: one part per field,
// "to" repeated per recipient. The parts are written straight into one
// buffer sized up front, byte for byte as multipart.Writer.WriteField and
// CreatePart would write them, without a header map per part: a
// 1000-recipient request is 1000 parts.
func (req *SendRequest) encode() ([]byte, string, error) {
	boundary := multipart.NewWriter(io.Discard).Boundary()
	f := formWriter{boundary: boundary}
	size := 512 + len(req.Subject) + len(req.Text) + len(req.HTML) + len(req.AMPHTML) + len(req.CallbackData)
	for _, list := range [][]Recipient{req.To, req.Cc, req.Bcc} {
		size += len(list) * (len(boundary) + 64)
		for _, r := range list {
			size += len(r.Email)
		}
	}
	for _, list := range [][]Attachment{req.Attachments, req.InlineImages} {
		for _, a := range list {
			size += len(a.Data) + len(a.Name) + len(a.ContentType) + len(boundary) + 128
		}
	}
	f.buf = make([]byte, 0, size)
	f.field("from", req.From)
	for k, list := range [][]Recipient{req.To, req.Cc, req.Bcc} {
		for _, r := range list {
			f.recipient(recipientFields[k], r)
		}
	}
	f.field("subject", req.Subject)
	f.field("text", req.Text)
	f.field("html", req.HTML)
	f.field("ampHtml", req.AMPHTML)
	if req.TemplateID != 0 {
		f.field("templateId", strconv.FormatInt(req.TemplateID, 10))
	}
	f.field("replyTo", req.ReplyTo)
	f.json("defaultPlaceholders", req.DefaultPlaceholders)
	f.json("headers", req.Headers)
	f.boolPtr("track", req.Track)
	f.boolPtr("trackClicks", req.TrackClicks)
	f.boolPtr("trackOpens", req.TrackOpens)
	f.field("trackingUrl", req.TrackingURL)
	f.field("notifyUrl", req.NotifyURL)
	f.field("notifyContentType", req.NotifyContentType)
	if req.IntermediateReport {
		f.field("intermediateReport", "true")
	}
	f.field("callbackData", req.CallbackData)
	f.field("bulkId", req.BulkID)
	f.field("messageId", req.MessageID)
	f.field("campaignReferenceId", req.CampaignReferenceID)
	if !req.SendAt.IsZero() {
		f.field("sendAt", req.SendAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}
	if req.PreserveRecipients {
		f.field("preserveRecipients", "true")
	}
	f.field("applicationId", req.ApplicationID)
	f.field("entityId", req.EntityID)
	for _, a := range req.Attachments {
		f.file("attachment", a)
	}
	for _, a := range req.InlineImages {
		f.file("inlineImage", a)
	}
	if f.err != nil {
		return nil, "", fmt.Errorf("infobip: encode send request: %w", f.err)
	}
	f.close()
	return f.buf, "multipart/form-data; boundary=" + boundary, nil
}

// formWriter appends multipart/form-data parts to buf, as multipart.Writer
// does, and keeps the first error so encode reads as a list of fields.
type formWriter struct {
	buf      []byte
	boundary string
	parts    int
	err      error
}

// header starts a part: its delimiter and Content-Disposition (the name
// escaped as multipart.Writer escapes it), then contentType if any, in the
// sorted order multipart.Writer writes headers in.
func (f *formWriter) header(name, filename, contentType string) {
	if f.parts > 0 {
		f.buf = append(f.buf, "\r\n"...)
	}
	f.parts++
	f.buf = append(f.buf, "--"...)
	f.buf = append(f.buf, f.boundary...)
	f.buf = append(f.buf, "\r\nContent-Disposition: form-data; name=\""...)
	f.buf = append(f.buf, quoteEscaper.Replace(name)...)
	f.buf = append(f.buf, '"')
	if filename != "" {
		f.buf = append(f.buf, "; filename=\""...)
		f.buf = append(f.buf, quoteEscaper.Replace(filename)...)
		f.buf = append(f.buf, '"')
	}
	if contentType != "" {
		f.buf = append(f.buf, "\r\nContent-Type: "...)
		f.buf = append(f.buf, contentType...)
	}
	f.buf = append(f.buf, "\r\n\r\n"...)
}

func (f *formWriter) close() {
	if f.parts > 0 {
		f.buf = append(f.buf, "\r\n"...)
	}
	f.buf = append(f.buf, "--"...)
	f.buf = append(f.buf, f.boundary...)
	f.buf = append(f.buf, "--\r\n"...)
}

func (f *formWriter) field(name, value string) {
	if value == "" || f.err != nil {
		return
	}
	f.header(name, "", "")
	f.buf = append(f.buf, value...)
}

func (f *formWriter) boolPtr(name string, v *bool) {
	if v != nil {
		f.field(name, strconv.FormatBool(*v))
	}
}

func (f *formWriter) json(name string, v map[string]string) {
	if len(v) == 0 || f.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		f.err = err
		return
	}
	f.field(name, string(b))
}

func (f *formWriter) recipient(name string, r Recipient) {
	if len(r.Placeholders) == 0 {
		f.field(name, r.Email)
		return
	}
	b, err := json.Marshal(struct {
		To           string            `json:"to"`
		Placeholders map[string]string `json:"placeholders"`
	}{r.Email, r.Placeholders})
	if err != nil {
		f.err = err
		return
	}
	f.field(name, string(b))
}

func (f *formWriter) file(name string, a Attachment) {
	if f.err != nil {
		return
	}
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	// CreatePart would take the header as given; the Content-Type of an
	// attachment comes from the caller, so a line break in it is refused
	// rather than let it add headers.
	if strings.ContainsAny(ct, "\r\n") {
		f.err = fmt.Errorf("attachment %q: content type contains a line break", a.Name)
		return
	}
	f.header(name, a.Name, ct)
	f.buf = append(f.buf, a.Data...)
}

var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"", "\r", "", "\n", "")

// NewBulkID returns a random id in Infobip's style (20 lower-case letters
// and digits), for callers that want to know a send's bulkId before sending.
func NewBulkID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [20]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}
