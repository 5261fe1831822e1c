package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ibmail/ibmail/infobip"
)

// maxSendBytes is the largest request Infobip's newer docs allow (26 MB).
const maxSendBytes = 26 << 20

// sendForm is the part of a POST /email/3/send form that the sandbox acts
// on; other fields are read and checked for type only.
type sendForm struct {
	to, cc, bcc       []string
	from, subject     string
	html, ampHTML     string
	templateID        string
	notifyURL         string
	notifyContentType string
	trackingURL       string
	// track, trackOpens and trackClicks are nil when the form leaves them
	// out; see tracks.
	track, trackOpens   *bool
	trackClicks         *bool
	callbackData        string
	bulkID, messageID   string
	campaignReferenceID string
	applicationID       string
	entityID            string
	preserveRecipients  bool
	problems            map[string][]string
}

func (f *sendForm) problem(field, text string) {
	if f.problems == nil {
		f.problems = make(map[string][]string)
	}
	f.problems[field] = append(f.problems[field], text)
}

func (s *Sandbox) handleSend(r *http.Request, fs *faultState) answer {
	s.stats.sendRequests.Add(1)
	f, err := parseSend(r)
	if err != nil {
		return errorAnswer(http.StatusBadRequest, "BAD_REQUEST", err.Error(), nil)
	}
	f.validate()
	if f.problems != nil {
		return errorAnswer(http.StatusBadRequest, "BAD_REQUEST", "Bad request", f.problems)
	}
	return s.accept(r, f, fs)
}

func parseSend(r *http.Request) (*sendForm, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, errors.New("Content-Type must be multipart/form-data")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxSendBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fmt.Errorf("invalid multipart body: %v", err)
	}
	f := &sendForm{}
	var buf bytes.Buffer
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return f, nil
		}
		if err != nil {
			return nil, fmt.Errorf("invalid multipart body: %v", err)
		}
		name := part.FormName()
		buf.Reset()
		_, err = buf.ReadFrom(part)
		_ = part.Close()
		if err != nil {
			return nil, fmt.Errorf("invalid multipart body: %v", err)
		}
		if part.FileName() == "" {
			f.set(name, buf.String())
		}
	}
}

func (f *sendForm) set(name, v string) {
	switch name {
	case "to":
		f.to = append(f.to, f.recipient(name, v))
	case "cc":
		f.cc = append(f.cc, f.recipient(name, v))
	case "bcc":
		f.bcc = append(f.bcc, f.recipient(name, v))
	case "from":
		f.from = v
	case "subject":
		f.subject = v
	case "html":
		f.html = v
	case "ampHtml":
		f.ampHTML = v
	case "templateId":
		f.templateID = v
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			f.problem(name, "must be an integer")
		}
	case "notifyUrl":
		f.notifyURL = v
	case "notifyContentType":
		f.notifyContentType = v
	case "callbackData":
		f.callbackData = v
	case "bulkId":
		f.bulkID = v
	case "messageId":
		f.messageID = v
	case "campaignReferenceId":
		f.campaignReferenceID = v
	case "applicationId":
		f.applicationID = v
	case "entityId":
		f.entityID = v
	case "preserveRecipients":
		f.preserveRecipients = f.boolean(name, v)
	case "trackingUrl":
		f.trackingURL = v
	case "track":
		f.track = f.optional(name, v)
	case "trackOpens":
		f.trackOpens = f.optional(name, v)
	case "trackClicks":
		f.trackClicks = f.optional(name, v)
	case "intermediateReport", "skipPassiveStorage", "skipActiveStorage":
		f.boolean(name, v)
	case "defaultPlaceholders", "headers":
		var m map[string]any
		if json.Unmarshal([]byte(v), &m) != nil {
			f.problem(name, "must be a JSON object")
		}
	case "sendAt":
		if _, err := time.Parse("2006-01-02T15:04:05.000Z07:00", v); err != nil {
			if _, err := infobip.ParseTime(v); err != nil {
				f.problem(name, "must be yyyy-MM-dd'T'HH:mm:ss.SSSZ")
			}
		}
	}
}

func (f *sendForm) boolean(name, v string) bool {
	b, err := strconv.ParseBool(v)
	if err != nil {
		f.problem(name, "must be true or false")
	}
	return b
}

func (f *sendForm) optional(name, v string) *bool {
	b := f.boolean(name, v)
	return &b
}

// tracks says whether the send tracks opens and clicks: trackOpens and
// trackClicks when given, else track for both, else the sending domain's
// settings, which GET /email/1/domains shows on for every sandbox domain
// (as a new Infobip domain has them).
func (f *sendForm) tracks() (opens, clicks bool) {
	pick := func(own *bool) bool {
		switch {
		case own != nil:
			return *own
		case f.track != nil:
			return *f.track
		default:
			return true
		}
	}
	return pick(f.trackOpens), pick(f.trackClicks)
}

// recipient reads an address or the {"to": ..., "placeholders": {...}} form.
func (f *sendForm) recipient(field, v string) string {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "{") {
		var d struct {
			To string `json:"to"`
			// Raw: checked as JSON, not built into a map nobody reads.
			Placeholders json.RawMessage `json:"placeholders"`
		}
		if err := json.Unmarshal([]byte(v), &d); err != nil {
			f.problem(field, "invalid destination JSON: "+err.Error())
			return ""
		}
		v = strings.TrimSpace(d.To)
	}
	if !strings.Contains(v, "@") || strings.ContainsAny(v, "\r\n") {
		f.problem(field, fmt.Sprintf("invalid email address %q", v))
	}
	return v
}

func (f *sendForm) validate() {
	n := len(f.to) + len(f.cc) + len(f.bcc)
	if len(f.to) == 0 {
		f.problem("to", "must not be empty")
	}
	if n > infobip.MaxRecipients {
		f.problem("to", fmt.Sprintf("Maximum number of recipients per request is %d overall including to, cc and bcc field, got %d", infobip.MaxRecipients, n))
	}
	if f.templateID == "" {
		if strings.TrimSpace(f.from) == "" {
			f.problem("from", "must not be blank when templateId is not present")
		}
		if f.subject == "" {
			f.problem("subject", "must not be blank when templateId is not present")
		}
	}
	if c := utf8.RuneCountInString(f.subject); c > infobip.MaxSubjectLength {
		f.problem("subject", fmt.Sprintf("size must be between 1 and %d, got %d", infobip.MaxSubjectLength, c))
	}
	if c := utf8.RuneCountInString(f.callbackData); c > infobip.MaxCallbackDataLength {
		f.problem("callbackData", fmt.Sprintf("size must be at most %d, got %d", infobip.MaxCallbackDataLength, c))
	}
	if f.ampHTML != "" && f.html == "" {
		f.problem("html", "is required when ampHtml is present")
	}
	switch f.notifyContentType {
	case "", "application/json", "application/xml":
	default:
		f.problem("notifyContentType", "must be application/json or application/xml")
	}
	for field, v := range map[string]string{"notifyUrl": f.notifyURL, "trackingUrl": f.trackingURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			f.problem(field, "must be an absolute http or https URL")
		}
	}
	if f.messageID != "" && n > 1 && !f.preserveRecipients {
		f.problem("messageId", "can name only one message; this request makes one per recipient")
	}
	for field, v := range map[string]string{"applicationId": f.applicationID, "entityId": f.entityID} {
		if utf8.RuneCountInString(v) > infobip.MaxIDLength {
			f.problem(field, fmt.Sprintf("size must be at most %d", infobip.MaxIDLength))
		}
	}
}
