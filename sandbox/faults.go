package sandbox

import (
	"crypto/subtle"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// answer is what an endpoint computed; the fault layer decides whether,
// when and how it reaches the client.
type answer struct {
	status int
	body   []byte
	header http.Header
}

// api wraps an Infobip endpoint with the checks Infobip makes before any
// work (key, scopes, rate), then the configured faults.
func (s *Sandbox) api(h func(*http.Request, *faultState) answer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.stats.requests.Add(1)
		f := s.faults.Load()
		a, ok := s.admit(r, f)
		fail, lose := s.drawFaults(f)
		if ok {
			n := f.seq.Load()
			fail = fail || f.Fail.picks(n)
			lose = (lose || f.Lose.picks(n)) && !fail
		}
		switch {
		case !ok:
		case fail:
			a = errorAnswer(http.StatusInternalServerError, "GENERAL_ERROR", "Something went wrong. Please contact support.", nil)
		default:
			a = h(r, f)
		}
		s.count(a.status)
		s.sleep(r.Context(), f.Latency)
		if lose && a.status == http.StatusOK {
			s.stats.lost.Add(1)
			s.lose(w, r, f.LoseMode)
			return
		}
		write(w, a)
	}
}

func (s *Sandbox) admit(r *http.Request, f *faultState) (answer, bool) {
	const scheme = "App "
	h := r.Header.Get("Authorization")
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return errorAnswer(http.StatusUnauthorized, "UNAUTHORIZED", "Invalid login details", nil), false
	}
	key := strings.TrimSpace(h[len(scheme):])
	if s.keys[key] {
		return errorAnswer(http.StatusForbidden, "FORBIDDEN", "Forbidden", nil), false
	}
	if s.opts.APIKey != "" && subtle.ConstantTimeCompare([]byte(key), []byte(s.opts.APIKey)) != 1 {
		return errorAnswer(http.StatusUnauthorized, "UNAUTHORIZED", "Invalid login details", nil), false
	}
	n := f.seq.Add(1)
	if f.Throttle.picks(n) || (f.limiter != nil && !f.limiter.take(s.now())) {
		return throttled(f), false
	}
	return answer{}, true
}

// Counted injects faults into API requests chosen by their order of
// arrival (counting those whose key is accepted, from SetFaults or Reset),
// so that a test knows how many faults it gets however fast or slow the
// machine is; the rate limit and the shares draw them by speed and chance.
type Counted struct {
	// Throttle picks the requests answered 429.
	Throttle Count
	// Fail picks the requests answered 500 and not processed.
	Fail Count
	// Lose picks the requests processed whose answer never arrives.
	Lose Count
}

// Count picks requests by their number n (1, 2, ...): the first First of
// them, then every Every-th (n = Every, 2*Every, ... up to Max*Every; Max
// 0: no bound).
type Count struct {
	First int64
	Every int64
	Max   int64
}

func (c Count) picks(n int64) bool {
	if n <= c.First {
		return true
	}
	if c.Every <= 0 || n%c.Every != 0 {
		return false
	}
	return c.Max <= 0 || n/c.Every <= c.Max
}

func throttled(f *faultState) answer {
	var a answer
	if f.E429Body {
		a = jsonAnswer(http.StatusTooManyRequests, apiError{
			ErrorCode:   "E429",
			Description: "Too many requests sent.",
			Action:      "Check request rate limit specified in the API endpoint documentation resource.",
			Violations:  []struct{}{},
			Resources:   []apiErrorResource{{Name: "Throttling handling errors", URL: "https://www.infobip.com/docs/essentials/integration-best-practices#throttling-handling-errors"}},
		})
	} else {
		a = errorAnswer(http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "Too many requests", nil)
	}
	if f.RetryAfter > 0 {
		secs := int64(math.Ceil(f.RetryAfter.Seconds()))
		a.header = http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
	}
	return a
}

func (s *Sandbox) drawFaults(f *faultState) (fail, lose bool) {
	if f.FailRate <= 0 && f.LoseRate <= 0 {
		return false, false
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	fail = s.rng.Float64() < f.FailRate
	lose = s.rng.Float64() < f.LoseRate
	return fail, lose && !fail
}

func (s *Sandbox) count(status int) {
	switch {
	case status == http.StatusBadRequest:
		s.stats.rejected400.Add(1)
	case status == http.StatusUnauthorized:
		s.stats.rejected401.Add(1)
	case status == http.StatusForbidden:
		s.stats.rejected403.Add(1)
	case status == http.StatusTooManyRequests:
		s.stats.rejected429.Add(1)
	case status >= 500:
		s.stats.failed5xx.Add(1)
	}
}

// lose makes sure the client never hears the answer: the connection is
// dropped, at once or when the client gives up.
func (s *Sandbox) lose(w http.ResponseWriter, r *http.Request, mode LoseMode) {
	if mode == LoseHold {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
	}
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// HTTP/2 and recorders cannot be hijacked; this aborts the stream
	// without logging.
	panic(http.ErrAbortHandler)
}

func write(w http.ResponseWriter, a answer) {
	for k, vs := range a.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

type serviceException struct {
	MessageID        string              `json:"messageId"`
	Text             string              `json:"text"`
	ValidationErrors map[string][]string `json:"validationErrors,omitempty"`
}

type apiException struct {
	RequestError struct {
		ServiceException serviceException `json:"serviceException"`
	} `json:"requestError"`
}

type apiError struct {
	ErrorCode   string             `json:"errorCode"`
	Description string             `json:"description"`
	Action      string             `json:"action"`
	Violations  []struct{}         `json:"violations"`
	Resources   []apiErrorResource `json:"resources"`
}

type apiErrorResource struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// errorAnswer is Infobip's older error body, which the description gives
// every email endpoint.
func errorAnswer(status int, messageID, text string, validation map[string][]string) answer {
	var e apiException
	e.RequestError.ServiceException = serviceException{MessageID: messageID, Text: text, ValidationErrors: validation}
	return jsonAnswer(status, e)
}

func writeError(w http.ResponseWriter, status int, messageID, text string, validation map[string][]string) {
	write(w, errorAnswer(status, messageID, text, validation))
}

func jsonAnswer(status int, v any) answer {
	b, err := json.Marshal(v)
	if err != nil {
		return answer{status: http.StatusInternalServerError, body: []byte(`{}`)}
	}
	return answer{status: status, body: b}
}

// bucket is a token bucket: Rate tokens a second, holding at most Rate (at
// least one), so short bursts pass and a sustained excess is refused.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, now time.Time) *bucket {
	b := &bucket{rate: rate, burst: math.Max(1, rate)}
	b.reset(now)
	return b
}

func (b *bucket) reset(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens, b.last = b.burst, now
}

func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(b.burst, b.tokens+elapsed.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
