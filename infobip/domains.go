package infobip

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
)

// MaxDomainsPageSize is the largest page GET /email/1/domains serves.
const MaxDomainsPageSize = 20

// DomainsResponse is one page of the account's sending domains.
type DomainsResponse struct {
	Paging  Paging   `json:"paging"`
	Results []Domain `json:"results"`
}

// Paging describes a page of a paged listing.
type Paging struct {
	Page         int `json:"page"`
	Size         int `json:"size"`
	TotalPages   int `json:"totalPages"`
	TotalResults int `json:"totalResults"`
}

// Domain is a sending domain. Only an Active, not Blocked domain sends;
// Infobip blocks a domain whose bounce rate passes 5 %.
type Domain struct {
	DomainID   int64           `json:"domainId"`
	DomainName string          `json:"domainName"`
	Active     bool            `json:"active"`
	Blocked    bool            `json:"blocked"`
	Tracking   *DomainTracking `json:"tracking,omitempty"`
	DNSRecords []DNSRecord     `json:"dnsRecords,omitempty"`
	// CreatedAt is nil when Infobip leaves it out.
	CreatedAt                   *Time  `json:"createdAt,omitempty"`
	BlocklistConfigurationLevel string `json:"blocklistConfigurationLevel,omitempty"`
}

// DomainTracking says which tracking a domain has on.
type DomainTracking struct {
	Clicks      bool `json:"clicks"`
	Opens       bool `json:"opens"`
	Unsubscribe bool `json:"unsubscribe"`
}

// DNSRecord is a record the domain must publish, and whether it does.
type DNSRecord struct {
	RecordType    string `json:"recordType"`
	Name          string `json:"name"`
	ExpectedValue string `json:"expectedValue"`
	Verified      bool   `json:"verified"`
}

// Domains reads the first page of sending domains. With size 1 it is the
// cheapest way to check a key (scopes email:manage or email:message:send):
// a bad key answers IsUnauthorized, a key without those scopes IsForbidden.
// size 0 leaves the page size to Infobip (10).
func (c *Client) Domains(ctx context.Context, size int) (*DomainsResponse, error) {
	if size < 0 || size > MaxDomainsPageSize {
		return nil, &FieldError{Field: "size", Problem: fmt.Sprintf("%d is outside 1..%d", size, MaxDomainsPageSize)}
	}
	q := url.Values{}
	if size > 0 {
		q.Set("size", strconv.Itoa(size))
	}
	var out DomainsResponse
	if err := c.do(ctx, call{method: "GET", path: "/email/1/domains", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
