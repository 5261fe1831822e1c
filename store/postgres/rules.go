package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
)

const ruleVersionColumns = `version, rules, create_time, created_by, restored_from, comment`

func scanRuleVersion(row pgx.Row) (store.RuleVersion, error) {
	var v store.RuleVersion
	err := row.Scan(&v.Version, &v.Rules, &v.CreateTime, &v.CreatedBy, &v.RestoredFrom, &v.Comment)
	v.CreateTime = utc(v.CreateTime)
	return v, err
}

// AddRuleVersion locks the table against other writers of versions (reads
// go on), so that two replicas storing at once are numbered one after the
// other and the second sees the first as the latest when it checks base.
func (s *Store) AddRuleVersion(ctx context.Context, v store.RuleVersion, base int64) (store.RuleVersion, error) {
	err := s.inTx(ctx, "add rule version", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE rule_versions IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var latest int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM rule_versions`).Scan(&latest); err != nil {
			return err
		}
		if base > 0 && base != latest {
			return fmt.Errorf("rules version %d, the latest is %d: %w", base, latest, store.ErrChanged)
		}
		got, err := scanRuleVersion(tx.QueryRow(ctx, `INSERT INTO rule_versions (`+ruleVersionColumns+`)
			VALUES ($1, $2, date_trunc('microseconds', now()), $3, $4, $5) RETURNING `+ruleVersionColumns,
			latest+1, v.Rules, v.CreatedBy, v.RestoredFrom, v.Comment))
		v = got
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
	return s.oneRuleVersion(ctx, `SELECT `+ruleVersionColumns+` FROM rule_versions WHERE version = $1`, fmt.Sprintf("rules version %d", version), version)
}

func (s *Store) oneRuleVersion(ctx context.Context, query, what string, args ...any) (store.RuleVersion, error) {
	var v store.RuleVersion
	err := s.run(ctx, "read rule version", func() error {
		var err error
		v, err = scanRuleVersion(s.pool.QueryRow(ctx, query, args...))
		if errors.Is(err, pgx.ErrNoRows) {
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
	err := s.run(ctx, "list rule versions", func() error {
		rows, err := s.pool.Query(ctx, `SELECT `+ruleVersionColumns+` FROM rule_versions
			WHERE version < $1 ORDER BY version DESC LIMIT $2`, before, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.RuleVersion, error) { return scanRuleVersion(r) })
		return err
	})
	return out, err
}
