package server

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/store"
)

// Bounds of an imported list: a provider's whole suppression list, large
// but finite, and a reason fits a line of the console.
const (
	maxImportBytes     = 16 << 20
	maxImportAddresses = 100_000
	maxImportErrors    = 100
	maxReasonRunes     = 200
)

// csvHeader is the export's header, which the import reads back.
var csvHeader = []string{"email", "reason", "create_time", "expire_time", "origin"}

// suppressionList is an import being parsed: the rows to add and the lines
// refused, each by number and field.
type suppressionList struct {
	defaultReason string
	now           time.Time
	lifetime      time.Duration // of imports, from the rules; 0: for ever
	rows          []store.Suppression
	seen          map[string]int
	errors        []*ibmailv1.ImportedLineError
	refused       int
}

func (l *suppressionList) refuse(line int, field, description string) {
	l.refused++
	if len(l.errors) < maxImportErrors {
		l.errors = append(l.errors, &ibmailv1.ImportedLineError{Line: int32(line), Field: field, Description: description})
	}
}

// add checks one entry and keeps it, or refuses its line.
func (l *suppressionList) add(line int, email, reason, created, expires string) {
	if len(l.rows) >= maxImportAddresses {
		l.refuse(line, "email", fmt.Sprintf("more than %d addresses in one import: import the rest separately", maxImportAddresses))
		return
	}
	addr, err := checkEmail("email", email)
	if err != nil {
		l.refuse(line, "email", violation(err))
		return
	}
	addr = normalizeEmail(addr)
	if first, dup := l.seen[addr]; dup {
		l.refuse(line, "email", fmt.Sprintf("%s is listed already, on line %d", addr, first))
		return
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = l.defaultReason
	}
	if reason == "" {
		reason = "import"
	}
	if err := checkRuleText("reason", reason, maxReasonRunes); err != nil {
		l.refuse(line, "reason", violation(err))
		return
	}
	// An imported address has no profile of its own: like a report that
	// names none, it is the profile of its address.
	sp := store.Suppression{Email: addr, ProfileID: addr, Reason: reason, CreateTime: l.now, Origin: store.SuppressionFromImport}
	if created = strings.TrimSpace(created); created != "" {
		t, err := importTime(created, l.now)
		if err != nil {
			l.refuse(line, "create_time", err.Error())
			return
		}
		sp.CreateTime = t
	}
	switch expires = strings.TrimSpace(expires); {
	case expires != "":
		t, err := importTime(expires, time.Time{})
		if err != nil {
			l.refuse(line, "expire_time", err.Error())
			return
		}
		if !t.After(sp.CreateTime) {
			l.refuse(line, "expire_time", "must be after create_time")
			return
		}
		sp.ExpireTime = t
	case l.lifetime > 0:
		sp.ExpireTime = sp.CreateTime.Add(l.lifetime)
	}
	if l.seen == nil {
		l.seen = map[string]int{}
	}
	l.seen[addr] = line
	l.rows = append(l.rows, sp)
}

// importTime reads an RFC 3339 time from 2000 to 2100, and not after
// notAfter when that is set (a suppression cannot have begun tomorrow).
func importTime(s string, notAfter time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("is not an RFC 3339 time such as 2024-05-01T10:00:00Z")
	}
	t = t.UTC().Truncate(time.Microsecond)
	if t.Year() < 2000 || t.Year() > 2100 {
		return time.Time{}, errors.New("lies outside 2000 to 2100")
	}
	if !notAfter.IsZero() && t.After(notAfter) {
		return time.Time{}, errors.New("lies in the future")
	}
	return t, nil
}

// violation is the description of the field violation err carries, or
// its message.
func violation(err error) string {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			return br.GetFieldViolations()[0].GetDescription()
		}
	}
	return status.Convert(err).Message()
}

// parseCSV reads a header row naming the columns (email required; reason,
// create_time, expire_time optional; others, such as the export's origin,
// ignored), then one address a row. Lines count from 1, the header's.
func (l *suppressionList) parseCSV(content []byte) error {
	r := csv.NewReader(bytes.NewReader(content))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return invalidField("content", "the CSV has no header row: give email and optionally reason, create_time, expire_time")
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	emailCol, ok := col["email"]
	if !ok {
		return invalidField("content", "the CSV header has no email column")
	}
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		line, _ := r.FieldPos(0)
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			l.refuse(pe.StartLine, "content", pe.Err.Error())
			if errors.Is(pe.Err, csv.ErrQuote) || errors.Is(pe.Err, csv.ErrBareQuote) {
				return nil // the rest of the file cannot be told apart
			}
			continue
		}
		if err != nil {
			return invalidField("content", err.Error())
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		if emailCol >= len(rec) {
			l.refuse(line, "email", "the row has no email column")
			continue
		}
		l.add(line, rec[emailCol], field(rec, "reason"), field(rec, "create_time"), field(rec, "expire_time"))
	}
}

// jsonSuppression is an item of a JSON import: a Suppression object as the
// export writes it; fields other than these are ignored.
type jsonSuppression struct {
	Email      string `json:"email"`
	Reason     string `json:"reason"`
	CreateTime string `json:"createTime"`
	ExpireTime string `json:"expireTime"`
}

// parseJSON reads an array of Suppression objects; items count from 0.
func (l *suppressionList) parseJSON(content []byte) error {
	var items []json.RawMessage
	if err := json.Unmarshal(content, &items); err != nil {
		return invalidField("content", "is not a JSON array of Suppression objects")
	}
	for i, raw := range items {
		var it jsonSuppression
		if err := json.Unmarshal(raw, &it); err != nil {
			field := "item"
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				field = te.Field
			}
			l.refuse(i, field, "is not a Suppression object of strings")
			continue
		}
		l.add(i, it.Email, it.Reason, it.CreateTime, it.ExpireTime)
	}
	return nil
}

// suppressionWriter writes an export.
type suppressionWriter interface {
	begin(b *bytes.Buffer)
	row(b *bytes.Buffer, sp store.Suppression) error
	end(b *bytes.Buffer)
}

type csvSuppressions struct{}

func (c *csvSuppressions) begin(b *bytes.Buffer) {
	w := csv.NewWriter(b)
	_ = w.Write(csvHeader) // a bytes.Buffer does not fail
	w.Flush()
}

// row writes one line. A cell a spreadsheet would take for a formula
// (starting with = + - @, a tab or CR) gets a leading apostrophe.
func (c *csvSuppressions) row(b *bytes.Buffer, sp store.Suppression) error {
	expires := ""
	if !sp.ExpireTime.IsZero() {
		expires = sp.ExpireTime.UTC().Format(time.RFC3339Nano)
	}
	origin := strings.ToLower(strings.TrimPrefix(ibmailv1.SuppressionOrigin(sp.Origin).String(), "SUPPRESSION_ORIGIN_"))
	w := csv.NewWriter(b)
	err := w.Write([]string{neutralise(sp.Email), neutralise(sp.Reason), sp.CreateTime.UTC().Format(time.RFC3339Nano), expires, origin})
	w.Flush()
	return err
}

func (c *csvSuppressions) end(*bytes.Buffer) {}

func neutralise(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

type jsonSuppressions struct{ n int }

func (j *jsonSuppressions) begin(b *bytes.Buffer) { b.WriteString("[") }

func (j *jsonSuppressions) row(b *bytes.Buffer, sp store.Suppression) error {
	p, _ := suppressionProto(sp)
	enc, err := protojson.Marshal(p)
	if err != nil {
		return err
	}
	if j.n > 0 {
		b.WriteString(",")
	}
	b.WriteString("\n")
	b.Write(enc)
	j.n++
	return nil
}

func (j *jsonSuppressions) end(b *bytes.Buffer) { b.WriteString("\n]\n") }
