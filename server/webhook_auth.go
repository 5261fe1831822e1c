package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"

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

// WebhookSecrets accepts the server-wide secret, if one is set, and every
// connection's own secret, attributing reports to that connection. The
// store keeps only digests, so the lookup reveals nothing through timing.
type WebhookSecrets struct {
	static *StaticWebhookSecret
	store  store.ConnectionStore
}

// NewWebhookSecrets returns an authenticator over the connections in st and,
// when serverWide is not empty, that secret too.
func NewWebhookSecrets(serverWide string, st store.ConnectionStore) *WebhookSecrets {
	w := &WebhookSecrets{store: st}
	if serverWide != "" {
		w.static = NewStaticWebhookSecret(serverWide)
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
	c, err := w.store.ConnectionByWebhookDigest(ctx, webhookDigest(credential))
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
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
	md, _ := metadata.FromIncomingContext(ctx)
	return oneWebhookCredential(md.Get("authorization"), md.Get(webhookTokenKey))
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
func authenticateWebhook(ctx context.Context, auth WebhookAuthenticator, credential string) (string, error) {
	if credential == "" {
		return "", errWebhookUnauthenticated
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

// errWebhookUnauthenticated never says which part of a credential was
// wrong, and never echoes it.
var errWebhookUnauthenticated = apiError(codes.Unauthenticated, ReasonWebhookUnauthorized,
	`webhook credential missing or wrong: send the webhook secret as the HTTP Basic password (any user name) or as the query parameter "token"`)
