package classifier

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
)

const (
	spam = "newsletter.spambounce"
	soft = "newsletter.softbounce"
	hard = "newsletter.hardbounce"
	drop = "newsletter.dropped"
)

// classifyCase is one error and what Classify should make of it.
type classifyCase struct {
	name string
	in   Error
	want Outcome
	// event and rule matter only when want is OutcomeEvent.
	event string
	rule  int
}

// checkClassify classifies c.in with e and compares the Result with c.
func checkClassify(t *testing.T, e *Engine, c classifyCase) {
	t.Helper()
	got := e.Classify(c.in)
	if got.Outcome != c.want {
		t.Fatalf("Classify(%+v).Outcome = %v, want %v (reason %q)", c.in, got.Outcome, c.want, got.Reason)
	}
	wantEvent, wantRule := "", -1
	if c.want == OutcomeEvent {
		wantEvent, wantRule = c.event, c.rule
	}
	if got.Event != wantEvent || got.RuleIndex != wantRule {
		t.Errorf("Classify(%+v) = event %q rule %d, want event %q rule %d (reason %q)",
			c.in, got.Event, got.RuleIndex, wantEvent, wantRule, got.Reason)
	}
	if got.Classified() != (c.want == OutcomeEvent) {
		t.Errorf("Classify(%+v).Classified() = %v, want %v", c.in, got.Classified(), c.want == OutcomeEvent)
	}
	if got.Reason == "" {
		t.Errorf("Classify(%+v).Reason is empty", c.in)
	}
}

func TestClassifySeedRows(t *testing.T) {
	e := Default()
	tests := []classifyCase{
		// Group 1 DROPPED, the three named errors.
		{"dropped EC_SPAM_DETECTED", Error{6002, "EC_SPAM_DETECTED", 1, "DROPPED"}, OutcomeEvent, spam, 0},
		{"dropped EC_SUPPRESSED_SPAM_COMPLAINT", Error{6035, "EC_SUPPRESSED_SPAM_COMPLAINT", 1, "DROPPED"}, OutcomeEvent, spam, 0},
		{"dropped EC_SUPPRESSED_BOUNCE", Error{6034, "EC_SUPPRESSED_BOUNCE", 1, "DROPPED"}, OutcomeEvent, spam, 0},
		// Group 1 DROPPED, any other error name.
		{"dropped any other", Error{6003, "EC_UNSUBSCRIBED_EMAIL_ADDRESS", 1, "DROPPED"}, OutcomeEvent, drop, 1},
		// Group 1 HANDSET_ERRORS, any error name.
		{"handset errors any", Error{6018, "EC_REQUEST_INVALID", 1, "HANDSET_ERRORS"}, OutcomeEvent, hard, 2},
		// Group 2 BOUNCED, spam errors.
		{"bounced EC_SENDER_IP_BLACKLISTED", Error{6017, "EC_SENDER_IP_BLACKLISTED", 2, "BOUNCED"}, OutcomeEvent, spam, 3},
		{"bounced EC_BLOCKED_AS_SPAM", Error{6999, "EC_BLOCKED_AS_SPAM", 2, "BOUNCED"}, OutcomeEvent, spam, 3},
		{"bounced EC_SPAM_REVERTED", Error{6042, "EC_SPAM_REVERTED", 2, "BOUNCED"}, OutcomeEvent, spam, 3},
		// Group 2 BOUNCED, soft errors.
		{"bounced EC_RECIPIENT_INBOX_FULL", Error{6010, "EC_RECIPIENT_INBOX_FULL", 2, "BOUNCED"}, OutcomeEvent, soft, 4},
		{"bounced EC_SOFT_BOUNCE", Error{6011, "EC_SOFT_BOUNCE", 2, "BOUNCED"}, OutcomeEvent, soft, 4},
		// Group 2 BOUNCED, any other error name.
		{"bounced any other", Error{6012, "EC_HARD_BOUNCE", 2, "BOUNCED"}, OutcomeEvent, hard, 5},
		// Group 2 USER_ERRORS, any error name.
		{"user errors any", Error{6006, "EC_INVALID_EMAIL_ADDRESS", 2, "USER_ERRORS"}, OutcomeEvent, hard, 6},
		// Group 3 OPERATOR_ERRORS, any error name.
		{"operator errors any", Error{6013, "EC_INTERNAL_SYSTEM_ERROR", 3, "OPERATOR_ERRORS"}, OutcomeEvent, hard, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkClassify(t, e, tt) })
	}
}

func TestClassifyRealWorldShapes(t *testing.T) {
	e := Default()
	tests := []classifyCase{
		// Real traffic (2024): suppressions arrive in group 1 as HANDSET_ERRORS,
		// where the seed's table says any error is a hard bounce.
		{"handset errors EC_SUPPRESSED_BOUNCE", Error{6034, "EC_SUPPRESSED_BOUNCE", 1, "HANDSET_ERRORS"}, OutcomeEvent, hard, 2},
		// Infobip's documented example of a delivered message.
		{"documented delivered example", Error{0, "NO_ERROR", 0, "OK"}, OutcomeNoError, "", -1},
		{"no error object", Error{}, OutcomeNoError, "", -1},
		{"no error, group name NO_ERROR", Error{0, "NO_ERROR", 0, "NO_ERROR"}, OutcomeNoError, "", -1},
		{"no error, odd case and spaces", Error{0, " no_error ", 0, " ok\t"}, OutcomeNoError, "", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkClassify(t, e, tt) })
	}
}

// Infobip's current email error codes by group, as the reference lists them,
// with the event each makes under the seed's group names and under the
// generic names seen in real traffic.
func TestClassifyInfobipErrorCodes(t *testing.T) {
	type codes struct {
		groupID   int32
		groupName string
		names     []string
		event     string
		rule      int
	}
	group1Other := []string{
		"EC_UNSUBSCRIBED_EMAIL_ADDRESS", "EC_SENDER_DOMAIN_BOUNCE_BLOCKED", "EC_REQUEST_INVALID",
		"EC_EMAIL_TEMPLATE_NOT_FOUND", "EC_EMAIL_PLACEHOLDERS_ERROR", "EC_BLOCKED_SUSPICIOUS_ACTIVITY",
		"EC_EMAIL_TOO_MANY_URLS", "EC_EMAIL_INVALID_TRACKING_PARAMS",
		"EC_EMAIL_LANDING_PAGE_PLACEHOLDERS_SIZE_EXCEEDED", "EC_EMAIL_INVALID_HEADERS",
		"EC_SENDER_ADDRESS_INVALID", "EC_EMAIL_INVALID_LANDING_PAGE",
		"EC_INVALID_PRESERVED_CC_OR_BCC_RECIPIENT", "EC_INVALID_CC_BCC_EMAIL_ADDRESS",
		"EC_SENDER_DOMAIN_UNVERIFIED", "EC_EMAIL_CONTENT_EXPIRED", "EC_EMAIL_TEMPLATE_LANGUAGE_ERROR",
		"EC_EMAIL_TEMPLATE_EXPIRED", "EC_EMAIL_TEMPLATE_NOT_SAVED", "EC_SENDER_WARMUP", "EC_WARMUP",
		"EC_RECIPIENT_DOMAIN_TYPO", "EC_ACCESS_DENIED_BY_MAILBOX_PROVIDER",
		"EC_SINGLE_SENDER_NOT_VERIFIED", "EC_SINGLE_SENDER_TRAFFIC_EXCEEDED", "EC_NO_IP_POOL_ASSIGNED",
		"EC_SAFETY_RATE_LIMIT", "EC_MAILBOX_PROVIDER_RATE_LIMIT",
	}
	group1Spam := []string{"EC_SPAM_DETECTED", "EC_SUPPRESSED_BOUNCE", "EC_SUPPRESSED_SPAM_COMPLAINT"}
	group2Spam := []string{"EC_SENDER_IP_BLACKLISTED", "EC_SPAM_REVERTED"}
	group2Soft := []string{"EC_RECIPIENT_INBOX_FULL", "EC_SOFT_BOUNCE"}
	group2Other := []string{
		"EC_INVALID_EMAIL_ADDRESS", "EC_MAILBOX_TEMPORARY_UNAVAILABLE", "EC_MAILBOX_PERMANENTLY_UNAVAILABLE",
		"EC_HARD_BOUNCE", "EC_RECIPIENT_DOMAIN_MX_NOT_FOUND", "EC_SUSPICIOUS_CONTENT",
		"EC_SUSPICIOUS_SENDER", "EC_RECIPIENT_DOMAIN_POLICY_ERROR", "EC_UNSOLICITED_RECIPIENT",
		"EC_DOMAIN_CONFIGURATION_ERROR", "EC_DMARC_POLICY_ISSUE", "EC_SENDER_DOMAIN_BLACKLISTED",
	}
	all2 := append(append(append([]string{}, group2Spam...), group2Soft...), group2Other...)
	all1 := append(append([]string{}, group1Spam...), group1Other...)
	tables := []codes{
		{1, "DROPPED", group1Spam, spam, 0},
		{1, "DROPPED", group1Other, drop, 1},
		{1, "HANDSET_ERRORS", all1, hard, 2},
		{2, "BOUNCED", group2Spam, spam, 3},
		{2, "BOUNCED", group2Soft, soft, 4},
		{2, "BOUNCED", group2Other, hard, 5},
		{2, "USER_ERRORS", all2, hard, 6},
		{3, "OPERATOR_ERRORS", []string{"EC_INTERNAL_SYSTEM_ERROR"}, hard, 7},
	}
	e := Default()
	for _, tb := range tables {
		for _, name := range tb.names {
			t.Run(tb.groupName+"/"+name, func(t *testing.T) {
				checkClassify(t, e, classifyCase{in: Error{6000, name, tb.groupID, tb.groupName}, want: OutcomeEvent, event: tb.event, rule: tb.rule})
			})
		}
	}
}

func TestClassifyUnclassified(t *testing.T) {
	e := Default()
	tests := []struct {
		name       string
		in         Error
		wantReason string
	}{
		{"unknown group", Error{7001, "EC_SOMETHING", 7, "FOO"}, reasonNoGroup},
		{"group 2 with unknown name", Error{6012, "EC_HARD_BOUNCE", 2, "SOMETHING_ELSE"}, reasonNoGroup},
		{"group 3 as Infobip's docs label it", Error{6013, "EC_INTERNAL_SYSTEM_ERROR", 3, "SYSTEM_ERRORS"}, reasonNoGroup},
		{"group name under another id", Error{6002, "EC_SPAM_DETECTED", 2, "DROPPED"}, reasonNoGroup},
		{"negative group id", Error{6002, "EC_SPAM_DETECTED", -1, "DROPPED"}, reasonNoGroup},
		{"blank group name", Error{6002, "EC_SPAM_DETECTED", 1, "  "}, reasonNoGroup},
		{"error id set but group 0", Error{6002, "EC_SPAM_DETECTED", 0, "OK"}, reasonGroupZero},
		{"error id set, group 0, no-error names", Error{6002, "NO_ERROR", 0, "OK"}, reasonGroupZero},
		{"error name set in group 0", Error{0, "EC_SPAM_DETECTED", 0, "OK"}, reasonGroupZero},
		{"unknown group name in group 0", Error{0, "NO_ERROR", 0, "DROPPED"}, reasonGroupZero},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkClassify(t, e, classifyCase{in: tt.in, want: OutcomeUnclassified})
			if got := e.Classify(tt.in).Reason; got != tt.wantReason {
				t.Errorf("Reason = %q, want %q", got, tt.wantReason)
			}
		})
	}
}

func TestClassifyCaseAndSpaces(t *testing.T) {
	e := Default()
	tests := []classifyCase{
		{"lower group, padded error", Error{6011, "ec_soft_bounce ", 2, " bounced "}, OutcomeEvent, soft, 4},
		{"mixed case, tabs and newlines", Error{6002, "\tEc_Spam_Detected\n", 1, "\tDropped\n"}, OutcomeEvent, spam, 0},
		{"lower catch-all group", Error{6013, "whatever", 3, "operator_errors"}, OutcomeEvent, hard, 7},
		{"padded group, unknown error", Error{6012, " EC_HARD_BOUNCE", 2, "BOUNCED  "}, OutcomeEvent, hard, 5},
		{"empty error name takes the catch-all", Error{6999, "", 1, "dropped"}, OutcomeEvent, drop, 1},
		{"inner space is not ignored", Error{6011, "EC_SOFT BOUNCE", 2, "BOUNCED"}, OutcomeEvent, hard, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkClassify(t, e, tt) })
	}
}

func TestDefaultReasons(t *testing.T) {
	want := []string{
		"rule 1: error group 1 DROPPED, error EC_SPAM_DETECTED, EC_SUPPRESSED_SPAM_COMPLAINT or EC_SUPPRESSED_BOUNCE -> newsletter.spambounce",
		"rule 2: error group 1 DROPPED, any other error -> newsletter.dropped",
		"rule 3: error group 1 HANDSET_ERRORS, any error -> newsletter.hardbounce",
		"rule 4: error group 2 BOUNCED, error EC_SENDER_IP_BLACKLISTED, EC_BLOCKED_AS_SPAM or EC_SPAM_REVERTED -> newsletter.spambounce",
		"rule 5: error group 2 BOUNCED, error EC_RECIPIENT_INBOX_FULL or EC_SOFT_BOUNCE -> newsletter.softbounce",
		"rule 6: error group 2 BOUNCED, any other error -> newsletter.hardbounce",
		"rule 7: error group 2 USER_ERRORS, any error -> newsletter.hardbounce",
		"rule 8: error group 3 OPERATOR_ERRORS, any error -> newsletter.hardbounce",
	}
	e := Default()
	for i, r := range e.Rules() {
		name := "EC_NOT_LISTED_ANYWHERE"
		if len(r.ErrorNames) > 0 {
			name = r.ErrorNames[len(r.ErrorNames)-1]
		}
		got := e.Classify(Error{ID: 6000, Name: name, GroupID: r.GroupID, GroupName: r.GroupName})
		if got.RuleIndex != i || got.Reason != want[i] {
			t.Errorf("rule %d: got index %d reason %q, want index %d reason %q", i+1, got.RuleIndex, got.Reason, i, want[i])
		}
	}
	if got := e.Classify(Error{0, "NO_ERROR", 0, "OK"}).Reason; got != "no error (error group 0 OK): delivery or status report, no event" {
		t.Errorf("no-error reason = %q", got)
	}
}

func TestNamedRuleBeatsCatchAllWhateverTheOrder(t *testing.T) {
	rules := []Rule{
		{GroupID: 2, GroupName: "BOUNCED", Event: hard},
		{GroupID: 2, GroupName: "BOUNCED", ErrorNames: []string{"EC_SOFT_BOUNCE"}, Event: soft},
	}
	e, err := New(rules)
	if err != nil {
		t.Fatal(err)
	}
	checkClassify(t, e, classifyCase{in: Error{6011, "EC_SOFT_BOUNCE", 2, "BOUNCED"}, want: OutcomeEvent, event: soft, rule: 1})
	checkClassify(t, e, classifyCase{in: Error{6012, "EC_HARD_BOUNCE", 2, "BOUNCED"}, want: OutcomeEvent, event: hard, rule: 0})
	if got, want := e.Classify(Error{6012, "EC_HARD_BOUNCE", 2, "BOUNCED"}).Reason, "rule 1: error group 2 BOUNCED, any other error -> newsletter.hardbounce"; got != want {
		t.Errorf("Reason = %q, want %q", got, want)
	}
}

func TestGroupWithoutCatchAll(t *testing.T) {
	e, err := New([]Rule{{GroupID: 2, GroupName: "BOUNCED", ErrorNames: []string{"EC_SOFT_BOUNCE"}, Event: soft}})
	if err != nil {
		t.Fatal(err)
	}
	got := e.Classify(Error{6012, "EC_HARD_BOUNCE", 2, "bounced"})
	want := Result{
		Outcome:   OutcomeUnclassified,
		RuleIndex: -1,
		Reason:    "no rule of error group 2 BOUNCED lists this error and the group has no catch-all rule: unclassified, no event",
	}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestOutcomeValues(t *testing.T) {
	tests := []struct {
		o         Outcome
		wantValue int32
		wantName  string
	}{
		{OutcomeUnspecified, 0, "unspecified"},
		{OutcomeEvent, 1, "event"},
		{OutcomeNoError, 2, "no_error"},
		{OutcomeUnclassified, 3, "unclassified"},
		{Outcome(9), 9, "Outcome(9)"},
	}
	for _, tt := range tests {
		if int32(tt.o) != tt.wantValue || tt.o.String() != tt.wantName {
			t.Errorf("got %d %q, want %d %q", int32(tt.o), tt.o.String(), tt.wantValue, tt.wantName)
		}
	}
}

func TestRulesIsACanonicalCopy(t *testing.T) {
	e, err := New([]Rule{
		{GroupID: 1, GroupName: " dropped ", ErrorNames: []string{" ec_spam_detected"}, Event: spam},
		{GroupID: 1, GroupName: "Dropped", Event: drop},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := e.Rules()
	want := []Rule{
		{GroupID: 1, GroupName: "DROPPED", ErrorNames: []string{"EC_SPAM_DETECTED"}, Event: spam},
		{GroupID: 1, GroupName: "DROPPED", Event: drop},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Rules() = %+v, want %+v", got, want)
	}
	got[0].ErrorNames[0] = "CHANGED"
	got[0].Event = "changed.event"
	if again := e.Rules(); !reflect.DeepEqual(again, want) {
		t.Errorf("changing the copy changed the engine: %+v", again)
	}
}

func TestDefaultRulesIsFresh(t *testing.T) {
	a := DefaultRules()
	a[0].ErrorNames[0] = "CHANGED"
	if b := DefaultRules(); b[0].ErrorNames[0] != "EC_SPAM_DETECTED" {
		t.Errorf("DefaultRules shares its slices: %q", b[0].ErrorNames[0])
	}
}

func TestZeroEngine(t *testing.T) {
	var e Engine
	checkClassify(t, &e, classifyCase{in: Error{}, want: OutcomeNoError})
	checkClassify(t, &e, classifyCase{in: Error{6002, "EC_SPAM_DETECTED", 1, "DROPPED"}, want: OutcomeUnclassified})
}

// mixedErrors holds one error per seed row and per non-event outcome, for the
// allocation test and the benchmark.
var mixedErrors = []Error{
	{6002, "EC_SPAM_DETECTED", 1, "DROPPED"},
	{6034, "EC_SUPPRESSED_BOUNCE", 1, "DROPPED"},
	{6003, "EC_UNSUBSCRIBED_EMAIL_ADDRESS", 1, "DROPPED"},
	{6034, "EC_SUPPRESSED_BOUNCE", 1, "HANDSET_ERRORS"},
	{6042, "EC_SPAM_REVERTED", 2, "BOUNCED"},
	{6011, "ec_soft_bounce ", 2, " bounced "},
	{6012, "EC_HARD_BOUNCE", 2, "BOUNCED"},
	{6006, "EC_INVALID_EMAIL_ADDRESS", 2, "USER_ERRORS"},
	{6013, "EC_INTERNAL_SYSTEM_ERROR", 3, "OPERATOR_ERRORS"},
	{0, "NO_ERROR", 0, "OK"},
	{},
	{7001, "EC_SOMETHING", 7, "FOO"},
	{6002, "EC_SPAM_DETECTED", 0, "OK"},
}

func TestClassifyDoesNotAllocate(t *testing.T) {
	e := Default()
	for _, in := range mixedErrors {
		if got := testing.AllocsPerRun(100, func() { e.Classify(in) }); got != 0 {
			t.Errorf("Classify(%+v) allocates %v times per run, want 0", in, got)
		}
	}
}

func TestClassifyConcurrently(t *testing.T) {
	e := Default()
	want := make([]Result, len(mixedErrors))
	for i, in := range mixedErrors {
		want[i] = e.Classify(in)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				for i, in := range mixedErrors {
					if got := e.Classify(in); got != want[i] {
						t.Errorf("Classify(%+v) = %+v, want %+v", in, got, want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// errorMentions asserts that err is non-nil and that its message contains
// every one of want.
func errorMentions(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestNewValidation(t *testing.T) {
	valid := Rule{GroupID: 1, GroupName: "DROPPED", Event: drop}
	tests := []struct {
		name  string
		rules []Rule
		want  []string
	}{
		{"nil list", nil, []string{"classifier: ", "rule list is empty"}},
		{"empty list", []Rule{}, []string{"rule list is empty"}},
		{"missing group name", []Rule{valid, {GroupID: 2, Event: hard}}, []string{"rule 2: ", "group name is missing"}},
		{"blank group name", []Rule{{GroupID: 2, GroupName: " \t", Event: hard}}, []string{"rule 1: ", "group name is missing or blank"}},
		{"negative group id", []Rule{{GroupID: -2, GroupName: "BOUNCED", Event: hard}}, []string{"rule 1: ", "group id -2 is negative"}},
		{"group 0", []Rule{{GroupName: "OK", Event: hard}}, []string{"rule 1: ", "group 0 is reserved"}},
		{"missing event", []Rule{{GroupID: 2, GroupName: "BOUNCED"}}, []string{"rule 1: ", "event is missing"}},
		{"event in capitals", []Rule{{GroupID: 2, GroupName: "BOUNCED", Event: "Newsletter.HardBounce"}}, []string{"rule 1: ", `event "Newsletter.HardBounce" is not of the form lowercase.words`}},
		{"event without dot", []Rule{{GroupID: 2, GroupName: "BOUNCED", Event: "hardbounce"}}, []string{`event "hardbounce" is not of the form`}},
		{"event with trailing dot", []Rule{{GroupID: 2, GroupName: "BOUNCED", Event: "newsletter."}}, []string{`event "newsletter." is not of the form`}},
		{"event with spaces", []Rule{{GroupID: 2, GroupName: "BOUNCED", Event: " newsletter.hardbounce"}}, []string{`is not of the form`}},
		{"same error name twice in one rule", []Rule{{GroupID: 1, GroupName: "DROPPED", ErrorNames: []string{"EC_A", "ec_a "}, Event: spam}}, []string{"rule 1: ", "error name EC_A is listed twice"}},
		{"same error name in two rules", []Rule{
			{GroupID: 1, GroupName: "DROPPED", ErrorNames: []string{"EC_A"}, Event: spam},
			{GroupID: 1, GroupName: " dropped", ErrorNames: []string{"EC_B", "ec_a"}, Event: drop},
		}, []string{"rule 2: ", "error name EC_A of error group 1 DROPPED is already listed by rule 1"}},
		{"two catch-alls", []Rule{valid, {GroupID: 1, GroupName: "Dropped", Event: hard}}, []string{"rule 2: ", "error group 1 DROPPED already has a catch-all rule (rule 1)"}},
		{"blank error name", []Rule{{GroupID: 1, GroupName: "DROPPED", ErrorNames: []string{"EC_A", " "}, Event: spam}}, []string{"rule 1: ", "error name 2 of 2 is blank"}},
		{"every problem at once", []Rule{
			{GroupID: 0, GroupName: "DROPPED", Event: drop},
			valid,
			{GroupID: 1, GroupName: "DROPPED", Event: "bad"},
		}, []string{"rule 1: group id is missing or 0", "; rule 3: event \"bad\"", "rule 3: error group 1 DROPPED already has a catch-all rule (rule 2)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(tt.rules)
			if e != nil {
				t.Errorf("New returned an engine with error %v", err)
			}
			errorMentions(t, err, tt.want...)
			var re *RuleError
			if !errors.As(err, &re) {
				t.Errorf("errors.As(%v, *RuleError) = false", err)
			}
		})
	}
}

func TestNewAcceptsDistinctPairs(t *testing.T) {
	// The same group name under two ids, and the same error name in two
	// groups, are different rules, not duplicates.
	rules := []Rule{
		{GroupID: 1, GroupName: "DROPPED", ErrorNames: []string{"EC_A"}, Event: spam},
		{GroupID: 2, GroupName: "DROPPED", ErrorNames: []string{"EC_A"}, Event: "newsletter.hard_bounce_2"},
		{GroupID: 1, GroupName: "HANDSET_ERRORS", ErrorNames: []string{"EC_A"}, Event: "a.b.c"},
	}
	e, err := New(rules)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rules {
		checkClassify(t, e, classifyCase{in: Error{6000, "ec_a", r.GroupID, r.GroupName}, want: OutcomeEvent, event: r.Event, rule: i})
	}
}
