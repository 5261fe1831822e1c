package sandbox

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// jobKind says what a job posts.
type jobKind uint8

const (
	// jobReports posts delivery reports to a notifyUrl, many per POST.
	jobReports jobKind = iota
	// jobTracking posts one message's tracking events to its trackingUrl.
	jobTracking
	// jobPlatform posts platform events to Options.PlatformEventsURL.
	jobPlatform
)

func (k jobKind) String() string {
	switch k {
	case jobTracking:
		return "tracking event"
	case jobPlatform:
		return "platform event"
	default:
		return "delivery report"
	}
}

// job is one POST of reports: messages lo..hi of a bulk, or the picked ones
// (duplicates). Its reports are built by the worker that first posts it, off
// the request path, and its body is kept for retries. An event job instead
// posts its events one per POST, in order, from next on.
type job struct {
	kind    jobKind
	url     string
	b       *bulk
	lo, hi  int
	picks   []int
	dup     bool
	due     time.Time
	attempt int
	gen     uint64
	body    []byte
	index   int
	// tracking are the events of a report job's messages, queued once its
	// reports are done, so that no event overtakes its message's report.
	tracking []plannedEvent
	events   []eventPost
	next     int
}

// eventPost is one event's body; dup marks the second copy.
type eventPost struct {
	body []byte
	dup  bool
}

// size is how many reports or events the job has still to post.
func (j *job) size() int {
	if j.kind != jobReports {
		return len(j.events) - j.next
	}
	if j.picks != nil {
		return len(j.picks)
	}
	return j.hi - j.lo
}

// queue holds report POSTs in due order and feeds a fixed set of workers, so
// the sandbox never keeps a goroutine per message. Pending reports (queued
// or being posted) are bounded: a send that would pass the bound waits.
type queue struct {
	s       *Sandbox
	mu      sync.Mutex
	jobs    jobHeap
	pending int
	gen     uint64
	wake    chan struct{} // a job was pushed
	space   chan struct{} // closed when pending drops
	idle    chan struct{} // closed when pending reaches 0
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newQueue(s *Sandbox, opts Options) *queue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &queue{s: s, wake: make(chan struct{}, 1), space: make(chan struct{}), idle: make(chan struct{}), ctx: ctx, cancel: cancel}
	for range opts.ReportWorkers {
		q.wg.Go(q.work)
	}
	return q
}

// enqueueBulk queues b's reports in batches, and a second copy of those
// marked in dup; each batch carries its messages' tracking events (ordered
// by message), which are queued once it is done. If ctx ends while waiting
// for room, the rest are dropped.
func (q *queue) enqueueBulk(ctx context.Context, url string, b *bulk, dup []bool, events []plannedEvent) {
	size := q.s.opts.ReportBatchSize
	due := time.Now().Add(q.s.opts.ReportDelay)
	var jobs []*job
	for lo := 0; lo < len(b.messages); lo += size {
		j := &job{url: url, b: b, lo: lo, hi: min(lo+size, len(b.messages)), due: due}
		k := 0
		for k < len(events) && events[k].msg < j.hi {
			k++
		}
		j.tracking, events = events[:k], events[k:]
		jobs = append(jobs, j)
	}
	var picks []int
	for i, d := range dup {
		if d {
			picks = append(picks, i)
		}
	}
	for lo := 0; lo < len(picks); lo += size {
		jobs = append(jobs, &job{url: url, b: b, picks: picks[lo:min(lo+size, len(picks))], dup: true, due: due})
	}
	for i, j := range jobs {
		if !q.push(ctx, j) {
			for _, rest := range jobs[i:] {
				q.s.stats.reportsDropped.Add(int64(rest.size()))
			}
			return
		}
		q.s.stats.reportsQueued.Add(int64(j.size()))
		if j.dup {
			q.s.stats.duplicateReports.Add(int64(j.size()))
		}
	}
}

// enqueueEvents queues event jobs at once, each due after ReportDelay (the
// tracking events of a send without reports, platform events), waiting for
// room as enqueueBulk does.
func (q *queue) enqueueEvents(ctx context.Context, jobs []*job) {
	due := time.Now().Add(q.s.opts.ReportDelay)
	for _, j := range jobs {
		j.due = due
		if !q.push(ctx, j) {
			return
		}
		q.s.stats.events(j.kind).queued(j)
	}
}

// enqueueNow queues an event job due after ReportDelay without waiting for
// room (platform events: a handful per block).
func (q *queue) enqueueNow(j *job) {
	j.due = time.Now().Add(q.s.opts.ReportDelay)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.pushLocked(j)
	q.s.stats.events(j.kind).queued(j)
}

// push waits for room, then queues j; false if ctx or the queue ended.
func (q *queue) push(ctx context.Context, j *job) bool {
	n := j.size()
	q.mu.Lock()
	for !q.closed && q.pending > 0 && q.pending+n > q.s.opts.MaxPendingReports {
		space := q.space
		q.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return false
		}
		q.mu.Lock()
	}
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.pushLocked(j)
	return true
}

// pushLocked queues j without waiting for room: workers queue the tracking
// events of the reports they posted this way, as waiting could stall every
// worker. Called with mu held.
func (q *queue) pushLocked(j *job) {
	j.gen = q.gen
	q.pending += j.size()
	heap.Push(&q.jobs, j)
	q.signal()
}

// signal wakes one waiting worker; called with mu held.
func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) work() {
	for {
		j := q.next()
		if j == nil {
			return
		}
		q.post(j)
	}
}

// next blocks until a job is due, or returns nil once the queue is closed.
func (q *queue) next() *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.closed {
			return nil
		}
		var timer *time.Timer
		var due <-chan time.Time
		if len(q.jobs) > 0 {
			wait := time.Until(q.jobs[0].due)
			if wait <= 0 {
				j := heap.Pop(&q.jobs).(*job)
				if len(q.jobs) > 0 {
					q.signal() // let another worker look at the next one
				}
				return j
			}
			timer = time.NewTimer(wait)
			due = timer.C
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-due:
		case <-q.ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
		q.mu.Lock()
	}
}

func (q *queue) post(j *job) {
	if j.kind != jobReports {
		q.postEvents(j)
		return
	}
	s := q.s
	if j.body == nil {
		j.body = q.encode(j)
	}
	ok, err := q.send(j.url, j.body)
	// The tracking events follow the reports once they are done: posted,
	// or given up after the last retry. Their bodies are built here, off
	// the lock.
	var follow []*job
	if (ok || j.attempt >= s.opts.ReportRetries) && len(j.tracking) > 0 {
		follow = s.trackingJobs(j.b, j.tracking)
	}
	n := j.size()
	q.mu.Lock()
	defer q.mu.Unlock()
	if j.gen != q.gen || q.closed {
		q.release(n) // reset or closed meanwhile: forget it uncounted
		return
	}
	for _, f := range follow {
		f.due = time.Now()
		q.pushLocked(f)
		s.stats.events(f.kind).queued(f)
	}
	if ok {
		s.stats.reportPosts.Add(1)
		s.stats.reportsPosted.Add(int64(n))
		q.release(n)
		return
	}
	s.stats.reportPostFailures.Add(1)
	s.log.Warn("sandbox: delivery report POST failed", "bulkId", j.b.id, "reports", n, "attempt", j.attempt+1, "err", withoutURL(err))
	if j.attempt >= s.opts.ReportRetries {
		s.stats.reportsAbandoned.Add(int64(n))
		q.release(n)
		return
	}
	j.attempt++
	q.retry(j)
}

// postEvents posts an event job's events one by one, in order; a refused
// one is retried as a report batch is (and given up after as many tries),
// holding back the rest of its job.
func (q *queue) postEvents(j *job) {
	s := q.s
	c := s.stats.events(j.kind)
	for {
		ev := j.events[j.next]
		ok, err := q.send(j.url, ev.body)
		q.mu.Lock()
		if j.gen != q.gen || q.closed {
			q.release(j.size())
			q.mu.Unlock()
			return
		}
		switch {
		case ok:
			c.posted.Add(1)
		case j.attempt < s.opts.ReportRetries:
			c.postFailures.Add(1)
			s.log.Warn("sandbox: "+j.kind.String()+" POST failed", "attempt", j.attempt+1, "err", withoutURL(err))
			j.attempt++
			q.retry(j)
			q.mu.Unlock()
			return
		default:
			c.postFailures.Add(1)
			c.abandoned.Add(1)
			s.log.Warn("sandbox: "+j.kind.String()+" POST failed, given up", "attempt", j.attempt+1, "err", withoutURL(err))
		}
		j.next++
		j.attempt = 0
		q.release(1)
		done := j.next >= len(j.events)
		q.mu.Unlock()
		if done {
			return
		}
	}
}

// send POSTs body as JSON; ok means the receiver answered 200, the only
// answer Infobip counts as delivered.
func (q *queue) send(url string, body []byte) (ok bool, err error) {
	req, err := http.NewRequestWithContext(q.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := q.s.opts.HTTPClient.Do(req)
	if err != nil {
		return false, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, &statusError{resp.StatusCode}
	}
	return true, nil
}

// retry queues j again after Infobip's backoff for its attempt number:
// base + base*n*n. Called with mu held.
func (q *queue) retry(j *job) {
	base := q.s.opts.ReportRetryBase
	j.due = time.Now().Add(base + base*time.Duration(j.attempt*j.attempt))
	heap.Push(&q.jobs, j)
	q.signal()
}

// release returns room for n reports; called with mu held.
func (q *queue) release(n int) {
	q.pending -= n
	close(q.space)
	q.space = make(chan struct{})
	if q.pending == 0 {
		close(q.idle)
		q.idle = make(chan struct{})
	}
}

func (q *queue) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.gen++
	n := 0
	for _, j := range q.jobs {
		n += j.size()
	}
	q.jobs = nil
	if n > 0 {
		q.release(n)
	}
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cancel()
	q.wg.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, j := range q.jobs {
		n += j.size()
	}
	q.jobs = nil
	if n > 0 {
		q.release(n)
	}
}

func (q *queue) pendingReports() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending
}

func (q *queue) waitIdle(ctx context.Context) error {
	for {
		q.mu.Lock()
		if q.pending == 0 {
			q.mu.Unlock()
			return nil
		}
		idle := q.idle
		q.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// withoutURL drops the URL from a client error: it may carry the
// receiver's ?token=, which must stay out of logs.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "answered " + http.StatusText(e.code) }

// jobHeap orders jobs by due time.
type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, k int) bool { return h[i].due.Before(h[k].due) }
func (h jobHeap) Swap(i, k int) {
	h[i], h[k] = h[k], h[i]
	h[i].index, h[k].index = i, k
}
func (h *jobHeap) Push(x any) {
	j := x.(*job)
	j.index = len(*h)
	*h = append(*h, j)
}
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return j
}
