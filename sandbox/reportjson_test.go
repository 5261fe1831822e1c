package sandbox

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ibmail/ibmail/infobip"
)

// The spliced encoding must say exactly what encoding each report whole
// would.
func TestEncodeMatchesReport(t *testing.T) {
	for _, generic := range []bool{false, true} {
		s := New(Options{GenericGroupNames: generic, ReportDelay: 1500 * time.Millisecond})
		t.Cleanup(func() { _ = s.Close() })
		sent := time.Date(2024, 5, 1, 10, 0, 0, 256e6, time.FixedZone("", -3*3600))
		b := &bulk{id: "b<&>\"1", from: "a@example.com", applicationID: "app", entityID: "ent", campaignReferenceID: "camp",
			callbackData: "{\"k\":\"v\\u2028\"}\n\t", sentAt: sent, doneAt: sent.Add(1500 * time.Millisecond)}
		for i, o := range append([]string{"ann"}, prefixes()...) {
			to := o + "-" + string(rune('a'+i)) + "@example.com"
			b.messages = append(b.messages, message{id: "m" + string(rune('a'+i)), to: to, outcome: outcomeFor(to)})
		}
		b.messages = append(b.messages, message{id: "mx", to: "bounced@example.com", outcome: randomBounce})
		for _, j := range []*job{
			{b: b, lo: 0, hi: len(b.messages)},
			{b: b, picks: []int{3, 0, 8}, dup: true},
		} {
			body := s.reports.encode(j)
			var got infobip.DeliveryReports
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			var want []infobip.DeliveryReport
			idx := j.picks
			if idx == nil {
				for i := j.lo; i < j.hi; i++ {
					idx = append(idx, i)
				}
			}
			for _, i := range idx {
				want = append(want, s.report(b, i))
			}
			if len(got.Results) != len(want) {
				t.Fatalf("%d reports, want %d", len(got.Results), len(want))
			}
			for k := range want {
				g, w := got.Results[k], want[k]
				if !g.SentAt.Equal(w.SentAt.Time) || !g.DoneAt.Equal(w.DoneAt.Time) {
					t.Errorf("times %v %v, want %v %v", g.SentAt, g.DoneAt, w.SentAt, w.DoneAt)
				}
				g.SentAt, g.DoneAt, w.SentAt, w.DoneAt = infobip.Time{}, infobip.Time{}, infobip.Time{}, infobip.Time{}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("report %d:\n got %+v\nwant %+v", k, g, w)
				}
			}
		}
	}
}

func prefixes() []string {
	var p []string
	for _, o := range outcomes {
		p = append(p, o.Prefix)
	}
	return p
}
