package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ibmail/ibmail/store"
)

// errorDomain is the ErrorInfo domain of every error ibmail returns.
const errorDomain = "ibmail.v1"

// Reason is the machine-readable ErrorInfo reason a client can switch on.
type Reason string

// The reasons ibmail returns. They are a public contract: add, never rename.
const (
	ReasonInvalidArgument  Reason = "INVALID_ARGUMENT"
	ReasonInvalidPageToken Reason = "INVALID_PAGE_TOKEN"
	ReasonMalformedBody    Reason = "MALFORMED_BODY"
	ReasonBodyTooLarge     Reason = "BODY_TOO_LARGE"
	// ReasonBodyTimeout: the body fell behind the minimum rate or took
	// longer than the longest a body may take (HTTP 408).
	ReasonBodyTimeout         Reason = "BODY_TIMEOUT"
	ReasonUnsupportedMedia    Reason = "UNSUPPORTED_MEDIA_TYPE"
	ReasonWebhookUnauthorized Reason = "WEBHOOK_UNAUTHENTICATED"
	ReasonStoreUnavailable    Reason = "STORE_UNAVAILABLE"
	ReasonNotFound            Reason = "NOT_FOUND"
	ReasonAlreadyExists       Reason = "ALREADY_EXISTS"
	ReasonInUse               Reason = "IN_USE"
	// ReasonShuttingDown ends a stream because the server is stopping: the
	// client reconnects, to another replica or later, from its last position.
	ReasonShuttingDown Reason = "SHUTTING_DOWN"
	ReasonInternal     Reason = "INTERNAL"
	// ReasonTokenMissing: the call carries no `authorization: Bearer` token,
	// or a malformed one.
	ReasonTokenMissing Reason = "TOKEN_MISSING"
	// ReasonTokenInvalid: the bearer token is not in the tokens file.
	ReasonTokenInvalid Reason = "TOKEN_INVALID"
	// ReasonPermissionDenied: the token's role is below the one the call
	// needs; the message names it.
	ReasonPermissionDenied Reason = "PERMISSION_DENIED"
	// ReasonRateLimited: the token made more requests than --token-rate
	// allows; a RetryInfo says when to try again.
	ReasonRateLimited Reason = "RATE_LIMITED"
	// ReasonEncryptionKeyRetired: this replica's encryption key is no
	// longer the one the store's secrets are sealed under (a key rotation);
	// another replica can serve.
	ReasonEncryptionKeyRetired Reason = "ENCRYPTION_KEY_RETIRED"
	// ReasonWebhookSecretConfigured: the server-wide webhook secret is set
	// by --webhook-secret, so it cannot be rotated through the API.
	ReasonWebhookSecretConfigured Reason = "WEBHOOK_SECRET_CONFIGURED"
	// ReasonConcurrentChange: the resource changed while the call changed
	// it; retry.
	ReasonConcurrentChange Reason = "CONCURRENT_CHANGE"
	// ReasonIdempotencyKeyReused: the sender account already has a send
	// with this idempotency key, made by a different request; the ErrorInfo
	// metadata "send" names it. A new request needs a new key.
	ReasonIdempotencyKeyReused Reason = "IDEMPOTENCY_KEY_REUSED"
)

// httpStatusByReason holds the HTTP statuses that no gRPC code expresses;
// every other error takes the gateway's standard mapping of its code.
var httpStatusByReason = map[Reason]int{
	ReasonBodyTooLarge:     http.StatusRequestEntityTooLarge,
	ReasonBodyTimeout:      http.StatusRequestTimeout,
	ReasonUnsupportedMedia: http.StatusUnsupportedMediaType,
	ReasonMethodNotAllowed: http.StatusMethodNotAllowed,
}

// apiError builds a status error with an ErrorInfo. Extra details (such as a
// BadRequest naming the field) may follow.
func apiError(code codes.Code, reason Reason, msg string, details ...*errdetails.BadRequest_FieldViolation) error {
	st := status.New(code, msg)
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: string(reason), Domain: errorDomain})
	if err != nil {
		return st.Err()
	}
	if len(details) > 0 {
		if d, err := withInfo.WithDetails(&errdetails.BadRequest{FieldViolations: details}); err == nil {
			withInfo = d
		}
	}
	return withInfo.Err()
}

// invalidField reports a bad request field, naming it in the message and in
// a BadRequest detail.
func invalidField(field, msg string) error {
	return apiError(codes.InvalidArgument, ReasonInvalidArgument, field+": "+msg,
		&errdetails.BadRequest_FieldViolation{Field: field, Description: msg})
}

// toStatus turns any error a handler returns into a gRPC status error. It is
// the one place where failures of lower layers get their codes.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var reused *store.IdempotencyKeyReusedError
	if errors.As(err, &reused) {
		return idempotencyKeyReused(reused.SendID)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, store.ErrUnavailable):
		return apiError(codes.Unavailable, ReasonStoreUnavailable, "the store is unavailable; try again later")
	case errors.Is(err, store.ErrNotFound):
		return apiError(codes.NotFound, ReasonNotFound, "not found")
	case errors.Is(err, store.ErrAlreadyExists):
		return apiError(codes.AlreadyExists, ReasonAlreadyExists, "already exists")
	case errors.Is(err, store.ErrKeyMismatch):
		return errKeyRetired
	case errors.Is(err, store.ErrChanged):
		return apiError(codes.Aborted, ReasonConcurrentChange, "changed by another call meanwhile; retry")
	case errors.Is(err, store.ErrInUse):
		return apiError(codes.FailedPrecondition, ReasonInUse, "in use")
	default:
		return apiError(codes.Internal, ReasonInternal, "internal error")
	}
}

// idempotencyKeyReused answers a send request whose idempotency key the
// sender account already used for a different request: ALREADY_EXISTS
// (HTTP 409), naming the send that holds the key in the ErrorInfo metadata.
func idempotencyKeyReused(sendID string) error {
	st := status.New(codes.AlreadyExists, "idempotency_key: already used by send "+sendID+
		" of this sender account for a different request; a new request needs a new key")
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason: string(ReasonIdempotencyKeyReused), Domain: errorDomain,
		Metadata: map[string]string{"send": sendID},
	})
	if err != nil {
		return st.Err()
	}
	return withInfo.Err()
}

// errorCodeInterceptor makes sure every error leaving a handler is a status
// with a deliberate code, never an accidental Unknown carrying internals.
func errorCodeInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		err = safeStatus(toStatus(err))
	}
	return resp, err
}

// errorCodeStreamInterceptor is errorCodeInterceptor for streams: a stream's
// error is a status too, and its message travels in a trailer, where an
// unbounded echo of the request would break the connection itself.
func errorCodeStreamInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := handler(srv, ss); err != nil {
		return safeStatus(toStatus(err))
	}
	return nil
}

// reasonOf returns the ErrorInfo reason of a status, if it has one.
func reasonOf(st *status.Status) Reason {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return Reason(info.GetReason())
		}
	}
	return ""
}

// httpStatusOf maps an error to the HTTP status the gateway answers with.
func httpStatusOf(err error) int {
	st := status.Convert(err)
	if code, ok := httpStatusByReason[reasonOf(st)]; ok {
		return code
	}
	return runtime.HTTPStatusFromCode(st.Code())
}

// writeHTTPError answers a plain HTTP request (outside the gateway's routing)
// with the same google.rpc.Status body the gateway writes.
func writeHTTPError(mux *runtime.ServeMux, w http.ResponseWriter, r *http.Request, err error) {
	runtime.HTTPError(r.Context(), mux, gatewayMarshaler, w, r, err)
}

// ReasonMethodNotAllowed: the path exists but not for this HTTP method; the
// Allow header lists the methods it takes.
const ReasonMethodNotAllowed Reason = "METHOD_NOT_ALLOWED"

// maxMessageBytes bounds every error message and stored reason: a hostile
// input echoed into a message must neither bloat answers nor the store.
const maxMessageBytes = 1024

// safeText makes s valid UTF-8 (each invalid byte becomes U+FFFD, so that
// JSON and protobuf can carry it), shows control characters (NUL among
// them, which PostgreSQL text refuses, and CR/LF, which would forge log
// lines) as U+FFFD, and cuts it to at most max bytes on a rune boundary.
// It is the one sanitiser of error messages and stored reasons.
func safeText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// safeStatus returns err's status with its message and its BadRequest
// descriptions made safe (see safeText), keeping every detail.
func safeStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok || st == nil {
		return err
	}
	p := st.Proto()
	changed := false
	if m := safeText(p.GetMessage(), maxMessageBytes); m != p.GetMessage() {
		p.Message, changed = m, true
	}
	for _, a := range p.GetDetails() {
		var br errdetails.BadRequest
		if a.MessageIs(&br) && a.UnmarshalTo(&br) == nil {
			fixed := false
			for _, v := range br.GetFieldViolations() {
				if d := safeText(v.GetDescription(), maxMessageBytes); d != v.GetDescription() {
					v.Description, fixed = d, true
				}
				if f := safeText(v.GetField(), 256); f != v.GetField() {
					v.Field, fixed = f, true
				}
			}
			if fixed {
				if n, err := anypb.New(&br); err == nil {
					a.Value, changed = n.Value, true
				}
			}
		}
	}
	if !changed {
		return err
	}
	return status.FromProto(p).Err()
}

// reasonByCode is the ErrorInfo reason of an error that reached the
// gateway's error handler without one (errors of grpc-go or the gateway
// itself, such as a message over the in-process size limit), so that every
// answer carries a reason.
var reasonByCode = map[codes.Code]Reason{
	codes.InvalidArgument:   ReasonInvalidArgument,
	codes.NotFound:          ReasonNotFound,
	codes.AlreadyExists:     ReasonAlreadyExists,
	codes.ResourceExhausted: ReasonBodyTooLarge,
	codes.Unavailable:       ReasonStoreUnavailable,
	codes.Unimplemented:     ReasonMethodNotAllowed,
}

// withReason returns err with an ErrorInfo reason, adding the one of its
// code (INTERNAL when the code has none) when it has none.
func withReason(err error) error {
	st := status.Convert(err)
	if reasonOf(st) != "" || st.Code() == codes.OK {
		return err
	}
	reason, ok := reasonByCode[st.Code()]
	if !ok {
		reason = ReasonInternal
	}
	return apiError(st.Code(), reason, st.Message())
}
