package sandbox

import (
	"strings"
	"sync"
	"time"
)

// bulk is one accepted send: what its logs and reports need.
type bulk struct {
	id                  string
	from                string
	applicationID       string
	entityID            string
	campaignReferenceID string
	callbackData        string
	sentAt, doneAt      time.Time
	messages            []message
	// What its tracking events need: where they go, the from address and
	// its domain, and the link a click reports.
	trackingURL    string
	sender, domain string
	clickURL       string
}

// message is one recipient of a bulk.
type message struct {
	id      string
	to      string
	outcome *Outcome
}

type msgRef struct {
	b *bulk
	i int
}

// store keeps accepted messages for GET /email/1/logs (bounded, oldest
// first out, as Infobip keeps 48 hours) and every address ever received, to
// count duplicate sends.
type store struct {
	mu     sync.Mutex
	max    int
	bulks  []*bulk // oldest first, from head on
	head   int
	count  int // messages held
	byBulk map[string][]*bulk
	byMsg  map[string]msgRef
	seen   map[string]uint32
}

func newStore(max int) *store {
	s := &store{max: max}
	s.reset()
	return s
}

func (s *store) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bulks, s.head, s.count = nil, 0, 0
	s.byBulk = make(map[string][]*bulk)
	s.byMsg = make(map[string]msgRef)
	s.seen = make(map[string]uint32)
}

// add keeps b and returns how many of its addresses became duplicates (seen
// for the second time) and how many of its recipients had been seen before.
func (s *store) add(b *bulk) (newDuplicates, repeats int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range b.messages {
		key := strings.ToLower(m.to)
		n := s.seen[key] + 1
		s.seen[key] = n
		if n > 1 {
			repeats++
		}
		if n == 2 {
			newDuplicates++
		}
		s.byMsg[m.id] = msgRef{b, i}
	}
	s.bulks = append(s.bulks, b)
	s.byBulk[b.id] = append(s.byBulk[b.id], b)
	s.count += len(b.messages)
	for s.count > s.max && len(s.bulks)-s.head > 1 {
		s.evictOldest()
	}
	return newDuplicates, repeats
}

func (s *store) evictOldest() {
	old := s.bulks[s.head]
	s.bulks[s.head] = nil
	s.head++
	if s.head > len(s.bulks)/2 {
		s.bulks = append([]*bulk(nil), s.bulks[s.head:]...)
		s.head = 0
	}
	s.count -= len(old.messages)
	for i, m := range old.messages {
		if ref, ok := s.byMsg[m.id]; ok && ref.b == old && ref.i == i {
			delete(s.byMsg, m.id)
		}
	}
	same := s.byBulk[old.id]
	for i, b := range same {
		if b == old {
			same = append(same[:i], same[i+1:]...)
			break
		}
	}
	if len(same) == 0 {
		delete(s.byBulk, old.id)
	} else {
		s.byBulk[old.id] = same
	}
}

// logFilter selects messages; empty fields match everything.
type logFilter struct {
	bulkID, messageID, to, from string
	campaignReferenceID         string
	generalStatus               string
	applicationID, entityID     string
	sentSince, sentUntil        time.Time
	limit                       int
}

// find returns matching messages, newest first, at most f.limit.
func (s *store) find(f logFilter, now time.Time) []msgRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	var candidates []*bulk
	switch {
	case f.messageID != "":
		if ref, ok := s.byMsg[f.messageID]; ok {
			return s.filter([]msgRef{ref}, f, now)
		}
		return nil
	case f.bulkID != "":
		candidates = s.byBulk[f.bulkID]
	default:
		candidates = s.bulks[s.head:]
	}
	var out []msgRef
	for bi := len(candidates) - 1; bi >= 0 && len(out) < f.limit; bi-- {
		b := candidates[bi]
		for i := len(b.messages) - 1; i >= 0 && len(out) < f.limit; i-- {
			out = append(out, s.filter([]msgRef{{b, i}}, f, now)...)
		}
	}
	return out
}

func (s *store) filter(refs []msgRef, f logFilter, now time.Time) []msgRef {
	out := refs[:0]
	for _, r := range refs {
		b, m := r.b, r.b.messages[r.i]
		switch {
		case f.bulkID != "" && b.id != f.bulkID,
			f.to != "" && !strings.EqualFold(m.to, f.to),
			f.from != "" && !strings.Contains(b.from, f.from),
			f.campaignReferenceID != "" && b.campaignReferenceID != f.campaignReferenceID,
			f.applicationID != "" && b.applicationID != f.applicationID,
			f.entityID != "" && b.entityID != f.entityID,
			!f.sentSince.IsZero() && b.sentAt.Before(f.sentSince),
			!f.sentUntil.IsZero() && b.sentAt.After(f.sentUntil),
			f.generalStatus != "" && !strings.EqualFold(statusAt(b, m, now).Status.GroupName, f.generalStatus):
			continue
		}
		out = append(out, r)
	}
	return out
}

// statusAt is a message's status as the logs show it: pending until its
// report is due.
func statusAt(b *bulk, m message, now time.Time) Outcome {
	if now.Before(b.doneAt) {
		return Outcome{Status: statusPending}
	}
	return *m.outcome
}
