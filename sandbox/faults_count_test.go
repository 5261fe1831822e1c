package sandbox

import "testing"

// TestCountPicksByOrder checks which request numbers a Count picks: the
// schedule the deterministic fault tests rely on.
func TestCountPicksByOrder(t *testing.T) {
	tests := []struct {
		c    Count
		want []int64 // the picked numbers among 1..10
	}{
		{Count{}, nil},
		{Count{First: 3}, []int64{1, 2, 3}},
		{Count{Every: 4}, []int64{4, 8}},
		{Count{First: 1, Every: 3}, []int64{1, 3, 6, 9}},
		{Count{Every: 2, Max: 2}, []int64{2, 4}},
	}
	for _, tt := range tests {
		var got []int64
		for n := int64(1); n <= 10; n++ {
			if tt.c.picks(n) {
				got = append(got, n)
			}
		}
		if len(got) != len(tt.want) {
			t.Errorf("%+v picks %v, want %v", tt.c, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%+v picks %v, want %v", tt.c, got, tt.want)
				break
			}
		}
	}
}
