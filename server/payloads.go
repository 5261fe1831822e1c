package server

import "google.golang.org/protobuf/proto"

// payloadChunk is the most a payloadBuffer allocates at a time: a hundred
// delivery reports take about two chunks.
const payloadChunk = 32 << 10

// payloadBuffer encodes the reports of one body, each once, into shared
// chunks instead of one allocation per report: the store is handed the
// payload it inserts, never re-encoded. A payload is never written to
// again once returned.
type payloadBuffer struct {
	buf []byte
	// left is how many reports remain to be encoded, so that a chunk is
	// sized for them: a body of one report takes its report's size, not
	// a whole chunk, which on one-report bodies was most of the memory a
	// body allocated.
	left int
}

// newPayloadBuffer returns a buffer for the payloads of n reports.
func newPayloadBuffer(n int) payloadBuffer { return payloadBuffer{left: n} }

// marshal encodes m (not deterministically: the payload is only ever
// decoded again) and returns its bytes.
func (b *payloadBuffer) marshal(m proto.Message) ([]byte, error) {
	if b == nil {
		return proto.Marshal(m)
	}
	n := proto.Size(m) // cached in m, for MarshalAppend's UseCachedSize
	if cap(b.buf)-len(b.buf) < n {
		// The reports of a body are alike: size the chunk for those left.
		b.buf = make([]byte, 0, max(min(payloadChunk, n*max(b.left, 1)), n))
	}
	b.left--
	start := len(b.buf)
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b.buf, m)
	if err != nil {
		return nil, err
	}
	b.buf = out
	return out[start:len(out):len(out)], nil
}
