package classifier

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxRulesFileSize bounds what ParseRuleSet reads. A real rules file is a few
// kilobytes; the bound stops a wrong path (a log, a device) from eating memory.
const maxRulesFileSize = 1 << 20

// rulesFile is the file's top level. It is a mapping rather than a bare list
// so that the format can grow without breaking old files. TrackingRules is a
// pointer so that a file without the key (which gets the default tracking
// table) differs from one with an empty list (which has no tracking rule).
type rulesFile struct {
	Rules         []Rule          `yaml:"rules"`
	TrackingRules *[]TrackingRule `yaml:"trackingRules"`
	// SoftBouncePolicy is nil when the key is missing, which takes
	// DefaultSoftBouncePolicy; {limit: 0} turns the policy off.
	SoftBouncePolicy     *SoftBouncePolicy `yaml:"softBouncePolicy"`
	SuppressionLifetimes []Lifetime        `yaml:"suppressionLifetimes"`
}

// RuleSet is everything a rules file decides: the bounce rules for delivery
// reports, the tracking rules for tracking reports, the soft-bounce policy
// and how long suppressions last.
type RuleSet struct {
	// Rules are the bounce rules, for Classify.
	Rules []Rule
	// TrackingRules are the tracking rules, for ClassifyTracking; empty
	// means no tracking rule.
	TrackingRules []TrackingRule
	// SoftBounce is the soft-bounce policy; the zero value is off.
	SoftBounce SoftBouncePolicy
	// SuppressionLifetimes maps a cause (an event name,
	// CauseSoftBounceLimit, CauseImport) to how long its suppressions last,
	// 0 meaning for ever; causes missing take DefaultSuppressionLifetimes.
	SuppressionLifetimes map[string]time.Duration
}

// ParseRuleSet reads and validates a rules file: YAML (or JSON, which is
// YAML too) with a top-level "rules" list and an optional "trackingRules"
// list. Without the trackingRules key the set gets DefaultTrackingRules, so
// that a file written before tracking rules existed keeps the integration's
// tracking table; "trackingRules: []" means no tracking rule at all. It is
// strict, because a misspelt key silently ignored would turn a specific rule
// into a catch-all. Problems name the rule, its list and its line. The rules
// come back as NewWithTracking keeps them (names trimmed and upper case), so
// NewWithTracking(set.Rules, set.TrackingRules) accepts them and the
// engine's Rules and TrackingRules return them unchanged.
func ParseRuleSet(r io.Reader) (RuleSet, error) {
	set, err := parseRules(r)
	if err != nil {
		return RuleSet{}, fmt.Errorf("classifier: %w", err)
	}
	return set, nil
}

// ParseRules is ParseRuleSet for callers that want only the bounce rules. It
// still validates the whole file, tracking rules included, so that a file it
// accepts is one LoadFile accepts.
func ParseRules(r io.Reader) ([]Rule, error) {
	set, err := ParseRuleSet(r)
	if err != nil {
		return nil, err
	}
	return set.Rules, nil
}

// LoadFile builds an Engine from a rules file, bounce and tracking rules
// both, so that operators can follow Infobip's renames without a release.
func LoadFile(path string) (*Engine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	defer f.Close()
	set, err := parseRules(f)
	if err != nil {
		return nil, fmt.Errorf("classifier: rules file %s: %w", path, err)
	}
	return NewFromSet(set)
}

func parseRules(r io.Reader) (RuleSet, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxRulesFileSize+1))
	if err != nil {
		return RuleSet{}, err
	}
	if len(data) > maxRulesFileSize {
		return RuleSet{}, fmt.Errorf("rules file is larger than %d bytes", maxRulesFileSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f rulesFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return RuleSet{}, errors.New("rules file is empty: it needs a top-level rules list")
		}
		return RuleSet{}, oneLine(err)
	}
	var rest yaml.Node
	switch err := dec.Decode(&rest); {
	case err == nil:
		return RuleSet{}, errors.New("rules file holds more than one YAML document: keep every rule in the first")
	case !errors.Is(err, io.EOF):
		return RuleSet{}, oneLine(err)
	}
	lines := findLines(data)
	set := RuleSet{Rules: f.Rules}
	switch {
	case f.TrackingRules != nil:
		set.TrackingRules = *f.TrackingRules
	case lines.trackingNull > 0:
		// "trackingRules:" with nothing under it is most likely a list
		// whose items were all commented out; guessing between the
		// defaults and none would suppress, or not, behind the operator's
		// back.
		return RuleSet{}, fmt.Errorf("line %d: trackingRules has no value: write trackingRules: [] for no tracking rule, or leave the key out for the default tracking rules", lines.trackingNull)
	default:
		set.TrackingRules = DefaultTrackingRules()
	}
	set.SoftBounce = DefaultSoftBouncePolicy()
	if f.SoftBouncePolicy != nil {
		set.SoftBounce = *f.SoftBouncePolicy
	}
	if len(f.SuppressionLifetimes) > 0 {
		set.SuppressionLifetimes = make(map[string]time.Duration, len(f.SuppressionLifetimes))
		for i, lt := range f.SuppressionLifetimes {
			if _, dup := set.SuppressionLifetimes[lt.Cause]; dup {
				// A map keeps only one; saying so beats silently keeping the last.
				return RuleSet{}, fmt.Errorf("suppressionLifetimes item %d: cause %q is listed twice", i+1, lt.Cause)
			}
			set.SuppressionLifetimes[lt.Cause] = lt.Lifetime
		}
	}
	e, err := compile(set, lines)
	if err != nil {
		return RuleSet{}, err
	}
	return e.RuleSet(), nil
}

// fileLines locates the rules of a file, for problems to point into it.
type fileLines struct {
	rules    []int // line of each item of the rules list; nil when unknown
	tracking []int // line of each item of the trackingRules list; nil when unknown
	// trackingNull is the line of a trackingRules key whose value is null
	// (absent or ~); 0 when the key is missing or has a value.
	trackingNull int
	// policy is the line of the softBouncePolicy key; 0 when unknown.
	policy int
	// lifetimes is the line of each suppressionLifetimes item by cause.
	lifetimes map[string]int
}

// findLines finds the lines of the items of the top-level lists. It is best
// effort: when the shape is not the simple one, problems go without lines
// rather than with wrong ones.
func findLines(data []byte) fileLines {
	var out fileLines
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return out
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, value := top.Content[i], top.Content[i+1]
		switch key.Value {
		case "rules":
			out.rules = itemLines(value)
		case "trackingRules":
			out.tracking = itemLines(value)
			if value.Kind == yaml.ScalarNode && value.Tag == "!!null" {
				out.trackingNull = key.Line
			}
		case "softBouncePolicy":
			out.policy = key.Line
		case "suppressionLifetimes":
			out.lifetimes = causeLines(value)
		}
	}
	return out
}

// itemLines returns the line of each item of a sequence; nil for anything
// else.
func itemLines(seq *yaml.Node) []int {
	if seq.Kind != yaml.SequenceNode {
		return nil
	}
	lines := make([]int, len(seq.Content))
	for j, item := range seq.Content {
		lines[j] = item.Line
	}
	return lines
}

// causeLines maps the cause of each item of the suppressionLifetimes list
// to the item's line.
func causeLines(seq *yaml.Node) map[string]int {
	if seq.Kind != yaml.SequenceNode {
		return nil
	}
	out := make(map[string]int, len(seq.Content))
	for _, item := range seq.Content {
		if item.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(item.Content); i += 2 {
			if item.Content[i].Value == "cause" {
				out[item.Content[i+1].Value] = item.Line
			}
		}
	}
	return out
}

// oneLine flattens the YAML decoder's list of field errors, which it spreads
// over several lines, so that a log keeps the whole message together.
func oneLine(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Errorf("yaml: %s", strings.Join(te.Errors, "; "))
	}
	return err
}
