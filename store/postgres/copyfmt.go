package postgres

import (
	"encoding/binary"
	"io"
	"time"
)

// copyRows builds PostgreSQL's binary COPY format (see the COPY reference,
// "Binary Format") straight into one buffer: a tuple is its field count,
// then each field as its length and its binary form, -1 for NULL. Writing
// it by hand costs a few appends per field, where pgx's CopyFrom would
// look up an encode plan for every value, and the server reads it without
// parsing text.
type copyRows struct{ b []byte }

// copyHeader is the signature, no flags and no header extension.
const copyHeader = "PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// row starts a tuple of n fields.
func (c *copyRows) row(n int) { c.b = binary.BigEndian.AppendUint16(c.b, uint16(n)) }

func (c *copyRows) null() { c.b = binary.BigEndian.AppendUint32(c.b, 0xffffffff) }

func (c *copyRows) text(s string) {
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(s)))
	c.b = append(c.b, s...)
}

// bytea writes NULL for a nil slice, as pgx does.
func (c *copyRows) bytea(p []byte) {
	if p == nil {
		c.null()
		return
	}
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(p)))
	c.b = append(c.b, p...)
}

// jsonb is the binary jsonb form, version 1 then the text, which the
// server parses; NULL for nil.
func (c *copyRows) jsonb(p []byte) {
	if p == nil {
		c.null()
		return
	}
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(p)+1))
	c.b = append(c.b, 1)
	c.b = append(c.b, p...)
}

func (c *copyRows) int2(v int16) {
	c.b = binary.BigEndian.AppendUint32(c.b, 2)
	c.b = binary.BigEndian.AppendUint16(c.b, uint16(v))
}

func (c *copyRows) int4(v int32) {
	c.b = binary.BigEndian.AppendUint32(c.b, 4)
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(v))
}

func (c *copyRows) int8(v int64) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(v))
}

// microsecFromUnixEpochToY2K is where timestamptz counts from.
const microsecFromUnixEpochToY2K = 946684800 * 1000000

// timestamptz is microseconds since 2000-01-01 UTC, truncated as pgx
// truncates, so that both paths store one instant identically.
func (c *copyRows) timestamptz(t time.Time) {
	c.int8(t.Unix()*1000000 + int64(t.Nanosecond())/1000 - microsecFromUnixEpochToY2K)
}

// done ends the data; the buffer is then what COPY ... FROM STDIN reads.
func (c *copyRows) done() []byte {
	c.b = append(c.b, 0xff, 0xff)
	return c.b
}

// copyStream is COPY data that encodes its rows as COPY reads them:
// pgconn's CopyFrom reads and sends it a chunk at a time while the server
// inserts the chunks already sent, so that on a machine of a few cores the
// client's encoding overlaps the server's inserting, instead of adding to
// it, and the buffer stays the size of a chunk, whatever the rows' number.
type copyStream struct {
	c     copyRows
	off   int // what Read has given of c.b
	next  int // the next row to encode
	n     int
	write func(c *copyRows, row int)
	ended bool
}

func newCopyStream(n int, write func(c *copyRows, row int)) *copyStream {
	s := &copyStream{n: n, write: write}
	s.c.b = append(make([]byte, 0, 80<<10), copyHeader...)
	return s
}

func (s *copyStream) Read(p []byte) (int, error) {
	if s.off > 0 { // keep only what is left to give
		s.c.b = s.c.b[:copy(s.c.b, s.c.b[s.off:])]
		s.off = 0
	}
	for len(s.c.b) < len(p) && !s.ended {
		if s.next < s.n {
			s.write(&s.c, s.next)
			s.next++
		} else {
			s.c.done()
			s.ended = true
		}
	}
	if len(s.c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.c.b)
	s.off = n
	return n, nil
}

// jsonbMap writes m as a jsonb object in map order (see appendEventParams),
// NULL for an empty map, encoding it straight into the COPY data.
func (c *copyRows) jsonbMap(m map[string]string) {
	if len(m) == 0 {
		c.null()
		return
	}
	at := len(c.b)
	c.b = append(c.b, 0, 0, 0, 0, 1) // length, patched below, and version
	c.b = appendEventParams(c.b, m)
	binary.BigEndian.PutUint32(c.b[at:], uint32(len(c.b)-at-4))
}
