package record

import (
	"hash/maphash"
	"math/bits"
	"sync"
)

// stripeCount is the number of mutexes a Locks spreads keys over: enough
// that unrelated writers rarely wait for each other, few enough to lock all
// stripes of a large batch cheaply.
const stripeCount = 256

// Locks serialises the read-decide-write sequence of guarded writes per key.
// Keys are hashed onto a fixed set of mutexes (stripes), so two keys may
// share a stripe; that only costs some waiting. Operations on several keys
// lock their stripes through a StripeSet, which always locks in ascending
// stripe order, so that two batches never deadlock.
//
// A Locks must be made by NewLocks and is safe for concurrent use.
type Locks struct {
	seed maphash.Seed
	mu   [stripeCount]sync.Mutex
}

// NewLocks returns a ready Locks.
func NewLocks() *Locks {
	return &Locks{seed: maphash.MakeSeed()}
}

func (l *Locks) stripe(key string) int {
	return int(maphash.String(l.seed, key) % stripeCount)
}

// For returns the mutex of key's stripe.
func (l *Locks) For(key string) *sync.Mutex {
	return &l.mu[l.stripe(key)]
}

// StripeSet is a set of stripes of one Locks, to lock together. The zero
// value is not usable; make one with Locks.Set.
type StripeSet struct {
	l    *Locks
	bits [stripeCount / 64]uint64
}

// Set returns an empty StripeSet of l.
func (l *Locks) Set() StripeSet {
	return StripeSet{l: l}
}

// Add adds key's stripe to the set.
func (s *StripeSet) Add(key string) {
	i := s.l.stripe(key)
	s.bits[i/64] |= 1 << (i % 64)
}

// Lock locks every stripe of the set in ascending order.
func (s *StripeSet) Lock() {
	s.each(func(m *sync.Mutex) { m.Lock() })
}

// Unlock unlocks every stripe of the set.
func (s *StripeSet) Unlock() {
	s.each(func(m *sync.Mutex) { m.Unlock() })
}

func (s *StripeSet) each(f func(*sync.Mutex)) {
	for w, word := range s.bits {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &^= 1 << b
			f(&s.l.mu[w*64+b])
		}
	}
}
