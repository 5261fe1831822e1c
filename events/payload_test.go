package events

import (
	"testing"
	"time"

	"github.com/ibmail/ibmail/store"
)

func TestPayload(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 256000000, time.FixedZone("X", 3600))
	tests := []struct {
		name string
		e    store.Event
		want string
	}{
		{
			name: "every field",
			e: store.Event{ID: 17, Name: "newsletter.hardbounce", Time: at, ProfileID: "customer-42", Email: "bob@example.com",
				Params: map[string]string{"messageId": "m-1", "errorName": "EC_HARD_BOUNCE"}, RulesVersion: 4},
			want: `{"action":"newsletter.hardbounce","time":"2024-05-01T09:00:00.256Z","profileId":"customer-42",` +
				`"email":"bob@example.com","params":{"errorName":"EC_HARD_BOUNCE","messageId":"m-1"},"id":"17","rulesVersion":"4"}`,
		},
		{
			name: "retracted",
			e: store.Event{ID: 18, Name: "newsletter.softbounce", Time: at, ProfileID: "p", RulesVersion: 1,
				Retraction: &store.EventRetraction{Time: at, Operation: "operations/2", RulesVersion: 3, ReplacedBy: 40}},
			want: `{"action":"newsletter.softbounce","time":"2024-05-01T09:00:00.256Z","profileId":"p","email":"","params":{},"id":"18",` +
				`"rulesVersion":"1","retraction":{"retractTime":"2024-05-01T09:00:00.256Z","operation":"operations/2","rulesVersion":"3","replacedBy":"40"}}`,
		},
		{
			name: "empty fields present",
			e:    store.Event{ID: 3, Name: "newsletter.dropped", Time: at.Truncate(time.Second), ProfileID: "p"},
			want: `{"action":"newsletter.dropped","time":"2024-05-01T09:00:00Z","profileId":"p","email":"","params":{},"id":"3","rulesVersion":"0"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Payload(tt.e)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Payload = %s\nwant      %s", got, tt.want)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		prefix, name, want string
	}{
		{"ibmail.events", "newsletter.hardbounce", "ibmail.events.newsletter.hardbounce"},
		{"x", "open", "x.open"},
		{"x", "a b.*.>", "x.a_b._._"},
		{"x", "a..b.", "x.a._.b._"},
	}
	for _, tt := range tests {
		if got := Subject(tt.prefix, tt.name); got != tt.want {
			t.Errorf("Subject(%q, %q) = %q, want %q", tt.prefix, tt.name, got, tt.want)
		}
	}
}

func TestWindowLen(t *testing.T) {
	evs := func(profiles ...string) []store.LoggedEvent {
		out := make([]store.LoggedEvent, len(profiles))
		for i, p := range profiles {
			out[i].ProfileID = p
		}
		return out
	}
	tests := []struct {
		name string
		evs  []store.LoggedEvent
		want int
	}{
		{"distinct", evs("a", "b", "c"), 3},
		{"stops before a repeat", evs("a", "b", "a", "c"), 2},
		{"repeat first", evs("a", "a"), 1},
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		if got := windowLen(tt.evs); got != tt.want {
			t.Errorf("%s: windowLen = %d, want %d", tt.name, got, tt.want)
		}
	}
}
