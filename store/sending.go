package store

import (
	"bytes"
	"context"
	"errors"
	"time"
)

// Errors the sending side returns; the server maps them to API codes.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrInUse: a connection still has sender accounts.
	ErrInUse = errors.New("in use")
	// ErrLeaseLost: another dispatcher took the batch over after this
	// one's lease expired; the caller must drop its result.
	ErrLeaseLost = errors.New("batch lease lost")
	// ErrIdempotencyKeyReused: a send of the same sender account already
	// holds the idempotency key, made by a different request. The error is
	// an *IdempotencyKeyReusedError, which names that send.
	ErrIdempotencyKeyReused = errors.New("idempotency key reused by a different request")
)

// IdempotencyKeyReusedError is what CreateSend answers when the key is
// taken by a send of a different request: SendID names the send that holds
// it. errors.Is(err, ErrIdempotencyKeyReused) holds for it.
type IdempotencyKeyReusedError struct {
	SendID string
}

func (e *IdempotencyKeyReusedError) Error() string {
	return "idempotency key held by send " + e.SendID + " of a different request"
}

// Is makes the error match ErrIdempotencyKeyReused.
func (e *IdempotencyKeyReusedError) Is(target error) bool { return target == ErrIdempotencyKeyReused }

// SameRequest says whether a send that holds an idempotency key was made by
// the request whose digest is digest. A send stored before digests were
// kept (RequestDigest empty) counts as the same request: that is what a
// retry of it got before, and there is nothing to tell a different one by.
func (s Send) SameRequest(digest []byte) bool {
	return len(s.RequestDigest) == 0 || bytes.Equal(s.RequestDigest, digest)
}

// Connection is a connection to one Infobip account. The store never sees
// an API key in the clear: the server seals it before storing.
type Connection struct {
	ID               string
	DisplayName      string
	APIKeyCiphertext []byte
	APIKeyHint       string
	BaseURL          string
	ApplicationID    string
	EntityID         string
	// WebhookSecretDigest is the SHA-256 of the connection's webhook secret:
	// enough to authenticate, useless to an attacker who reads the store.
	WebhookSecretDigest []byte
	// PreviousWebhookSecretDigest is the digest of the secret before the
	// last rotation, accepted until PreviousWebhookSecretExpireTime; nil
	// when there is none.
	PreviousWebhookSecretDigest     []byte
	PreviousWebhookSecretExpireTime time.Time
	RateLimit                       int
	CreateTime                      time.Time
	UpdateTime                      time.Time
	// SealedUnder, on a write, is the check value of the encryption key
	// that sealed APIKeyCiphertext: the write is refused with ErrKeyMismatch
	// unless it is the store's (see SecretStore), so that a replica left
	// behind by a key rotation cannot seal with the retired key. Empty: not
	// checked. Never read back.
	SealedUnder []byte
}

// Sender is a sender account.
type Sender struct {
	ID           string
	ConnectionID string
	FromAddress  string
	FromName     string
	ReplyTo      string
	CreateTime   time.Time
}

// MessageSendEvent is the event each recipient that Infobip accepted gets,
// the platform's name for "an email was sent to a profile". Its params:
// title (the send's subject), sendId, campaignId, senderId, connectionId
// and messageId; its time is when the acceptance was stored.
const MessageSendEvent = "message.send"

// RecipientState is where a recipient stands; values match
// ibmail.v1.RecipientState.
type RecipientState int8

// The recipient states.
const (
	RecipientUnspecified RecipientState = 0
	RecipientPending     RecipientState = 1
	RecipientAccepted    RecipientState = 2
	RecipientRejected    RecipientState = 3
	RecipientSuppressed  RecipientState = 4
	RecipientFailed      RecipientState = 5
)

// BatchState is where one Infobip request of a send stands.
type BatchState int8

// The batch states.
const (
	// BatchPending: not sent yet, or refused in a way that proves Infobip
	// did not take it (429, 4xx before acceptance, connection refused).
	BatchPending BatchState = 1
	// BatchInFlight: claimed by a dispatcher, which may have written the
	// request. Found with an expired lease, it is treated as ambiguous.
	BatchInFlight BatchState = 2
	// BatchAmbiguous: the request may have reached Infobip (a timeout after
	// writing it); Infobip's logs must be checked for its bulkId before any
	// new attempt.
	BatchAmbiguous BatchState = 3
	// BatchDone: every recipient of the batch has a final state.
	BatchDone BatchState = 4
)

// Send is one send as stored. Content is the server's own encoding of what
// to send (subject, bodies, template, placeholders, tracking); the store
// keeps it opaque.
type Send struct {
	ID           string
	SenderID     string
	ConnectionID string
	CampaignID   string
	// IdempotencyKey is unique among the sends of one sender account ('' :
	// none).
	IdempotencyKey string
	// RequestDigest is the SHA-256 of the request that made the send (the
	// server's canonical encoding of it), so that a retry with the same
	// idempotency key can be told from a different request reusing the
	// key. Empty for sends stored before digests were kept.
	RequestDigest []byte
	Subject       string
	// FromDomain is the sending domain (lower case) of the sender's from
	// address: while it is held (see SendingDomain.Holds), the send's
	// batches are not claimed.
	FromDomain     string
	Content        []byte
	RecipientCount int
	CreateTime     time.Time
	// DoneTime is zero until every recipient has a final state.
	DoneTime time.Time
	// Counts by state, computed by the store on read.
	Counts map[RecipientState]int
}

// Recipient is one recipient of a send.
type Recipient struct {
	SendID string
	// Seq is the recipient's position in the send request, from 0.
	Seq          int
	ProfileID    string
	Email        string
	Placeholders map[string]string
	State        RecipientState
	MessageID    string
	Reason       string
	// BatchSeq is the batch the recipient goes in; -1 when it goes in none
	// (suppressed or refused before dispatch).
	BatchSeq      int
	BulkID        string
	LastEvent     string
	LastEventTime time.Time
}

// Batch is one Infobip request of a send: at most 1000 recipients.
type Batch struct {
	SendID          string
	Seq             int
	BulkID          string
	State           BatchState
	Attempts        int
	NextAttemptTime time.Time
	LastError       string
}

// ClaimedBatch is a batch a dispatcher holds a lease on, with what it needs
// to send it.
type ClaimedBatch struct {
	Batch
	Send       Send
	Recipients []Recipient // the batch's recipients still pending
	// MaybeSent: an earlier attempt may have reached Infobip (the batch was
	// ambiguous, or in flight when its dispatcher died). The dispatcher must
	// look the bulkId up in Infobip's logs before sending again.
	MaybeSent bool
}

// RecipientOutcome is the final state of one recipient of a batch.
type RecipientOutcome struct {
	Seq       int
	State     RecipientState
	MessageID string
	Reason    string
}

// RecipientRef points at a recipient of a send.
type RecipientRef struct {
	SendID string
	Seq    int
}

// Suppression is an address later sends skip, until it expires.
type Suppression struct {
	Email      string
	ProfileID  string
	EventName  string
	EventID    int64
	Reason     string
	CreateTime time.Time
	// ExpireTime is when it stops blocking sends; zero: never.
	ExpireTime time.Time
	Origin     SuppressionOrigin
	// CauseEventIDs are the events that hold it besides EventID: the soft
	// bounces that reached the soft-bounce limit.
	CauseEventIDs []int64
}

// Active reports whether the suppression blocks sends at now.
func (s Suppression) Active(now time.Time) bool {
	return s.ExpireTime.IsZero() || now.Before(s.ExpireTime)
}

// SuppressionOrigin says how a suppression came to be; the numbers are
// stored.
type SuppressionOrigin int

const (
	// SuppressionFromEvent is a bounce, complaint or unsubscribe.
	SuppressionFromEvent SuppressionOrigin = 1
	// SuppressionFromSoftBounceLimit is the soft-bounce policy's.
	SuppressionFromSoftBounceLimit SuppressionOrigin = 2
	// SuppressionFromImport is an imported list's.
	SuppressionFromImport SuppressionOrigin = 3
)

// SuppressionQuery selects a page of suppressions in order of address.
type SuppressionQuery struct {
	AfterEmail string
	Limit      int
	// IncludeExpired lists suppressions that expired before Now too.
	IncludeExpired bool
	Now            time.Time
}

// RecipientQuery selects a send's recipients in request order.
type RecipientQuery struct {
	SendID   string
	State    RecipientState // RecipientUnspecified: all
	AfterSeq int            // -1: from the first
	Limit    int
}

// ConnectionStore keeps connections and sender accounts.
type ConnectionStore interface {
	// CreateConnection stores c; ErrAlreadyExists when the id is taken.
	CreateConnection(ctx context.Context, c Connection) error
	// GetConnection returns a connection or ErrNotFound.
	GetConnection(ctx context.Context, id string) (Connection, error)
	// ConnectionByWebhookDigest finds the connection whose webhook secret,
	// or previous webhook secret (whatever its expiry: the caller decides),
	// has this digest, or ErrNotFound.
	ConnectionByWebhookDigest(ctx context.Context, digest []byte) (Connection, error)
	// ListConnections returns up to limit connections with ids after
	// afterID, in order of id.
	ListConnections(ctx context.Context, afterID string, limit int) ([]Connection, error)
	// UpdateConnection replaces every field but the id and create time;
	// ErrNotFound when there is no such connection.
	UpdateConnection(ctx context.Context, c Connection) error
	// UpdateConnectionIf is UpdateConnection done only while the stored
	// APIKeyCiphertext is still ifCiphertext (each sealing makes a new one):
	// ErrChanged otherwise, so that two changes made from one reading (an
	// API key and a webhook secret rotation) cannot undo one another.
	UpdateConnectionIf(ctx context.Context, c Connection, ifCiphertext []byte) error
	// DeleteConnection removes a connection: ErrNotFound, or ErrInUse while
	// sender accounts use it.
	DeleteConnection(ctx context.Context, id string) error

	// CreateSender stores s: ErrAlreadyExists when the id is taken,
	// ErrNotFound when its connection does not exist.
	CreateSender(ctx context.Context, s Sender) error
	// GetSender returns a sender account or ErrNotFound.
	GetSender(ctx context.Context, id string) (Sender, error)
	// ListSenders returns up to limit senders with ids after afterID, in
	// order of id, only those of connectionID unless it is empty.
	ListSenders(ctx context.Context, connectionID, afterID string, limit int) ([]Sender, error)
	// DeleteSender removes a sender account, or answers ErrNotFound.
	DeleteSender(ctx context.Context, id string) error
}

// SendStore keeps sends, their recipients and the batches that dispatch
// them, and hands batches to dispatchers under leases so that two never
// send the same batch.
type SendStore interface {
	// CreateSend stores a send with its recipients and batches in one
	// transaction. When s.IdempotencyKey is set and a send of the same
	// sender account (SenderID) holds that key, nothing is stored: if that
	// send has the same RequestDigest (see Send.SameRequest), it is
	// returned with created false; otherwise the error is an
	// *IdempotencyKeyReusedError naming it. Of concurrent calls with one
	// key, exactly one creates the send.
	CreateSend(ctx context.Context, s Send, recipients []Recipient, batches []Batch) (stored Send, created bool, err error)
	// GetSend returns a send with its counts, or ErrNotFound.
	GetSend(ctx context.Context, id string) (Send, error)
	// ListSends returns up to limit sends, newest first, created before the
	// send beforeID ("" : from the newest).
	ListSends(ctx context.Context, beforeID string, limit int) ([]Send, error)
	// ListRecipients returns a page of a send's recipients, in request order.
	ListRecipients(ctx context.Context, q RecipientQuery) ([]Recipient, error)

	// ClaimBatches leases up to limit batches that are due (pending or
	// ambiguous with NextAttemptTime <= now, or in flight with an expired
	// lease) to owner until now+lease, marks them in flight and counts the
	// attempt. A batch whose send's FromDomain is held at now (blocked
	// until after now, or paused) is left as it is, neither claimed nor
	// counted: it goes once the domain is active again.
	ClaimBatches(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]ClaimedBatch, error)
	// CompleteBatch gives the batch's recipients their final states and
	// marks it done, if owner still holds the lease (else ErrLeaseLost). In
	// the same transaction each recipient given RecipientAccepted gets a
	// MessageSendEvent on its profile (params: see MessageSendEvent), which
	// goes through the outbox like every event and becomes the recipient's
	// last event unless it already has one (a report can beat Infobip's
	// answer). Any report about the recipient later replaces it as the
	// last event whatever the report's time, which may be earlier than
	// the store's clock at CompleteBatch: every report comes after the
	// send.
	CompleteBatch(ctx context.Context, owner string, sendID string, seq int, outcomes []RecipientOutcome) error
	// RescheduleBatch puts a batch back as pending or ambiguous, due at
	// next, if owner still holds the lease (else ErrLeaseLost).
	RescheduleBatch(ctx context.Context, owner string, sendID string, seq int, state BatchState, next time.Time, lastError string) error
	// ExtendLease pushes the lease of a batch owner holds to until.
	ExtendLease(ctx context.Context, owner string, sendID string, seq int, until time.Time) error
	// ReleaseLeases makes every batch owner holds in flight ambiguous and
	// due at now, and says how many there were. A dispatcher that starts
	// again under the name it had before it stopped calls it, so that its
	// batches need not wait for their leases to run out; being ambiguous,
	// each is checked in Infobip's logs before it is sent again.
	ReleaseLeases(ctx context.Context, owner string, now time.Time) (int, error)

	// RecipientsByMessageID finds the recipients Infobip's message ids
	// name, keyed by message id; ids it does not know are left out. With
	// connectionID set, only recipients of that connection's sends are
	// found: a report authenticated by one connection's webhook secret
	// must not reach another connection's sends. "" finds any.
	RecipientsByMessageID(ctx context.Context, connectionID string, messageIDs []string) (map[string]Recipient, error)
	// RecipientByEmail finds a send's recipient by address, or ErrNotFound;
	// with connectionID set, only if the send is that connection's ("" :
	// any send).
	RecipientByEmail(ctx context.Context, connectionID, sendID, email string) (Recipient, error)

	SendRateStore
}

// SuppressionStore keeps suppressed addresses. Suppressions are added by
// IngestReports (a Report with Suppress set) in the same transaction as the
// event that causes them.
type SuppressionStore interface {
	// SuppressedAmong returns the suppressions of those of emails that are
	// suppressed.
	SuppressedAmong(ctx context.Context, emails []string) (map[string]Suppression, error)
	// SuppressedAmong returns expired suppressions too: the caller judges
	// them at its own now (Suppression.Active).
	//
	// ListSuppressions returns up to q.Limit suppressions with addresses
	// after q.AfterEmail, in order of address.
	ListSuppressions(ctx context.Context, q SuppressionQuery) ([]Suppression, error)
	// AddSuppressions adds suppressions that no event's report carries (an
	// import, the soft-bounce limit). An address already suppressed keeps
	// its suppression unless that expired by the new one's CreateTime. It
	// returns how many were added.
	AddSuppressions(ctx context.Context, ss []Suppression) (int, error)
	// DeleteSuppression lifts a suppression, or answers ErrNotFound.
	DeleteSuppression(ctx context.Context, email string) error
}
