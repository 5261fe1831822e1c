package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// parseRecipients reads a recipients CSV: a header `email,profileId`
// followed by any placeholder columns, then one recipient a line. Every
// error names its line, since these files are made by hand or by
// spreadsheets.
func parseRecipients(r io.Reader) ([]*ibmailv1.RecipientInput, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("line 1: empty file, want a header email,profileId[,placeholders...]")
	}
	if err != nil {
		return nil, csvError(err)
	}
	// Spreadsheets often save UTF-8 with a byte-order mark.
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	if len(header) < 2 || !strings.EqualFold(strings.TrimSpace(header[0]), "email") || !strings.EqualFold(strings.TrimSpace(header[1]), "profileId") {
		return nil, fmt.Errorf("line 1: header is %q, want email,profileId[,placeholders...]", strings.Join(header, ","))
	}
	names := header[2:]
	for i, n := range names {
		names[i] = strings.TrimSpace(n)
		if names[i] == "" {
			return nil, fmt.Errorf("line 1: column %d has no placeholder name", i+3)
		}
	}
	var out []*ibmailv1.RecipientInput
	seen := map[string]int{} // lower-cased email -> line
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := cr.FieldPos(0)
		email := strings.TrimSpace(rec[0])
		if email == "" {
			return nil, fmt.Errorf("line %d: email is empty", line)
		}
		if !strings.Contains(email, "@") {
			return nil, fmt.Errorf("line %d: %q is not an email address", line, email)
		}
		key := strings.ToLower(email)
		if prev, ok := seen[key]; ok {
			return nil, fmt.Errorf("line %d: %s is already on line %d", line, email, prev)
		}
		seen[key] = line
		ri := &ibmailv1.RecipientInput{Email: email, ProfileId: strings.TrimSpace(rec[1])}
		for i, n := range names {
			// An empty cell means no value for this recipient, rather than
			// an empty one, so the server's placeholder handling applies.
			if v := rec[i+2]; v != "" {
				if ri.Placeholders == nil {
					ri.Placeholders = map[string]string{}
				}
				ri.Placeholders[n] = v
			}
		}
		out = append(out, ri)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("line 2: no recipients after the header")
	}
	return out, nil
}

// csvError words the csv package's errors with the line first, like ours.
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d: %v", pe.StartLine, pe.Err)
	}
	return err
}
