package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// Role is what a caller token may do. Roles are ordered: each includes the
// ones before it.
type Role int

// The roles a tokens file may grant.
const (
	// RoleNone is needed by the calls that take no caller token: the
	// webhook (it has its own secret), health and reflection.
	RoleNone Role = iota
	// RoleRead may read: classification, profiles, events, reports.
	RoleRead
	// RoleSend may also send.
	RoleSend
	// RoleAdmin may also manage connections, senders and suppressions.
	RoleAdmin
)

// String returns the role as a tokens file spells it.
func (r Role) String() string {
	switch r {
	case RoleNone:
		return "none"
	case RoleRead:
		return "read"
	case RoleSend:
		return "send"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// methodRoles is the one table of the role each RPC needs. A method missing
// from it needs admin (see RequiredRole), so that an RPC added later is
// closed until someone decides otherwise.
var methodRoles = map[string]Role{
	// The webhook authenticates Infobip with its own secret, which Infobip
	// cannot send as a bearer token.
	"/ibmail.v1.DeliveryReportService/IngestDeliveryReports": RoleNone,
	"/ibmail.v1.DeliveryReportService/IngestTrackingReports": RoleNone,
	"/ibmail.v1.DeliveryReportService/IngestPlatformEvents":  RoleNone,
	"/ibmail.v1.DeliveryReportService/ListDeliveryReports":   RoleRead,
	"/ibmail.v1.DeliveryReportService/ListTrackingReports":   RoleRead,
	"/ibmail.v1.DeliveryReportService/ListRejectedPayloads":  RoleRead,
	"/ibmail.v1.DeliveryReportService/GetRejectedPayload":    RoleRead,
	"/ibmail.v1.ClassifierService/ClassifyTrackingReport":    RoleRead,
	"/ibmail.v1.SendingDomainService/ListSendingDomains":     RoleRead,
	"/ibmail.v1.SendingDomainService/GetSendingDomain":       RoleRead,

	"/ibmail.v1.ClassifierService/ClassifyReport":       RoleRead,
	"/ibmail.v1.ClassifierService/BatchClassifyReports": RoleRead,
	"/ibmail.v1.ProfileService/ListProfileEvents":       RoleRead,
	"/ibmail.v1.ProfileService/SearchProfiles":          RoleRead,
	"/ibmail.v1.EventService/WatchEvents":               RoleRead,

	"/ibmail.v1.RuleService/GetRules":         RoleRead,
	"/ibmail.v1.RuleService/ListRuleVersions": RoleRead,
	"/ibmail.v1.RuleService/GetRuleVersion":   RoleRead,
	"/ibmail.v1.RuleService/TestRules":        RoleRead,

	"/ibmail.v1.AccessService/GetCaller":         RoleRead,
	"/ibmail.v1.OperationService/GetOperation":   RoleRead,
	"/ibmail.v1.OperationService/ListOperations": RoleRead,

	"/ibmail.v1.SendService/CreateSend":         RoleSend,
	"/ibmail.v1.SendService/GetSend":            RoleSend,
	"/ibmail.v1.SendService/ListSends":          RoleSend,
	"/ibmail.v1.SendService/ListSendRecipients": RoleSend,

	"/ibmail.v1.ConnectionService/CreateConnection":                  RoleAdmin,
	"/ibmail.v1.ConnectionService/GetConnection":                     RoleAdmin,
	"/ibmail.v1.ConnectionService/ListConnections":                   RoleAdmin,
	"/ibmail.v1.ConnectionService/UpdateConnection":                  RoleAdmin,
	"/ibmail.v1.ConnectionService/DeleteConnection":                  RoleAdmin,
	"/ibmail.v1.ConnectionService/TestConnection":                    RoleAdmin,
	"/ibmail.v1.ConnectionService/RotateWebhookSecret":               RoleAdmin,
	"/ibmail.v1.ConnectionService/RetirePreviousWebhookSecret":       RoleAdmin,
	"/ibmail.v1.ConnectionService/RotateServerWebhookSecret":         RoleAdmin,
	"/ibmail.v1.ConnectionService/RetirePreviousServerWebhookSecret": RoleAdmin,
	"/ibmail.v1.SenderService/CreateSender":                          RoleAdmin,
	"/ibmail.v1.SenderService/GetSender":                             RoleAdmin,
	"/ibmail.v1.SenderService/ListSenders":                           RoleAdmin,
	"/ibmail.v1.SenderService/DeleteSender":                          RoleAdmin,
	"/ibmail.v1.SuppressionService/ListSuppressions":                 RoleAdmin,
	"/ibmail.v1.SuppressionService/DeleteSuppression":                RoleAdmin,
	"/ibmail.v1.SuppressionService/ImportSuppressions":               RoleAdmin,
	"/ibmail.v1.SuppressionService/ExportSuppressions":               RoleAdmin,
	"/ibmail.v1.SendingDomainService/UnblockSendingDomain":           RoleAdmin,
	"/ibmail.v1.RuleService/UpdateRules":                             RoleAdmin,
	"/ibmail.v1.RuleService/RestoreRuleVersion":                      RoleAdmin,
	"/ibmail.v1.DeliveryReportService/ReclassifyReports":             RoleAdmin,
	"/ibmail.v1.OperationService/CancelOperation":                    RoleAdmin,
}

// openPrefixes are whole services that need no token. Health must answer
// load balancers and orchestrators, which hold no token. Reflection stays
// open too: it describes only the API's schema, which is public in this
// repository, and it lets grpcurl discover the services before a token is
// added; it serves no data.
var openPrefixes = []string{"/grpc.health.v1.Health/", "/grpc.reflection."}

// RequiredRole returns the role a full gRPC method name needs: RoleNone for
// the webhook, health and reflection, and RoleAdmin for a method the table
// does not know.
func RequiredRole(fullMethod string) Role {
	if r, ok := methodRoles[fullMethod]; ok {
		return r
	}
	for _, p := range openPrefixes {
		if strings.HasPrefix(fullMethod, p) {
			return RoleNone
		}
	}
	return RoleAdmin
}

// MethodRoles returns a copy of the role table: every ibmail.v1 method and
// the role it needs, for documentation and for the test that keeps the
// table complete.
func MethodRoles() map[string]Role {
	out := make(map[string]Role, len(methodRoles))
	for m, r := range methodRoles {
		out[m] = r
	}
	return out
}

// minTokenLen is the shortest plain token a tokens file may hold: shorter
// ones can be guessed. A sha256: digest is taken as it is.
const minTokenLen = 16

// Tokens is a set of caller tokens and their roles. It holds only SHA-256
// digests, so that neither memory dumps nor the tokens file (when it uses
// the sha256: form) give a usable secret away.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	digest [sha256.Size]byte
	role   Role
	// id names the token in logs and in rate limiting without revealing it:
	// the tokens file's line number.
	id string
	// name is the operator's name of the token (the line's third field),
	// recorded with what the token changes, such as a rules version; the
	// id when the line names none.
	name string
}

// Len returns how many tokens the set holds.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Add admits token with role; it is kept only as its digest. It is for
// tokens made in code (tests, internal callers); files go through
// ParseTokens.
func (t *Tokens) Add(role Role, token string) {
	t.add(sha256.Sum256([]byte(token)), role, fmt.Sprintf("token-%d", len(t.entries)+1))
}

func (t *Tokens) add(digest [sha256.Size]byte, role Role, id string) {
	t.entries = append(t.entries, tokenEntry{digest: digest, role: role, id: id})
}

// lookup finds the token's entry. It compares the token's digest with every
// entry's, in constant time and without stopping at a match, so that the
// time taken reveals neither which entry matched nor how much of it.
func (t *Tokens) lookup(token string) (tokenEntry, bool) {
	d := sha256.Sum256([]byte(token))
	var found tokenEntry
	ok := 0
	for _, e := range t.entries {
		match := subtle.ConstantTimeCompare(d[:], e.digest[:])
		if match == 1 {
			found = e
		}
		ok |= match
	}
	return found, ok == 1
}

// LoadTokensFile reads a tokens file; see ParseTokens for its format.
func LoadTokensFile(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	t, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return t, nil
}

// ParseTokens reads lines of `ROLE TOKEN [NAME]`, ROLE being read, send or
// admin, NAME an optional name of up to 64 letters, digits, '.', '-' and
// '_' that changes made with the token record (default: `line-N`).
// TOKEN is the token itself (at least 16 characters) or `sha256:` and the
// 64 hex digits of its SHA-256 digest, so that the file need hold no usable
// secret. Blank lines and lines starting with # are skipped. An error names
// the line but never repeats the token.
func ParseTokens(r io.Reader) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 && len(fields) != 3 {
			return nil, fmt.Errorf("line %d: want ROLE TOKEN [NAME], got %d fields", n, len(fields))
		}
		name := fmt.Sprintf("line-%d", n)
		if len(fields) == 3 {
			if !validTokenName(fields[2]) {
				return nil, fmt.Errorf("line %d: a token's name is up to 64 letters, digits, '.', '-' and '_'", n)
			}
			name = fields[2]
		}
		var role Role
		switch fields[0] {
		case "read":
			role = RoleRead
		case "send":
			role = RoleSend
		case "admin":
			role = RoleAdmin
		default:
			return nil, fmt.Errorf("line %d: unknown role %q: use read, send or admin", n, fields[0])
		}
		var digest [sha256.Size]byte
		if hexDigest, ok := strings.CutPrefix(fields[1], "sha256:"); ok {
			b, err := hex.DecodeString(hexDigest)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("line %d: a sha256: token must be followed by 64 hex digits", n)
			}
			copy(digest[:], b)
		} else {
			if len(fields[1]) < minTokenLen {
				return nil, fmt.Errorf("line %d: token shorter than %d characters", n, minTokenLen)
			}
			digest = sha256.Sum256([]byte(fields[1]))
		}
		if prev, dup := seen[digest]; dup {
			// One token with two roles would make its role depend on order.
			return nil, fmt.Errorf("line %d: the same token as line %d", n, prev)
		}
		seen[digest] = n
		t.add(digest, role, fmt.Sprintf("line-%d", n))
		t.entries[len(t.entries)-1].name = name
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t.entries) == 0 {
		// An empty file is a mistake, not a wish to run without auth.
		return nil, errors.New("no tokens")
	}
	return t, nil
}

func validTokenName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// callerName names the token of a call that authenticate admitted, for the
// record of what it changes: the token's name, or "anonymous" when the
// server runs without tokens.
func (a *tokenAuth) callerName(ctx context.Context) string {
	if a.tokens.Len() == 0 {
		return "anonymous"
	}
	token, err := bearerToken(ctx)
	if err != nil {
		return "anonymous"
	}
	entry, ok := a.tokens.lookup(token)
	if !ok {
		return "anonymous"
	}
	if entry.name == "" {
		return entry.id
	}
	return entry.name
}

// tokenAuth checks caller tokens, roles and per-token rates for every RPC.
// Without tokens (tokens nil) it admits every call.
type tokenAuth struct {
	tokens  *Tokens
	limiter *tokenLimiter
	log     *slog.Logger
}

// needsToken tells whether authenticate checks anything for fullMethod:
// not for the calls that need no role, nor without tokens.
func (a *tokenAuth) needsToken(fullMethod string) bool {
	return a.tokens.Len() > 0 && RequiredRole(fullMethod) != RoleNone
}

// authenticate returns nil when the call may go on. It is the one check of
// unary and stream calls, gRPC and REST: gRPC runs it on the call's
// metadata as the call arrives (tap), the gateway on the metadata it would
// pass on, before it reads the body (guard).
func (a *tokenAuth) authenticate(ctx context.Context, fullMethod string) error {
	if !a.needsToken(fullMethod) {
		return nil
	}
	need := RequiredRole(fullMethod)
	token, err := bearerToken(ctx)
	if err != nil {
		return err
	}
	entry, ok := a.tokens.lookup(token)
	if !ok {
		return errTokenInvalid
	}
	// Rate before role: a token hammering routes it may not call is still
	// hammering.
	if err := a.limiter.allow(entry.id); err != nil {
		return err
	}
	if entry.role < need {
		return apiError(codes.PermissionDenied, ReasonPermissionDenied,
			fmt.Sprintf("this call needs a token with the %s role; this token has %s", need, entry.role))
	}
	return nil
}

// The errors of a missing or wrong token never say more than that: no part
// of what was sent is echoed.
var (
	errTokenMissing = apiError(codes.Unauthenticated, ReasonTokenMissing,
		"this call needs a caller token: send `authorization: Bearer <token>`")
	errTokenMalformed = apiError(codes.Unauthenticated, ReasonTokenMissing,
		"the authorization value is not `Bearer <token>`")
	errTokenInvalid = apiError(codes.Unauthenticated, ReasonTokenInvalid, "the caller token is not valid")
)

// bearerToken returns the token of the call's one authorization value.
func bearerToken(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", errTokenMissing
	}
	if len(vals) > 1 {
		return "", errTokenMalformed
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", errTokenMalformed
	}
	return token, nil
}

// tap checks the token of every gRPC call when its headers arrive, before
// the transport reads a byte of its message: a refused call costs neither
// the memory of its message nor the work of decoding it. It is the gRPC
// side of the one check; the REST gateway makes the same check before it
// reads a body (see gateway.guard), and its calls, which arrive over the
// gateway's own in-process connection (inprocConn, which runs this tap
// too), are not checked (nor counted against the token's rate) a second
// time.
func (a *tokenAuth) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if fromGateway(ctx) {
		return ctx, nil
	}
	incoming := metadata.NewIncomingContext(ctx, info.Header)
	if isWebhookMethod(info.FullMethodName) {
		// The webhook takes no caller token but its own secret, which the
		// handler checks against the store. A call that carries no
		// credential at all is refused here, before its message (up to the
		// webhook's limit) is read.
		var err error
		if webhookCredential(incoming) == "" {
			err = errWebhookUnauthenticated
			observeRPC(ctx, a.log, info.FullMethodName, status.Code(err), 0)
		}
		return ctx, err
	}
	err := a.authenticate(incoming, info.FullMethodName)
	if err != nil {
		observeRPC(ctx, a.log, info.FullMethodName, status.Code(err), 0)
	}
	return ctx, err
}

// newTokenAuth returns the caller token check. With no tokens it lets
// everything through: cmd/ibmaild allows that only on loopback. The
// internal token it returns is an admin token for the server's own
// in-process callers, such as the sandbox provisioning; it is random per
// start and never written anywhere.
func newTokenAuth(tokens *Tokens, perSecond float64, log *slog.Logger) (*tokenAuth, string) {
	if tokens.Len() == 0 {
		return &tokenAuth{log: log}, ""
	}
	// Copy, so that the internal token stays out of the caller's set.
	own := &Tokens{entries: append([]tokenEntry(nil), tokens.entries...)}
	b := make([]byte, 32)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	internal := hex.EncodeToString(b)
	own.add(sha256.Sum256([]byte(internal)), RoleAdmin, "internal")
	return &tokenAuth{tokens: own, limiter: newTokenLimiter(perSecond), log: log}, internal
}

// InternalContext returns ctx carrying the server's own admin token, for
// calls through ClientConn made by the server's process itself. Without
// tokens configured it returns ctx unchanged.
func (s *Server) InternalContext(ctx context.Context) context.Context {
	if s.internalToken == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.internalToken)
}
