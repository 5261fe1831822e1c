package classifier

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

func FuzzClassify(f *testing.F) {
	for _, in := range mixedErrors {
		f.Add(in.ID, in.Name, in.GroupID, in.GroupName)
	}
	f.Add(int32(6011), "ec_soft_bounce ", int32(2), " bounced ")
	f.Add(int32(6002), "\u212a", int32(1), "DROPPED") // Kelvin sign folds to K
	e := Default()
	rules := e.Rules()
	f.Fuzz(func(t *testing.T, id int32, name string, groupID int32, groupName string) {
		in := Error{ID: id, Name: name, GroupID: groupID, GroupName: groupName}
		got := e.Classify(in)
		checkConsistent(t, rules, in, got)

		// Changing case within a fold class or padding with spaces must not
		// change the decision.
		variants := []Error{
			{id, foldEach(name), groupID, foldEach(groupName)},
			{id, " \t" + name + "\n ", groupID, "  " + groupName + "\r\n"},
		}
		upName, upGroup := strings.ToUpper(name), strings.ToUpper(groupName)
		// Go's ToUpper is not always a change of case (dotless i becomes I),
		// so it is only compared when it stays in the same fold class.
		if strings.EqualFold(upName, name) && strings.EqualFold(upGroup, groupName) {
			variants = append(variants, Error{id, upName, groupID, upGroup})
		}
		for _, v := range variants {
			if vr := e.Classify(v); vr != got {
				t.Errorf("Classify(%+q) = %+v, but Classify(%+q) = %+v", in, got, v, vr)
			}
		}
	})
}

// foldEach replaces every rune with the next one of its case-folding class,
// which is a change of case by the definition matching uses.
func foldEach(s string) string {
	return strings.Map(unicode.SimpleFold, s)
}

// checkConsistent asserts that a Result agrees with itself and with rules.
func checkConsistent(t *testing.T, rules []Rule, in Error, got Result) {
	t.Helper()
	if got.Reason == "" {
		t.Errorf("Classify(%+q): empty reason", in)
	}
	switch got.Outcome {
	case OutcomeEvent:
		if got.RuleIndex < 0 || got.RuleIndex >= len(rules) {
			t.Fatalf("Classify(%+q) = %+v: rule index out of range", in, got)
		}
		if r := rules[got.RuleIndex]; got.Event == "" || got.Event != r.Event || r.GroupID != in.GroupID {
			t.Errorf("Classify(%+q) = %+v, which does not agree with rule %+v", in, got, r)
		}
		if !got.Classified() {
			t.Errorf("Classify(%+q): event without Classified", in)
		}
	case OutcomeNoError, OutcomeUnclassified:
		if got.Event != "" || got.RuleIndex != -1 || got.Classified() {
			t.Errorf("Classify(%+q) = %+v: no event expected", in, got)
		}
		if got.Outcome == OutcomeNoError && (in.ID != 0 || in.GroupID != 0) {
			t.Errorf("Classify(%+q) = %+v: no error despite an error id or group", in, got)
		}
	default:
		t.Errorf("Classify(%+q): outcome %v", in, got.Outcome)
	}
}

func FuzzClassifyTracking(f *testing.F) {
	for _, in := range mixedTracking {
		f.Add(in)
	}
	f.Add("complaıned") // dotless i upper-cases to I but does not fold to it
	f.Add("OPENED\x00")
	e := Default()
	rules := e.TrackingRules()
	f.Fuzz(func(t *testing.T, in string) {
		got := e.ClassifyTracking(in)
		checkTrackingConsistent(t, rules, in, got)

		// As for Classify: a change of case within a fold class, or
		// padding, must not change the decision.
		variants := []string{foldEach(in), " \t" + in + "\r\n "}
		if up := strings.ToUpper(in); strings.EqualFold(up, in) {
			variants = append(variants, up)
		}
		for _, v := range variants {
			if vr := e.ClassifyTracking(v); vr != got {
				t.Errorf("ClassifyTracking(%+q) = %+v, but ClassifyTracking(%+q) = %+v", in, got, v, vr)
			}
		}
	})
}

// checkTrackingConsistent asserts that a TrackingResult agrees with itself
// and with rules.
func checkTrackingConsistent(t *testing.T, rules []TrackingRule, in string, got TrackingResult) {
	t.Helper()
	if got.Reason == "" {
		t.Errorf("ClassifyTracking(%+q): empty reason", in)
	}
	switch got.Outcome {
	case OutcomeEvent:
		if got.RuleIndex < 0 || got.RuleIndex >= len(rules) {
			t.Fatalf("ClassifyTracking(%+q) = %+v: rule index out of range", in, got)
		}
		r := rules[got.RuleIndex]
		if got.Event == "" || got.Event != r.Event || got.Suppress != r.Suppress || !strings.EqualFold(r.NotificationType, strings.TrimSpace(in)) {
			t.Errorf("ClassifyTracking(%+q) = %+v, which does not agree with rule %+v", in, got, r)
		}
		if !got.Classified() || got.Suppresses() != (r.Suppress != "") {
			t.Errorf("ClassifyTracking(%+q) = %+v: Classified or Suppresses disagrees", in, got)
		}
	case OutcomeUnclassified:
		if got.Event != "" || got.Suppress != "" || got.RuleIndex != -1 || got.Classified() || got.Suppresses() {
			t.Errorf("ClassifyTracking(%+q) = %+v: no event expected", in, got)
		}
		for _, r := range rules {
			if strings.EqualFold(r.NotificationType, strings.TrimSpace(in)) {
				t.Errorf("ClassifyTracking(%+q) is unclassified, but rule %+v names the type", in, r)
			}
		}
	default:
		t.Errorf("ClassifyTracking(%+q): outcome %v", in, got.Outcome)
	}
}

func FuzzParseRules(f *testing.F) {
	seed, err := os.ReadFile(seedRulesFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	f.Add(`{"rules": [{"groupId": 3, "groupName": "OPERATOR_ERRORS", "event": "newsletter.hardbounce"}]}`)
	f.Add("rules:\n  - {groupId: 2, groupName: ' bounced', errorNames: [ec_a, EC_B], event: a.b}\n  - {groupId: 2, groupName: BOUNCED, event: a.c}\n")
	f.Add("rules:\n  - {groupId: 1, groupName: DROPPED, errorNames: [EC_A, ec_a], event: a.b}\n")
	f.Add("rules:\n  - {groupId: 1, groupName: DROPPED, colour: red, event: a.b}\n")
	f.Add("rules: [\n")
	const bounce = "rules:\n  - {groupId: 2, groupName: BOUNCED, event: a.b}\n"
	f.Add(bounce + "trackingRules: []\n")
	f.Add(bounce + "trackingRules:\n")
	f.Add(bounce + "trackingRules:\n  - {notificationType: ' opened', event: a.c, suppress: ' why '}\n  - {notificationType: CLICKED, event: a.d}\n")
	f.Add(bounce + "trackingRules:\n  - {notificationType: OPENED, event: a.c}\n  - {notificationType: opened, event: a.d}\n")
	f.Add(bounce + "trackingRules:\n  - {notificationType: OPENED, event: a.c, suppress: \"a\\tb\"}\n")
	f.Fuzz(func(t *testing.T, in string) {
		set, err := ParseRuleSet(strings.NewReader(in))
		rules, rulesErr := ParseRules(strings.NewReader(in))
		if (err == nil) != (rulesErr == nil) {
			t.Fatalf("ParseRuleSet error %v, but ParseRules error %v", err, rulesErr)
		}
		if err != nil {
			if set.Rules != nil || set.TrackingRules != nil || rules != nil {
				t.Errorf("ParseRuleSet or ParseRules returned rules with error %v", err)
			}
			return
		}
		if !reflect.DeepEqual(rules, set.Rules) {
			t.Fatalf("ParseRules = %+v, but ParseRuleSet's rules = %+v", rules, set.Rules)
		}
		e, err := NewWithTracking(set.Rules, set.TrackingRules)
		if err != nil {
			t.Fatalf("ParseRuleSet accepted %+v, NewWithTracking rejects it: %v", set, err)
		}
		if got := e.Rules(); !reflect.DeepEqual(got, rules) {
			t.Fatalf("NewWithTracking(set).Rules() = %+v, want %+v", got, rules)
		}
		if got := e.TrackingRules(); !reflect.DeepEqual(got, set.TrackingRules) {
			t.Fatalf("NewWithTracking(set).TrackingRules() = %+v, want %+v", got, set.TrackingRules)
		}
		// Every tracking rule's type reaches it.
		for i, r := range set.TrackingRules {
			got := e.ClassifyTracking(strings.ToLower(r.NotificationType))
			checkTrackingConsistent(t, set.TrackingRules, r.NotificationType, got)
			if got.RuleIndex != i {
				t.Errorf("ClassifyTracking(%q) = %+v, want rule index %d", r.NotificationType, got, i)
			}
		}
		// Every listed name reaches its rule; an unlisted name reaches the
		// pair's catch-all.
		for i, r := range rules {
			names := r.ErrorNames
			if len(names) == 0 {
				names = []string{unlistedName(rules, r)}
			}
			for _, n := range names {
				in := Error{ID: 6000, Name: n, GroupID: r.GroupID, GroupName: r.GroupName}
				got := e.Classify(in)
				checkConsistent(t, rules, in, got)
				if got.RuleIndex != i {
					t.Errorf("Classify(%+q) = %+v, want rule index %d", in, got, i)
				}
			}
		}
	})
}

// unlistedName returns an error name that no rule of r's group pair lists.
func unlistedName(rules []Rule, r Rule) string {
	name := "EC_UNLISTED"
	for {
		listed := false
		for _, o := range rules {
			if o.GroupID != r.GroupID || !strings.EqualFold(o.GroupName, r.GroupName) {
				continue
			}
			for _, n := range o.ErrorNames {
				listed = listed || strings.EqualFold(n, name)
			}
		}
		if !listed {
			return name
		}
		name += "_"
	}
}
