package classifier

import "testing"

var sink Result

func BenchmarkClassify(b *testing.B) {
	e := Default()
	benches := []struct {
		name string
		in   []Error
	}{
		{"mix", mixedErrors},
		{"first-named-rule", []Error{{6002, "EC_SPAM_DETECTED", 1, "DROPPED"}}},
		{"catch-all-after-named", []Error{{6012, "EC_HARD_BOUNCE", 2, "BOUNCED"}}},
		{"last-group", []Error{{6013, "EC_INTERNAL_SYSTEM_ERROR", 3, "OPERATOR_ERRORS"}}},
		{"odd-case-and-spaces", []Error{{6011, "ec_soft_bounce ", 2, " bounced "}}},
		{"no-error", []Error{{0, "NO_ERROR", 0, "OK"}}},
		{"unknown-group", []Error{{7001, "EC_SOMETHING", 7, "FOO"}}},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sink = e.Classify(bb.in[i%len(bb.in)])
				i++
			}
		})
	}
}

var trackingSink TrackingResult

func BenchmarkClassifyTracking(b *testing.B) {
	e := Default()
	benches := []struct {
		name string
		in   []string
	}{
		{"mix", mixedTracking},
		{"first-rule", []string{"COMPLAINED"}},
		{"last-rule", []string{"CLICKED"}},
		{"odd-case-and-spaces", []string{" clicked\n"}},
		{"non-ASCII", []string{"CLIC\u212aED"}},
		{"empty", []string{""}},
		{"unknown-type", []string{"DELIVERED"}},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				trackingSink = e.ClassifyTracking(bb.in[i%len(bb.in)])
				i++
			}
		})
	}
}
