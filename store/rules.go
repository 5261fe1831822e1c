package store

import (
	"context"
	"time"
)

// RuleVersion is one stored version of the mapping rules. The store keeps
// the rules as the server encodes them and never reads them; versions are
// numbered 1, 2, 3, ... in the order they were stored and never change.
type RuleVersion struct {
	Version int64
	// Rules is the rule set in the server's own encoding; opaque here.
	Rules []byte
	// CreateTime is when the version was stored.
	CreateTime time.Time
	// CreatedBy is the caller token's name that stored it.
	CreatedBy string
	// RestoredFrom is the version whose rules this one copies; 0 when new.
	RestoredFrom int64
	// Comment is the caller's note on why.
	Comment string
}

// RuleStore keeps the history of the mapping rules, shared by every replica
// of one store, so that a change made through one replica comes into force
// on all of them.
type RuleStore interface {
	// AddRuleVersion stores v as the next version and returns it with its
	// number and create time. When base is more than 0 and the latest
	// version is not base, nothing is stored and the error is ErrChanged;
	// base 0 skips the check.
	AddRuleVersion(ctx context.Context, v RuleVersion, base int64) (RuleVersion, error)
	// LatestRuleVersion returns the newest version, or ErrNotFound when none
	// was stored yet.
	LatestRuleVersion(ctx context.Context) (RuleVersion, error)
	// GetRuleVersion returns one version, or ErrNotFound.
	GetRuleVersion(ctx context.Context, version int64) (RuleVersion, error)
	// ListRuleVersions returns up to limit versions older than before (all
	// when before is 0), newest first.
	ListRuleVersions(ctx context.Context, before int64, limit int) ([]RuleVersion, error)
}
