package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ibmail/ibmail/store"
)

const ruleVersionColumns = `version, rules, create_time, created_by, restored_from, comment`

func scanRuleVersion(row interface{ Scan(...any) error }) (store.RuleVersion, error) {
	var (
		v       store.RuleVersion
		created int64
	)
	err := row.Scan(&v.Version, &v.Rules, &created, &v.CreatedBy, &v.RestoredFrom, &v.Comment)
	v.CreateTime = fromMicros(created)
	return v, err
}

// AddRuleVersion numbers the version in the writer's transaction, which
// is the only one writing, so the check of base and the insert see the
// same latest version.
func (s *Store) AddRuleVersion(ctx context.Context, v store.RuleVersion, base int64) (store.RuleVersion, error) {
	err := s.writeTx(ctx, "add rule version", func(tx *sql.Tx) error {
		var latest int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM rule_versions`).Scan(&latest); err != nil {
			return err
		}
		if base > 0 && base != latest {
			return fmt.Errorf("rules version %d, the latest is %d: %w", base, latest, store.ErrChanged)
		}
		v.Version = latest + 1
		v.CreateTime = time.Now().UTC().Truncate(time.Microsecond)
		_, err := tx.ExecContext(ctx, `INSERT INTO rule_versions (`+ruleVersionColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			v.Version, v.Rules, micros(v.CreateTime), v.CreatedBy, v.RestoredFrom, v.Comment)
		return err
	})
	if err != nil {
		return store.RuleVersion{}, err
	}
	return v, nil
}

// LatestRuleVersion reads the newest version on the primary key.
func (s *Store) LatestRuleVersion(ctx context.Context) (store.RuleVersion, error) {
	return s.oneRuleVersion(ctx, `SELECT `+ruleVersionColumns+` FROM rule_versions ORDER BY version DESC LIMIT 1`, "the latest rules version")
}

// GetRuleVersion reads one version.
func (s *Store) GetRuleVersion(ctx context.Context, version int64) (store.RuleVersion, error) {
	return s.oneRuleVersion(ctx, `SELECT `+ruleVersionColumns+` FROM rule_versions WHERE version = ?`, fmt.Sprintf("rules version %d", version), version)
}

func (s *Store) oneRuleVersion(ctx context.Context, query, what string, args ...any) (store.RuleVersion, error) {
	var v store.RuleVersion
	err := s.readTx(ctx, "read rule version", func(tx *sql.Tx) error {
		var err error
		v, err = scanRuleVersion(tx.QueryRowContext(ctx, query, args...))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: %w", what, store.ErrNotFound)
		}
		return err
	})
	return v, err
}

// ListRuleVersions pages the history newest first.
func (s *Store) ListRuleVersions(ctx context.Context, before int64, limit int) ([]store.RuleVersion, error) {
	if before <= 0 {
		before = 1 << 62
	}
	var out []store.RuleVersion
	err := s.readTx(ctx, "list rule versions", func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `SELECT `+ruleVersionColumns+` FROM rule_versions
			WHERE version < ? ORDER BY version DESC LIMIT ?`, before, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scanRuleVersion(rows)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	return out, err
}
