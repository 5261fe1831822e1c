package main

import (
	"os"
	"path/filepath"
	"testing"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// The rules subcommand against a real server: a file checked here, tested
// against stored reports, set, listed and restored.
func TestRulesCommand(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(good, []byte(`rules:
  - {groupId: 2, groupName: BOUNCED, event: newsletter.hardbounce}
  - {groupId: 7, groupName: BRAND_NEW, event: newsletter.softbounce}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n  - {groupId: 2, groupName: BOUNCED, event: Not An Event}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unclassified := &ibmailv1.DeliveryReport{
		MessageId: "m-new", To: "new@example.com", DoneAt: "2024-05-01T10:00:00.000+0000",
		Status: &ibmailv1.ReportStatus{Id: 4, GroupId: 2, GroupName: "UNDELIVERABLE"},
		Error:  &ibmailv1.ReportError{Id: 7001, Name: "EC_BRAND_NEW", GroupId: 7, GroupName: "BRAND_NEW"},
	}
	if _, err := ibmailv1.NewDeliveryReportServiceClient(srv.conn).IngestDeliveryReports(webhookContext(),
		&ibmailv1.IngestDeliveryReportsRequest{Results: []*ibmailv1.DeliveryReport{unclassified}}); err != nil {
		t.Fatal(err)
	}
	runCases(t, srv, []ctlCase{
		{name: "show defaults", args: []string{"rules"}, wantCode: exitOK, wantOut: []string{"version 0 (default)", "newsletter.hardbounce", "soft-bounce limit: 5 within 720h0m0s"}},
		{name: "bad file named by line", args: []string{"rules", "set", bad}, wantCode: exitUsage, wantErr: []string{"bad.yaml", "line 2"}},
		{name: "unknown action", args: []string{"rules", "frobnicate"}, wantCode: exitUsage, wantErr: []string{"unknown action"}},
		{name: "test", args: []string{"rules", "test", good, "--outcome", "unclassified"}, wantCode: exitOK,
			wantOut: []string{"against version 0: 1 examined, 1 would change", "UNCLASSIFIED", "EVENT newsletter.softbounce"}},
		{name: "set", args: []string{"rules", "set", good, "--comment", "group 7"}, wantCode: exitOK, wantOut: []string{"version 1 (store), set by anonymous", "comment: group 7", "7 BRAND_NEW"}},
		{name: "stale base", args: []string{"rules", "set", good, "--base", "5"}, wantCode: exitServer, wantErr: []string{"Aborted", "rules changed since"}},
		{name: "restore", args: []string{"rules", "restore", "1"}, wantCode: exitOK, wantOut: []string{"version 2 (store)", "restored from version 1"}},
		{name: "versions", args: []string{"rules", "versions"}, wantCode: exitOK, wantOut: []string{"VERSION", "2 ", "1 ", "group 7"}, inOrder: true},
		{name: "restore a bad version", args: []string{"rules", "restore", "zero"}, wantCode: exitUsage, wantErr: []string{"not a version number"}},
		{name: "reclassify, dry run", args: []string{"reclassify", "--outcome", "unclassified", "--dry-run"}, wantCode: exitOK,
			wantOut: []string{"operations/1: done (rules version 2, dry run)", "examined 1, unchanged 0, changed 1; events added 1", "UNCLASSIFIED", "EVENT newsletter.softbounce"}},
		{name: "reclassify", args: []string{"reclassify"}, wantCode: exitOK, wantOut: []string{"operations/2: done (rules version 2)", "changed 1; events added 1"}},
		{name: "reclassify again", args: []string{"reclassify"}, wantCode: exitOK, wantOut: []string{"operations/3: done", "examined 1, unchanged 1, changed 0"}},
		{name: "bad outcome", args: []string{"reclassify", "--outcome", "sometimes"}, wantCode: exitUsage, wantErr: []string{"sometimes"}},
		{name: "operations", args: []string{"operations"}, wantCode: exitOK, wantOut: []string{"operations/3", "operations/2", "operations/1"}, inOrder: true},
		{name: "cancel a done operation", args: []string{"operations", "cancel", "operations/1"}, wantCode: exitOK, wantOut: []string{"operations/1: done"}},
		{name: "get a bad name", args: []string{"operations", "get", "op-1"}, wantCode: exitServer, wantErr: []string{"operations/12"}},
	})
}
