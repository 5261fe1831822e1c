package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/secret"
	"github.com/ibmail/ibmail/store"
)

// ConnectionService implements ibmail.v1.ConnectionService.
type ConnectionService struct {
	ibmailv1.UnimplementedConnectionServiceServer
	store      store.Store
	vault      *Vault
	baseURLs   BaseURLPolicy
	webhookURL string
	tester     ConnectionTester
	now        func() time.Time
	rows       *rowSkippers
	// serverSecret is the stored server-wide webhook secret; nil when
	// --webhook-secret overrides it.
	serverSecret *ServerWebhookSecret
}

// NewConnectionService returns a ConnectionService. webhookURL is the public
// URL of the delivery-report webhook, shown on each connection.
// Rows it cannot show are logged to log.
func NewConnectionService(st store.Store, vault *Vault, baseURLs BaseURLPolicy, webhookURL string, tester ConnectionTester, log *slog.Logger) *ConnectionService {
	return &ConnectionService{store: st, vault: vault, baseURLs: baseURLs, webhookURL: webhookURL, tester: tester, now: time.Now, rows: newRowSkippers(log)}
}

// withServerSecret lets the service rotate the stored server-wide secret.
func (s *ConnectionService) withServerSecret(sw *ServerWebhookSecret) *ConnectionService {
	s.serverSecret = sw
	return s
}

// The bounds of a rotation's grace period.
const (
	defaultWebhookGrace = 72 * time.Hour
	maxWebhookGrace     = 30 * 24 * time.Hour
)

// gracePeriod checks a rotation's grace period.
func gracePeriod(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return defaultWebhookGrace, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, invalidField(field, "is not a valid duration")
	}
	g := d.AsDuration()
	if g < 0 || g > maxWebhookGrace {
		return 0, invalidField(field, fmt.Sprintf("%s is out of range: 0s (retire the previous secret at once) to %s", g, maxWebhookGrace))
	}
	return g, nil
}

// maxChangeAttempts bounds the retries of a change that lost a race with
// another change of the same secrets.
const maxChangeAttempts = 5

// changeConnectionSecrets reads a connection, lets change modify it and
// writes it back on condition that its sealed credentials did not change
// meanwhile, reading again when they did.
func (s *ConnectionService) changeConnectionSecrets(ctx context.Context, id string, change func(c *store.Connection) error) (store.Connection, error) {
	for attempt := 1; ; attempt++ {
		c, err := s.load(ctx, id)
		if err != nil {
			return store.Connection{}, err
		}
		read := c.APIKeyCiphertext
		if err := change(&c); err != nil {
			return store.Connection{}, err
		}
		c.UpdateTime = s.now().UTC()
		c.SealedUnder = s.vault.sealedUnder()
		err = s.store.UpdateConnectionIf(ctx, c, read)
		if errors.Is(err, store.ErrChanged) && attempt < maxChangeAttempts {
			continue
		}
		if err != nil {
			return store.Connection{}, notFoundAs(err, "connection", id)
		}
		return c, nil
	}
}

// RotateWebhookSecret gives a connection a new webhook secret; the previous
// one stays accepted for the grace period. The new secret is in the answer
// only, never logged.
func (s *ConnectionService) RotateWebhookSecret(ctx context.Context, req *ibmailv1.RotateWebhookSecretRequest) (*ibmailv1.RotateWebhookSecretResponse, error) {
	grace, err := gracePeriod("grace_period", req.GetGracePeriod())
	if err != nil {
		return nil, err
	}
	webhookSecret := secret.Token(24)
	c, err := s.changeConnectionSecrets(ctx, req.GetConnectionId(), func(c *store.Connection) error {
		cr, err := s.vault.open(ctx, *c)
		if err != nil {
			return err
		}
		c.PreviousWebhookSecretDigest, c.PreviousWebhookSecretExpireTime = nil, time.Time{}
		if grace > 0 && len(c.WebhookSecretDigest) > 0 {
			c.PreviousWebhookSecretDigest = c.WebhookSecretDigest
			c.PreviousWebhookSecretExpireTime = s.now().UTC().Add(grace)
		}
		cr.WebhookSecret = webhookSecret
		c.APIKeyCiphertext = s.vault.seal(c.ID, cr)
		c.WebhookSecretDigest = webhookDigest(webhookSecret)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ibmailv1.RotateWebhookSecretResponse{Connection: s.toProto(c), WebhookSecret: webhookSecret}, nil
}

// RetirePreviousWebhookSecret stops accepting a connection's previous
// webhook secret.
func (s *ConnectionService) RetirePreviousWebhookSecret(ctx context.Context, req *ibmailv1.RetirePreviousWebhookSecretRequest) (*ibmailv1.RetirePreviousWebhookSecretResponse, error) {
	c, err := s.changeConnectionSecrets(ctx, req.GetConnectionId(), func(c *store.Connection) error {
		c.PreviousWebhookSecretDigest, c.PreviousWebhookSecretExpireTime = nil, time.Time{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ibmailv1.RetirePreviousWebhookSecretResponse{Connection: s.toProto(c)}, nil
}

// errServerSecretConfigured refuses to rotate a secret the configuration
// sets.
var errServerSecretConfigured = apiError(codes.FailedPrecondition, ReasonWebhookSecretConfigured,
	"the server-wide webhook secret is set by --webhook-secret (IBMAIL_WEBHOOK_SECRET): change it there, or start without it to use the stored one")

// RotateServerWebhookSecret replaces the stored server-wide webhook secret,
// shared by every replica; the previous one stays accepted for the grace
// period.
func (s *ConnectionService) RotateServerWebhookSecret(ctx context.Context, req *ibmailv1.RotateServerWebhookSecretRequest) (*ibmailv1.RotateServerWebhookSecretResponse, error) {
	if s.serverSecret == nil {
		return nil, errServerSecretConfigured
	}
	grace, err := gracePeriod("grace_period", req.GetGracePeriod())
	if err != nil {
		return nil, err
	}
	next := secret.Token(24)
	expire, err := s.serverSecret.rotate(ctx, next, grace)
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.RotateServerWebhookSecretResponse{WebhookSecret: next}
	if !expire.IsZero() {
		resp.PreviousExpireTime = timestamppb.New(expire)
	}
	return resp, nil
}

// RetirePreviousServerWebhookSecret stops accepting the previous
// server-wide webhook secret.
func (s *ConnectionService) RetirePreviousServerWebhookSecret(ctx context.Context, _ *ibmailv1.RetirePreviousServerWebhookSecretRequest) (*ibmailv1.RetirePreviousServerWebhookSecretResponse, error) {
	if s.serverSecret == nil {
		return nil, errServerSecretConfigured
	}
	if err := s.serverSecret.retirePrevious(ctx); err != nil {
		return nil, err
	}
	return &ibmailv1.RetirePreviousServerWebhookSecretResponse{}, nil
}

// CreateConnection validates and stores a connection with a new webhook
// secret, which only this answer shows.
func (s *ConnectionService) CreateConnection(ctx context.Context, req *ibmailv1.CreateConnectionRequest) (*ibmailv1.CreateConnectionResponse, error) {
	in := req.GetConnection()
	if in == nil {
		return nil, invalidField("connection", "is required")
	}
	id := strings.TrimSpace(in.GetId())
	if id == "" {
		id = newID("conn")
	}
	if err := checkResourceID("connection.id", id); err != nil {
		return nil, err
	}
	c := store.Connection{ID: id}
	if err := s.apply(&c, in, allConnectionFields); err != nil {
		return nil, err
	}
	if err := checkAPIKey(in.GetApiKey()); err != nil {
		return nil, err
	}
	webhookSecret := secret.Token(24)
	c.APIKeyCiphertext = s.vault.seal(id, credentials{APIKey: in.GetApiKey(), WebhookSecret: webhookSecret})
	c.APIKeyHint = keyHint(in.GetApiKey())
	c.WebhookSecretDigest = webhookDigest(webhookSecret)
	c.CreateTime = s.now().UTC()
	c.UpdateTime = c.CreateTime
	c.SealedUnder = s.vault.sealedUnder()
	if err := s.store.CreateConnection(ctx, c); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return nil, apiError(codes.AlreadyExists, ReasonAlreadyExists, fmt.Sprintf("connection %q already exists", id))
		}
		return nil, err
	}
	return &ibmailv1.CreateConnectionResponse{Connection: s.toProto(c), WebhookSecret: webhookSecret}, nil
}

// GetConnection returns one connection, without its key.
func (s *ConnectionService) GetConnection(ctx context.Context, req *ibmailv1.GetConnectionRequest) (*ibmailv1.GetConnectionResponse, error) {
	c, err := s.load(ctx, req.GetConnectionId())
	if err != nil {
		return nil, err
	}
	shown, err := showOne(ctx, s.rows.connections, "connection", c.ID, s.toProto(c))
	if err != nil {
		return nil, err
	}
	return &ibmailv1.GetConnectionResponse{Connection: shown}, nil
}

// ListConnections lists connections by id.
func (s *ConnectionService) ListConnections(ctx context.Context, req *ibmailv1.ListConnectionsRequest) (*ibmailv1.ListConnectionsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 50, 1000)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest("connections"))
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ListConnections(ctx, tok.AfterKey, size+1)
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListConnectionsResponse{}
	rows, resp.NextPageToken = cutPage(rows, size, tok.Query, func(c store.Connection) pageToken { return pageToken{AfterKey: c.ID} })
	resp.Connections = showable(ctx, s.rows.connections, rows, func(c store.Connection) string { return c.ID },
		func(c store.Connection) (*ibmailv1.Connection, error) { return s.toProto(c), nil })
	return resp, nil
}

// allConnectionFields are the fields an update may name.
var allConnectionFields = []string{"display_name", "api_key", "base_url", "application_id", "entity_id", "rate_limit"}

// UpdateConnection changes the named fields. A new API key is sealed with
// the connection's existing webhook secret.
func (s *ConnectionService) UpdateConnection(ctx context.Context, req *ibmailv1.UpdateConnectionRequest) (*ibmailv1.UpdateConnectionResponse, error) {
	if req.GetConnection() == nil {
		return nil, invalidField("connection", "is required")
	}
	c, err := s.load(ctx, req.GetConnectionId())
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, invalidField("update_mask", "names no field; name one or more of "+strings.Join(allConnectionFields, ", "))
	}
	for i, p := range paths {
		paths[i] = camelToSnake(p)
		if !slices.Contains(allConnectionFields, paths[i]) {
			return nil, invalidField("update_mask", fmt.Sprintf("%q cannot be changed; name one or more of %s", p, strings.Join(allConnectionFields, ", ")))
		}
	}
	read := c.APIKeyCiphertext
	if err := s.apply(&c, req.GetConnection(), paths); err != nil {
		return nil, err
	}
	if slices.Contains(paths, "api_key") {
		key := req.GetConnection().GetApiKey()
		if err := checkAPIKey(key); err != nil {
			return nil, err
		}
		cr, err := s.vault.open(ctx, c)
		if err != nil {
			return nil, err
		}
		cr.APIKey = key
		c.APIKeyCiphertext = s.vault.seal(c.ID, cr)
		c.APIKeyHint = keyHint(key)
	}
	c.UpdateTime = s.now().UTC()
	c.SealedUnder = s.vault.sealedUnder()
	// Conditional on the ciphertext read, so that a rotation of the webhook
	// secret or of the encryption key meanwhile is not undone.
	if err := s.store.UpdateConnectionIf(ctx, c, read); err != nil {
		return nil, notFoundAs(err, "connection", c.ID)
	}
	return &ibmailv1.UpdateConnectionResponse{Connection: s.toProto(c)}, nil
}

// DeleteConnection removes a connection no sender uses.
func (s *ConnectionService) DeleteConnection(ctx context.Context, req *ibmailv1.DeleteConnectionRequest) (*ibmailv1.DeleteConnectionResponse, error) {
	id := req.GetConnectionId()
	if err := checkResourceID("connection_id", id); err != nil {
		return nil, err
	}
	err := s.store.DeleteConnection(ctx, id)
	if errors.Is(err, store.ErrInUse) {
		return nil, apiError(codes.FailedPrecondition, ReasonInUse, fmt.Sprintf("connection %q still has sender accounts; delete them first", id))
	}
	if err != nil {
		return nil, notFoundAs(err, "connection", id)
	}
	return &ibmailv1.DeleteConnectionResponse{}, nil
}

// TestConnection checks the connection's key against Infobip.
func (s *ConnectionService) TestConnection(ctx context.Context, req *ibmailv1.TestConnectionRequest) (*ibmailv1.TestConnectionResponse, error) {
	c, err := s.load(ctx, req.GetConnectionId())
	if err != nil {
		return nil, err
	}
	cr, err := s.vault.open(ctx, c)
	if err != nil {
		return nil, err
	}
	return s.tester.TestConnection(ctx, c, cr.APIKey), nil
}

// apply copies the named fields of in onto c, validated. The API key is
// handled by the callers, which must seal it.
func (s *ConnectionService) apply(c *store.Connection, in *ibmailv1.Connection, paths []string) error {
	for _, p := range paths {
		switch p {
		case "display_name":
			if err := checkText("connection.display_name", in.GetDisplayName(), 200); err != nil {
				return err
			}
			c.DisplayName = strings.TrimSpace(in.GetDisplayName())
		case "base_url":
			u, err := s.baseURLs.Normalize(in.GetBaseUrl())
			if err != nil {
				return err
			}
			c.BaseURL = u
		case "application_id":
			if err := checkText("connection.application_id", in.GetApplicationId(), 255); err != nil {
				return err
			}
			c.ApplicationID = strings.TrimSpace(in.GetApplicationId())
		case "entity_id":
			if err := checkText("connection.entity_id", in.GetEntityId(), 255); err != nil {
				return err
			}
			c.EntityID = strings.TrimSpace(in.GetEntityId())
		case "rate_limit":
			if r := in.GetRateLimit(); r < 0 || r > 4000 {
				return invalidField("connection.rate_limit", fmt.Sprintf("%d is out of range: 0 (the server's default) to 4000 requests per second", r))
			}
			c.RateLimit = int(in.GetRateLimit())
		}
	}
	return nil
}

func (s *ConnectionService) load(ctx context.Context, id string) (store.Connection, error) {
	if err := checkResourceID("connection_id", id); err != nil {
		return store.Connection{}, err
	}
	c, err := s.store.GetConnection(ctx, id)
	if err != nil {
		return store.Connection{}, notFoundAs(err, "connection", id)
	}
	return c, nil
}

// toProto shows a connection; the API key and webhook secret never leave.
func (s *ConnectionService) toProto(c store.Connection) *ibmailv1.Connection {
	p := &ibmailv1.Connection{
		Id:            c.ID,
		DisplayName:   c.DisplayName,
		ApiKeyHint:    c.APIKeyHint,
		BaseUrl:       c.BaseURL,
		ApplicationId: c.ApplicationID,
		EntityId:      c.EntityID,
		RateLimit:     int32(c.RateLimit),
		CreateTime:    timestamppb.New(c.CreateTime),
		UpdateTime:    timestamppb.New(c.UpdateTime),
		WebhookUrl:    s.webhookURL,
	}
	if !c.PreviousWebhookSecretExpireTime.IsZero() && s.now().Before(c.PreviousWebhookSecretExpireTime) {
		p.PreviousWebhookSecretExpireTime = timestamppb.New(c.PreviousWebhookSecretExpireTime)
	}
	return p
}

// notFoundAs turns the store's ErrNotFound into a NotFound naming the
// resource; other errors pass on.
func notFoundAs(err error, kind, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apiError(codes.NotFound, ReasonNotFound, fmt.Sprintf("%s %q does not exist", kind, id))
	}
	return err
}

// camelToSnake accepts update-mask paths in JSON form (displayName) too.
func camelToSnake(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// newID makes a random resource id such as conn-1f3a9c0d2e.
func newID(prefix string) string {
	b := make([]byte, 5)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	return prefix + "-" + hex.EncodeToString(b)
}
