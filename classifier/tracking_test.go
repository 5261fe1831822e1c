package classifier

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
)

const (
	unsubscribe = "newsletter.unsubscribe"
	open        = "newsletter.open"
	click       = "newsletter.click"
)

// trackingCase is one notificationType and what ClassifyTracking should make
// of it.
type trackingCase struct {
	name string
	in   string
	want Outcome
	// event, suppress and rule matter only when want is OutcomeEvent.
	event    string
	suppress string
	rule     int
}

// checkTracking classifies c.in with e and compares the TrackingResult with c.
func checkTracking(t *testing.T, e *Engine, c trackingCase) {
	t.Helper()
	got := e.ClassifyTracking(c.in)
	if got.Outcome != c.want {
		t.Fatalf("ClassifyTracking(%q).Outcome = %v, want %v (reason %q)", c.in, got.Outcome, c.want, got.Reason)
	}
	wantEvent, wantSuppress, wantRule := "", "", -1
	if c.want == OutcomeEvent {
		wantEvent, wantSuppress, wantRule = c.event, c.suppress, c.rule
	}
	if got.Event != wantEvent || got.Suppress != wantSuppress || got.RuleIndex != wantRule {
		t.Errorf("ClassifyTracking(%q) = event %q suppress %q rule %d, want event %q suppress %q rule %d (reason %q)",
			c.in, got.Event, got.Suppress, got.RuleIndex, wantEvent, wantSuppress, wantRule, got.Reason)
	}
	if got.Classified() != (c.want == OutcomeEvent) {
		t.Errorf("ClassifyTracking(%q).Classified() = %v, want %v", c.in, got.Classified(), c.want == OutcomeEvent)
	}
	if got.Suppresses() != (wantSuppress != "") {
		t.Errorf("ClassifyTracking(%q).Suppresses() = %v, want %v", c.in, got.Suppresses(), wantSuppress != "")
	}
	if got.Reason == "" {
		t.Errorf("ClassifyTracking(%q).Reason is empty", c.in)
	}
}

// The default table is issue 10's public contract: these rows must not
// change without the issue changing.
func TestClassifyTrackingDefaults(t *testing.T) {
	e := Default()
	tests := []struct {
		trackingCase
		reason string
	}{
		{trackingCase{"complaint", "COMPLAINED", OutcomeEvent, spam, "complaint", 0},
			"tracking rule 1: notificationType COMPLAINED -> newsletter.spambounce, suppressed (complaint)"},
		{trackingCase{"late bounce", "LATE_BOUNCE", OutcomeEvent, hard, "late bounce", 1},
			"tracking rule 2: notificationType LATE_BOUNCE -> newsletter.hardbounce, suppressed (late bounce)"},
		{trackingCase{"unsubscribe", "UNSUBSCRIBED", OutcomeEvent, unsubscribe, "unsubscribed", 2},
			"tracking rule 3: notificationType UNSUBSCRIBED -> newsletter.unsubscribe, suppressed (unsubscribed)"},
		{trackingCase{"open", "OPENED", OutcomeEvent, open, "", 3},
			"tracking rule 4: notificationType OPENED -> newsletter.open, not suppressed"},
		{trackingCase{"click", "CLICKED", OutcomeEvent, click, "", 4},
			"tracking rule 5: notificationType CLICKED -> newsletter.click, not suppressed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkTracking(t, e, tt.trackingCase)
			if got := e.ClassifyTracking(tt.in).Reason; got != tt.reason {
				t.Errorf("Reason = %q, want %q", got, tt.reason)
			}
		})
	}
}

func TestClassifyTrackingCaseAndSpaces(t *testing.T) {
	e := Default()
	tests := []trackingCase{
		{"lower case", "complained", OutcomeEvent, spam, "complaint", 0},
		{"mixed case, tabs", "\tLate_Bounce\t", OutcomeEvent, hard, "late bounce", 1},
		{"padded with newlines", "\nunsubscribed\r\n", OutcomeEvent, unsubscribe, "unsubscribed", 2},
		{"spaces", "  OPENED ", OutcomeEvent, open, "", 3},
		// The Kelvin sign folds to K, as strings.EqualFold has it.
		{"Kelvin sign", "CLIC\u212aED", OutcomeEvent, click, "", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkTracking(t, e, tt) })
	}
}

func TestClassifyTrackingUnclassified(t *testing.T) {
	e := Default()
	tests := []struct {
		name       string
		in         string
		wantReason string
	}{
		{"empty", "", reasonNoTrackingType},
		{"blank", " \t\n", reasonNoTrackingType},
		{"delivery status", "DELIVERED", reasonNoTrackingRule},
		{"bounce group name", "BOUNCED", reasonNoTrackingRule},
		{"prefix of a type", "COMPLAIN", reasonNoTrackingRule},
		{"longer than a type", "COMPLAINED_TWICE", reasonNoTrackingRule},
		{"inner space is not ignored", "LATE BOUNCE", reasonNoTrackingRule},
		{"hyphen for underscore", "LATE-BOUNCE", reasonNoTrackingRule},
		{"control character", "OPENED\x00", reasonNoTrackingRule},
		{"non-ASCII", "ÖFFNET", reasonNoTrackingRule},
		{"invalid UTF-8", "OPEN\xffED", reasonNoTrackingRule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkTracking(t, e, trackingCase{in: tt.in, want: OutcomeUnclassified})
			if got := e.ClassifyTracking(tt.in).Reason; got != tt.wantReason {
				t.Errorf("Reason = %q, want %q", got, tt.wantReason)
			}
		})
	}
}

func TestNewWithTracking(t *testing.T) {
	custom := []TrackingRule{
		{NotificationType: " complained ", Event: "newsletter.complaint", Suppress: " spam complaint "},
		{NotificationType: "Blocked_2", Event: "newsletter.blocked"},
	}
	tests := []struct {
		name     string
		tracking []TrackingRule
		want     []TrackingRule
		cases    []trackingCase
	}{
		{
			name:     "custom table replaces the defaults",
			tracking: custom,
			want: []TrackingRule{
				{NotificationType: "COMPLAINED", Event: "newsletter.complaint", Suppress: "spam complaint"},
				{NotificationType: "BLOCKED_2", Event: "newsletter.blocked"},
			},
			cases: []trackingCase{
				{"overridden type", "COMPLAINED", OutcomeEvent, "newsletter.complaint", "spam complaint", 0},
				{"type of its own", "blocked_2", OutcomeEvent, "newsletter.blocked", "", 1},
				{"default type no longer mapped", "OPENED", OutcomeUnclassified, "", "", -1},
			},
		},
		{
			name:     "defaults",
			tracking: DefaultTrackingRules(),
			want:     DefaultTrackingRules(),
			cases:    []trackingCase{{"complaint", "COMPLAINED", OutcomeEvent, spam, "complaint", 0}},
		},
		{
			name:  "nil means no tracking rule",
			want:  []TrackingRule{},
			cases: []trackingCase{{"complaint", "COMPLAINED", OutcomeUnclassified, "", "", -1}},
		},
		{
			name:     "empty means no tracking rule",
			tracking: []TrackingRule{},
			want:     []TrackingRule{},
			cases:    []trackingCase{{"open", "OPENED", OutcomeUnclassified, "", "", -1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewWithTracking(DefaultRules(), tt.tracking)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.TrackingRules(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("TrackingRules() = %+v, want %+v", got, tt.want)
			}
			if got, want := e.Rules(), DefaultRules(); !reflect.DeepEqual(got, want) {
				t.Errorf("Rules() = %+v, want %+v", got, want)
			}
			for _, c := range tt.cases {
				checkTracking(t, e, c)
			}
		})
	}
}

func TestNewKeepsTheDefaultTracking(t *testing.T) {
	e, err := New([]Rule{{GroupID: 2, GroupName: "BOUNCED", Event: hard}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.TrackingRules(), DefaultTrackingRules(); !reflect.DeepEqual(got, want) {
		t.Errorf("New(rules).TrackingRules() = %+v, want %+v", got, want)
	}
	if got, want := Default().TrackingRules(), DefaultTrackingRules(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default().TrackingRules() = %+v, want %+v", got, want)
	}
}

func TestNewWithTrackingErrors(t *testing.T) {
	valid := TrackingRule{NotificationType: "COMPLAINED", Event: spam, Suppress: "complaint"}
	tests := []struct {
		name     string
		rules    []Rule
		tracking []TrackingRule
		want     []string
	}{
		{"missing type", nil, []TrackingRule{{Event: open}}, []string{"tracking rule 1: notificationType is missing or blank"}},
		{"blank type", nil, []TrackingRule{valid, {NotificationType: " \t", Event: open}}, []string{"tracking rule 2: notificationType is missing or blank"}},
		{"type with a space", nil, []TrackingRule{{NotificationType: "LATE BOUNCE", Event: hard}}, []string{`tracking rule 1: notificationType "LATE BOUNCE" holds ' ', but a type is letters, digits and underscores`}},
		{"type with a control character", nil, []TrackingRule{{NotificationType: "OPENED\x00", Event: open}}, []string{`tracking rule 1: notificationType "OPENED\x00" holds '\x00'`}},
		{"type that only upper-cases to a valid one", nil, []TrackingRule{{NotificationType: "complaıned", Event: spam}}, []string{`tracking rule 1: notificationType "complaıned" holds 'ı'`}},
		{"type too long", nil, []TrackingRule{{NotificationType: strings.Repeat("A", 65), Event: open}}, []string{"tracking rule 1: notificationType is 65 bytes long; at most 64 fit"}},
		{"missing event", nil, []TrackingRule{{NotificationType: "OPENED"}}, []string{"tracking rule 1: event is missing"}},
		{"bad event", nil, []TrackingRule{{NotificationType: "OPENED", Event: "Newsletter.Open"}}, []string{`tracking rule 1: event "Newsletter.Open" is not of the form lowercase.words`}},
		{"duplicate type, other case", nil, []TrackingRule{valid, {NotificationType: "OPENED", Event: open}, {NotificationType: " complained", Event: hard}},
			[]string{"tracking rule 3: notificationType COMPLAINED is already mapped by tracking rule 1"}},
		{"blank suppress reason", nil, []TrackingRule{{NotificationType: "OPENED", Event: open, Suppress: "  "}}, []string{"tracking rule 1: suppress reason is blank: leave suppress out"}},
		{"suppress reason too long", nil, []TrackingRule{{NotificationType: "OPENED", Event: open, Suppress: strings.Repeat("é", 101)}}, []string{"tracking rule 1: suppress reason is 101 characters long; at most 100 fit"}},
		{"suppress reason with a newline", nil, []TrackingRule{{NotificationType: "OPENED", Event: open, Suppress: "spam\ncomplaint"}}, []string{"tracking rule 1: suppress reason holds the control character U+000A at byte 4"}},
		{"suppress reason with DEL", nil, []TrackingRule{{NotificationType: "OPENED", Event: open, Suppress: "spam\x7f"}}, []string{"suppress reason holds the control character U+007F"}},
		{"suppress reason not UTF-8", nil, []TrackingRule{{NotificationType: "OPENED", Event: open, Suppress: "spam\xff"}}, []string{"tracking rule 1: suppress reason is not valid UTF-8"}},
		{"bounce and tracking problems together", []Rule{{GroupID: 0, GroupName: "DROPPED", Event: drop}}, []TrackingRule{valid, {NotificationType: "OPENED", Event: "bad"}},
			[]string{"rule 1: group id is missing or 0", `; tracking rule 2: event "bad"`}},
		{"every problem of one rule", nil, []TrackingRule{{NotificationType: "", Event: "", Suppress: "a\tb"}},
			[]string{"tracking rule 1: event is missing", "tracking rule 1: suppress reason holds", "tracking rule 1: notificationType is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := tt.rules
			if rules == nil {
				rules = DefaultRules()
			}
			e, err := NewWithTracking(rules, tt.tracking)
			if e != nil {
				t.Errorf("NewWithTracking returned an engine with error %v", err)
			}
			errorMentions(t, err, tt.want...)
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("errors.As(%v, *RuleError) = false", err)
			}
		})
	}
}

func TestRuleErrorNamesItsList(t *testing.T) {
	tests := []struct {
		in   RuleError
		want string
	}{
		{RuleError{Rule: 2, Line: 40, Problem: "p"}, "rule 2 (line 40): p"},
		{RuleError{Rule: 2, Problem: "p"}, "rule 2: p"},
		{RuleError{Tracking: true, Rule: 2, Line: 40, Problem: "p"}, "tracking rule 2 (line 40): p"},
		{RuleError{Tracking: true, Rule: 2, Problem: "p"}, "tracking rule 2: p"},
		{RuleError{Tracking: true, Problem: "p"}, "p"},
	}
	for _, tt := range tests {
		if got := tt.in.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTrackingRulesIsACopy(t *testing.T) {
	e := Default()
	got := e.TrackingRules()
	got[0].Event = "changed.event"
	got[0].Suppress = ""
	if again := e.TrackingRules(); !reflect.DeepEqual(again, DefaultTrackingRules()) {
		t.Errorf("changing the copy changed the engine: %+v", again)
	}
	checkTracking(t, e, trackingCase{in: "COMPLAINED", want: OutcomeEvent, event: spam, suppress: "complaint", rule: 0})
}

func TestDefaultTrackingRulesIsFresh(t *testing.T) {
	a := DefaultTrackingRules()
	a[0].Event = "changed.event"
	if b := DefaultTrackingRules(); b[0].Event != spam {
		t.Errorf("DefaultTrackingRules shares its slice: %q", b[0].Event)
	}
}

func TestZeroEngineTracking(t *testing.T) {
	var e Engine
	checkTracking(t, &e, trackingCase{in: "COMPLAINED", want: OutcomeUnclassified})
	checkTracking(t, &e, trackingCase{in: "", want: OutcomeUnclassified})
	if got := e.TrackingRules(); len(got) != 0 {
		t.Errorf("TrackingRules() = %+v, want none", got)
	}
}

// mixedTracking holds every default type, in several spellings, and the
// unclassified cases, for the allocation test and the benchmark.
var mixedTracking = []string{
	"COMPLAINED", "LATE_BOUNCE", "UNSUBSCRIBED", "OPENED", "CLICKED",
	"clicked ", " Opened", "CLIC\u212aED", "", "DELIVERED", "UNKNOWN_TYPE_FROM_THE_FUTURE",
}

func TestClassifyTrackingDoesNotAllocate(t *testing.T) {
	e := Default()
	for _, in := range mixedTracking {
		if got := testing.AllocsPerRun(100, func() { e.ClassifyTracking(in) }); got != 0 {
			t.Errorf("ClassifyTracking(%q) allocates %v times per run, want 0", in, got)
		}
	}
}

func TestClassifyTrackingConcurrently(t *testing.T) {
	e := Default()
	want := make([]TrackingResult, len(mixedTracking))
	for i, in := range mixedTracking {
		want[i] = e.ClassifyTracking(in)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				for i, in := range mixedTracking {
					if got := e.ClassifyTracking(in); got != want[i] {
						t.Errorf("ClassifyTracking(%q) = %+v, want %+v", in, got, want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
