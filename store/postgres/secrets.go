package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ibmail/ibmail/store"
)

// checkSealedUnder refuses, inside a write transaction, a sealed value
// made under another key than the store's. It holds a share lock on the
// check value until the write commits, so that a rotation (which locks it
// for update before re-sealing) either waits for this write and re-seals
// it, or has committed and makes this check fail.
func checkSealedUnder(ctx context.Context, tx pgx.Tx, check []byte) error {
	if len(check) == 0 {
		return nil
	}
	var stored []byte
	if err := tx.QueryRow(ctx, `SELECT check_value FROM encryption_key_check WHERE id = 1 FOR SHARE`).Scan(&stored); err != nil {
		return err
	}
	if !bytes.Equal(stored, check) {
		return store.ErrKeyMismatch
	}
	return nil
}

// EncryptionKeyCheck implements store.SecretStore.
func (s *Store) EncryptionKeyCheck(ctx context.Context) ([]byte, error) {
	var check []byte
	err := s.run(ctx, "encryption key check", func() error {
		return s.pool.QueryRow(ctx, `SELECT check_value FROM encryption_key_check WHERE id = 1`).Scan(&check)
	})
	if err != nil {
		return nil, err
	}
	return check, nil
}

// ResealSecrets implements store.SecretStore.
func (s *Store) ResealSecrets(ctx context.Context, from, to []byte, reseal func(store.SealedValue) ([]byte, error)) error {
	// reseal's own error is the caller's, passed on as it is rather than as
	// a failure of the engine.
	var resealErr error
	keep := func(err error) error {
		resealErr = err
		return err
	}
	err := s.inTx(ctx, "reseal secrets", func(tx pgx.Tx) error {
		resealErr = nil
		var stored []byte
		if err := tx.QueryRow(ctx, `SELECT check_value FROM encryption_key_check WHERE id = 1 FOR UPDATE`).Scan(&stored); err != nil {
			return err
		}
		if !bytes.Equal(stored, from) {
			return store.ErrKeyMismatch
		}
		type row struct {
			owner            string
			sealed, previous []byte
		}
		read := func(query string) ([]row, error) {
			rows, err := tx.Query(ctx, query)
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var out row
				err := r.Scan(&out.owner, &out.sealed, &out.previous)
				return out, err
			})
		}
		conns, err := read(`SELECT id, api_key_ciphertext, NULL::bytea FROM connections ORDER BY id FOR UPDATE`)
		if err != nil {
			return err
		}
		for _, c := range conns {
			if len(c.sealed) == 0 {
				continue
			}
			next, err := reseal(store.SealedValue{Kind: "connection", Owner: c.owner, Sealed: c.sealed})
			if err != nil {
				return keep(err)
			}
			if _, err := tx.Exec(ctx, `UPDATE connections SET api_key_ciphertext = $1 WHERE id = $2`, next, c.owner); err != nil {
				return err
			}
		}
		secrets, err := read(`SELECT name, sealed, previous_sealed FROM server_secrets ORDER BY name FOR UPDATE`)
		if err != nil {
			return err
		}
		for _, sc := range secrets {
			next, err := reseal(store.SealedValue{Kind: "server", Owner: sc.owner, Sealed: sc.sealed})
			if err != nil {
				return keep(err)
			}
			var previous []byte
			if sc.previous != nil {
				if previous, err = reseal(store.SealedValue{Kind: "server", Owner: sc.owner, Sealed: sc.previous}); err != nil {
					return keep(err)
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE server_secrets SET sealed = $1, previous_sealed = $2 WHERE name = $3`, next, previous, sc.owner); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE encryption_key_check SET check_value = $1, update_time = now() WHERE id = 1`, to)
		return err
	})
	if resealErr != nil {
		return resealErr
	}
	return err
}

const serverSecretColumns = `name, sealed, previous_sealed, previous_expire_time, update_time`

func scanServerSecret(row pgx.Row) (store.ServerSecret, error) {
	var (
		sc     store.ServerSecret
		expiry *time.Time
	)
	if err := row.Scan(&sc.Name, &sc.Sealed, &sc.PreviousSealed, &expiry, &sc.UpdateTime); err != nil {
		return store.ServerSecret{}, err
	}
	if expiry != nil {
		sc.PreviousExpireTime = utc(*expiry)
	}
	sc.UpdateTime = utc(sc.UpdateTime)
	return sc, nil
}

// ServerSecret implements store.SecretStore.
func (s *Store) ServerSecret(ctx context.Context, name string) (store.ServerSecret, error) {
	var sc store.ServerSecret
	err := s.run(ctx, "server secret", func() error {
		var err error
		sc, err = scanServerSecret(s.pool.QueryRow(ctx, `SELECT `+serverSecretColumns+` FROM server_secrets WHERE name = $1`, name))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("server secret %q: %w", name, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return store.ServerSecret{}, err
	}
	return sc, nil
}

// CreateServerSecret implements store.SecretStore. ON CONFLICT makes two
// replicas creating the secret at once agree on the first one's.
func (s *Store) CreateServerSecret(ctx context.Context, sc store.ServerSecret) (store.ServerSecret, bool, error) {
	var (
		stored  store.ServerSecret
		created bool
	)
	err := s.inTx(ctx, "create server secret", func(tx pgx.Tx) error {
		if err := checkSealedUnder(ctx, tx, sc.SealedUnder); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO server_secrets (`+serverSecretColumns+`) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (name) DO NOTHING`,
			sc.Name, sc.Sealed, nullBytes(sc.PreviousSealed), nullTime(sc.PreviousExpireTime), sc.UpdateTime)
		if err != nil {
			return err
		}
		created = tag.RowsAffected() == 1
		stored, err = scanServerSecret(tx.QueryRow(ctx, `SELECT `+serverSecretColumns+` FROM server_secrets WHERE name = $1`, sc.Name))
		return err
	})
	if err != nil {
		return store.ServerSecret{}, false, err
	}
	return stored, created, nil
}

// UpdateServerSecret implements store.SecretStore.
func (s *Store) UpdateServerSecret(ctx context.Context, sc store.ServerSecret, ifSealed []byte) error {
	return s.inTx(ctx, "update server secret", func(tx pgx.Tx) error {
		if err := checkSealedUnder(ctx, tx, sc.SealedUnder); err != nil {
			return err
		}
		var stored []byte
		err := tx.QueryRow(ctx, `SELECT sealed FROM server_secrets WHERE name = $1 FOR UPDATE`, sc.Name).Scan(&stored)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("server secret %q: %w", sc.Name, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !bytes.Equal(stored, ifSealed) {
			return fmt.Errorf("server secret %q: %w", sc.Name, store.ErrChanged)
		}
		_, err = tx.Exec(ctx, `UPDATE server_secrets SET sealed = $1, previous_sealed = $2, previous_expire_time = $3,
			update_time = $4 WHERE name = $5`,
			sc.Sealed, nullBytes(sc.PreviousSealed), nullTime(sc.PreviousExpireTime), sc.UpdateTime, sc.Name)
		return err
	})
}
