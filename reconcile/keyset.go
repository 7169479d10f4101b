package reconcile

import (
	"hash/maphash"

	"github.com/memcell/memcell"
)

// keySet is an order-independent fingerprint of a multiset of ids: their
// count and the sum of their keyed hashes. The primary pass adds the id of
// every document whose KV copy it saw (or wrote); the KV pass adds the id of
// every key it scans. Equal fingerprints mean that the KV's keys are
// exactly the copies of documents the primary pass read, so there are no
// extras and the KV pass can skip asking the primary about its last batch
// of keys, which for a KV of up to existsBatch keys is every question it
// would ask. That matters on FerretDB, which answers each such question by
// reading the whole collection.
//
// The hash is keyed with a random seed per job, so two different sets
// collide with probability about 2^-64, whatever ids they hold. Any
// disturbance (a key written or deleted between the passes, a key that a
// Redis scan reports twice, a resumed job whose first part was not
// fingerprinted) makes the fingerprints differ, and the KV pass then asks
// the primary about every key as it would without this.
type keySet struct {
	seed  maphash.Seed
	sum   uint64
	count int64
}

func newKeySet(seed maphash.Seed) keySet { return keySet{seed: seed} }

func (s *keySet) add(id memcell.ID) {
	s.sum += maphash.Bytes(s.seed, id[:])
	s.count++
}

func (s *keySet) equal(o *keySet) bool {
	return s.sum == o.sum && s.count == o.count
}
