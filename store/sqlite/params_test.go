package sqlite

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestEncodeParams(t *testing.T) {
	tests := []map[string]string{
		{},
		{"a": "1"},
		{"z": "last", "a": "first", "m": ""},
		{"quote": `say "hi"`, "back\\slash": `C:\dir`, "ctl": "line\nbreak\ttab\x00", "html": "<b>&amp;</b>"},
		{"unicode": "héllo 日本 ✉", "ключ": "значение"},
	}
	for _, in := range tests {
		got := encodeParams(in)
		var back map[string]string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("encodeParams(%q) = %s: not JSON: %v", in, got, err)
			continue
		}
		if len(in) == 0 && len(back) == 0 {
			continue
		}
		if !reflect.DeepEqual(back, in) {
			t.Errorf("encodeParams(%q) = %s, decodes to %q", in, got, back)
		}
	}
	if got, want := encodeParams(map[string]string{"b": "2", "a": "1"}), `{"a":"1","b":"2"}`; got != want {
		t.Errorf("encodeParams = %s, want %s (sorted keys)", got, want)
	}
}
