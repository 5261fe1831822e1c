package store

import "time"

// DoneAtLayout is the one form ReportKey.DoneAt is stored in: the instant in
// UTC with nine fraction digits. Fixed width and UTC, it sorts by time (the
// unique key leads with it for that reason, see migration 0001), and one
// instant has one text, so that a report Infobip writes once as
// "...10:00:00.256+0000" and once as "...12:00:00.256+0200" is one key.
const DoneAtLayout = "2006-01-02T15:04:05.000000000Z"

// doneAtInputLayouts are the forms NormalizeDoneAt reads: Infobip's (an
// offset without a colon, with or without milliseconds) and RFC 3339.
var doneAtInputLayouts = []string{
	"2006-01-02T15:04:05.000-0700",
	"2006-01-02T15:04:05-0700",
	time.RFC3339Nano,
}

// DoneAtKey is the key text of a completion instant; the zero time (a
// report without doneAt) is the empty text.
func DoneAtKey(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(DoneAtLayout)
}

// NormalizeDoneAt returns the key text of a doneAt given in any form
// Infobip or RFC 3339 writes, so that deduplication compares instants, not
// texts. The engines apply it to every key they store or look up; the
// server gives them DoneAtKey's form already, which passes unchanged. Text
// that is no time is returned as it is (the server refuses such reports at
// the door; the engines keep what they are given rather than fail).
func NormalizeDoneAt(s string) string {
	if s == "" || isDoneAtKey(s) {
		return s
	}
	for _, layout := range doneAtInputLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return DoneAtKey(t)
		}
	}
	return s
}

// isDoneAtKey reports, without parsing, whether s has DoneAtLayout's shape:
// the fast path for what the server sends.
func isDoneAtKey(s string) bool {
	if len(s) != len(DoneAtLayout) || s[len(s)-1] != 'Z' {
		return false
	}
	for i := 0; i < len(s)-1; i++ {
		c, l := s[i], DoneAtLayout[i]
		if l >= '0' && l <= '9' {
			if c < '0' || c > '9' {
				return false
			}
		} else if c != l {
			return false
		}
	}
	return true
}
