package classifier

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const policyBounce = "rules:\n  - {groupId: 2, groupName: BOUNCED, event: newsletter.hardbounce}\n"

func TestParseRuleSetPolicy(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name          string
		in            string
		wantPolicy    SoftBouncePolicy
		wantLifetimes map[string]time.Duration
	}{
		{"no keys: the defaults", policyBounce, DefaultSoftBouncePolicy(), DefaultSuppressionLifetimes()},
		{"policy off", policyBounce + "softBouncePolicy: {limit: 0}\n", SoftBouncePolicy{}, DefaultSuppressionLifetimes()},
		{"policy off keeps no window", policyBounce + "softBouncePolicy: {limit: 0, window: 24h}\n", SoftBouncePolicy{}, DefaultSuppressionLifetimes()},
		{"own policy and lifetimes", policyBounce + `softBouncePolicy:
  limit: 3
  window: 168h
suppressionLifetimes:
  - cause: soft-bounce limit
    lifetime: 0s
  - cause: newsletter.hardbounce
    lifetime: 8760h
`, SoftBouncePolicy{Limit: 3, Window: 7 * day}, map[string]time.Duration{CauseSoftBounceLimit: 0, "newsletter.hardbounce": 365 * day}},
		{"json", `{"rules": [{"groupId": 2, "groupName": "BOUNCED", "event": "newsletter.hardbounce"}],
 "softBouncePolicy": {"limit": 2, "window": "48h"}, "suppressionLifetimes": [{"cause": "import", "lifetime": "720h"}]}`,
			SoftBouncePolicy{Limit: 2, Window: 2 * day}, map[string]time.Duration{CauseSoftBounceLimit: 30 * day, CauseImport: 30 * day}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRuleSet(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got.SoftBounce != tt.wantPolicy {
				t.Errorf("SoftBounce = %+v, want %+v", got.SoftBounce, tt.wantPolicy)
			}
			if !reflect.DeepEqual(got.SuppressionLifetimes, tt.wantLifetimes) {
				t.Errorf("SuppressionLifetimes = %v, want %v", got.SuppressionLifetimes, tt.wantLifetimes)
			}
			// What the engine returns is what NewFromSet takes back.
			e, err := NewFromSet(got)
			if err != nil {
				t.Fatal(err)
			}
			if again := e.RuleSet(); !reflect.DeepEqual(again, got) {
				t.Errorf("NewFromSet(set).RuleSet() = %+v, want %+v", again, got)
			}
			for cause, want := range tt.wantLifetimes {
				if got := e.SuppressionLifetime(cause); got != want {
					t.Errorf("SuppressionLifetime(%q) = %s, want %s", cause, got, want)
				}
			}
			if got := e.SuppressionLifetime("newsletter.spambounce"); got != tt.wantLifetimes["newsletter.spambounce"] {
				t.Errorf("SuppressionLifetime(newsletter.spambounce) = %s, want for ever", got)
			}
		})
	}
}

func TestParseRuleSetPolicyProblems(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"negative limit", "softBouncePolicy: {limit: -1, window: 24h}\n", "line 3: softBouncePolicy: limit -1 is negative"},
		{"huge limit", "softBouncePolicy: {limit: 5000, window: 24h}\n", "limit 5000 is more than 1000"},
		{"no window", "softBouncePolicy: {limit: 3}\n", "window 0s is outside 1m"},
		{"window too long", "softBouncePolicy: {limit: 3, window: 9000h}\n", "window 9000h0m0s is outside"},
		{"window not a duration", "softBouncePolicy: {limit: 3, window: 30d}\n", "yaml:"},
		{"unknown key", "softBouncePolicy: {limit: 3, windw: 24h}\n", "windw"},
		{"bad cause", "suppressionLifetimes:\n  - {cause: Hard Bounce, lifetime: 24h}\n", `line 4: suppressionLifetimes: cause "Hard Bounce" is neither an event name`},
		{"control in cause", "suppressionLifetimes:\n  - {cause: \"newsletter.x\\u0007\", lifetime: 24h}\n", "control character"},
		{"negative lifetime", "suppressionLifetimes:\n  - {cause: import, lifetime: -1h}\n", "lifetime -1h0m0s of import is outside"},
		{"tiny lifetime", "suppressionLifetimes:\n  - {cause: import, lifetime: 1s}\n", "outside 1m"},
		{"cause twice", "suppressionLifetimes:\n  - {cause: import, lifetime: 1h}\n  - {cause: import, lifetime: 2h}\n", `cause "import" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRuleSet(strings.NewReader(policyBounce + tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseRuleSet = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestNewWithTrackingTakesTheDefaultPolicy(t *testing.T) {
	e := Default()
	if got, want := e.SoftBouncePolicy(), DefaultSoftBouncePolicy(); got != want {
		t.Errorf("Default().SoftBouncePolicy() = %+v, want %+v", got, want)
	}
	if got, want := e.SuppressionLifetime(CauseSoftBounceLimit), 30*24*time.Hour; got != want {
		t.Errorf("Default().SuppressionLifetime(soft-bounce limit) = %s, want %s", got, want)
	}
	if got := e.SuppressionLifetime("newsletter.hardbounce"); got != 0 {
		t.Errorf("hard bounces expire after %s, want never", got)
	}
}
