// Package rules keeps the mapping rules in force: the built-in defaults, a
// rules file, or the newest version stored through the API. Versions live in
// the store, so every replica sharing it takes up a change within one poll
// interval; a snapshot is one compiled version, and a caller that takes one
// snapshot for a whole body classifies every report of it with one version.
package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ibmail/ibmail/classifier"
	"github.com/ibmail/ibmail/store"
)

// Source says where the rules in force come from.
type Source int

const (
	// SourceDefault is the built-in tables: no version is stored yet.
	SourceDefault Source = iota + 1
	// SourceStore is a version stored through the API.
	SourceStore
	// SourceFile is the --rules-file, which is then the authority.
	SourceFile
)

// ErrFromFile refuses a change while a rules file is the authority.
var ErrFromFile = errors.New("the rules come from a rules file, which is the authority: edit the file and restart, or run without --rules-file to change rules through the API")

// ErrInvalid wraps a rule set that does not validate; the message names
// each problem.
var ErrInvalid = errors.New("invalid rules")

// Snapshot is one version of the rules, compiled.
type Snapshot struct {
	Engine *classifier.Engine
	// Version is the stored version; 0 for the defaults and a rules file.
	Version      int64
	Source       Source
	CreateTime   time.Time
	CreatedBy    string
	RestoredFrom int64
	Comment      string
}

// DefaultPoll is how often a book looks for a newer version: a change made
// through one replica is in force on the others within it.
const DefaultPoll = 2 * time.Second

// Book holds the rules in force and changes them.
type Book struct {
	st   store.RuleStore
	file bool
	poll time.Duration
	log  *slog.Logger
	cur  atomic.Pointer[Snapshot]
	// base is version 0: the rules file's, or the defaults in force until
	// a version is stored.
	base *Snapshot
	mu   sync.Mutex // serialises refreshes, so versions only go forward
}

// Options configure a Book.
type Options struct {
	// Store keeps the versions.
	Store store.RuleStore
	// File is the engine of --rules-file; when set it is in force for
	// good and changes are refused with ErrFromFile.
	File *classifier.Engine
	// Default is the engine in force until a version is stored; nil: the
	// integration's tables (classifier.DefaultRuleSet).
	Default *classifier.Engine
	// Poll is how often to look for a newer version; 0: DefaultPoll.
	Poll   time.Duration
	Logger *slog.Logger
}

// New returns a book with the newest stored version in force (unless a
// rules file is the authority). A stored version that no longer compiles
// is an error: a replica must not classify with other rules than its peers.
func New(ctx context.Context, opts Options) (*Book, error) {
	b := &Book{st: opts.Store, poll: opts.Poll, log: opts.Logger}
	if b.poll <= 0 {
		b.poll = DefaultPoll
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if opts.File != nil {
		b.file = true
		b.base = &Snapshot{Engine: opts.File, Source: SourceFile}
		b.cur.Store(b.base)
		return b, nil
	}
	def := opts.Default
	if def == nil {
		var err error
		if def, err = classifier.NewFromSet(classifier.DefaultRuleSet()); err != nil {
			return nil, fmt.Errorf("rules: the built-in rules: %w", err)
		}
	}
	b.base = &Snapshot{Engine: def, Source: SourceDefault}
	b.cur.Store(b.base)
	if err := b.Refresh(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// Current is the snapshot in force. Take it once per unit of work.
func (b *Book) Current() *Snapshot { return b.cur.Load() }

// Base is version 0, which no store holds: the rules file's, or the
// defaults in force until a version is stored. A job started under
// version 0 goes on with it after a version is stored.
func (b *Book) Base() *Snapshot { return b.base }

// FromFile reports whether a rules file is the authority.
func (b *Book) FromFile() bool { return b.file }

// Refresh puts the newest stored version in force when it is newer than
// the one in force.
func (b *Book) Refresh(ctx context.Context) error {
	if b.file {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	v, err := b.st.LatestRuleVersion(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rules: read the latest version: %w", err)
	}
	if v.Version <= b.cur.Load().Version {
		return nil
	}
	snap, err := compileVersion(v)
	if err != nil {
		return err
	}
	b.cur.Store(snap)
	b.log.Info("rules version in force", slog.Int64("version", v.Version), slog.String("created_by", v.CreatedBy))
	return nil
}

// Run refreshes every poll interval until ctx ends. A failed refresh keeps
// the rules in force and is logged; the next tick tries again.
func (b *Book) Run(ctx context.Context) {
	if b.file {
		return
	}
	t := time.NewTicker(b.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := b.Refresh(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("rules refresh failed; the rules in force stay", slog.String("error", err.Error()))
		}
	}
}

// Get returns one stored version.
func (b *Book) Get(ctx context.Context, version int64) (*Snapshot, error) {
	v, err := b.st.GetRuleVersion(ctx, version)
	if err != nil {
		return nil, err
	}
	return compileVersion(v)
}

// List returns up to limit stored versions older than before (0: the
// newest), newest first.
func (b *Book) List(ctx context.Context, before int64, limit int) ([]*Snapshot, error) {
	vs, err := b.st.ListRuleVersions(ctx, before, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*Snapshot, 0, len(vs))
	for _, v := range vs {
		s, err := compileVersion(v)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Change says who changes the rules and why.
type Change struct {
	// Base is the version the caller edited; 0 skips the check, otherwise
	// a newer version makes the change fail with store.ErrChanged.
	Base      int64
	CreatedBy string
	Comment   string
}

// Update validates set exactly as a rules file is validated, stores it as
// the next version and puts it in force here at once (the other replicas
// within a poll interval).
func (b *Book) Update(ctx context.Context, set classifier.RuleSet, c Change) (*Snapshot, error) {
	return b.add(ctx, set, c, 0)
}

// Restore stores the rules of an earlier version as the next version.
func (b *Book) Restore(ctx context.Context, version int64, c Change) (*Snapshot, error) {
	if b.file {
		return nil, ErrFromFile
	}
	old, err := b.Get(ctx, version)
	if err != nil {
		return nil, err
	}
	return b.add(ctx, old.Engine.RuleSet(), c, version)
}

func (b *Book) add(ctx context.Context, set classifier.RuleSet, c Change, restoredFrom int64) (*Snapshot, error) {
	if b.file {
		return nil, ErrFromFile
	}
	engine, err := Compile(set)
	if err != nil {
		return nil, err
	}
	enc, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("rules: encode: %w", err)
	}
	v, err := b.st.AddRuleVersion(ctx, store.RuleVersion{Rules: enc, CreatedBy: c.CreatedBy, RestoredFrom: restoredFrom, Comment: c.Comment}, c.Base)
	if err != nil {
		return nil, err
	}
	// In force here at once, with the engine just compiled: the stored
	// encoding decodes to the same set, which is what the other replicas
	// compile. A newer version another replica stored meanwhile stays.
	snap := snapshotOf(v, engine)
	b.mu.Lock()
	if snap.Version > b.cur.Load().Version {
		b.cur.Store(snap)
	}
	b.mu.Unlock()
	return snap, nil
}

// Compile validates set as a rules file is validated; the error wraps
// ErrInvalid and names each problem.
func Compile(set classifier.RuleSet) (*classifier.Engine, error) {
	e, err := classifier.NewFromSet(set)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return e, nil
}

func compileVersion(v store.RuleVersion) (*Snapshot, error) {
	var set classifier.RuleSet
	if err := json.Unmarshal(v.Rules, &set); err != nil {
		return nil, fmt.Errorf("rules: version %d is unreadable: %w", v.Version, err)
	}
	e, err := classifier.NewFromSet(set)
	if err != nil {
		return nil, fmt.Errorf("rules: version %d no longer compiles: %w", v.Version, err)
	}
	return snapshotOf(v, e), nil
}

func snapshotOf(v store.RuleVersion, e *classifier.Engine) *Snapshot {
	return &Snapshot{Engine: e, Version: v.Version, Source: SourceStore, CreateTime: v.CreateTime,
		CreatedBy: v.CreatedBy, RestoredFrom: v.RestoredFrom, Comment: v.Comment}
}

// Static is a book that keeps engine in force for good and refuses
// changes, for a service used without a store (tests, tools).
func Static(engine *classifier.Engine) *Book {
	b := &Book{file: true, log: slog.New(slog.DiscardHandler)}
	b.cur.Store(&Snapshot{Engine: engine, Source: SourceFile})
	return b
}
