package sandbox

import (
	"bytes"
	"container/heap"
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// job is one POST of reports: messages lo..hi of a bulk, or the picked ones
// (duplicates). Its reports are built by the worker that first posts it, off
// the request path, and its body is kept for retries.
type job struct {
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
}

func (j *job) size() int {
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
// marked in dup. If ctx ends while waiting for room, the rest are dropped.
func (q *queue) enqueueBulk(ctx context.Context, url string, b *bulk, dup []bool) {
	size := q.s.opts.ReportBatchSize
	due := time.Now().Add(q.s.opts.ReportDelay)
	var jobs []*job
	for lo := 0; lo < len(b.messages); lo += size {
		jobs = append(jobs, &job{url: url, b: b, lo: lo, hi: min(lo+size, len(b.messages)), due: due})
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
	j.gen = q.gen
	q.pending += n
	heap.Push(&q.jobs, j)
	q.signal()
	return true
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
	s := q.s
	if j.body == nil {
		j.body = q.encode(j)
	}
	req, err := http.NewRequestWithContext(q.ctx, http.MethodPost, j.url, bytes.NewReader(j.body))
	ok := false
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		var resp *http.Response
		resp, err = s.opts.HTTPClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			// Infobip counts a delivery as done only on 200.
			ok = resp.StatusCode == http.StatusOK
			if !ok {
				err = &statusError{resp.StatusCode}
			}
		}
	}
	n := j.size()
	q.mu.Lock()
	defer q.mu.Unlock()
	if j.gen != q.gen || q.closed {
		q.release(n) // reset or closed meanwhile: forget it uncounted
		return
	}
	if ok {
		s.stats.reportPosts.Add(1)
		s.stats.reportsPosted.Add(int64(n))
		q.release(n)
		return
	}
	s.stats.reportPostFailures.Add(1)
	s.log.Warn("sandbox: delivery report POST failed", "bulkId", j.b.id, "reports", n, "attempt", j.attempt+1, "err", err)
	if j.attempt >= s.opts.ReportRetries {
		s.stats.reportsAbandoned.Add(int64(n))
		q.release(n)
		return
	}
	j.attempt++
	base := s.opts.ReportRetryBase
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
