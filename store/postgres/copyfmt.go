package postgres

import (
	"encoding/binary"
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

func newCopyRows(sizeHint int) *copyRows {
	c := &copyRows{b: make([]byte, 0, sizeHint)}
	c.b = append(c.b, copyHeader...)
	return c
}

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
