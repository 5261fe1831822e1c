package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ibmail/ibmail/dispatch"
	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/metrics"
	"github.com/ibmail/ibmail/store"
)

// Limits of one send request.
const (
	maxRecipientsPerSend = 100000
	maxPlaceholders      = 100
	maxBodyChars         = 10 << 20 // Infobip's HTML limit
)

// SendService implements ibmail.v1.SendService. It stores a send with all
// its recipients and batches before answering; the dispatcher does the rest.
type SendService struct {
	ibmailv1.UnimplementedSendServiceServer
	store store.Store
	wake  func() // tells the dispatcher new work is due; may be nil
	now   func() time.Time
	rows  *rowSkippers
}

// NewSendService returns a SendService; wake, if not nil, is called after a
// send is stored. Rows it cannot show are logged to log.
func NewSendService(st store.Store, wake func(), log *slog.Logger) *SendService {
	return &SendService{store: st, wake: wake, now: time.Now, rows: newRowSkippers(log)}
}

// CreateSend validates a send, marks suppressed recipients, splits the rest
// into Infobip-sized batches and stores it all in one transaction.
func (s *SendService) CreateSend(ctx context.Context, req *ibmailv1.CreateSendRequest) (*ibmailv1.CreateSendResponse, error) {
	content, err := sendContent(req)
	if err != nil {
		return nil, err
	}
	recipients, err := checkRecipients(req.GetRecipients(), content.Subject)
	if err != nil {
		return nil, err
	}
	if err := checkText("idempotency_key", req.GetIdempotencyKey(), 200); err != nil {
		return nil, err
	}
	snd, err := s.store.GetSender(ctx, req.GetSenderId())
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apiError(codes.FailedPrecondition, ReasonNotFound, fmt.Sprintf("sender_id: sender %q does not exist", req.GetSenderId()))
		}
		return nil, err
	}
	content.From = formatFrom(snd)
	content.ReplyTo = snd.ReplyTo

	digest, err := requestDigest(req)
	if err != nil {
		return nil, err
	}
	send := store.Send{
		ID:             newID("send"),
		SenderID:       snd.ID,
		ConnectionID:   snd.ConnectionID,
		CampaignID:     content.CampaignID,
		IdempotencyKey: req.GetIdempotencyKey(),
		RequestDigest:  digest,
		Subject:        content.Subject,
		FromDomain:     store.AddressDomain(snd.FromAddress),
		Content:        content.Encode(),
		RecipientCount: len(recipients),
		CreateTime:     s.now().UTC(),
	}
	if !req.GetIgnoreSuppressions() {
		if err := s.applySuppressions(ctx, recipients); err != nil {
			return nil, err
		}
	}
	batches := planBatches(send.ID, recipients)
	for i := range recipients {
		recipients[i].SendID = send.ID
	}
	stored, created, err := s.store.CreateSend(ctx, send, recipients, batches)
	if err != nil {
		return nil, err
	}
	if created {
		metrics.SuppressionsApplied.Add(float64(stored.Counts[store.RecipientSuppressed]))
	}
	if created && len(batches) > 0 && s.wake != nil {
		s.wake()
	}
	return &ibmailv1.CreateSendResponse{Send: sendProto(stored)}, nil
}

// requestDigest is the SHA-256 of a request's canonical encoding: the
// deterministic protobuf encoding (map entries in key order, repeated
// fields in the order given). The store keeps it with what the request
// made (a send, an operation), so that a retry with the same idempotency
// key or request id (the same request, however its JSON was laid out)
// gets it back, while a different request reusing the key is refused.
func requestDigest(req proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode the request for its digest: %w", err)
	}
	d := sha256.Sum256(b)
	return d[:], nil
}

// sendContent validates what is sent, apart from the sender.
func sendContent(req *ibmailv1.CreateSendRequest) (dispatch.Content, error) {
	c := dispatch.Content{
		Subject:     req.GetSubject(),
		HTML:        req.GetHtml(),
		Text:        req.GetText(),
		TemplateID:  req.GetTemplateId(),
		TrackOpens:  req.GetTrackOpens(),
		TrackClicks: req.GetTrackClicks(),
		CampaignID:  strings.TrimSpace(req.GetCampaignId()),
	}
	if strings.TrimSpace(req.GetSenderId()) == "" {
		return c, invalidField("sender_id", "is required")
	}
	if err := checkID("sender_id", req.GetSenderId(), 256); err != nil {
		return c, err
	}
	switch {
	case c.TemplateID < 0:
		return c, invalidField("template_id", "must be a positive Infobip template id")
	case c.TemplateID == 0 && strings.TrimSpace(c.Subject) == "":
		return c, invalidField("subject", "is required unless template_id is given")
	case c.TemplateID == 0 && c.HTML == "" && c.Text == "":
		return c, invalidField("html", "html or text is required unless template_id is given")
	}
	if n := utf8.RuneCountInString(c.Subject); n > 1000 {
		return c, invalidField("subject", fmt.Sprintf("has %d characters; Infobip takes at most 1000", n))
	}
	// The subject is a mail header: a line break in it would start headers
	// of the caller's choosing.
	if err := checkText("subject", c.Subject, 1000); err != nil {
		return c, err
	}
	if len(c.HTML) > maxBodyChars || len(c.Text) > maxBodyChars {
		return c, invalidField("html", "html and text are each limited to 10 MiB")
	}
	if err := checkText("campaign_id", c.CampaignID, 200); err != nil {
		return c, err
	}
	if err := checkPlaceholders("default_placeholders", req.GetDefaultPlaceholders(), c.Subject); err != nil {
		return c, err
	}
	c.DefaultPlaceholders = req.GetDefaultPlaceholders()
	return c, nil
}

// checkRecipients validates the recipients and gives each its profile and
// position; an address may appear only once per send.
func checkRecipients(in []*ibmailv1.RecipientInput, subject string) ([]store.Recipient, error) {
	if len(in) == 0 {
		return nil, invalidField("recipients", "name at least one recipient")
	}
	if len(in) > maxRecipientsPerSend {
		return nil, invalidField("recipients", fmt.Sprintf("has %d recipients; at most %d per send: split the list", len(in), maxRecipientsPerSend))
	}
	out := make([]store.Recipient, len(in))
	seen := make(map[string]int, len(in))
	for i, r := range in {
		field := fmt.Sprintf("recipients[%d]", i)
		email, err := checkEmail(field+".email", r.GetEmail())
		if err != nil {
			return nil, err
		}
		key := normalizeEmail(email)
		if j, dup := seen[key]; dup {
			return nil, invalidField(field+".email", fmt.Sprintf("%q is also recipients[%d]; each address goes once per send", email, j))
		}
		seen[key] = i
		profile := r.GetProfileId()
		if strings.TrimSpace(profile) == "" {
			profile = key
		}
		if profile, err = checkProfileID(field+".profile_id", profile); err != nil {
			return nil, err
		}
		if err := checkPlaceholders(field+".placeholders", r.GetPlaceholders(), subject); err != nil {
			return nil, err
		}
		out[i] = store.Recipient{Seq: i, ProfileID: profile, Email: email, Placeholders: r.GetPlaceholders(), State: store.RecipientPending}
	}
	return out, nil
}

// checkPlaceholders bounds a send's placeholders. Those the subject names
// ({{name}}) end up in the Subject header once Infobip fills them in, so
// they are held to the subject's rule: no control characters or line
// breaks.
func checkPlaceholders(field string, p map[string]string, subject string) error {
	if len(p) > maxPlaceholders {
		return invalidField(field, fmt.Sprintf("has %d placeholders; at most %d", len(p), maxPlaceholders))
	}
	for k, v := range p {
		if k == "" || len(k) > 100 {
			return invalidField(field, fmt.Sprintf("placeholder name %q must have 1 to 100 characters", k))
		}
		if len(v) > 10000 {
			return invalidField(field, fmt.Sprintf("placeholder %q is longer than 10000 characters", k))
		}
		if strings.ContainsRune(k+v, 0) || !utf8.ValidString(k+v) {
			return invalidField(field, fmt.Sprintf("placeholder %q must be UTF-8 text without NUL characters", k))
		}
		if strings.IndexFunc(v, isControlOrLineBreak) >= 0 && subjectNames(subject, k) {
			return invalidField(field, fmt.Sprintf("placeholder %q goes into the subject, a mail header: it must not contain control characters or line breaks (CR, LF)", k))
		}
	}
	return nil
}

// subjectNames reports whether subject refers to the placeholder name, as
// {{name}} (with any spaces inside the braces).
func subjectNames(subject, name string) bool {
	for rest := subject; ; {
		open := strings.Index(rest, "{{")
		if open < 0 {
			return false
		}
		rest = rest[open+2:]
		end := strings.Index(rest, "}}")
		if end < 0 {
			return false
		}
		if strings.TrimSpace(rest[:end]) == name {
			return true
		}
		rest = rest[end+2:]
	}
}

// applySuppressions marks the recipients whose address is suppressed, with
// the event that caused it, so they go in no batch.
func (s *SendService) applySuppressions(ctx context.Context, recipients []store.Recipient) error {
	emails := make([]string, len(recipients))
	for i, r := range recipients {
		emails[i] = normalizeEmail(r.Email)
	}
	suppressed, err := s.store.SuppressedAmong(ctx, emails)
	if err != nil {
		return err
	}
	now := time.Now()
	for i := range recipients {
		if sup, ok := suppressed[emails[i]]; ok && sup.Active(now) {
			recipients[i].State = store.RecipientSuppressed
			recipients[i].Reason = fmt.Sprintf("suppressed since %s by %s (%s, event %d)",
				sup.CreateTime.Format(time.RFC3339), sup.EventName, sup.Reason, sup.EventID)
		}
	}
	return nil
}

// planBatches puts the pending recipients, in order, into batches of at
// most Infobip's request limit, each with its own bulkId.
func planBatches(sendID string, recipients []store.Recipient) []store.Batch {
	var batches []store.Batch
	n := 0
	for i := range recipients {
		recipients[i].BatchSeq = -1
		if recipients[i].State != store.RecipientPending {
			continue
		}
		if n%dispatch.MaxRecipientsPerRequest == 0 {
			seq := len(batches)
			batches = append(batches, store.Batch{SendID: sendID, Seq: seq, BulkID: fmt.Sprintf("%s-%d", sendID, seq), State: store.BatchPending})
		}
		b := batches[len(batches)-1]
		recipients[i].BatchSeq, recipients[i].BulkID = b.Seq, b.BulkID
		n++
	}
	return batches
}

// formatFrom is Infobip's from field: "Name <address>" or the address.
func formatFrom(s store.Sender) string {
	if s.FromName == "" {
		return s.FromAddress
	}
	return s.FromName + " <" + s.FromAddress + ">"
}

// GetSend returns a send with its progress.
func (s *SendService) GetSend(ctx context.Context, req *ibmailv1.GetSendRequest) (*ibmailv1.GetSendResponse, error) {
	if err := checkResourceID("send_id", req.GetSendId()); err != nil {
		return nil, err
	}
	send, err := s.store.GetSend(ctx, req.GetSendId())
	if err != nil {
		return nil, notFoundAs(err, "send", req.GetSendId())
	}
	holds := newHoldReasons(s.store, s.now())
	p := sendProto(send)
	if p.HoldReason, err = holds.of(ctx, send); err != nil {
		return nil, err
	}
	shown, err := showOne(ctx, s.rows.sends, "send", send.ID, p)
	if err != nil {
		return nil, err
	}
	return &ibmailv1.GetSendResponse{Send: shown}, nil
}

// ListSends lists sends, newest first.
func (s *SendService) ListSends(ctx context.Context, req *ibmailv1.ListSendsRequest) (*ibmailv1.ListSendsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 50, 1000)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest("sends"))
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ListSends(ctx, tok.AfterKey, size+1)
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListSendsResponse{}
	rows, resp.NextPageToken = cutPage(rows, size, tok.Query, func(s store.Send) pageToken { return pageToken{AfterKey: s.ID} })
	holds := newHoldReasons(s.store, s.now())
	resp.Sends = showable(ctx, s.rows.sends, rows, func(s store.Send) string { return s.ID },
		func(s store.Send) (*ibmailv1.Send, error) {
			p := sendProto(s)
			var err error
			p.HoldReason, err = holds.of(ctx, s)
			return p, err
		})
	return resp, nil
}

// ListSendRecipients lists a send's recipients in request order.
func (s *SendService) ListSendRecipients(ctx context.Context, req *ibmailv1.ListSendRecipientsRequest) (*ibmailv1.ListSendRecipientsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 100, 1000)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest("recipients", req.GetSendId(), req.GetState().String()))
	if err != nil {
		return nil, err
	}
	if err := checkResourceID("send_id", req.GetSendId()); err != nil {
		return nil, err
	}
	send, err := s.store.GetSend(ctx, req.GetSendId())
	if err != nil {
		return nil, notFoundAs(err, "send", req.GetSendId())
	}
	hold, err := newHoldReasons(s.store, s.now()).of(ctx, send)
	if err != nil {
		return nil, err
	}
	after := -1
	if req.GetPageToken() != "" {
		after = int(tok.ID)
	}
	rows, err := s.store.ListRecipients(ctx, store.RecipientQuery{
		SendID: req.GetSendId(), State: store.RecipientState(req.GetState()), AfterSeq: after, Limit: size + 1,
	})
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListSendRecipientsResponse{}
	rows, resp.NextPageToken = cutPage(rows, size, tok.Query, func(r store.Recipient) pageToken { return pageToken{ID: int64(r.Seq)} })
	resp.Recipients = showable(ctx, s.rows.recipients, rows, func(r store.Recipient) string { return fmt.Sprintf("%s/%d", r.SendID, r.Seq) },
		func(r store.Recipient) (*ibmailv1.SendRecipient, error) {
			pr := &ibmailv1.SendRecipient{
				ProfileId: r.ProfileID,
				Email:     r.Email,
				State:     ibmailv1.RecipientState(r.State),
				MessageId: r.MessageID,
				Reason:    r.Reason,
				BulkId:    r.BulkID,
				LastEvent: r.LastEvent,
			}
			if r.State == store.RecipientPending && hold != "" {
				pr.Reason = hold
			}
			if !r.LastEventTime.IsZero() {
				pr.LastEventTime = timestamppb.New(r.LastEventTime)
			}
			return pr, nil
		})
	return resp, nil
}

// holdReasons says why sends wait, reading each sending domain once per
// call.
type holdReasons struct {
	store   store.DomainStore
	now     time.Time
	domains map[string]string
}

func newHoldReasons(st store.DomainStore, now time.Time) *holdReasons {
	return &holdReasons{store: st, now: now, domains: map[string]string{}}
}

// of is why send's pending recipients are not being sent, or "" when
// nothing holds them: a blocked or paused sending domain, whose batches
// dispatch leaves where they are until the domain is active again.
func (h *holdReasons) of(ctx context.Context, send store.Send) (string, error) {
	if !send.DoneTime.IsZero() || send.FromDomain == "" || send.Counts[store.RecipientPending] == 0 {
		return "", nil
	}
	if why, ok := h.domains[send.FromDomain]; ok {
		return why, nil
	}
	why := ""
	d, err := h.store.GetSendingDomain(ctx, send.FromDomain)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return "", err
	case d.Holds(h.now):
		why = "held: sending domain " + d.Domain + " is "
		if d.Effective(h.now) == store.DomainBlocked {
			why += "blocked until " + d.Until.UTC().Format(time.RFC3339)
		} else {
			why += "paused until an operator unblocks it"
		}
		if d.Reason != "" {
			why += " (" + d.Reason + ")"
		}
		why += "; the batches go out once it is active again (POST /v1/sendingDomains/" + d.Domain + ":unblock)"
	}
	h.domains[send.FromDomain] = why
	return why, nil
}

func sendProto(s store.Send) *ibmailv1.Send {
	p := &ibmailv1.Send{
		Id:              s.ID,
		State:           ibmailv1.SendState_SEND_STATE_DISPATCHING,
		SenderId:        s.SenderID,
		ConnectionId:    s.ConnectionID,
		CampaignId:      s.CampaignID,
		IdempotencyKey:  s.IdempotencyKey,
		Subject:         s.Subject,
		RecipientCount:  int32(s.RecipientCount),
		PendingCount:    int32(s.Counts[store.RecipientPending]),
		AcceptedCount:   int32(s.Counts[store.RecipientAccepted]),
		RejectedCount:   int32(s.Counts[store.RecipientRejected]),
		SuppressedCount: int32(s.Counts[store.RecipientSuppressed]),
		FailedCount:     int32(s.Counts[store.RecipientFailed]),
		CreateTime:      timestamppb.New(s.CreateTime),
	}
	if !s.DoneTime.IsZero() {
		p.State = ibmailv1.SendState_SEND_STATE_DONE
		p.DoneTime = timestamppb.New(s.DoneTime)
	}
	return p
}
