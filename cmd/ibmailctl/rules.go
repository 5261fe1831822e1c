package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ibmail/ibmail/classifier"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/rules"
)

var rulesCmd = &command{
	name:  "rules",
	args:  "[show | versions | set FILE | test FILE | restore VERSION]",
	short: "show, change, test and restore the mapping rules",
	summary: `show (the default) prints the rules in force: their version, where they come
from, who set them and when, and each rule. versions lists the stored versions,
newest first. set FILE reads a rules file (the YAML of ibmaild --rules-file),
checks it here as ibmaild would, and stores it as the next version, in force on
every replica within seconds (admin). test FILE classifies the last stored
reports under the file's rules and prints those that would change, storing
nothing. restore VERSION stores an earlier version's rules as the next version
(admin). While ibmaild runs with --rules-file, set and restore are refused
with RULES_FROM_FILE.`,
	example: `ibmailctl rules
ibmailctl rules test rules.yaml --last 1000 --outcome UNCLASSIFIED
ibmailctl rules set rules.yaml --comment "Infobip renamed 6012"
ibmailctl rules versions
ibmailctl rules restore 3`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		o := &rulesOptions{}
		fs.StringVar(&o.comment, "comment", "", "why the rules change, kept with the version (set, restore)")
		fs.Int64Var(&o.base, "base", 0, "refuse the change unless VERSION is still the latest (set); 0 skips the check")
		fs.IntVar(&o.last, "last", 1000, "how many of the last stored reports of each kind to classify (test)")
		fs.StringVar(&o.outcome, "outcome", "", "only stored reports of this outcome, such as UNCLASSIFIED (test)")
		return func(ctx context.Context, e *env, args []string) error { return runRules(ctx, e, o, args) }
	},
}

type rulesOptions struct {
	comment, outcome string
	base             int64
	last             int
}

func runRules(ctx context.Context, e *env, o *rulesOptions, args []string) error {
	action := "show"
	if len(args) > 0 {
		action, args = args[0], args[1:]
	}
	client := ibmailv1.NewRuleServiceClient(e.conn)
	want := map[string]int{"show": 0, "versions": 0, "set": 1, "test": 1, "restore": 1}
	n, ok := want[action]
	if !ok {
		return usagef("rules: unknown action %q: use show, versions, set FILE, test FILE or restore VERSION", action)
	}
	if len(args) != n {
		return usagef("rules %s takes %d argument(s), got %d", action, n, len(args))
	}
	switch action {
	case "show":
		resp, err := client.GetRules(ctx, &ibmailv1.GetRulesRequest{})
		if err != nil {
			return err
		}
		return writeRuleVersion(e, resp.GetRules())
	case "versions":
		versions, err := allPages(func(token string) ([]*ibmailv1.RuleVersion, string, error) {
			resp, err := client.ListRuleVersions(ctx, &ibmailv1.ListRuleVersionsRequest{PageSize: 100, PageToken: token})
			return resp.GetVersions(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		if e.g.output == "json" {
			return writeJSONList(e.stdout, "versions", versions)
		}
		tw := table(e.stdout)
		fmt.Fprintln(tw, "VERSION\tCREATED\tBY\tRESTORED FROM\tRULES\tCOMMENT")
		for _, v := range versions {
			restored := "-"
			if v.GetRestoredFrom() > 0 {
				restored = strconv.FormatInt(v.GetRestoredFrom(), 10)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d+%d\t%s\n", v.GetVersion(), formatTime(v.GetCreateTime()), v.GetCreatedBy(), restored,
				len(v.GetRules().GetRules()), len(v.GetRules().GetTrackingRules()), orDash(v.GetComment()))
		}
		return tw.Flush()
	case "set":
		set, err := readRulesFile(args[0])
		if err != nil {
			return err
		}
		resp, err := client.UpdateRules(ctx, &ibmailv1.UpdateRulesRequest{Rules: set, BaseVersion: o.base, Comment: o.comment})
		if err != nil {
			return err
		}
		return writeRuleVersion(e, resp.GetRules())
	case "test":
		set, err := readRulesFile(args[0])
		if err != nil {
			return err
		}
		req := &ibmailv1.TestRulesRequest{Rules: set, LastStored: int32(min(max(o.last, 0), 10000))}
		if o.outcome != "" {
			v, ok := ibmailv1.ReportOutcome_value["REPORT_OUTCOME_"+strings.ToUpper(o.outcome)]
			if !ok {
				return usagef("--outcome %q: use EVENT, UNCLASSIFIED, NO_ERROR or NOT_FINAL", o.outcome)
			}
			req.StoredOutcome = ibmailv1.ReportOutcome(v)
		}
		resp, err := client.TestRules(ctx, req)
		if err != nil {
			return err
		}
		if e.g.output == "json" {
			return writeJSON(e.stdout, resp)
		}
		fmt.Fprintf(e.stdout, "against version %d: %d examined, %d would change\n", resp.GetCurrentVersion(), resp.GetExamined(), resp.GetChanged())
		tw := table(e.stdout)
		fmt.Fprintln(tw, "REPORT\tNOW\tPROPOSED")
		for _, r := range resp.GetResults() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.GetSource(), classificationText(r.GetCurrent()), classificationText(r.GetProposed()))
		}
		return tw.Flush()
	default: // restore
		v, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || v < 1 {
			return usagef("rules restore: VERSION %q is not a version number (1 or more)", args[0])
		}
		resp, err := client.RestoreRuleVersion(ctx, &ibmailv1.RestoreRuleVersionRequest{Version: v, Comment: o.comment})
		if err != nil {
			return err
		}
		return writeRuleVersion(e, resp.GetRules())
	}
}

// readRulesFile reads and checks a rules file as ibmaild --rules-file
// does, so that a mistake is named by line before anything is sent.
func readRulesFile(name string) (*ibmailv1.RuleSet, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, usagef("%v", err)
	}
	defer f.Close()
	set, err := classifier.ParseRuleSet(f)
	if err != nil {
		return nil, usagef("%s: %v", name, err)
	}
	return rules.SetProto(set), nil
}

func classificationText(c *ibmailv1.Classification) string {
	outcome := strings.TrimPrefix(c.GetOutcome().String(), "REPORT_OUTCOME_")
	if c.GetEventName() != "" {
		return outcome + " " + c.GetEventName()
	}
	return outcome
}

func writeRuleVersion(e *env, v *ibmailv1.RuleVersion) error {
	if e.g.output == "json" {
		return writeJSON(e.stdout, v)
	}
	source := strings.ToLower(strings.TrimPrefix(v.GetSource().String(), "RULE_SOURCE_"))
	fmt.Fprintf(e.stdout, "version %d (%s)", v.GetVersion(), source)
	if v.GetCreatedBy() != "" {
		fmt.Fprintf(e.stdout, ", set by %s at %s", v.GetCreatedBy(), formatTime(v.GetCreateTime()))
	}
	if v.GetRestoredFrom() > 0 {
		fmt.Fprintf(e.stdout, ", restored from version %d", v.GetRestoredFrom())
	}
	fmt.Fprintln(e.stdout)
	if v.GetComment() != "" {
		fmt.Fprintf(e.stdout, "comment: %s\n", v.GetComment())
	}
	tw := table(e.stdout)
	fmt.Fprintln(tw, "GROUP\tERROR NAMES\tEVENT")
	for _, r := range v.GetRules().GetRules() {
		fmt.Fprintf(tw, "%d %s\t%s\t%s\n", r.GetGroupId(), r.GetGroupName(), orDash(strings.Join(r.GetErrorNames(), ",")), r.GetEvent())
	}
	fmt.Fprintln(tw, "\nNOTIFICATION\tSUPPRESS\tEVENT")
	for _, r := range v.GetRules().GetTrackingRules() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.GetNotificationType(), orDash(r.GetSuppress()), r.GetEvent())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	p := v.GetRules().GetSoftBouncePolicy()
	if p.GetLimit() > 0 {
		fmt.Fprintf(e.stdout, "\nsoft-bounce limit: %d within %s\n", p.GetLimit(), p.GetWindow().AsDuration())
	} else {
		fmt.Fprintln(e.stdout, "\nsoft-bounce limit: off")
	}
	for _, l := range v.GetRules().GetSuppressionLifetimes() {
		life := "for ever"
		if l.GetLifetime().AsDuration() > 0 {
			life = l.GetLifetime().AsDuration().String()
		}
		fmt.Fprintf(e.stdout, "suppressions for %s last %s\n", l.GetCause(), life)
	}
	return nil
}
