package server

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/store"
)

// webhookBody is what the three webhooks share of a call: the caller's
// secret, the bounds of the body, and the walk through its items in body
// order, where each item is either stored or refused (named in the answer
// with its index, its field and why, and kept as a rejected payload in the
// same transaction), so that one bad item neither loses the others nor
// makes Infobip retry them.
type webhookBody struct {
	// connectionID is the connection whose secret came with the call; ""
	// for the server-wide secret.
	connectionID string
	received     time.Time
	// list names the body's items in reasons: results, reports, events.
	list        string
	decoded     int
	undecodable []*ibmailv1.UndecodableItem
	positions   []int
	// What was refused, for the store and for the answer.
	rejected []store.RejectedPayload
	refused  []*ibmailv1.RejectedReport
}

// openWebhookBody authenticates a webhook call and checks the size of its
// body: decoded items that the gateway decoded (or a gRPC caller sent),
// and those it could not. empty says what an empty body lacks.
func openWebhookBody(ctx context.Context, auth WebhookAuthenticator, list string, decoded int, undecodable []*ibmailv1.UndecodableItem, empty string, received time.Time) (*webhookBody, error) {
	connectionID, err := authenticateWebhook(ctx, auth, webhookCredential(ctx))
	if err != nil {
		return nil, err
	}
	n := decoded + len(undecodable)
	if n == 0 {
		return nil, apiError(codes.InvalidArgument, ReasonMalformedBody, empty)
	}
	if n > maxReportsPerBody {
		return nil, invalidField(list, fmt.Sprintf("has %d items; at most %d fit in one body", n, maxReportsPerBody))
	}
	positions, err := bodyPositions(decoded, undecodable)
	if err != nil {
		return nil, err
	}
	return &webhookBody{connectionID: connectionID, received: received.UTC(), list: list, decoded: decoded,
		undecodable: undecodable, positions: positions}, nil
}

// size is how many items the body holds.
func (b *webhookBody) size() int { return b.decoded + len(b.undecodable) }

// refuse records that the item at index of the body is refused.
func (b *webhookBody) refuse(index int, id, field string, why error, body []byte) {
	reason := safeText(fmt.Sprintf("%s[%d]: %v", b.list, index, why), maxMessageBytes)
	b.rejected = append(b.rejected, store.RejectedPayload{ReceiveTime: b.received, ContentType: "application/json", Reason: reason, Body: body})
	b.refused = append(b.refused, &ibmailv1.RejectedReport{Index: int32(index), MessageId: id, Reason: reason, Field: field})
}

// refuseDecoded refuses decoded item m, at position pos, for err (whose
// field faultField names), keeping it as JSON.
func (b *webhookBody) refuseDecoded(pos int, id string, m proto.Message, err error) {
	body, _ := protojson.Marshal(m)
	b.refuse(pos, safeText(id, maxReasonBytes), faultField(err), err, body)
}

// walk calls each(i, pos) for the decoded items in order, i counting them
// and pos their position in the body, and refuses the undecodable items
// in between, in body order; idOf names an undecodable item, if it can.
func (b *webhookBody) walk(each func(i, pos int), idOf func(raw []byte) string) {
	next := 0 // into undecodable, which bodyPositions sorted by index
	refuseUpTo := func(pos int) {
		for ; next < len(b.undecodable) && int(b.undecodable[next].GetIndex()) < pos; next++ {
			u := b.undecodable[next]
			b.refuse(int(u.GetIndex()), idOf(u.GetRaw()), safeText(u.GetField(), maxReasonBytes), undecodableError(u), u.GetRaw())
		}
	}
	for i, pos := range b.positions {
		refuseUpTo(pos)
		each(i, pos)
	}
	refuseUpTo(b.size())
}

// bodyPositions gives each of decoded reports its position in the body:
// the undecodable items hold theirs, and the decoded ones fill the others in
// order (see IngestDeliveryReportsRequest.undecodable_results). It sorts
// undecodable by index, and refuses indexes that repeat or lie outside the
// body, which only a gRPC caller can send.
func bodyPositions(decoded int, undecodable []*ibmailv1.UndecodableItem) ([]int, error) {
	total := decoded + len(undecodable)
	slices.SortFunc(undecodable, func(a, b *ibmailv1.UndecodableItem) int { return cmp.Compare(a.GetIndex(), b.GetIndex()) })
	for i, u := range undecodable {
		if u.GetIndex() < 0 || int(u.GetIndex()) >= total || (i > 0 && undecodable[i-1].GetIndex() == u.GetIndex()) {
			return nil, invalidField("undecodableResults.index",
				fmt.Sprintf("%d is not a free position of a body of %d reports", u.GetIndex(), total))
		}
	}
	positions := make([]int, decoded)
	pos, next := 0, 0
	for i := range positions {
		for next < len(undecodable) && int(undecodable[next].GetIndex()) == pos {
			pos, next = pos+1, next+1
		}
		positions[i] = pos
		pos++
	}
	return positions, nil
}

// undecodableError says why an item did not decode, naming its field.
func undecodableError(u *ibmailv1.UndecodableItem) error {
	if u.GetField() == "" {
		return fmt.Errorf("not a delivery report: %s", safeText(u.GetReason(), maxReasonBytes))
	}
	return fmt.Errorf("%s: %s", safeText(u.GetField(), maxReasonBytes), safeText(u.GetReason(), maxReasonBytes))
}

// rawMessageID is the messageId of an item that did not decode, when it
// has one as a string, so that the answer can name the report.
func rawMessageID(raw []byte) string {
	var item struct {
		MessageID any `json:"messageId"`
	}
	if json.Unmarshal(raw, &item) != nil {
		return ""
	}
	id, _ := item.MessageID.(string)
	return safeText(id, maxReasonBytes)
}
