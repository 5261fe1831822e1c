package server_test

import (
	"testing"

	"github.com/ibmail/ibmail/server"
)

// authEnv is a testEnv whose server requires caller tokens.
type authEnv struct {
	*testEnv
}

func newAuthEnv(t testing.TB, tokens *server.Tokens, perSecond float64) *authEnv {
	t.Helper()
	return &authEnv{newTestEnv(t, withServerOptions(func(o *server.Options) {
		o.Tokens, o.TokenRate = tokens, perSecond
	}))}
}
