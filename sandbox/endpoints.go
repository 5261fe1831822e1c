package sandbox

import (
	"net/http"
	"strconv"
	"time"

	"github.com/ibmail/ibmail/infobip"
)

// createdAt is when every sandbox domain claims to have been added.
var createdAt = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func (s *Sandbox) handleDomains(r *http.Request, _ *faultState) answer {
	q := r.URL.Query()
	size, page := 10, 0
	var problems map[string][]string
	if v := q.Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > infobip.MaxDomainsPageSize {
			problems = map[string][]string{"size": {"must be between 1 and 20"}}
		}
		size = n
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			problems = map[string][]string{"page": {"must be 0 or more"}}
		}
		page = n
	}
	if problems != nil {
		return errorAnswer(http.StatusBadRequest, "BAD_REQUEST", "Bad request", problems)
	}
	all := s.opts.Domains
	out := infobip.DomainsResponse{
		Paging:  infobip.Paging{Page: page, Size: size, TotalPages: (len(all) + size - 1) / size, TotalResults: len(all)},
		Results: []infobip.Domain{},
	}
	now := s.now()
	for i := page * size; i < len(all) && i < (page+1)*size; i++ {
		d := all[i]
		out.Results = append(out.Results, infobip.Domain{
			DomainID: int64(i + 1), DomainName: d.Name, Active: d.Active, Blocked: s.bounces.isBlocked(d.Name, now),
			Tracking: &infobip.DomainTracking{Clicks: true, Opens: true, Unsubscribe: true},
			DNSRecords: []infobip.DNSRecord{
				{RecordType: "TXT", Name: d.Name, ExpectedValue: "v=spf1 include:spf.infobip.com ~all", Verified: d.Active},
				{RecordType: "TXT", Name: "selector._domainkey." + d.Name, ExpectedValue: "k=rsa; p=MIGf", Verified: d.Active},
			},
			CreatedAt:                   &infobip.Time{Time: createdAt},
			BlocklistConfigurationLevel: "FROM_DOMAIN",
		})
	}
	return jsonAnswer(http.StatusOK, out)
}

func (s *Sandbox) handleLogs(r *http.Request, _ *faultState) answer {
	q := r.URL.Query()
	f := logFilter{
		bulkID: q.Get("bulkId"), messageID: q.Get("messageId"), to: q.Get("to"), from: q.Get("from"),
		campaignReferenceID: q.Get("campaignReferenceId"), generalStatus: q.Get("generalStatus"),
		applicationID: q.Get("applicationId"), entityID: q.Get("entityId"), limit: 50,
	}
	problems := map[string][]string{}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > infobip.MaxLogsLimit {
			problems["limit"] = []string{"must be between 1 and 1000"}
		}
		f.limit = n
	}
	for name, dst := range map[string]*time.Time{"sentSince": &f.sentSince, "sentUntil": &f.sentUntil} {
		if v := q.Get(name); v != "" {
			t, err := infobip.ParseTime(v)
			if err != nil {
				problems[name] = []string{"must be a date-time such as 2021-01-02T01:00:00.123Z"}
			}
			*dst = t
		}
	}
	if len(problems) > 0 {
		return errorAnswer(http.StatusBadRequest, "BAD_REQUEST", "Bad request", problems)
	}
	now := s.now()
	out := infobip.LogsResponse{Results: []infobip.Log{}}
	for _, ref := range s.store.find(f, now) {
		b, m := ref.b, ref.b.messages[ref.i]
		o := statusAt(b, m, now).named(s.opts.GenericGroupNames)
		l := infobip.Log{
			ApplicationID: b.applicationID, EntityID: b.entityID,
			BulkID: b.id, MessageID: m.id, To: m.to, From: b.from,
			SentAt: &infobip.Time{Time: b.sentAt}, MessageCount: 1,
			Price:  &infobip.Price{PricePerMessage: 0, Currency: "UNKNOWN"},
			Status: o.Status,
		}
		if o.Status.GroupName != statusPending.GroupName {
			l.DoneAt = &infobip.Time{Time: b.doneAt}
			l.Error = &o.Error
		}
		out.Results = append(out.Results, l)
	}
	return jsonAnswer(http.StatusOK, out)
}

// handlePullReports answers GET /email/1/reports with nothing and counts the
// call: on Infobip, reading there consumes reports meant for the webhook,
// so ibmail must never do it, and tests check the count stays 0.
func (s *Sandbox) handlePullReports(*http.Request, *faultState) answer {
	s.stats.pullReportCalls.Add(1)
	return jsonAnswer(http.StatusOK, infobip.DeliveryReports{Results: []infobip.DeliveryReport{}})
}
