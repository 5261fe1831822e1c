package classifier

import (
	"fmt"
	"strings"
)

// compile validates both lists of set and builds an Engine. lines, when
// known, holds each rule's line in its file, so that problems point into the
// file.
func compile(set RuleSet, lines fileLines) (*Engine, error) {
	rules := set.Rules
	if len(rules) == 0 {
		return nil, &RuleError{Problem: "the rule list is empty: give at least one rule"}
	}
	var problems ruleErrors
	reporter := func(tracking bool, at []int) func(i int, format string, args ...any) {
		return func(i int, format string, args ...any) {
			line := 0
			if i < len(at) {
				line = at[i]
			}
			problems = append(problems, &RuleError{Tracking: tracking, Rule: i + 1, Line: line, Problem: fmt.Sprintf(format, args...)})
		}
	}
	bad := reporter(false, lines.rules)

	e := &Engine{rules: make([]Rule, len(rules))}
	for i, r := range rules {
		c := Rule{GroupID: r.GroupID, GroupName: canonName(r.GroupName), Event: r.Event}
		groupOK := true
		switch {
		case r.GroupID < 0:
			bad(i, "group id %d is negative, but Infobip error group ids are 1 or more", r.GroupID)
			groupOK = false
		case r.GroupID == 0:
			bad(i, "group id is missing or 0, but group 0 is reserved for reports without an error")
			groupOK = false
		}
		if c.GroupName == "" {
			bad(i, "group name is missing or blank")
			groupOK = false
		}
		switch {
		case r.Event == "":
			bad(i, "event is missing")
		case !eventPattern.MatchString(r.Event):
			bad(i, "event %q is not of the form lowercase.words, such as newsletter.hardbounce", r.Event)
		}
		for j, n := range r.ErrorNames {
			cn := canonName(n)
			if cn == "" {
				bad(i, "error name %d of %d is blank", j+1, len(r.ErrorNames))
				continue
			}
			c.ErrorNames = append(c.ErrorNames, cn)
		}
		e.rules[i] = c
		if !groupOK || (len(c.ErrorNames) == 0 && len(r.ErrorNames) > 0) {
			// A rule whose group or every name is unusable would only add
			// confusing follow-on problems; its own are already reported.
			continue
		}
		g := e.groupFor(c.GroupID, c.GroupName)
		if len(c.ErrorNames) == 0 {
			if g.catchAll >= 0 {
				bad(i, "error group %d %s already has a catch-all rule (rule %d), and a group takes at most one rule without error names", g.id, g.name, g.catchAll+1)
			} else {
				g.catchAll = i
			}
			continue
		}
		for _, n := range c.ErrorNames {
			if prev, dup := g.lookup(n); dup {
				if prev == i {
					bad(i, "error name %s is listed twice", n)
				} else {
					bad(i, "error name %s of error group %d %s is already listed by rule %d", n, g.id, g.name, prev+1)
				}
				continue
			}
			g.named = append(g.named, namedRule{name: n, ascii: isASCII(n), rule: i})
		}
	}
	e.compileTracking(set.TrackingRules, reporter(true, lines.tracking))
	e.compilePolicy(set, lines, func(line int, format string, args ...any) {
		problems = append(problems, &RuleError{Line: line, Problem: fmt.Sprintf(format, args...)})
	})
	if len(problems) == 1 {
		return nil, problems[0]
	}
	if len(problems) > 0 {
		return nil, problems
	}
	e.describe()
	e.describeTracking()
	return e, nil
}

// groupFor returns the group of a pair, adding it on first sight. Pairs are
// compared as Classify compares them, so that validation and matching agree.
func (e *Engine) groupFor(id int32, name string) *group {
	for i := range e.groups {
		if g := &e.groups[i]; g.id == id && strings.EqualFold(g.name, name) {
			return g
		}
	}
	e.groups = append(e.groups, group{id: id, name: name, ascii: isASCII(name), catchAll: -1})
	return &e.groups[len(e.groups)-1]
}

// lookup finds the rule that lists an error name in the group.
func (g *group) lookup(name string) (rule int, ok bool) {
	for _, n := range g.named {
		if strings.EqualFold(n.name, name) {
			return n.rule, true
		}
	}
	return -1, false
}

// describe builds every Result in advance, so that Classify only copies one.
func (e *Engine) describe() {
	e.results = make([]Result, len(e.rules))
	for i, r := range e.rules {
		g := e.groupFor(r.GroupID, r.GroupName)
		which := "any error"
		switch {
		case len(r.ErrorNames) > 0:
			which = "error " + joinOr(r.ErrorNames)
		case len(g.named) > 0:
			which = "any other error"
		}
		e.results[i] = Result{
			Outcome:   OutcomeEvent,
			Event:     r.Event,
			RuleIndex: i,
			Reason:    fmt.Sprintf("rule %d: error group %d %s, %s -> %s", i+1, r.GroupID, r.GroupName, which, r.Event),
		}
	}
	for i := range e.groups {
		g := &e.groups[i]
		g.notCovered = Result{
			Outcome:   OutcomeUnclassified,
			RuleIndex: -1,
			Reason:    fmt.Sprintf(reasonNotCovered, g.id, g.name),
		}
	}
}
