// Package spec carries Infobip's published OpenAPI 3.1 description of the
// Email API and validates HTTP traffic against it, so that the client, the
// sandbox and the server's tests can all prove they speak Infobip's wire
// format without reaching Infobip.
//
// The description is embedded (infobip-email-openapi.json, Infobip's own file,
// version 3.210.0) so tests never depend on paths outside the repository.
// Validation uses github.com/pb33f/libopenapi-validator, which understands
// OpenAPI 3.1, multipart/form-data request bodies and the top-level webhooks
// section through its schema validator.
package spec

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/cache"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

//go:embed infobip-email-openapi.json
var openAPIJSON []byte

// Webhook names under the description's top-level "webhooks" key.
const (
	// WebhookDeliveryReports is what Infobip POSTs to a send's notifyUrl.
	WebhookDeliveryReports = "receive-email-delivery-reports"
	// WebhookTrackingReports is what Infobip POSTs to a send's trackingUrl.
	WebhookTrackingReports = "receive-email-tracking-reports"
	// WebhookPlatformEvents is what Infobip POSTs to an account's
	// platform-events subscription (bounce-rate warnings and blocks).
	WebhookPlatformEvents = "receive-email-platform-events"
)

// JSON returns a copy of the embedded OpenAPI description, for callers that
// want to inspect it with their own tools.
func JSON() []byte { return bytes.Clone(openAPIJSON) }

// Validator checks requests, responses and webhook bodies against the
// embedded description. It is safe for concurrent use.
type Validator struct {
	http    validator.Validator
	schemas schema_validation.SchemaValidator
	model   *v3.Document
	// Building a schema's compiled form is costly; keep the resolved webhook
	// and component schemas once found.
	mu       sync.Mutex
	resolved map[string]*base.Schema
}

var (
	loadOnce   sync.Once
	loaded     *Validator
	loadErrors error
)

// Load parses the embedded description once per process and returns the
// shared Validator; parsing takes a noticeable fraction of a second, which
// is why every test of every package should share one.
func Load() (*Validator, error) {
	loadOnce.Do(func() { loaded, loadErrors = build(openAPIJSON) })
	return loaded, loadErrors
}

// MustLoad is Load for tests and package-level variables, where a broken
// embedded description is a programming error.
func MustLoad() *Validator {
	v, err := Load()
	if err != nil {
		panic(err)
	}
	return v
}

func build(raw []byte) (*Validator, error) {
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		return nil, fmt.Errorf("spec: parse OpenAPI description: %w", err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("spec: build OpenAPI model: %w", err)
	}
	// Standard body decoders add multipart/form-data, the only way to send
	// a fully featured email. Format assertions stay off (the default):
	// Infobip's own examples carry "+0000" offsets that RFC 3339 rejects.
	opts := []config.Option{config.WithStandardBodyDecoders()}
	lazy := &lazyCache{SchemaCache: cache.NewDefaultCache()}
	lazy.warming.Store(true)
	httpValidator := validator.NewValidatorFromV3Model(&model.Model,
		append(opts, config.WithAuthenticationFunc(authenticate), config.WithSchemaCache(lazy))...)
	lazy.warming.Store(false)
	return &Validator{
		http:     httpValidator,
		schemas:  schema_validation.NewSchemaValidator(opts...),
		model:    &model.Model,
		resolved: make(map[string]*base.Schema),
	}, nil
}

// lazyCache makes the validator compile a schema on first use instead of all
// of them up front: warming every schema of this 400 KB description takes
// seconds under the race detector, and ibmail uses a handful. While warming,
// it claims to hold everything, so nothing is compiled.
type lazyCache struct {
	cache.SchemaCache
	warming atomic.Bool
}

func (c *lazyCache) Load(key uint64) (*cache.SchemaCacheEntry, bool) {
	if c.warming.Load() {
		return nil, true
	}
	return c.SchemaCache.Load(key)
}

// authPrefixes are the Authorization header prefixes Infobip documents for
// each security scheme of the description. The validator's own check lets
// any OAuth2 request through, which would make a missing key pass.
var authPrefixes = map[string]string{
	"APIKeyHeader":     "App ",
	"Basic":            "Basic ",
	"IBSSOTokenHeader": "IBSSO ",
	"OAuth2":           "Bearer ",
}

func authenticate(_ context.Context, in *config.AuthenticationInput) error {
	prefix, ok := authPrefixes[in.SecuritySchemeName]
	if !ok {
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	h := in.Request.Header.Get("Authorization")
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return fmt.Errorf("Authorization header does not start with %q", prefix)
	}
	return nil
}

// Error lists every way a message broke the description.
type Error struct {
	// What names what was validated, e.g. "POST /email/3/send request".
	What string
	// Problems are the validator's findings, one line each.
	Problems []string
}

// Error joins the problems on one line, for test failure messages.
func (e *Error) Error() string {
	return fmt.Sprintf("spec: %s does not match Infobip's OpenAPI description: %s",
		e.What, strings.Join(e.Problems, "; "))
}

// ValidateRequest checks method, path, query, headers (the Authorization
// security scheme included) and body of r. The body is read and put back,
// so r can still be served or sent afterwards.
func (v *Validator) ValidateRequest(r *http.Request) error {
	body, err := drain(&r.Body)
	if err != nil {
		return err
	}
	defer func() { r.Body = io.NopCloser(bytes.NewReader(body)) }()
	r.Body = io.NopCloser(bytes.NewReader(body))
	_, errs := v.http.ValidateHttpRequestSync(r)
	return asError(r.Method+" "+r.URL.Path+" request", errs)
}

// ValidateResponse checks resp's status code, content type and body against
// the operation that req matched. Infobip's description defines no 429 for
// POST /email/3/send although Infobip throttles it, so such a response is
// reported as undefined: that is the description's gap, and callers decide.
// The body is read and put back.
func (v *Validator) ValidateResponse(req *http.Request, resp *http.Response) error {
	body, err := drain(&resp.Body)
	if err != nil {
		return err
	}
	defer func() { resp.Body = io.NopCloser(bytes.NewReader(body)) }()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	_, errs := v.http.ValidateHttpResponse(req, resp)
	return asError(fmt.Sprintf("%s %s response %d", req.Method, req.URL.Path, resp.StatusCode), errs)
}

// ValidateDeliveryReports checks a body POSTed to a notifyUrl against the
// receive-email-delivery-reports webhook.
func (v *Validator) ValidateDeliveryReports(body []byte) error {
	return v.ValidateWebhook(WebhookDeliveryReports, "application/json", body)
}

// ValidateWebhook checks body against the request body schema of the named
// webhook (a key of the description's "webhooks") for mediaType.
func (v *Validator) ValidateWebhook(name, mediaType string, body []byte) error {
	schema, err := v.webhookSchema(name, mediaType)
	if err != nil {
		return err
	}
	_, errs := v.schemas.ValidateSchemaBytes(schema, body)
	return asError("webhook "+name, errs)
}

// ValidateComponent checks body against a schema of components.schemas,
// named either in full or by the part after Infobip's hash prefix (e.g.
// "SendResponse"); useful for pieces that no operation wraps.
func (v *Validator) ValidateComponent(name string, body []byte) error {
	schema, err := v.componentSchema(name)
	if err != nil {
		return err
	}
	_, errs := v.schemas.ValidateSchemaBytes(schema, body)
	return asError("schema "+name, errs)
}

func (v *Validator) webhookSchema(name, mediaType string) (*base.Schema, error) {
	key := "webhook:" + name + ":" + mediaType
	return v.cached(key, func() (*base.Schema, error) {
		if v.model.Webhooks == nil {
			return nil, errors.New("spec: the description has no webhooks")
		}
		item, ok := v.model.Webhooks.Get(name)
		if !ok || item == nil || item.Post == nil || item.Post.RequestBody == nil {
			return nil, fmt.Errorf("spec: no POST webhook %q with a request body", name)
		}
		media, ok := item.Post.RequestBody.Content.Get(mediaType)
		if !ok || media == nil || media.Schema == nil {
			return nil, fmt.Errorf("spec: webhook %q has no %s body", name, mediaType)
		}
		return media.Schema.Schema(), nil
	})
}

func (v *Validator) componentSchema(name string) (*base.Schema, error) {
	return v.cached("component:"+name, func() (*base.Schema, error) {
		if v.model.Components == nil || v.model.Components.Schemas == nil {
			return nil, errors.New("spec: the description has no component schemas")
		}
		var found []string
		for key, proxy := range v.model.Components.Schemas.FromOldest() {
			if key == name {
				return proxy.Schema(), nil
			}
			if strings.HasSuffix(key, "."+name) {
				found = append(found, key)
			}
		}
		switch len(found) {
		case 0:
			return nil, fmt.Errorf("spec: no component schema %q", name)
		case 1:
			proxy, _ := v.model.Components.Schemas.Get(found[0])
			return proxy.Schema(), nil
		default:
			return nil, fmt.Errorf("spec: component schema %q is ambiguous: %s", name, strings.Join(found, ", "))
		}
	})
}

func (v *Validator) cached(key string, find func() (*base.Schema, error)) (*base.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.resolved[key]; ok {
		return s, nil
	}
	s, err := find()
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("spec: %s resolves to no schema", key)
	}
	v.resolved[key] = s
	return s, nil
}

func drain(body *io.ReadCloser) ([]byte, error) {
	if *body == nil || *body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(*body)
	_ = (*body).Close()
	if err != nil {
		return nil, fmt.Errorf("spec: read body: %w", err)
	}
	return b, nil
}

func asError(what string, errs []*verrors.ValidationError) error {
	if len(errs) == 0 {
		return nil
	}
	e := &Error{What: what}
	for _, ve := range errs {
		if len(ve.SchemaValidationErrors) == 0 {
			e.Problems = append(e.Problems, ve.Message+": "+ve.Reason)
			continue
		}
		for _, se := range ve.SchemaValidationErrors {
			p := ve.Message + ": " + se.Reason
			if se.FieldPath != "" {
				p = ve.Message + ": " + se.FieldPath + ": " + se.Reason
			}
			e.Problems = append(e.Problems, p)
		}
	}
	return e
}
