// Package readcheck decides whether a row read back from the store can be
// shown, and keeps account of the rows that cannot. A row can be unshowable
// because an older version (or a hand) stored what the API now refuses at
// the door: a time outside what a google.protobuf.Timestamp holds, a string
// that is not UTF-8 (proto3 refuses to marshal it), a NUL, params that do
// not decode, an absurdly long id. One such row must never break a listing
// for everyone or stall a stream, so readers check every row they show with
// Message and hand the ones that fail to a Skipper: the row is left out,
// logged once and counted in ibmail_unreadable_rows_total.
package readcheck

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ibmail/ibmail/metrics"
)

// Bounds of what a shown row may hold. No value the API accepts comes
// near them; a row beyond them was stored before the door checked, and
// shown it would make one page too big for a client to receive (gRPC
// clients take 4 MiB by default).
const (
	// MaxStringBytes bounds one string field (or map key or value).
	MaxStringBytes = 64 << 10
	// MaxMapEntries bounds the entries of one map field, such as params.
	MaxMapEntries = 1000
)

// Message reports why m cannot be shown, naming the field, or nil when it
// can: every string valid UTF-8 without NUL and within MaxStringBytes,
// every Timestamp and Duration within their range, every map within
// MaxMapEntries. Bytes fields (a rejected payload's body, kept as it
// came) are not bounded here: the body limit bounded them when stored.
func Message(m proto.Message) error {
	if m == nil {
		return nil
	}
	return check("", m.ProtoReflect())
}

func check(path string, m protoreflect.Message) error {
	switch v := m.Interface().(type) {
	case *timestamppb.Timestamp:
		if err := v.CheckValid(); err != nil {
			return fmt.Errorf("%s: %w", orRow(path), err)
		}
		return nil
	case *durationpb.Duration:
		if err := v.CheckValid(); err != nil {
			return fmt.Errorf("%s: %w", orRow(path), err)
		}
		return nil
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := join(path, string(fd.Name()))
		switch {
		case fd.IsMap():
			mp := v.Map()
			if mp.Len() > MaxMapEntries {
				err = fmt.Errorf("%s: has %d entries; at most %d are shown", name, mp.Len(), MaxMapEntries)
				return false
			}
			mp.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapKey().Kind() == protoreflect.StringKind {
					if err = checkString(name+" key", k.String()); err != nil {
						return false
					}
				}
				err = checkValue(fmt.Sprintf("%s[%q]", name, truncate(k.String())), fd.MapValue(), mv)
				return err == nil
			})
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = checkValue(fmt.Sprintf("%s[%d]", name, i), fd, l.Get(i))
			}
		default:
			err = checkValue(name, fd, v)
		}
		return err == nil
	})
	return err
}

func checkValue(name string, fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return checkString(name, v.String())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return check(name, v.Message())
	}
	return nil
}

func checkString(name, s string) error {
	switch {
	case len(s) > MaxStringBytes:
		return fmt.Errorf("%s: holds %d bytes; at most %d are shown", name, len(s), MaxStringBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s: is not valid UTF-8", name)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s: holds a NUL character", name)
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orRow(path string) string {
	if path == "" {
		return "row"
	}
	return path
}

// truncate keeps a map key short enough to name in a log line, whatever
// it holds.
func truncate(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.ToValidUTF8(s, "�")
}

// ErrUnreadable marks the error of a row that cannot be shown.
var ErrUnreadable = errors.New("stored row cannot be shown")

// Unreadable wraps problem as an ErrUnreadable.
func Unreadable(problem error) error { return fmt.Errorf("%w: %w", ErrUnreadable, problem) }

// seenCap bounds the rows a Skipper remembers having logged: beyond it the
// oldest are forgotten (and logged again when met again), so that a store
// full of bad rows cannot grow the set without end.
const seenCap = 4096

// Skipper accounts for the rows of one kind that readers leave out. It is
// safe for concurrent use.
type Skipper struct {
	what string
	log  *slog.Logger
	mu   sync.Mutex
	// seen holds digests of the ids logged, not the ids: a bad row's id may
	// be megabytes long.
	seen map[uint64]struct{}
	ring []uint64 // the remembered digests, oldest at next once full
	next int
}

// NewSkipper returns a Skipper of rows of kind what (the metric's label,
// such as "event"), logging to log (nil: nowhere).
func NewSkipper(what string, log *slog.Logger) *Skipper {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Skipper{what: what, log: log, seen: make(map[uint64]struct{})}
}

// Skip records that the row id was left out because of problem: counted
// every time, logged the first time (as long as it is remembered).
func (s *Skipper) Skip(ctx context.Context, id string, problem error) {
	metrics.UnreadableRows.WithLabelValues(s.what).Inc()
	if !s.remember(id) {
		return
	}
	s.log.LogAttrs(ctx, slog.LevelWarn, "stored row cannot be shown; skipped",
		slog.String("what", s.what), slog.String("id", truncate(id)), slog.String("problem", problem.Error()))
}

// Showable reports whether m, the row id as the API shows it, can be
// shown, and skips it (see Skip) when it cannot.
func (s *Skipper) Showable(ctx context.Context, id string, m proto.Message) bool {
	if err := Message(m); err != nil {
		s.Skip(ctx, id, err)
		return false
	}
	return true
}

// remember adds id to the set of logged rows and reports whether it is new.
func (s *Skipper) remember(id string) bool {
	h := fnv.New64a()
	h.Write([]byte(id))
	key := h.Sum64()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[key]; ok {
		return false
	}
	if len(s.ring) < seenCap {
		s.ring = append(s.ring, key)
	} else {
		delete(s.seen, s.ring[s.next])
		s.ring[s.next] = key
		s.next = (s.next + 1) % seenCap
	}
	s.seen[key] = struct{}{}
	return true
}
