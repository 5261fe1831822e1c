package rules_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/ibmail/ibmail/classifier"
	"github.com/ibmail/ibmail/rules"
	"github.com/ibmail/ibmail/store"
	"github.com/ibmail/ibmail/store/sqlite"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ibmail.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Two books on one store: a change through one is in force there at once
// and in the other after its refresh; a file book refuses changes.
func TestBooksShareVersions(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	a, err := rules.New(ctx, rules.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	b, err := rules.New(ctx, rules.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Current(); got.Version != 0 || got.Source != rules.SourceDefault {
		t.Fatalf("a new book = version %d source %d, want the defaults", got.Version, got.Source)
	}
	set := classifier.DefaultRuleSet()
	set.Rules = append(set.Rules, classifier.Rule{GroupID: 7, GroupName: "BRAND_NEW", Event: "newsletter.softbounce"})
	snap, err := a.Update(ctx, set, rules.Change{CreatedBy: "ops", Comment: "group 7"})
	if err != nil || snap.Version != 1 || a.Current().Version != 1 {
		t.Fatalf("Update = %+v, %v; a has version %d; want 1 in force", snap, err, a.Current().Version)
	}
	if b.Current().Version != 0 {
		t.Fatalf("b took the change before refreshing")
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	res := b.Current().Engine.Classify(classifier.Error{GroupID: 7, GroupName: "BRAND_NEW", Name: "X"})
	if b.Current().Version != 1 || res.Event != "newsletter.softbounce" {
		t.Errorf("b after refresh: version %d classifies group 7 as %q; want version 1 and newsletter.softbounce", b.Current().Version, res.Event)
	}
	if _, err := a.Update(ctx, set, rules.Change{Base: 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Update(ctx, set, rules.Change{Base: 1}); !errors.Is(err, store.ErrChanged) {
		t.Errorf("b's update based on 1 after 2: %v, want store.ErrChanged", err)
	}
	bad := set
	bad.Rules = []classifier.Rule{{GroupID: 0, GroupName: "x", Event: "bad"}}
	if _, err := a.Update(ctx, bad, rules.Change{}); !errors.Is(err, rules.ErrInvalid) {
		t.Errorf("an invalid set: %v, want ErrInvalid", err)
	}
	file, err := rules.New(ctx, rules.Options{Store: st, File: classifier.Default()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.Update(ctx, set, rules.Change{}); !errors.Is(err, rules.ErrFromFile) {
		t.Errorf("update with a rules file: %v, want ErrFromFile", err)
	}
	if _, err := file.Restore(ctx, 1, rules.Change{}); !errors.Is(err, rules.ErrFromFile) {
		t.Errorf("restore with a rules file: %v, want ErrFromFile", err)
	}
	if file.Current().Source != rules.SourceFile || file.Current().Version != 0 {
		t.Errorf("a file book = %+v, want the file, version 0", file.Current())
	}
}

// A stored version this program cannot read stops the start-up: a replica
// must not classify with other rules than its peers.
func TestUnreadableVersionRefusesToStart(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if _, err := st.AddRuleVersion(ctx, store.RuleVersion{Rules: []byte(`{"Rules":[]}`), CreatedBy: "x"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := rules.New(ctx, rules.Options{Store: st}); err == nil {
		t.Fatal("New over a version that does not compile succeeded")
	}
}
