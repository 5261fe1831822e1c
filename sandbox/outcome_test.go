package sandbox

import (
	"strings"
	"testing"
)

// No prefix may start another: then a recipient's outcome would depend on
// the table's order, and the prefixes are a contract other checks rely on.
func TestPrefixesAreDistinct(t *testing.T) {
	for i, a := range outcomes {
		if a.Prefix == "" || a.Prefix != strings.ToLower(a.Prefix) {
			t.Errorf("outcome %d: prefix %q, want a lower-case word", i, a.Prefix)
		}
		for k, b := range outcomes {
			if i != k && strings.HasPrefix(b.Prefix, a.Prefix) {
				t.Errorf("prefix %q starts prefix %q", a.Prefix, b.Prefix)
			}
		}
	}
	want := map[string]string{"complain": Complained, "latebounce": LateBounce, "unsubscribe": Unsubscribed}
	for _, o := range outcomes {
		if got := o.Tracking; got != want[o.Prefix] {
			t.Errorf("prefix %q posts tracking %q, want %q", o.Prefix, got, want[o.Prefix])
		}
	}
}
