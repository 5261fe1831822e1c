// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the database that IBMAIL_TEST_POSTGRES names (by default the
// local test database), or a skip with a message saying how to get one.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// envDSN names the database the tests use. Each test works in a schema of
// its own, created and dropped around it, so the database may be shared.
const (
	envDSN     = "IBMAIL_TEST_POSTGRES"
	defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

var reach struct {
	once sync.Once
	dsn  string
	err  error
}

// RequireDSN returns the test database's DSN. When IBMAIL_TEST_POSTGRES
// is not set and nothing answers at the default address, the test is
// skipped, so that "go test ./..." passes on a machine without PostgreSQL;
// when it is set, an unreachable database fails the test instead, so that a
// CI that asked for these tests cannot pass without running them.
func RequireDSN(tb testing.TB) string {
	tb.Helper()
	reach.once.Do(func() {
		reach.dsn = os.Getenv(envDSN)
		if reach.dsn == "" {
			reach.dsn = defaultDSN
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, reach.dsn)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		reach.err = err
	})
	if reach.err != nil {
		if os.Getenv(envDSN) != "" {
			tb.Fatalf("PostgreSQL at %s=%q: %v", envDSN, Redact(reach.dsn), reach.err)
		}
		tb.Skipf("PostgreSQL not reachable at %s (%v): start one there (user postgres, database test, trust auth) "+
			"or set %s to the URL of a database the tests may create schemas in", defaultDSN, reach.err, envDSN)
	}
	return reach.dsn
}

// Redact hides a password in a URL DSN before it goes into a message.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

// FreshSchema creates a schema of a random name and returns a DSN whose
// search_path is that schema, so that each test has an empty database of
// its own and tests can run in parallel. The schema is dropped when the
// test ends, after the stores it opened are closed (cleanups run last
// registered, first run).
func FreshSchema(tb testing.TB) string {
	tb.Helper()
	dsn := RequireDSN(tb)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "ibmail_test_" + hex.EncodeToString(b[:])
	Exec(tb, dsn, `CREATE SCHEMA `+name)
	tb.Cleanup(func() { Exec(tb, dsn, `DROP SCHEMA `+name+` CASCADE`) })
	return WithSearchPath(dsn, name)
}

// WithSearchPath adds the search_path runtime parameter to a DSN, in URL or
// key=value form.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// Exec runs one statement on a connection of its own.
func Exec(tb testing.TB, dsn, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}
