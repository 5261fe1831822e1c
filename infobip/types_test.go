package infobip_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ibmail/ibmail/infobip"
)

func TestTimeJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{`"2020-09-08T05:27:59.256+0000"`, time.Date(2020, 9, 8, 5, 27, 59, 256e6, time.UTC), false},
		{`"2020-09-08T02:27:59.256-0300"`, time.Date(2020, 9, 8, 5, 27, 59, 256e6, time.UTC), false},
		{`"2020-09-08T05:27:59+0000"`, time.Date(2020, 9, 8, 5, 27, 59, 0, time.UTC), false},
		{`"2020-09-08T05:27:59.256Z"`, time.Date(2020, 9, 8, 5, 27, 59, 256e6, time.UTC), false},
		{`null`, time.Time{}, false},
		{`"yesterday"`, time.Time{}, true},
		{`1599542879`, time.Time{}, true},
	}
	for _, tt := range tests {
		var got infobip.Time
		err := json.Unmarshal([]byte(tt.in), &got)
		if (err != nil) != tt.wantErr {
			t.Errorf("Unmarshal(%s) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, got.Time, tt.want)
		}
	}
	b, err := json.Marshal(infobip.DeliveryReport{DoneAt: infobip.Time{Time: time.Date(2020, 9, 8, 5, 27, 59, 256e6, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got, want := back["doneAt"], "2020-09-08T05:27:59.256+0000"; got != want {
		t.Errorf("doneAt = %v, want %v", got, want)
	}
	if _, ok := back["sentAt"]; ok {
		t.Errorf("zero sentAt marshalled: %s", b)
	}
}
