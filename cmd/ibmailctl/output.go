package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// writeJSON writes one message as indented JSON in the API's own form (the
// REST gateway's), so --output json reads like the REST answers. It goes
// through encoding/json because protojson varies its spacing on purpose,
// and scripts diff output.
func writeJSON(w io.Writer, m proto.Message) error {
	return writeValue(w, rawJSON(m))
}

// rawJSON turns a message into a json.RawMessage, to nest API messages in
// an object of the tool's own.
func rawJSON(m proto.Message) json.RawMessage {
	b, err := protojson.Marshal(m)
	if err != nil {
		// Marshalling a message the server sent cannot fail in practice;
		// keep the output valid JSON anyway.
		return json.RawMessage("null")
	}
	return b
}

// writeValue writes a value of the tool's own as indented JSON.
func writeValue(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// table writes aligned columns for text output.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// enumName shortens an enum value for text, SEND_STATE_DONE to DONE.
func enumName(s fmt.Stringer, prefix string) string {
	return strings.TrimPrefix(s.String(), prefix)
}

// orDash shows an empty value as "-", so columns stay aligned and parseable.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cell shows a value that came from outside (an Infobip report, a URL) as
// one table cell: "-" when empty, and quoted with Go's escapes when it holds
// white space or control characters, so that a hostile value can neither
// shift the columns nor send escape sequences to the terminal.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// formatTime writes a timestamp as RFC 3339 in UTC; empty when unset.
func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339Nano)
}

// allPages calls page with each next page token, from the first page to
// the last, and returns every item.
func allPages[T any](page func(token string) (items []T, next string, err error)) ([]T, error) {
	var all []T
	for token := ""; ; {
		items, next, err := page(token)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" {
			return all, nil
		}
		token = next
	}
}

// writeJSONList writes items as {"key": [...]}, each in the API's JSON.
func writeJSONList[T proto.Message](w io.Writer, key string, items []T) error {
	out := make([]json.RawMessage, len(items))
	for i, m := range items {
		out[i] = rawJSON(m)
	}
	return writeValue(w, map[string]any{key: out})
}
