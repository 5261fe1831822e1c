package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
)

// httpStatusByReason holds the HTTP statuses that no gRPC code expresses;
// every other error takes the gateway's standard mapping of its code.
var httpStatusByReason = map[Reason]int{
	ReasonBodyTooLarge:     http.StatusRequestEntityTooLarge,
	ReasonBodyTimeout:      http.StatusRequestTimeout,
	ReasonUnsupportedMedia: http.StatusUnsupportedMediaType,
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
	case errors.Is(err, store.ErrInUse):
		return apiError(codes.FailedPrecondition, ReasonInUse, "in use")
	default:
		return apiError(codes.Internal, ReasonInternal, "internal error")
	}
}

// errorCodeInterceptor makes sure every error leaving a handler is a status
// with a deliberate code, never an accidental Unknown carrying internals.
func errorCodeInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, toStatus(err)
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
