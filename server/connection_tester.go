package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/infobip"
	"github.com/ibmail/ibmail/store"
)

// ConnectionTester checks a connection's key against Infobip.
type ConnectionTester interface {
	TestConnection(ctx context.Context, c store.Connection, apiKey string) *ibmailv1.TestConnectionResponse
}

// requiredScopes are the API key scopes the integration needs.
var requiredScopes = []string{"email:manage", "email:message:send", "message:send"}

// InfobipTester tests connections with Infobip's cheapest authenticated
// call, GET /email/1/domains?size=1. It never reads /email/1/reports, which
// would consume reports.
type InfobipTester struct {
	HTTPClient *http.Client
}

// TestConnection implements ConnectionTester.
func (t InfobipTester) TestConnection(ctx context.Context, c store.Connection, apiKey string) *ibmailv1.TestConnectionResponse {
	resp := &ibmailv1.TestConnectionResponse{RequiredScopes: requiredScopes}
	client, err := infobip.New(infobip.Config{BaseURL: c.BaseURL, APIKey: apiKey, ApplicationID: c.ApplicationID, EntityID: c.EntityID, HTTPClient: t.HTTPClient})
	if err != nil {
		resp.Result, resp.Message = ibmailv1.ConnectionTestResult_CONNECTION_TEST_RESULT_UNEXPECTED, "the connection cannot be used: "+err.Error()
		return resp
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	domains, err := client.Domains(ctx, 1)
	var apiErr *infobip.APIError
	if errors.As(err, &apiErr) {
		resp.HttpStatus = int32(apiErr.StatusCode)
	}
	switch {
	case err == nil:
		resp.HttpStatus = http.StatusOK
	case infobip.IsUnauthorized(err):
		resp.Result = ibmailv1.ConnectionTestResult_CONNECTION_TEST_RESULT_UNAUTHORIZED
		resp.Message = "Infobip refused the API key (401 Unauthorized): the key is wrong, revoked or expired. " +
			"Create a key with the scopes " + strings.Join(requiredScopes, ", ") + " and update the connection's api_key."
		return resp
	case infobip.IsForbidden(err):
		resp.Result = ibmailv1.ConnectionTestResult_CONNECTION_TEST_RESULT_FORBIDDEN
		resp.Message = "Infobip knows the API key but refused the call (403 Forbidden): the key lacks a scope. " +
			"The integration needs " + strings.Join(requiredScopes, ", ") + "."
		return resp
	case infobip.IsRedirect(err):
		// The client followed nothing: the key went only to the base URL.
		resp.Result = ibmailv1.ConnectionTestResult_CONNECTION_TEST_RESULT_UNEXPECTED
		resp.Message = apiErr.Text
		return resp
	case apiErr != nil:
		resp.Result = ibmailv1.ConnectionTestResult_CONNECTION_TEST_RESULT_UNEXPECTED
		resp.Message = fmt.Sprintf("Infobip answered %d %s: %s", apiErr.StatusCode, http.StatusText(apiErr.StatusCode), apiErr.Text)
		return resp
	default:
		resp.Result = ibmailv1.ConnectionTestResult_CONNECTION_TEST_RESULT_UNREACHABLE
		resp.Message = fmt.Sprintf("Infobip could not be reached at %s: %v", c.BaseURL, err)
		return resp
	}
	resp.Result, resp.Ok = ibmailv1.ConnectionTestResult_CONNECTION_TEST_RESULT_OK, true
	var blocked []string
	for _, d := range domains.Results {
		resp.Domains = append(resp.Domains, &ibmailv1.SendingDomain{Name: d.DomainName, Active: d.Active, Blocked: d.Blocked})
		if d.Blocked {
			resp.AnyDomainBlocked = true
			blocked = append(blocked, d.DomainName)
		}
	}
	switch {
	case len(blocked) > 0:
		resp.Message = "the API key works, but Infobip has blocked the sending domain " + strings.Join(blocked, ", ") +
			" (a bounce rate over 5 % blocks a domain for 24 hours)"
	case len(resp.Domains) == 0:
		resp.Message = "the API key works, but the account has no sending domain yet"
	default:
		resp.Message = "the API key works and can manage email"
	}
	return resp
}
