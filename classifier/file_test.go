package classifier

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const seedRulesFile = "testdata/seed-rules.yaml"

func TestSeedRulesFileEqualsDefaultRules(t *testing.T) {
	f, err := os.Open(seedRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ParseRules(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := DefaultRules(); !reflect.DeepEqual(got, want) {
		t.Errorf("ParseRules(%s) = %+v, want DefaultRules %+v", seedRulesFile, got, want)
	}

	data, err := os.ReadFile(seedRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	set, err := ParseRuleSet(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if want := DefaultRuleSet(); !reflect.DeepEqual(set, want) {
		t.Errorf("ParseRuleSet(%s) = %+v, want the defaults %+v", seedRulesFile, set, want)
	}
	// The seed spells the tracking table out; without it, the defaults
	// must come back all the same.
	if !strings.Contains(string(data), "\ntrackingRules:\n") {
		t.Fatalf("%s has no trackingRules list", seedRulesFile)
	}

	e, err := LoadFile(seedRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.Rules(), Default().Rules(); !reflect.DeepEqual(got, want) {
		t.Errorf("LoadFile(%s).Rules() = %+v, want %+v", seedRulesFile, got, want)
	}
	if got, want := e.TrackingRules(), Default().TrackingRules(); !reflect.DeepEqual(got, want) {
		t.Errorf("LoadFile(%s).TrackingRules() = %+v, want %+v", seedRulesFile, got, want)
	}
}

func TestParseRuleSetTracking(t *testing.T) {
	const bounce = "rules:\n  - {groupId: 2, groupName: BOUNCED, event: newsletter.hardbounce}\n"
	bounceRules := []Rule{{GroupID: 2, GroupName: "BOUNCED", Event: hard}}
	tests := []struct {
		name string
		in   string
		want []TrackingRule
	}{
		{"no trackingRules key: the defaults", bounce, DefaultTrackingRules()},
		{"empty list: no tracking rule", bounce + "trackingRules: []\n", []TrackingRule{}},
		{"tracking list before the rules", "trackingRules: []\n" + bounce, []TrackingRule{}},
		{"override, canonicalised", bounce + `trackingRules:
  - notificationType: " complained"
    event: newsletter.complaint
    suppress: " spam complaint "
  - notificationType: opened
    event: newsletter.open
`, []TrackingRule{
			{NotificationType: "COMPLAINED", Event: "newsletter.complaint", Suppress: "spam complaint"},
			{NotificationType: "OPENED", Event: open},
		}},
		{"json", `{"rules": [{"groupId": 2, "groupName": "BOUNCED", "event": "newsletter.hardbounce"}],
 "trackingRules": [{"notificationType": "LATE_BOUNCE", "event": "newsletter.hardbounce", "suppress": "late bounce"}]}`,
			[]TrackingRule{{NotificationType: "LATE_BOUNCE", Event: hard, Suppress: "late bounce"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRuleSet(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			want := RuleSet{Rules: bounceRules, TrackingRules: tt.want, SoftBounce: DefaultSoftBouncePolicy(), SuppressionLifetimes: DefaultSuppressionLifetimes()}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
			rules, err := ParseRules(strings.NewReader(tt.in))
			if err != nil || !reflect.DeepEqual(rules, bounceRules) {
				t.Errorf("ParseRules = %+v, %v; want %+v", rules, err, bounceRules)
			}
		})
	}
}

func TestParseRuleSetTrackingErrors(t *testing.T) {
	const bounce = "rules:\n  - {groupId: 2, groupName: BOUNCED, event: newsletter.hardbounce}\n"
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"key without a value", bounce + "trackingRules:\n#  - {notificationType: OPENED, event: newsletter.open}\n",
			[]string{"classifier: line 3: trackingRules has no value: write trackingRules: [] for no tracking rule, or leave the key out"}},
		{"explicit null", bounce + "trackingRules: ~\n", []string{"line 3: trackingRules has no value"}},
		{"not a list", bounce + "trackingRules: OPENED\n", []string{"line 3", "cannot unmarshal"}},
		{"unknown key in a tracking rule", bounce + `trackingRules:
  - notificationType: OPENED
    event: newsletter.open
    suppressed: true
`, []string{"line 6", "field suppressed not found"}},
		{"suppress not a string", bounce + "trackingRules:\n  - {notificationType: OPENED, event: newsletter.open, suppress: [a]}\n", []string{"line 4", "cannot unmarshal"}},
		{"every validation problem, with lines", bounce + `trackingRules:
  - {notificationType: COMPLAINED, event: newsletter.spambounce, suppress: complaint}
  - {notificationType: " ", event: newsletter.open}
  - {notificationType: OPENED, event: Newsletter.Open}
  - {notificationType: complained, event: newsletter.hardbounce}
  - {notificationType: CLICKED, event: newsletter.click, suppress: "a\tb"}
  - notificationType: LATE_BOUNCE
    event: newsletter.hardbounce
    suppress: "` + strings.Repeat("x", 101) + `"
  - {notificationType: LATE-BOUNCE, event: newsletter.hardbounce}
`, []string{
			"tracking rule 2 (line 5): notificationType is missing or blank",
			`tracking rule 3 (line 6): event "Newsletter.Open" is not of the form lowercase.words`,
			"tracking rule 4 (line 7): notificationType COMPLAINED is already mapped by tracking rule 1",
			"tracking rule 5 (line 8): suppress reason holds the control character U+0009",
			"tracking rule 6 (line 9): suppress reason is 101 characters long",
			`tracking rule 7 (line 12): notificationType "LATE-BOUNCE" holds '-'`,
		}},
		{"bounce and tracking problems, told apart", `rules:
  - {groupId: 2, groupName: BOUNCED}
trackingRules:
  - {notificationType: OPENED}
`, []string{"rule 1 (line 2): event is missing; tracking rule 1 (line 4): event is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRuleSet(strings.NewReader(tt.in))
			if got.Rules != nil || got.TrackingRules != nil {
				t.Errorf("ParseRuleSet returned %+v with error %v", got, err)
			}
			errorMentions(t, err, tt.want...)
			// ParseRules checks the whole file too.
			rules, err := ParseRules(strings.NewReader(tt.in))
			if rules != nil {
				t.Errorf("ParseRules returned rules %+v with error %v", rules, err)
			}
			errorMentions(t, err, tt.want...)
		})
	}
}

func TestLoadFileTracking(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const bounce = "rules:\n  - {groupId: 2, groupName: BOUNCED, event: newsletter.hardbounce}\n"
	tests := []struct {
		name string
		path string
		want trackingCase
	}{
		{"old file gets the defaults", write("old.yaml", bounce), trackingCase{in: "complained", want: OutcomeEvent, event: spam, suppress: "complaint", rule: 0}},
		{"empty list classifies nothing", write("none.yaml", bounce+"trackingRules: []\n"), trackingCase{in: "COMPLAINED", want: OutcomeUnclassified}},
		{"override", write("own.yaml", bounce+"trackingRules:\n  - {notificationType: OPENED, event: newsletter.open, suppress: opened once}\n"),
			trackingCase{in: "OPENED", want: OutcomeEvent, event: open, suppress: "opened once", rule: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := LoadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			checkTracking(t, e, tt.want)
		})
	}

	bad := write("bad.yaml", bounce+"trackingRules:\n  - {notificationType: OPENED}\n")
	e, err := LoadFile(bad)
	if e != nil {
		t.Errorf("LoadFile returned an engine with error %v", err)
	}
	errorMentions(t, err, "classifier: rules file "+bad+": tracking rule 1 (line 4): event is missing")
}

func TestParseRulesValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Rule
	}{
		{
			name: "yaml, names canonicalised",
			in: `
rules:
  - groupId: 2
    groupName: " bounced"
    errorNames: [ec_soft_bounce, " EC_RECIPIENT_INBOX_FULL "]
    event: newsletter.softbounce
  - groupId: 2
    groupName: BOUNCED
    errorNames: []
    event: newsletter.hardbounce
`,
			want: []Rule{
				{GroupID: 2, GroupName: "BOUNCED", ErrorNames: []string{"EC_SOFT_BOUNCE", "EC_RECIPIENT_INBOX_FULL"}, Event: soft},
				{GroupID: 2, GroupName: "BOUNCED", Event: hard},
			},
		},
		{
			name: "json",
			in:   `{"rules": [{"groupId": 3, "groupName": "OPERATOR_ERRORS", "event": "newsletter.hardbounce"}]}`,
			want: []Rule{{GroupID: 3, GroupName: "OPERATOR_ERRORS", Event: hard}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRules(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty file", "", []string{"classifier: ", "rules file is empty"}},
		{"comments only", "# nothing\n", []string{"rules file is empty"}},
		{"empty rule list", "rules: []\n", []string{"rule list is empty"}},
		{"no rules key", "{}\n", []string{"rule list is empty"}},
		{"unknown key in a rule", `rules:
  - groupId: 1
    groupName: DROPPED
    colour: red
    event: newsletter.dropped
`, []string{"line 4", "field colour not found"}},
		{"misspelt key", `rules:
  - groupId: 1
    groupName: DROPPED
    errorName: [EC_SPAM_DETECTED]
    event: newsletter.spambounce
`, []string{"line 4", "field errorName not found"}},
		{"unknown top-level key", "version: 2\nrules: []\n", []string{"line 1", "field version not found"}},
		{"unknown key in json", `{"rules": [{"groupId": 1, "groupName": "DROPPED", "event": "newsletter.dropped", "x": 1}]}`, []string{"field x not found"}},
		{"duplicate key", "rules:\n  - groupId: 1\n    groupId: 2\n", []string{"line 3", `"groupId" already defined`}},
		{"group id not a number", "rules:\n  - groupId: one\n    groupName: DROPPED\n    event: newsletter.dropped\n", []string{"line 2", "cannot unmarshal"}},
		{"group id too big", "rules:\n  - groupId: 99999999999\n    groupName: DROPPED\n    event: newsletter.dropped\n", []string{"line 2", "cannot unmarshal"}},
		{"rules not a list", "rules: DROPPED\n", []string{"cannot unmarshal"}},
		{"syntax error", "rules: [\n", []string{"yaml: "}},
		{"two documents", "rules:\n  - {groupId: 1, groupName: DROPPED, event: newsletter.dropped}\n---\nrules: []\n", []string{"more than one YAML document"}},
		{"missing event, with line", `rules:
  - groupId: 1
    groupName: DROPPED
    event: newsletter.dropped
  - groupId: 2
    groupName: BOUNCED
`, []string{"rule 2 (line 5): event is missing"}},
		{"every validation problem, with lines", `rules:
  - {groupId: -1, groupName: DROPPED, event: newsletter.dropped}
  - {groupId: 0, groupName: OK, event: newsletter.dropped}
  - {groupId: 1, groupName: " ", event: newsletter.dropped}
  - {groupId: 1, groupName: DROPPED, event: Newsletter.Dropped}
  - {groupId: 1, groupName: DROPPED, errorNames: [EC_A, EC_A], event: newsletter.spambounce}
  - {groupId: 1, groupName: DROPPED, errorNames: [ec_a], event: newsletter.spambounce}
  - {groupId: 1, groupName: dropped, event: newsletter.hardbounce}
  - {groupId: 1, groupName: DROPPED, errorNames: [""], event: newsletter.spambounce}
`, []string{
			"rule 1 (line 2): group id -1 is negative",
			"rule 2 (line 3): group id is missing or 0, but group 0 is reserved",
			"rule 3 (line 4): group name is missing or blank",
			`rule 4 (line 5): event "Newsletter.Dropped" is not of the form lowercase.words`,
			"rule 5 (line 6): error name EC_A is listed twice",
			"rule 6 (line 7): error name EC_A of error group 1 DROPPED is already listed by rule 5",
			"rule 7 (line 8): error group 1 DROPPED already has a catch-all rule (rule 4)",
			"rule 8 (line 9): error name 1 of 1 is blank",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRules(strings.NewReader(tt.in))
			if got != nil {
				t.Errorf("ParseRules returned rules %+v with error %v", got, err)
			}
			errorMentions(t, err, tt.want...)
		})
	}
}

func TestParseRulesTooLarge(t *testing.T) {
	in := "rules:\n" + strings.Repeat("# padding padding padding padding\n", maxRulesFileSize/30)
	_, err := ParseRules(strings.NewReader(in))
	errorMentions(t, err, "larger than")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseRulesReadError(t *testing.T) {
	_, err := ParseRules(failingReader{})
	errorMentions(t, err, "disk on fire")
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n  - groupId: 2\n    groupName: BOUNCED\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"missing file", filepath.Join(dir, "none.yaml"), []string{"classifier: ", "none.yaml", "no such file"}},
		{"invalid rule", bad, []string{"classifier: rules file " + bad + ": rule 1 (line 2): event is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := LoadFile(tt.path)
			if e != nil {
				t.Errorf("LoadFile returned an engine with error %v", err)
			}
			errorMentions(t, err, tt.want...)
		})
	}
}
