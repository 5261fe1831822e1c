package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/ibmail/ibmail/store"
)

// webhookTokenKey is the gRPC metadata key that carries a webhook secret;
// the gateway fills it from the `token` query parameter, since Infobip's
// per-message notifyUrl can carry credentials only in the URL.
const webhookTokenKey = "x-ibmail-webhook-token"

// WebhookAuthenticator decides whether a webhook credential is valid and,
// when it is, which connection it belongs to ("" for the server-wide secret).
type WebhookAuthenticator interface {
	AuthenticateWebhook(ctx context.Context, credential string) (connectionID string, ok bool, err error)
}

// StaticWebhookSecret accepts one server-wide secret.
type StaticWebhookSecret struct {
	digest [sha256.Size]byte
}

// NewStaticWebhookSecret returns an authenticator for secret.
func NewStaticWebhookSecret(secret string) *StaticWebhookSecret {
	return &StaticWebhookSecret{digest: sha256.Sum256([]byte(secret))}
}

// AuthenticateWebhook compares digests in constant time, so that neither the
// content nor the length of the secret leaks through timing.
func (s *StaticWebhookSecret) AuthenticateWebhook(_ context.Context, credential string) (string, bool, error) {
	d := sha256.Sum256([]byte(credential))
	return "", subtle.ConstantTimeCompare(d[:], s.digest[:]) == 1, nil
}

// ServerWebhookSecretName is the name of the server-wide webhook secret
// among the store's server secrets.
const ServerWebhookSecretName = "webhook"

// serverSecretReload is how long the stored server-wide secret's digests
// are reused: a rotation or retirement on another replica is seen within
// it, and neither webhook traffic nor wrong credentials drive the store's
// load beyond one read per interval.
const serverSecretReload = time.Second

// ServerWebhookSecret is the server-wide webhook secret kept in the store,
// sealed, and shared by every replica of it; the previous one is accepted
// too while a rotation's grace lasts. Its digests are cached for
// serverSecretReload; a rotation through this replica drops the cache.
type ServerWebhookSecret struct {
	store store.SecretStore
	vault *Vault
	now   func() time.Time

	mu       sync.Mutex
	loadedAt time.Time
	digests  serverDigests
}

// serverDigests are what authentication needs of the stored secret.
type serverDigests struct {
	present        bool
	current        [sha256.Size]byte
	hasPrevious    bool
	previous       [sha256.Size]byte
	previousExpire time.Time
}

// NewServerWebhookSecret returns the stored server-wide secret of st.
func NewServerWebhookSecret(st store.SecretStore, vault *Vault) *ServerWebhookSecret {
	return &ServerWebhookSecret{store: st, vault: vault, now: time.Now}
}

// Ensure returns the stored secret, creating it from candidate when the
// store has none; created says the candidate was stored. Replicas starting
// at once agree on one: the store keeps the first.
func (s *ServerWebhookSecret) Ensure(ctx context.Context, candidate string) (secret string, created bool, err error) {
	sc, created, err := s.store.CreateServerSecret(ctx, store.ServerSecret{
		Name: ServerWebhookSecretName, Sealed: s.vault.sealServer(ServerWebhookSecretName, candidate),
		UpdateTime: s.now().UTC(), SealedUnder: s.vault.sealedUnder(),
	})
	if err != nil {
		return "", false, err
	}
	secret, err = s.vault.openServer(ctx, ServerWebhookSecretName, sc.Sealed)
	if err != nil {
		return "", false, err
	}
	s.invalidate()
	return secret, created, nil
}

func (s *ServerWebhookSecret) invalidate() {
	s.mu.Lock()
	s.loadedAt = time.Time{}
	s.mu.Unlock()
}

// load reads the stored secret's digests, or reuses them when fresh.
func (s *ServerWebhookSecret) load(ctx context.Context) (serverDigests, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loadedAt.IsZero() && time.Since(s.loadedAt) < serverSecretReload {
		return s.digests, nil
	}
	sc, err := s.store.ServerSecret(ctx, ServerWebhookSecretName)
	var d serverDigests
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return serverDigests{}, err
	default:
		current, err := s.vault.openServer(ctx, ServerWebhookSecretName, sc.Sealed)
		if err != nil {
			return serverDigests{}, err
		}
		d.present, d.current = true, sha256.Sum256([]byte(current))
		if sc.PreviousSealed != nil {
			previous, err := s.vault.openServer(ctx, ServerWebhookSecretName, sc.PreviousSealed)
			if err != nil {
				return serverDigests{}, err
			}
			d.hasPrevious, d.previous, d.previousExpire = true, sha256.Sum256([]byte(previous)), sc.PreviousExpireTime
		}
	}
	s.digests, s.loadedAt = d, time.Now()
	return d, nil
}

// rotate replaces the stored secret by next, keeping the current one as
// the previous for grace (none when grace is 0), and returns until when
// the previous is accepted. It creates the secret when there is none.
func (s *ServerWebhookSecret) rotate(ctx context.Context, next string, grace time.Duration) (time.Time, error) {
	defer s.invalidate()
	for attempt := 1; ; attempt++ {
		now := s.now().UTC()
		cur, err := s.store.ServerSecret(ctx, ServerWebhookSecretName)
		if errors.Is(err, store.ErrNotFound) {
			_, created, err := s.store.CreateServerSecret(ctx, store.ServerSecret{Name: ServerWebhookSecretName,
				Sealed: s.vault.sealServer(ServerWebhookSecretName, next), UpdateTime: now, SealedUnder: s.vault.sealedUnder()})
			if err != nil {
				return time.Time{}, err
			}
			if created {
				return time.Time{}, nil
			}
			continue // another replica created it meanwhile: rotate that one
		}
		if err != nil {
			return time.Time{}, err
		}
		upd := store.ServerSecret{Name: ServerWebhookSecretName, Sealed: s.vault.sealServer(ServerWebhookSecretName, next),
			UpdateTime: now, SealedUnder: s.vault.sealedUnder()}
		if grace > 0 {
			// Re-sealed rather than copied, so that the previous value is
			// under this server's key, which the store has just checked.
			prev, err := s.vault.openServer(ctx, ServerWebhookSecretName, cur.Sealed)
			if err != nil {
				return time.Time{}, err
			}
			upd.PreviousSealed = s.vault.sealServer(ServerWebhookSecretName, prev)
			upd.PreviousExpireTime = now.Add(grace)
		}
		err = s.store.UpdateServerSecret(ctx, upd, cur.Sealed)
		if errors.Is(err, store.ErrChanged) && attempt < maxChangeAttempts {
			continue
		}
		if err != nil {
			return time.Time{}, err
		}
		return upd.PreviousExpireTime, nil
	}
}

// retirePrevious stops accepting the previous secret.
func (s *ServerWebhookSecret) retirePrevious(ctx context.Context) error {
	defer s.invalidate()
	for attempt := 1; ; attempt++ {
		cur, err := s.store.ServerSecret(ctx, ServerWebhookSecretName)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur.PreviousSealed == nil {
			return nil
		}
		upd := store.ServerSecret{Name: ServerWebhookSecretName, Sealed: cur.Sealed, UpdateTime: s.now().UTC(), SealedUnder: s.vault.sealedUnder()}
		err = s.store.UpdateServerSecret(ctx, upd, cur.Sealed)
		if errors.Is(err, store.ErrChanged) && attempt < maxChangeAttempts {
			continue
		}
		return err
	}
}

// matches compares a credential's digest with the current and, while its
// grace lasts, the previous secret, both in constant time and always both.
func (d serverDigests) matches(digest [sha256.Size]byte, now time.Time) bool {
	current := subtle.ConstantTimeCompare(digest[:], d.current[:])
	previous := subtle.ConstantTimeCompare(digest[:], d.previous[:])
	ok := d.present && current == 1
	return ok || (d.hasPrevious && now.Before(d.previousExpire) && previous == 1)
}

// AuthenticateWebhook implements WebhookAuthenticator for the server-wide
// secret alone.
func (s *ServerWebhookSecret) AuthenticateWebhook(ctx context.Context, credential string) (string, bool, error) {
	d, err := s.load(ctx)
	if err != nil {
		return "", false, err
	}
	return "", d.matches(sha256.Sum256([]byte(credential)), s.now()), nil
}

// WebhookSecrets accepts the server-wide secret (the configured one, or
// else the stored one) and every connection's own secret, its previous one
// during a rotation's grace too, attributing reports to that connection.
// The store keeps only digests of connections' secrets and is searched by
// digest, so the lookup reveals nothing through timing.
type WebhookSecrets struct {
	static *StaticWebhookSecret
	stored *ServerWebhookSecret
	store  store.ConnectionStore
	now    func() time.Time
}

// NewWebhookSecrets returns an authenticator over the connections in st
// and the server-wide secret: serverWide when it is not empty (it overrides
// the stored one), else stored, when not nil.
func NewWebhookSecrets(serverWide string, stored *ServerWebhookSecret, st store.ConnectionStore) *WebhookSecrets {
	w := &WebhookSecrets{store: st, now: time.Now}
	if serverWide != "" {
		w.static = NewStaticWebhookSecret(serverWide)
	} else {
		w.stored = stored
	}
	return w
}

// AuthenticateWebhook implements WebhookAuthenticator.
func (w *WebhookSecrets) AuthenticateWebhook(ctx context.Context, credential string) (string, bool, error) {
	if w.static != nil {
		if _, ok, _ := w.static.AuthenticateWebhook(ctx, credential); ok {
			return "", true, nil
		}
	}
	if w.stored != nil {
		_, ok, err := w.stored.AuthenticateWebhook(ctx, credential)
		if err != nil {
			return "", false, err
		}
		if ok {
			return "", true, nil
		}
	}
	digest := webhookDigest(credential)
	c, err := w.store.ConnectionByWebhookDigest(ctx, digest)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	current := subtle.ConstantTimeCompare(digest, c.WebhookSecretDigest) == 1
	previous := subtle.ConstantTimeCompare(digest, c.PreviousWebhookSecretDigest) == 1 &&
		w.now().Before(c.PreviousWebhookSecretExpireTime)
	if !current && !previous {
		return "", false, nil // the previous secret's grace is over
	}
	return c.ID, true, nil
}

// basicPassword returns the password of an HTTP Basic authorization value;
// the user name is ignored, as Infobip lets users pick any.
func basicPassword(authorization string) (string, bool) {
	const prefix = "basic "
	if len(authorization) < len(prefix) || !strings.EqualFold(authorization[:len(prefix)], prefix) {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(authorization[len(prefix):]))
	if err != nil {
		return "", false
	}
	_, pass, ok := strings.Cut(string(raw), ":")
	return pass, ok
}

// webhookCredential finds the one credential a gRPC call carries: a Basic
// authorization value or the token entry. More than one value, or a value
// that is not Basic, yields "" (refused), as bearer routes refuse two
// authorization values: an ambiguous call must not pass on its valid half.
func webhookCredential(ctx context.Context) string {
	// The two keys alone: copying the whole metadata, as FromIncomingContext
	// does, cost a webhook call an allocation per header.
	return oneWebhookCredential(metadata.ValueFromIncomingContext(ctx, "authorization"),
		metadata.ValueFromIncomingContext(ctx, webhookTokenKey))
}

// oneWebhookCredential is the webhook's credential rule, for REST and gRPC:
// exactly one credential, a Basic password or a token, else "".
func oneWebhookCredential(authorization, tokens []string) string {
	if len(authorization)+len(tokens) != 1 {
		return ""
	}
	if len(tokens) == 1 {
		return tokens[0]
	}
	pass, ok := basicPassword(authorization[0])
	if !ok {
		return ""
	}
	return pass
}

// authenticateWebhook checks a credential and returns its connection id.
// A credential the same authenticator accepted earlier in the call (see
// withAuthenticatedWebhook) is not checked again.
func authenticateWebhook(ctx context.Context, auth WebhookAuthenticator, credential string) (string, error) {
	if credential == "" {
		return "", errWebhookUnauthenticated
	}
	if a, ok := ctx.Value(authenticatedWebhookKey{}).(*authenticatedWebhook); ok && a.auth == auth && a.credential == credential {
		return a.connectionID, nil
	}
	connectionID, ok, err := auth.AuthenticateWebhook(ctx, credential)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errWebhookUnauthenticated
	}
	return connectionID, nil
}

// authenticatedWebhookKey carries the credential that the REST webhook
// accepted before reading the body, so that the RPC it then calls in
// process, which checks the credential its metadata carries, does not
// check the same one again: for a connection's secret that was a second
// read of the store per call. Only the gateway sets it; a gRPC call's
// context cannot carry it.
type authenticatedWebhookKey struct{}

type authenticatedWebhook struct {
	auth                     WebhookAuthenticator
	credential, connectionID string
}

// withAuthenticatedWebhook records that auth accepted credential, of
// connectionID.
func withAuthenticatedWebhook(ctx context.Context, auth WebhookAuthenticator, credential, connectionID string) context.Context {
	return context.WithValue(ctx, authenticatedWebhookKey{}, &authenticatedWebhook{auth: auth, credential: credential, connectionID: connectionID})
}

// errWebhookUnauthenticated never says which part of a credential was
// wrong, and never echoes it.
var errWebhookUnauthenticated = apiError(codes.Unauthenticated, ReasonWebhookUnauthorized,
	`webhook credential missing or wrong: send the webhook secret as the HTTP Basic password (any user name) or as the query parameter "token"`)
