package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ibmail/ibmail/store"
)

const connectionColumns = `id, display_name, api_key_ciphertext, api_key_hint, base_url, application_id,
	entity_id, webhook_secret_digest, rate_limit, create_time, update_time,
	previous_webhook_secret_digest, previous_webhook_secret_expire_time`

// nullBytes stores an empty digest as NULL: the unique index ignores NULLs,
// so connections without a webhook secret do not collide.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func scanConnection(row interface{ Scan(...any) error }) (store.Connection, error) {
	var (
		c                  store.Connection
		created, updated   int64
		ciphertext, digest []byte
		previous           []byte
		previousExpiry     sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.DisplayName, &ciphertext, &c.APIKeyHint, &c.BaseURL, &c.ApplicationID,
		&c.EntityID, &digest, &c.RateLimit, &created, &updated, &previous, &previousExpiry); err != nil {
		return store.Connection{}, err
	}
	c.APIKeyCiphertext, c.WebhookSecretDigest, c.PreviousWebhookSecretDigest = ciphertext, digest, previous
	if previousExpiry.Valid {
		c.PreviousWebhookSecretExpireTime = fromMicros(previousExpiry.Int64)
	}
	c.CreateTime, c.UpdateTime = fromMicros(created), fromMicros(updated)
	return c, nil
}

// CreateConnection stores c, or answers ErrAlreadyExists.
func (s *Store) CreateConnection(ctx context.Context, c store.Connection) error {
	return s.writeTx(ctx, "create connection", func(tx *sql.Tx) error {
		if err := checkSealedUnder(ctx, tx, c.SealedUnder); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO connections (`+connectionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.DisplayName, c.APIKeyCiphertext, c.APIKeyHint, c.BaseURL, c.ApplicationID,
			c.EntityID, nullBytes(c.WebhookSecretDigest), c.RateLimit, micros(c.CreateTime), micros(c.UpdateTime),
			nullBytes(c.PreviousWebhookSecretDigest), nullMicros(c.PreviousWebhookSecretExpireTime))
		if isUniqueViolation(err) {
			return fmt.Errorf("connection %q: %w", c.ID, store.ErrAlreadyExists)
		}
		return err
	})
}

// GetConnection returns a connection or ErrNotFound.
func (s *Store) GetConnection(ctx context.Context, id string) (store.Connection, error) {
	c, err := scanConnection(s.readDB.QueryRowContext(ctx,
		`SELECT `+connectionColumns+` FROM connections WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Connection{}, fmt.Errorf("sqlite: connection %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Connection{}, readErr(ctx, "get connection", err)
	}
	return c, nil
}

// connectionByDigestSQL finds the connection whose current or previous
// webhook secret has a digest.
const connectionByDigestSQL = `SELECT ` + connectionColumns + ` FROM connections WHERE webhook_secret_digest = ?
	UNION ALL SELECT ` + connectionColumns + ` FROM connections WHERE previous_webhook_secret_digest = ?`

// ConnectionByWebhookDigest finds a connection by its webhook secret's
// digest, on the digest's unique index.
func (s *Store) ConnectionByWebhookDigest(ctx context.Context, digest []byte) (store.Connection, error) {
	if len(digest) == 0 {
		return store.Connection{}, fmt.Errorf("sqlite: connection by empty digest: %w", store.ErrNotFound)
	}
	// Prepared once: every webhook call with a connection's secret runs
	// it, and compiling it cost more than running it.
	st, err := s.reads.stmt(ctx, connectionByDigestSQL)
	if err != nil {
		return store.Connection{}, readErr(ctx, "connection by digest", err)
	}
	c, err := scanConnection(st.QueryRowContext(ctx, digest, digest))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Connection{}, fmt.Errorf("sqlite: connection by digest: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Connection{}, readErr(ctx, "connection by digest", err)
	}
	return c, nil
}

// ListConnections returns connections in id order, after afterID.
func (s *Store) ListConnections(ctx context.Context, afterID string, limit int) ([]store.Connection, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT `+connectionColumns+` FROM connections
		WHERE id > ? ORDER BY id LIMIT ?`, afterID, limitOf(limit))
	if err != nil {
		return nil, readErr(ctx, "list connections", err)
	}
	defer rows.Close()
	var out []store.Connection
	for rows.Next() {
		c, err := scanConnection(rows)
		if err != nil {
			return nil, readErr(ctx, "list connections", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "list connections", err)
	}
	return out, nil
}

// UpdateConnection replaces every field of a connection but its id and
// create time.
func (s *Store) UpdateConnection(ctx context.Context, c store.Connection) error {
	return s.updateConnection(ctx, c, nil)
}

// UpdateConnectionIf is UpdateConnection done only while the stored
// ciphertext is still ifCiphertext.
func (s *Store) UpdateConnectionIf(ctx context.Context, c store.Connection, ifCiphertext []byte) error {
	return s.updateConnection(ctx, c, ifCiphertext)
}

func (s *Store) updateConnection(ctx context.Context, c store.Connection, ifCiphertext []byte) error {
	return s.writeTx(ctx, "update connection", func(tx *sql.Tx) error {
		if err := checkSealedUnder(ctx, tx, c.SealedUnder); err != nil {
			return err
		}
		if ifCiphertext != nil {
			var stored []byte
			err := tx.QueryRowContext(ctx, `SELECT api_key_ciphertext FROM connections WHERE id = ?`, c.ID).Scan(&stored)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("connection %q: %w", c.ID, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
			if !bytes.Equal(stored, ifCiphertext) {
				return fmt.Errorf("connection %q: %w", c.ID, store.ErrChanged)
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE connections SET display_name = ?, api_key_ciphertext = ?,
			api_key_hint = ?, base_url = ?, application_id = ?, entity_id = ?, webhook_secret_digest = ?,
			rate_limit = ?, update_time = ?, previous_webhook_secret_digest = ?,
			previous_webhook_secret_expire_time = ? WHERE id = ?`,
			c.DisplayName, c.APIKeyCiphertext, c.APIKeyHint, c.BaseURL, c.ApplicationID, c.EntityID,
			nullBytes(c.WebhookSecretDigest), c.RateLimit, micros(c.UpdateTime),
			nullBytes(c.PreviousWebhookSecretDigest), nullMicros(c.PreviousWebhookSecretExpireTime), c.ID)
		if isUniqueViolation(err) {
			return fmt.Errorf("connection %q: webhook digest: %w", c.ID, store.ErrAlreadyExists)
		}
		return mustAffect(res, err, fmt.Sprintf("connection %q", c.ID))
	})
}

// DeleteConnection removes a connection no sender account uses.
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	return s.writeTx(ctx, "delete connection", func(tx *sql.Tx) error {
		var used bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM senders WHERE connection_id = ?)`, id).Scan(&used); err != nil {
			return err
		}
		if used {
			return fmt.Errorf("connection %q has sender accounts: %w", id, store.ErrInUse)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM connections WHERE id = ?`, id)
		return mustAffect(res, err, fmt.Sprintf("connection %q", id))
	})
}

// mustAffect turns a write that matched no row into ErrNotFound.
func mustAffect(res sql.Result, err error, what string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

const senderColumns = `id, connection_id, from_address, from_name, reply_to, create_time`

func scanSender(row interface{ Scan(...any) error }) (store.Sender, error) {
	var (
		sd      store.Sender
		created int64
	)
	if err := row.Scan(&sd.ID, &sd.ConnectionID, &sd.FromAddress, &sd.FromName, &sd.ReplyTo, &created); err != nil {
		return store.Sender{}, err
	}
	sd.CreateTime = fromMicros(created)
	return sd, nil
}

// CreateSender stores a sender account of an existing connection, and its
// from address's domain as a sending domain if it is new. The connection
// is checked in the transaction rather than left to the foreign key, whose
// failure would not say which of the two errors applies.
func (s *Store) CreateSender(ctx context.Context, sd store.Sender) error {
	return s.writeTx(ctx, "create sender", func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM connections WHERE id = ?)`, sd.ConnectionID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("connection %q of sender %q: %w", sd.ConnectionID, sd.ID, store.ErrNotFound)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO senders (`+senderColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			sd.ID, sd.ConnectionID, sd.FromAddress, sd.FromName, sd.ReplyTo, micros(sd.CreateTime))
		if isUniqueViolation(err) {
			return fmt.Errorf("sender %q: %w", sd.ID, store.ErrAlreadyExists)
		}
		if err != nil {
			return err
		}
		// The sender's domain becomes a sending domain, active, unless
		// it is one already.
		if domain := store.AddressDomain(sd.FromAddress); domain != "" {
			if _, err := tx.ExecContext(ctx, addDomainSQL, domain, micros(domainTime(sd.CreateTime))); err != nil {
				return fmt.Errorf("sending domain %q of sender %q: %w", domain, sd.ID, err)
			}
		}
		return nil
	})
}

// GetSender returns a sender account or ErrNotFound.
func (s *Store) GetSender(ctx context.Context, id string) (store.Sender, error) {
	sd, err := scanSender(s.readDB.QueryRowContext(ctx, `SELECT `+senderColumns+` FROM senders WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Sender{}, fmt.Errorf("sqlite: sender %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Sender{}, readErr(ctx, "get sender", err)
	}
	return sd, nil
}

// ListSenders returns sender accounts in id order, after afterID, of one
// connection (on its index) or of all.
func (s *Store) ListSenders(ctx context.Context, connectionID, afterID string, limit int) ([]store.Sender, error) {
	query := `SELECT ` + senderColumns + ` FROM senders WHERE id > ? ORDER BY id LIMIT ?`
	args := []any{afterID, limitOf(limit)}
	if connectionID != "" {
		query = `SELECT ` + senderColumns + ` FROM senders WHERE connection_id = ? AND id > ? ORDER BY id LIMIT ?`
		args = append([]any{connectionID}, args...)
	}
	rows, err := s.readDB.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, readErr(ctx, "list senders", err)
	}
	defer rows.Close()
	var out []store.Sender
	for rows.Next() {
		sd, err := scanSender(rows)
		if err != nil {
			return nil, readErr(ctx, "list senders", err)
		}
		out = append(out, sd)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "list senders", err)
	}
	return out, nil
}

// DeleteSender removes a sender account; its sends keep its id.
func (s *Store) DeleteSender(ctx context.Context, id string) error {
	return s.writeTx(ctx, "delete sender", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM senders WHERE id = ?`, id)
		return mustAffect(res, err, fmt.Sprintf("sender %q", id))
	})
}
