package server_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// withField replaces, in a report made by report(), the JSON text old by
// new, to make one field of it bad.
func withField(r, old, new string) string {
	if !strings.Contains(r, old) {
		panic("withField: " + old + " is not in " + r)
	}
	return strings.Replace(r, old, new, 1)
}

// rejectedPayloadBodies lists the newest kept rejected payloads' bodies by
// reason.
func rejectedPayloadBodies(t *testing.T, env *testEnv) map[string]string {
	t.Helper()
	code, got := env.do(t, http.MethodGet, "/v1/rejectedPayloads?pageSize=1000", "", nil)
	if code != http.StatusOK {
		t.Fatalf("rejectedPayloads: %d %v", code, got)
	}
	out := map[string]string{}
	list, _ := got["payloads"].([]any)
	for _, p := range list {
		m := p.(map[string]any)
		raw, _ := base64.StdEncoding.DecodeString(m["body"].(string))
		out[m["reason"].(string)] = string(raw)
	}
	return out
}

type wantRejected struct {
	index     float64
	field     string
	messageID string
	inReason  string
	rawKept   string // the kept payload's body, when it must be the raw item
}

// checkRejected compares the answer's rejected entries with want, and that
// each is kept as a rejected payload.
func checkRejected(t *testing.T, env *testEnv, got map[string]any, want []wantRejected) {
	t.Helper()
	rejected, _ := got["rejected"].([]any)
	if len(rejected) != len(want) {
		t.Fatalf("rejected = %v, want %d entries", got["rejected"], len(want))
	}
	kept := rejectedPayloadBodies(t, env)
	for i, w := range want {
		r := rejected[i].(map[string]any)
		reason, _ := r["reason"].(string)
		if r["index"] != w.index || r["field"] != w.field || r["messageId"] != w.messageID || !strings.Contains(reason, w.inReason) {
			t.Errorf("rejected[%d] = %v, want index %v, field %q, messageId %q, reason with %q", i, r, w.index, w.field, w.messageID, w.inReason)
		}
		if !strings.HasPrefix(reason, fmt.Sprintf("results[%d]: ", int(w.index))) {
			t.Errorf("rejected[%d] reason %q does not name results[%d]", i, reason, int(w.index))
		}
		body, ok := kept[reason]
		if !ok {
			t.Errorf("rejected[%d] (%q) was not kept as a rejected payload", i, reason)
		} else if w.rawKept != "" && body != w.rawKept {
			t.Errorf("rejected[%d] kept %q, want the item as it arrived %q", i, body, w.rawKept)
		}
	}
}

func eventCount(t *testing.T, env *testEnv, profile string) int {
	t.Helper()
	code, got := env.do(t, http.MethodGet, "/v1/profiles/"+profile+"/events", "", nil)
	if code != http.StatusOK {
		t.Fatalf("events of %s: %d %v", profile, code, got)
	}
	list, _ := got["events"].([]any)
	return len(list)
}

// Issue 9, defect 12: one undecodable report (a number out of range, a
// string where a number goes, an object where a string goes) refuses only
// itself. On the old code each of these bodies answered 400 and stored
// none of its reports.
func TestWebhookUndecodableReportRefusesOnlyItself(t *testing.T) {
	hard := func(msg, to string) string { return report(msg, to, 6012, "EC_HARD_BOUNCE", 2, "BOUNCED") }
	bigCount := withField(hard("m-big", "big@example.com"), `"bulkId"`, `"smsCount":99999999999,"bulkId"`)
	strCount := withField(hard("m-str", "str@example.com"), `"bulkId"`, `"attemptCount":"many","bulkId"`)
	objTo := withField(hard("m-obj", "obj@example.com"), `"to":"obj@example.com"`, `"to":{"address":"obj@example.com"}`)
	badStatus := withField(hard("m-status", "status@example.com"), `"status":{"groupId"`, `"status":{"id":"four","groupId"`)
	// Found by FuzzWebhookBody: a key that is not UTF-8 once failed the
	// whole ingest on PostgreSQL, whose text refuses it in the reason.
	badUTF8 := "{\"messageId\":\"m-utf\",\"error\":{\"\xa9\":\"\"}}"
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			env := newTestEnv(t, eng.opts...)
			b := body(hard("m-0", "ok0@example.com"), bigCount, hard("m-2", "ok2@example.com"), strCount,
				objTo, badStatus, `5`, `null`, hard("m-8", "ok8@example.com"), badUTF8)
			code, got := env.postWebhook(t, b)
			if code != http.StatusOK {
				t.Fatalf("status = %d, %v; want 200 with the bad reports refused", code, got)
			}
			if got["accepted"] != 3.0 || got["events"] != 3.0 {
				t.Errorf("accepted %v, events %v; want 3 and 3", got["accepted"], got["events"])
			}
			checkRejected(t, env, got, []wantRejected{
				{1, "smsCount", "m-big", "99999999999", bigCount},
				{3, "attemptCount", "m-str", "attemptCount", strCount},
				{4, "to", "m-obj", "to", objTo},
				{5, "status.id", "m-status", "id", badStatus},
				{6, "", "", "not a delivery report", "5"},
				{7, "", "", "not a delivery report", "null"},
				{9, "error.\uFFFD", "m-utf", "UTF-8", badUTF8},
			})
			for _, p := range []string{"ok0@example.com", "ok2@example.com", "ok8@example.com"} {
				if n := eventCount(t, env, p); n != 1 {
					t.Errorf("%s has %d events, want 1", p, n)
				}
			}
			// Infobip's retry of the body stores nothing twice.
			if code, again := env.postWebhook(t, b); code != http.StatusOK || again["duplicates"] != 3.0 {
				t.Errorf("retry: %d %v, want 200 with 3 duplicates", code, again)
			}
		})
	}
}

// A body that is not JSON, or whose results is no array, is still refused
// whole and kept, and a body cannot fill the gateway's own field.
func TestWebhookBodyRefusedWhole(t *testing.T) {
	env := newTestEnv(t)
	ok := report("m-ok", "ok@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED")
	tests := []struct {
		name     string
		body     string
		wantCode int
	}{
		{"syntax error in one report", `{"results":[` + ok + `,{"messageId":"x",}]}`, http.StatusBadRequest},
		{"trailing garbage", body(ok) + `x`, http.StatusBadRequest},
		{"results not an array", `{"results":{"messageId":"x"}}`, http.StatusBadRequest},
		{"results twice", `{"results":[],"results":[` + ok + `]}`, http.StatusBadRequest},
		{"array body", `[` + ok + `]`, http.StatusBadRequest},
		{"unterminated string", `{"results":[{"messageId":"x]}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := countRejected(t, env)
			code, got := env.postWebhook(t, tt.body)
			if code != tt.wantCode {
				t.Fatalf("status = %d, want %d (%v)", code, tt.wantCode, got)
			}
			if kept := countRejected(t, env) - before; kept != 1 {
				t.Errorf("kept %d payloads, want the body once", kept)
			}
		})
	}
	t.Run("gateway field in the body is ignored", func(t *testing.T) {
		b := `{"results":[` + ok + `],"undecodableResults":[{"index":0,"raw":"e30="}]}`
		code, got := env.postWebhook(t, b)
		if code != http.StatusOK || got["accepted"] != 1.0 || len(got["rejected"].([]any)) != 0 {
			t.Errorf("status %d, %v; want the report accepted and nothing refused", code, got)
		}
	})
}

// Issue 9, defect 1 (the door): a report time outside what a Timestamp
// holds, or before 2000, or more than a day after arrival, is refused and
// kept, the rest stored; and what is stored reads back. On the old code
// these reports were stored, and the activity list and segmentation then
// answered 500.
func TestWebhookRefusesReportTimesOutOfBounds(t *testing.T) {
	hard := func(msg, to string) string { return report(msg, to, 6012, "EC_HARD_BOUNCE", 2, "BOUNCED") }
	const done, sent = "2024-05-01T10:00:00.000+0000", "2024-05-01T09:59:58.123+0000"
	future := time.Now().UTC().Add(48 * time.Hour).Format("2006-01-02T15:04:05.000-0700")
	soon := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05.000-0700")
	tests := []struct {
		name, field, old, new string
	}{
		{"year 0000", "doneAt", done, "0000-01-01T00:00:00.000+0000"},
		{"year 9999 with offset -2359", "doneAt", done, "9999-12-31T23:59:59.999-2359"},
		{"offset +2359 at year 0001", "doneAt", done, "0001-01-01T00:00:00.000+2359"},
		{"just before 2000", "doneAt", done, "1999-12-31T23:59:59.999+0000"},
		{"2000 in UTC, 1999 by offset", "doneAt", done, "2000-01-01T00:30:00.000+0100"},
		{"two days ahead", "doneAt", done, future},
		{"offset out of range", "doneAt", done, "2024-05-01T10:00:00.000+2500"},
		{"sentAt year 0000", "sentAt", sent, "0000-01-01T00:00:00.000+0000"},
		{"sentAt not a time", "sentAt", sent, "soon"},
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			env := newTestEnv(t, eng.opts...)
			reports := []string{hard("m-ok", "ok@example.com")}
			var want []wantRejected
			for i, tt := range tests {
				msg, to := fmt.Sprintf("m-bad-%d", i), fmt.Sprintf("bad%d@example.com", i)
				reports = append(reports, withField(hard(msg, to), tt.old, tt.new))
				want = append(want, wantRejected{float64(i + 1), tt.field, msg, tt.field, ""})
			}
			edge := withField(hard("m-2000", "edge@example.com"), done, "2000-01-01T00:00:00.000+0000")
			ahead := withField(hard("m-soon", "soon@example.com"), done, soon)
			reports = append(reports, edge, ahead)
			code, got := env.postWebhook(t, body(reports...))
			if code != http.StatusOK {
				t.Fatalf("status = %d, %v", code, got)
			}
			if got["accepted"] != 3.0 {
				t.Errorf("accepted = %v, want 3 (the valid report and the two at the bounds)", got["accepted"])
			}
			checkRejected(t, env, got, want)
			for _, p := range []string{"ok@example.com", "edge@example.com", "soon@example.com"} {
				if n := eventCount(t, env, p); n != 1 {
					t.Errorf("%s has %d events, want 1", p, n)
				}
			}
			for i := range tests {
				if n := eventCount(t, env, fmt.Sprintf("bad%d@example.com", i)); n != 0 {
					t.Errorf("refused report %d made %d events", i, n)
				}
			}
			for _, search := range []string{
				`{"eventNames":["newsletter.hardbounce"]}`,
				`{"eventNames":["newsletter.hardbounce"],"since":"1990-01-01T00:00:00Z","until":"9999-01-01T00:00:00Z"}`,
			} {
				code, got := env.do(t, http.MethodPost, "/v1/profiles:search", "application/json", []byte(search))
				if list, _ := got["profiles"].([]any); code != http.StatusOK || len(list) != 3 {
					t.Errorf("search %s: %d %v, want 200 with 3 profiles", search, code, got)
				}
			}
		})
	}
}

// Issue 9, defect 10: one report written in three forms of one instant is
// one report and one event. On the old code it made three of each.
func TestWebhookDeduplicatesOnTheInstant(t *testing.T) {
	hard := report("m-inst", "inst@example.com", 6012, "EC_HARD_BOUNCE", 2, "BOUNCED")
	const done = "2024-05-01T10:00:00.000+0000"
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			env := newTestEnv(t, eng.opts...)
			var stored float64
			for _, form := range []string{"2024-05-01T10:00:00.256+0000", "2024-05-01T10:00:00.256Z", "2024-05-01T12:00:00.256+0200", "2024-05-01T07:00:00.256-03:00"} {
				code, got := env.postWebhook(t, body(withField(hard, done, form)))
				if code != http.StatusOK {
					t.Fatalf("%s: %d %v", form, code, got)
				}
				stored += got["accepted"].(float64)
			}
			if stored != 1 {
				t.Errorf("%v reports stored, want 1", stored)
			}
			if n := eventCount(t, env, "inst@example.com"); n != 1 {
				t.Errorf("%d events, want 1", n)
			}
			code, got := env.postWebhook(t, body(withField(hard, done, "2024-05-01T10:00:00.257+0000")))
			if code != http.StatusOK || got["accepted"] != 1.0 {
				t.Errorf("another instant: %d %v, want a new report", code, got)
			}
		})
	}
}
