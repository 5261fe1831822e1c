package server

import (
	"context"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
)

// AccessService implements ibmail.v1.AccessService: what the caller's own
// token may do, for clients that offer only that.
type AccessService struct {
	ibmailv1.UnimplementedAccessServiceServer
	auth *tokenAuth
}

// GetCaller names the caller's token and its role. The call itself needs a
// valid token when tokens are configured, so an unknown token never gets
// this far.
func (s *AccessService) GetCaller(ctx context.Context, _ *ibmailv1.GetCallerRequest) (*ibmailv1.GetCallerResponse, error) {
	resp := &ibmailv1.GetCallerResponse{Name: s.auth.callerName(ctx), Role: ibmailv1.CallerRole_CALLER_ROLE_ADMIN,
		TokensRequired: s.auth.tokens.Len() > 0}
	if !resp.TokensRequired {
		return resp, nil
	}
	token, err := bearerToken(ctx)
	if err != nil {
		return nil, err
	}
	entry, ok := s.auth.tokens.lookup(token)
	if !ok {
		return nil, errTokenInvalid
	}
	switch entry.role {
	case RoleRead:
		resp.Role = ibmailv1.CallerRole_CALLER_ROLE_READ
	case RoleSend:
		resp.Role = ibmailv1.CallerRole_CALLER_ROLE_SEND
	case RoleAdmin:
		resp.Role = ibmailv1.CallerRole_CALLER_ROLE_ADMIN
	default:
		resp.Role = ibmailv1.CallerRole_CALLER_ROLE_UNSPECIFIED
	}
	return resp, nil
}
