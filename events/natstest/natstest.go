// Package natstest gives tests of any package the NATS JetStream server
// they publish to (IBMAIL_TEST_NATS, by default the local one), or a skip
// with a message saying how to get one.
package natstest

import (
	"context"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// envNATS names the NATS server the tests publish to. It must have
// JetStream enabled; each test uses a stream and subjects of its own, and
// deletes the stream when it ends, so the server may be shared.
const (
	envNATS     = "IBMAIL_TEST_NATS"
	defaultNATS = "nats://127.0.0.1:4222"
)

var natsReach struct {
	once sync.Once
	url  string
	err  error
}

// Require connects to the test NATS server. When IBMAIL_TEST_NATS is
// not set and no JetStream answers at the default address, the test is
// skipped, so that "go test ./..." passes on a machine without NATS; when
// it is set, an unreachable server fails the test, so that a CI that asked
// for these tests cannot pass without running them.
func Require(t testing.TB) *nats.Conn {
	t.Helper()
	natsReach.once.Do(func() {
		natsReach.url = os.Getenv(envNATS)
		if natsReach.url == "" {
			natsReach.url = defaultNATS
		}
		nc, err := nats.Connect(natsReach.url, nats.Timeout(3*time.Second))
		if err == nil {
			defer nc.Close()
			var js jetstream.JetStream
			if js, err = jetstream.New(nc); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, err = js.AccountInfo(ctx)
			}
		}
		natsReach.err = err
	})
	if natsReach.err != nil {
		if os.Getenv(envNATS) != "" {
			t.Fatalf("NATS JetStream at %s=%q: %v", envNATS, RedactURL(natsReach.url), natsReach.err)
		}
		t.Skipf("NATS JetStream not reachable at %s (%v): start one there (nats-server -js) "+
			"or set %s to the URL of a server with JetStream", defaultNATS, natsReach.err, envNATS)
	}
	nc, err := nats.Connect(natsReach.url, nats.Timeout(3*time.Second))
	if err != nil {
		t.Fatalf("connect to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// RedactURL hides a user, password or token before a URL goes into a
// message.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = url.User("xxxxx")
		return u.String()
	}
	return s
}

// URL is the test server's URL; call Require first.
func URL() string { return natsReach.url }
