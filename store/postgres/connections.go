package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ibmail/ibmail/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const connectionColumns = `id, display_name, api_key_ciphertext, api_key_hint, base_url, application_id,
	entity_id, webhook_secret_digest, rate_limit, create_time, update_time,
	previous_webhook_secret_digest, previous_webhook_secret_expire_time`

// nullBytes stores an empty digest as NULL: the unique index holds NULLs
// distinct, so connections without a webhook secret do not collide.
func nullBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func scanConnection(row pgx.Row) (store.Connection, error) {
	var (
		c              store.Connection
		previousExpiry *time.Time
	)
	if err := row.Scan(&c.ID, &c.DisplayName, &c.APIKeyCiphertext, &c.APIKeyHint, &c.BaseURL, &c.ApplicationID,
		&c.EntityID, &c.WebhookSecretDigest, &c.RateLimit, &c.CreateTime, &c.UpdateTime,
		&c.PreviousWebhookSecretDigest, &previousExpiry); err != nil {
		return store.Connection{}, err
	}
	c.CreateTime, c.UpdateTime = utc(c.CreateTime), utc(c.UpdateTime)
	if previousExpiry != nil {
		c.PreviousWebhookSecretExpireTime = utc(*previousExpiry)
	}
	return c, nil
}

// mustAffect turns a write that matched no row into ErrNotFound.
func mustAffect(tag pgconn.CommandTag, err error, what string) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// CreateConnection stores c, or answers ErrAlreadyExists.
func (s *Store) CreateConnection(ctx context.Context, c store.Connection) error {
	return s.inTx(ctx, "create connection", func(tx pgx.Tx) error {
		if err := checkSealedUnder(ctx, tx, c.SealedUnder); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO connections (`+connectionColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			c.ID, c.DisplayName, c.APIKeyCiphertext, c.APIKeyHint, c.BaseURL, c.ApplicationID,
			c.EntityID, nullBytes(c.WebhookSecretDigest), c.RateLimit, c.CreateTime, c.UpdateTime,
			nullBytes(c.PreviousWebhookSecretDigest), nullTime(c.PreviousWebhookSecretExpireTime))
		if pgCode(err) == codeUniqueViolation {
			return fmt.Errorf("connection %q: %w", c.ID, store.ErrAlreadyExists)
		}
		return err
	})
}

// getConnection reads the one connection where column = value.
func (s *Store) getConnection(ctx context.Context, op, column string, value any, what string) (store.Connection, error) {
	var c store.Connection
	err := s.run(ctx, op, func() error {
		var err error
		c, err = scanConnection(s.pool.QueryRow(ctx, `SELECT `+connectionColumns+` FROM connections WHERE `+column+` = $1`, value))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%s: %w", what, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return store.Connection{}, err
	}
	return c, nil
}

// GetConnection returns a connection or ErrNotFound.
func (s *Store) GetConnection(ctx context.Context, id string) (store.Connection, error) {
	return s.getConnection(ctx, "get connection", "id", id, fmt.Sprintf("connection %q", id))
}

// ConnectionByWebhookDigest finds a connection by its webhook secret's
// digest, on the digest's unique index.
func (s *Store) ConnectionByWebhookDigest(ctx context.Context, digest []byte) (store.Connection, error) {
	if len(digest) == 0 {
		// No connection has the empty digest: it is stored as NULL.
		if s.closed.Load() {
			return store.Connection{}, errClosed
		}
		return store.Connection{}, fmt.Errorf("postgres: connection by empty digest: %w", store.ErrNotFound)
	}
	var c store.Connection
	err := s.run(ctx, "connection by digest", func() error {
		var err error
		c, err = scanConnection(s.pool.QueryRow(ctx, `SELECT `+connectionColumns+` FROM connections WHERE webhook_secret_digest = $1
			UNION ALL SELECT `+connectionColumns+` FROM connections WHERE previous_webhook_secret_digest = $1 LIMIT 1`, digest))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("connection by digest: %w", store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return store.Connection{}, err
	}
	return c, nil
}

// ListConnections returns connections in id order, after afterID.
func (s *Store) ListConnections(ctx context.Context, afterID string, limit int) ([]store.Connection, error) {
	var out []store.Connection
	err := s.run(ctx, "list connections", func() error {
		rows, err := s.pool.Query(ctx, `SELECT `+connectionColumns+` FROM connections
			WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limitOf(limit))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Connection, error) { return scanConnection(row) })
		return err
	})
	if err != nil {
		return nil, err
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
	return s.inTx(ctx, "update connection", func(tx pgx.Tx) error {
		if err := checkSealedUnder(ctx, tx, c.SealedUnder); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE connections SET display_name = $1, api_key_ciphertext = $2,
			api_key_hint = $3, base_url = $4, application_id = $5, entity_id = $6, webhook_secret_digest = $7,
			rate_limit = $8, update_time = $9, previous_webhook_secret_digest = $11,
			previous_webhook_secret_expire_time = $12
			WHERE id = $10 AND ($13::bytea IS NULL OR api_key_ciphertext = $13)`,
			c.DisplayName, c.APIKeyCiphertext, c.APIKeyHint, c.BaseURL, c.ApplicationID, c.EntityID,
			nullBytes(c.WebhookSecretDigest), c.RateLimit, c.UpdateTime, c.ID,
			nullBytes(c.PreviousWebhookSecretDigest), nullTime(c.PreviousWebhookSecretExpireTime), ifCiphertext)
		if pgCode(err) == codeUniqueViolation {
			return fmt.Errorf("connection %q: webhook digest: %w", c.ID, store.ErrAlreadyExists)
		}
		if err == nil && tag.RowsAffected() == 0 && ifCiphertext != nil {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM connections WHERE id = $1)`, c.ID).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return fmt.Errorf("connection %q: %w", c.ID, store.ErrChanged)
			}
		}
		return mustAffect(tag, err, fmt.Sprintf("connection %q", c.ID))
	})
}

// DeleteConnection removes a connection no sender account uses. The
// senders' foreign key decides, in the DELETE itself, so that a sender
// created by another replica at the same moment cannot be left without its
// connection.
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	return s.run(ctx, "delete connection", func() error {
		tag, err := s.pool.Exec(ctx, `DELETE FROM connections WHERE id = $1`, id)
		if pgCode(err) == codeForeignKeyViolation {
			return fmt.Errorf("connection %q has sender accounts: %w", id, store.ErrInUse)
		}
		return mustAffect(tag, err, fmt.Sprintf("connection %q", id))
	})
}

const senderColumns = `id, connection_id, from_address, from_name, reply_to, create_time`

func scanSender(row pgx.Row) (store.Sender, error) {
	var sd store.Sender
	if err := row.Scan(&sd.ID, &sd.ConnectionID, &sd.FromAddress, &sd.FromName, &sd.ReplyTo, &sd.CreateTime); err != nil {
		return store.Sender{}, err
	}
	sd.CreateTime = utc(sd.CreateTime)
	return sd, nil
}

// CreateSender stores a sender account of an existing connection, and its
// from address's domain as a sending domain, active, if it is new; the
// foreign key, checked in the INSERT, says when the connection does not
// exist. One statement: the domain is added only with the sender.
func (s *Store) CreateSender(ctx context.Context, sd store.Sender) error {
	domain := store.AddressDomain(sd.FromAddress)
	return s.run(ctx, "create sender", func() error {
		_, err := s.pool.Exec(ctx, `WITH sd AS (
				INSERT INTO senders (`+senderColumns+`) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
			)
			INSERT INTO sending_domains (`+domainColumns+`)
			SELECT $7, 1, NULL, '', 0, 0, '', $8 FROM sd WHERE $7 <> ''
			ON CONFLICT (domain) DO NOTHING`,
			sd.ID, sd.ConnectionID, sd.FromAddress, sd.FromName, sd.ReplyTo, sd.CreateTime, domain, domainTime(sd.CreateTime))
		switch pgCode(err) {
		case codeUniqueViolation:
			return fmt.Errorf("sender %q: %w", sd.ID, store.ErrAlreadyExists)
		case codeForeignKeyViolation:
			return fmt.Errorf("connection %q of sender %q: %w", sd.ConnectionID, sd.ID, store.ErrNotFound)
		}
		return err
	})
}

// GetSender returns a sender account or ErrNotFound.
func (s *Store) GetSender(ctx context.Context, id string) (store.Sender, error) {
	var sd store.Sender
	err := s.run(ctx, "get sender", func() error {
		var err error
		sd, err = scanSender(s.pool.QueryRow(ctx, `SELECT `+senderColumns+` FROM senders WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("sender %q: %w", id, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return store.Sender{}, err
	}
	return sd, nil
}

// ListSenders returns sender accounts in id order, after afterID, of one
// connection (on its index) or of all.
func (s *Store) ListSenders(ctx context.Context, connectionID, afterID string, limit int) ([]store.Sender, error) {
	query := `SELECT ` + senderColumns + ` FROM senders WHERE id > $1 ORDER BY id LIMIT $2`
	args := []any{afterID, limitOf(limit)}
	if connectionID != "" {
		query = `SELECT ` + senderColumns + ` FROM senders WHERE connection_id = $3 AND id > $1 ORDER BY id LIMIT $2`
		args = append(args, connectionID)
	}
	var out []store.Sender
	err := s.run(ctx, "list senders", func() error {
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Sender, error) { return scanSender(row) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteSender removes a sender account; its sends keep its id.
func (s *Store) DeleteSender(ctx context.Context, id string) error {
	return s.run(ctx, "delete sender", func() error {
		tag, err := s.pool.Exec(ctx, `DELETE FROM senders WHERE id = $1`, id)
		return mustAffect(tag, err, fmt.Sprintf("sender %q", id))
	})
}
