package server

import (
	"context"
	"errors"
	"strings"
	"sync"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/store"
)

// attribute ties reports (delivery or tracking) to the recipients of this
// server's sends: by Infobip's messageId, stored when Infobip accepted the
// message, or, for a report that beats that answer, by the send id in
// callbackData and the address. Attributed reports land on the profile
// given at send time, and count towards the bounce rate of their send's
// sending domain.
//
// Only sends of connectionID, the connection whose webhook secret
// authenticated the body, are candidates ("" : the server-wide secret, any
// send): a caller holding one connection's secret must not be able to move
// another connection's recipients, or their profiles, by naming their
// messageId or send. Its reports still land, on the profile their address
// gives, but suppress nothing: the suppression list is shared by every
// connection, and one connection's secret may suppress only the addresses
// of its own sends, or its holder could stop another's mail. Nor do
// unattributed reports count towards any domain's bounce rate, which could
// otherwise be pushed up to pause a domain.
func attribute(ctx context.Context, st store.SendStore, domains *sendDomainCache, connectionID string, reports []store.Report, callbackSends []string) error {
	// One lookup for the body, of each message id once (a retried report
	// may repeat one); none when no report has an id. An empty id (a
	// tracking report without one) must not match the recipients Infobip
	// has not answered for yet.
	var ids []string
	seen := make(map[string]struct{}, len(reports))
	for _, r := range reports {
		if id := r.Key.MessageID; id != "" {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				ids = append(ids, id)
			}
		}
	}
	var byMessage map[string]store.Recipient
	if len(ids) > 0 {
		var err error
		if byMessage, err = st.RecipientsByMessageID(ctx, connectionID, ids); err != nil {
			return err
		}
	}
	// The recipients found by send and address, each pair read once.
	type sendEmail struct{ send, email string }
	var byEmail map[sendEmail]*store.Recipient
	for i := range reports {
		r := &reports[i]
		rec, ok := byMessage[r.Key.MessageID]
		if r.Key.MessageID == "" {
			ok = false
		}
		if !ok && callbackSends[i] != "" && r.Email != "" {
			k := sendEmail{callbackSends[i], r.Email}
			found, known := byEmail[k]
			if !known {
				got, err := st.RecipientByEmail(ctx, connectionID, k.send, k.email)
				switch {
				case err == nil:
					found = &got
				case !errors.Is(err, store.ErrNotFound):
					return err
				}
				if byEmail == nil {
					byEmail = make(map[sendEmail]*store.Recipient)
				}
				byEmail[k] = found
			}
			if found != nil {
				rec, ok = *found, true
			}
		}
		if !ok {
			r.Domain, r.CountsAs = "", store.CountNone
			if connectionID != "" {
				r.Suppress = false
			}
			continue
		}
		r.ProfileID = rec.ProfileID
		r.Recipient = &store.RecipientRef{SendID: rec.SendID, Seq: rec.Seq}
		if r.CountsAs != store.CountNone {
			d, err := domains.of(ctx, rec.SendID)
			if err != nil {
				return err
			}
			r.Domain = d
		}
	}
	return nil
}

// deliveryEffects says whether a delivery report suppresses its address
// and how it counts towards its domain's bounce rate. A delivered report
// counts as sent, one of Infobip's bounced error group (2) as a bounce;
// pending, dropped and expired reports do not count, as Infobip's own rate
// counts what reached a mailbox or bounced off one. A report of the domain
// being blocked (error 6016) is about the sender, not the recipient: it
// neither suppresses nor counts.
func deliveryEffects(r *ibmailv1.DeliveryReport, rep store.Report) (bool, store.DomainCount) {
	if isDomainBlockedError(r.GetError()) {
		return false, store.CountNone
	}
	suppress := suppressingEvents[rep.EventName]
	switch {
	case r.GetError().GetGroupId() == 2:
		return suppress, store.CountBounce
	case r.GetStatus().GetGroupId() == 3:
		return suppress, store.CountSent
	}
	return suppress, store.CountNone
}

// domainBlockedErrorID is Infobip's EC_SENDER_DOMAIN_BOUNCE_BLOCKED, the
// error of every message of a domain it has blocked for its bounce rate.
const domainBlockedErrorID = 6016

func isDomainBlockedError(e *ibmailv1.ReportError) bool {
	return e.GetId() == domainBlockedErrorID || strings.EqualFold(strings.TrimSpace(e.GetName()), "EC_SENDER_DOMAIN_BOUNCE_BLOCKED")
}

// sendDomainCache remembers the sending domain of sends, which never
// changes once a send is stored, so that attributing a body of reports
// reads each send once. It is bounded: when full it starts afresh.
type sendDomainCache struct {
	store store.SendStore
	mu    sync.Mutex
	m     map[string]string
}

// maxCachedSendDomains bounds the cache: a send id and a domain are well
// under 300 bytes, so a full cache holds about a megabyte.
const maxCachedSendDomains = 4096

func newSendDomainCache(st store.SendStore) *sendDomainCache {
	return &sendDomainCache{store: st, m: make(map[string]string)}
}

// of returns the sending domain of send id; "" for a send that is gone.
func (c *sendDomainCache) of(ctx context.Context, id string) (string, error) {
	c.mu.Lock()
	d, ok := c.m[id]
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	s, err := c.store.GetSend(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedSendDomains {
		clear(c.m)
	}
	c.m[id] = s.FromDomain
	c.mu.Unlock()
	return s.FromDomain, nil
}
