package store

import (
	"errors"
	"fmt"
)

// ErrInvalidArgument: a caller gave an engine something the contract does
// not allow (a bug in the caller, not bad user input).
var ErrInvalidArgument = errors.New("invalid request")

// CheckNewSend checks that pending recipients are exactly those in a batch,
// that every other one has a final state and that batches are due to be
// sent, counting the recipients by state on the way.
func CheckNewSend(recipients []Recipient, batches []Batch) (map[RecipientState]int, error) {
	inBatches := make(map[int]bool, len(batches))
	for _, b := range batches {
		if b.State != BatchPending && b.State != BatchAmbiguous {
			return nil, fmt.Errorf("batch %d: state %d: a new batch is pending or ambiguous: %w", b.Seq, b.State, ErrInvalidArgument)
		}
		inBatches[b.Seq] = true
	}
	counts := map[RecipientState]int{}
	for i := range recipients {
		r := &recipients[i]
		inBatch := r.BatchSeq >= 0
		if inBatch && !inBatches[r.BatchSeq] {
			return nil, fmt.Errorf("recipient %d: batch %d is not in the send: %w", r.Seq, r.BatchSeq, ErrInvalidArgument)
		}
		if inBatch && r.State != RecipientPending || !inBatch && !r.State.Final() {
			return nil, fmt.Errorf("recipient %d: state %d in batch %d: only pending recipients go in a batch, and all of them: %w",
				r.Seq, r.State, r.BatchSeq, ErrInvalidArgument)
		}
		counts[r.State]++
	}
	return counts, nil
}

// Final says whether a recipient's state is final.
func (st RecipientState) Final() bool {
	switch st {
	case RecipientAccepted, RecipientRejected, RecipientSuppressed, RecipientFailed:
		return true
	}
	return false
}
