package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ibmail/ibmail/store"
)

// Rule versions are numbered 1, 2, 3, ... with no gap, kept as stored,
// listed newest first, and a write based on a stale version stores nothing.
func testRuleVersions(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.LatestRuleVersion(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LatestRuleVersion on an empty store: %v, want ErrNotFound", err)
	}
	add := func(rules string, base int64) (store.RuleVersion, error) {
		return s.AddRuleVersion(ctx, store.RuleVersion{Rules: []byte(rules), CreatedBy: "ops", Comment: "c " + rules}, base)
	}
	v1, err := add(`{"a":1}`, 0)
	if err != nil || v1.Version != 1 || v1.CreateTime.IsZero() {
		t.Fatalf("first version = %+v, %v; want version 1 with a create time", v1, err)
	}
	v2, err := add(`{"a":2}`, 1)
	if err != nil || v2.Version != 2 {
		t.Fatalf("second version = %+v, %v; want version 2", v2, err)
	}
	if _, err := add(`{"a":3}`, 1); !errors.Is(err, store.ErrChanged) {
		t.Fatalf("write based on version 1 after 2: %v, want ErrStale", err)
	}
	restored, err := s.AddRuleVersion(ctx, store.RuleVersion{Rules: v1.Rules, CreatedBy: "ops", RestoredFrom: 1}, 0)
	if err != nil || restored.Version != 3 || restored.RestoredFrom != 1 {
		t.Fatalf("restore = %+v, %v; want version 3 restored from 1", restored, err)
	}
	latest, err := s.LatestRuleVersion(ctx)
	if err != nil || latest.Version != 3 || string(latest.Rules) != `{"a":1}` {
		t.Fatalf("latest = %+v, %v; want version 3 with the rules of 1", latest, err)
	}
	got, err := s.GetRuleVersion(ctx, 2)
	if err != nil || string(got.Rules) != `{"a":2}` || got.CreatedBy != "ops" || got.Comment != `c {"a":2}` || !got.CreateTime.Equal(v2.CreateTime) {
		t.Fatalf("version 2 = %+v, %v; want it as stored (%+v)", got, err, v2)
	}
	if _, err := s.GetRuleVersion(ctx, 9); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRuleVersion(9): %v, want ErrNotFound", err)
	}
	var versions []int64
	for before := int64(0); ; {
		page, err := s.ListRuleVersions(ctx, before, 2)
		if err != nil {
			t.Fatalf("ListRuleVersions: %v", err)
		}
		if len(page) == 0 {
			break
		}
		for _, v := range page {
			versions = append(versions, v.Version)
		}
		before = page[len(page)-1].Version
	}
	if want := []int64{3, 2, 1}; !equalInt64s(versions, want) {
		t.Fatalf("listed versions %v, want %v", versions, want)
	}
}

// Replicas writing at once get distinct consecutive numbers, and of those
// basing on one version exactly one wins.
func testRuleVersionsConcurrent(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.AddRuleVersion(ctx, store.RuleVersion{Rules: []byte(`{}`), CreatedBy: "ops"}, 0); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		won, stale     int
		unexpectedErrs []error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.AddRuleVersion(ctx, store.RuleVersion{Rules: []byte(`{}`), CreatedBy: "ops"}, 1)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrChanged):
				stale++
			default:
				unexpectedErrs = append(unexpectedErrs, err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || stale != n-1 || len(unexpectedErrs) > 0 {
		t.Fatalf("%d writers based on version 1: %d won, %d stale, errors %v; want 1 and %d", n, won, stale, unexpectedErrs, n-1)
	}
	latest, err := s.LatestRuleVersion(ctx)
	if err != nil || latest.Version != 2 {
		t.Fatalf("latest = %d, %v; want 2", latest.Version, err)
	}
}

func equalInt64s(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Each report keeps the rules version that classified it, by every path an
// engine stores reports (PostgreSQL copies calls of 16 or more reports and
// runs a statement for smaller ones).
func testReportRulesVersion(t *testing.T, open opener) {
	s := open(t)
	var delivery, tracking []store.Report
	for i := range 20 {
		r := rep(fmt.Sprintf("big-%02d", i), store.OutcomeEvent)
		r.RulesVersion = 7
		delivery = append(delivery, r)
		tr := trk(fmt.Sprintf("tbig-%02d", i), store.OutcomeEvent)
		tr.RulesVersion = 5
		tracking = append(tracking, tr)
	}
	small := rep("small", store.OutcomeUnclassified)
	small.RulesVersion = 3
	tsmall := trk("tsmall", store.OutcomeEvent)
	tsmall.RulesVersion = 2
	for _, call := range [][]store.Report{delivery, {small}, tracking, {tsmall}, {rep("none", store.OutcomeEvent)}} {
		ingest(t, s, call, nil)
	}
	want := map[string]int64{"small": 3, "tsmall": 2, "none": 0}
	for i := range 20 {
		want[fmt.Sprintf("big-%02d", i)], want[fmt.Sprintf("tbig-%02d", i)] = 7, 5
	}
	got := map[string]int64{}
	for _, kind := range []store.ReportKind{store.ReportDelivery, store.ReportTracking} {
		for _, r := range listReports(t, s, store.ReportQuery{Kind: kind, Limit: 100}) {
			key := r.Key.MessageID
			if kind == store.ReportTracking {
				key = r.TrackingKey
			}
			got[key] = r.RulesVersion
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("report %s: RulesVersion = %d, want %d", k, got[k], w)
		}
	}
}
