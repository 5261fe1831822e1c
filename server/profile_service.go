package server

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/store"
)

// eventNamePattern is the form of event names such as newsletter.hardbounce.
var eventNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`)

// maxEventNames bounds the event-name filters of one query.
const maxEventNames = 50

// ProfileService implements ibmail.v1.ProfileService: the activity list and
// the segmentation.
type ProfileService struct {
	ibmailv1.UnimplementedProfileServiceServer
	store store.Store
	rows  *rowSkippers
}

// NewProfileService returns a ProfileService reading st; rows it cannot
// show are logged to log.
func NewProfileService(st store.Store, log *slog.Logger) *ProfileService {
	return &ProfileService{store: st, rows: newRowSkippers(log)}
}

// ListProfileEvents lists one profile's events, newest first.
func (s *ProfileService) ListProfileEvents(ctx context.Context, req *ibmailv1.ListProfileEventsRequest) (*ibmailv1.ListProfileEventsResponse, error) {
	profileID, err := checkProfileID("profile_id", req.GetProfileId())
	if err != nil {
		return nil, err
	}
	names, err := eventNames("event_names", req.GetEventNames(), false)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize(), 50, 1000)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest(append(retractedKey([]string{"events", profileID}, req.GetIncludeRetracted()), names...)...))
	if err != nil {
		return nil, err
	}
	q := store.EventQuery{ProfileID: profileID, Names: names, Limit: size + 1, IncludeRetracted: req.GetIncludeRetracted()}
	if tok.ID != 0 {
		q.After = &store.EventCursor{Time: timeFromMicros(tok.TimeUS), ID: tok.ID}
	}
	events, err := s.store.ListEvents(ctx, q)
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListProfileEventsResponse{}
	events, resp.NextPageToken = cutPage(events, size, tok.Query, func(e store.Event) pageToken { return pageToken{TimeUS: e.Time.UnixMicro(), ID: e.ID} })
	resp.Events = showable(ctx, s.rows.events, events, eventRowID, showEvent)
	return resp, nil
}

// SearchProfiles finds the profiles with any of the given events in a window.
func (s *ProfileService) SearchProfiles(ctx context.Context, req *ibmailv1.SearchProfilesRequest) (*ibmailv1.SearchProfilesResponse, error) {
	names, err := eventNames("event_names", req.GetEventNames(), true)
	if err != nil {
		return nil, err
	}
	q := store.ProfileQuery{Names: names, IncludeRetracted: req.GetIncludeRetracted()}
	if req.GetSince() != nil {
		if err := req.GetSince().CheckValid(); err != nil {
			return nil, invalidField("since", err.Error())
		}
		q.Since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		if err := req.GetUntil().CheckValid(); err != nil {
			return nil, invalidField("until", err.Error())
		}
		q.Until = req.GetUntil().AsTime()
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return nil, invalidField("until", "must be after since")
	}
	size, err := pageSize(req.GetPageSize(), 100, 1000)
	if err != nil {
		return nil, err
	}
	digest := queryDigest(append(retractedKey([]string{"search", fmt.Sprint(q.Since.UnixMicro()), fmt.Sprint(q.Until.UnixMicro())},
		q.IncludeRetracted), names...)...)
	tok, err := decodePageToken(req.GetPageToken(), digest)
	if err != nil {
		return nil, err
	}
	q.Limit, q.AfterProfileID = size+1, tok.AfterKey
	matches, err := s.store.SearchProfiles(ctx, q)
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.SearchProfilesResponse{}
	matches, resp.NextPageToken = cutPage(matches, size, digest, func(m store.ProfileMatch) pageToken { return pageToken{AfterKey: m.ProfileID} })
	resp.Profiles = showable(ctx, s.rows.matches, matches, func(m store.ProfileMatch) string { return m.ProfileID },
		func(m store.ProfileMatch) (*ibmailv1.ProfileMatch, error) {
			return &ibmailv1.ProfileMatch{
				ProfileId:     m.ProfileID,
				Email:         m.Email,
				EventCount:    int32(m.EventCount),
				LastEventTime: timestamppb.New(m.LastEventTime),
			}, nil
		})
	return resp, nil
}

// retractedKey adds include_retracted to a page token's query key when it
// is set, so that tokens of queries without it stay as they were.
func retractedKey(key []string, includeRetracted bool) []string {
	if includeRetracted {
		return append(key, "include_retracted")
	}
	return key
}

// eventNames validates, de-duplicates and sorts event-name filters, so that
// the same filter in another order makes the same query and page tokens.
func eventNames(field string, in []string, required bool) ([]string, error) {
	if required && len(in) == 0 {
		return nil, invalidField(field, "name at least one event, such as newsletter.hardbounce")
	}
	if len(in) > maxEventNames {
		return nil, invalidField(field, fmt.Sprintf("has %d names; at most %d", len(in), maxEventNames))
	}
	out := make([]string, 0, len(in))
	for _, n := range in {
		n = strings.ToLower(strings.TrimSpace(n))
		if !eventNamePattern.MatchString(n) {
			return nil, invalidField(field, fmt.Sprintf("%q is not an event name such as newsletter.hardbounce", n))
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
