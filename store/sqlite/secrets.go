package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ibmail/ibmail/store"
)

// checkSealedUnder refuses, inside a write transaction, a sealed value
// made under another key than the store's. The write lock taken at BEGIN
// keeps a rotation from changing the check value before the write commits.
func checkSealedUnder(ctx context.Context, tx *sql.Tx, check []byte) error {
	if len(check) == 0 {
		return nil
	}
	var stored []byte
	if err := tx.QueryRowContext(ctx, `SELECT check_value FROM encryption_key_check WHERE id = 1`).Scan(&stored); err != nil {
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
	err := s.readDB.QueryRowContext(ctx, `SELECT check_value FROM encryption_key_check WHERE id = 1`).Scan(&check)
	if err != nil {
		return nil, readErr(ctx, "encryption key check", err)
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
	err := s.writeTx(ctx, "reseal secrets", func(tx *sql.Tx) error {
		var stored []byte
		if err := tx.QueryRowContext(ctx, `SELECT check_value FROM encryption_key_check WHERE id = 1`).Scan(&stored); err != nil {
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
			rows, err := tx.QueryContext(ctx, query)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.owner, &r.sealed, &r.previous); err != nil {
					return nil, err
				}
				out = append(out, r)
			}
			return out, rows.Err()
		}
		conns, err := read(`SELECT id, api_key_ciphertext, NULL FROM connections ORDER BY id`)
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
			if _, err := tx.ExecContext(ctx, `UPDATE connections SET api_key_ciphertext = ? WHERE id = ?`, next, c.owner); err != nil {
				return err
			}
		}
		secrets, err := read(`SELECT name, sealed, previous_sealed FROM server_secrets ORDER BY name`)
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
			if _, err := tx.ExecContext(ctx, `UPDATE server_secrets SET sealed = ?, previous_sealed = ? WHERE name = ?`, next, previous, sc.owner); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE encryption_key_check SET check_value = ?, update_time = ? WHERE id = 1`, to, micros(time.Now()))
		return err
	})
	if resealErr != nil {
		return resealErr
	}
	return err
}

const serverSecretColumns = `name, sealed, previous_sealed, previous_expire_time, update_time`

func scanServerSecret(row interface{ Scan(...any) error }) (store.ServerSecret, error) {
	var (
		sc      store.ServerSecret
		expiry  sql.NullInt64
		updated int64
	)
	if err := row.Scan(&sc.Name, &sc.Sealed, &sc.PreviousSealed, &expiry, &updated); err != nil {
		return store.ServerSecret{}, err
	}
	if expiry.Valid {
		sc.PreviousExpireTime = fromMicros(expiry.Int64)
	}
	sc.UpdateTime = fromMicros(updated)
	return sc, nil
}

// ServerSecret implements store.SecretStore.
func (s *Store) ServerSecret(ctx context.Context, name string) (store.ServerSecret, error) {
	sc, err := scanServerSecret(s.readDB.QueryRowContext(ctx, `SELECT `+serverSecretColumns+` FROM server_secrets WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.ServerSecret{}, fmt.Errorf("sqlite: server secret %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.ServerSecret{}, readErr(ctx, "server secret", err)
	}
	return sc, nil
}

// CreateServerSecret implements store.SecretStore.
func (s *Store) CreateServerSecret(ctx context.Context, sc store.ServerSecret) (store.ServerSecret, bool, error) {
	var (
		stored  store.ServerSecret
		created bool
	)
	err := s.writeTx(ctx, "create server secret", func(tx *sql.Tx) error {
		if err := checkSealedUnder(ctx, tx, sc.SealedUnder); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO server_secrets (`+serverSecretColumns+`) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name) DO NOTHING`,
			sc.Name, sc.Sealed, nullBytes(sc.PreviousSealed), nullMicros(sc.PreviousExpireTime), micros(sc.UpdateTime))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		created = n == 1
		stored, err = scanServerSecret(tx.QueryRowContext(ctx, `SELECT `+serverSecretColumns+` FROM server_secrets WHERE name = ?`, sc.Name))
		return err
	})
	if err != nil {
		return store.ServerSecret{}, false, err
	}
	return stored, created, nil
}

// UpdateServerSecret implements store.SecretStore.
func (s *Store) UpdateServerSecret(ctx context.Context, sc store.ServerSecret, ifSealed []byte) error {
	return s.writeTx(ctx, "update server secret", func(tx *sql.Tx) error {
		if err := checkSealedUnder(ctx, tx, sc.SealedUnder); err != nil {
			return err
		}
		var stored []byte
		err := tx.QueryRowContext(ctx, `SELECT sealed FROM server_secrets WHERE name = ?`, sc.Name).Scan(&stored)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("server secret %q: %w", sc.Name, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !bytes.Equal(stored, ifSealed) {
			return fmt.Errorf("server secret %q: %w", sc.Name, store.ErrChanged)
		}
		_, err = tx.ExecContext(ctx, `UPDATE server_secrets SET sealed = ?, previous_sealed = ?, previous_expire_time = ?,
			update_time = ? WHERE name = ?`,
			sc.Sealed, nullBytes(sc.PreviousSealed), nullMicros(sc.PreviousExpireTime), micros(sc.UpdateTime), sc.Name)
		return err
	})
}
