package httpapi_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/memcell/memcell"
)

// memPrimary is an in-memory memcell.Primary with just what the P8
// benchmark calls: Append, Get, the intent clearing, Ping. It measures the
// layers above the primary without a database's cost. Any other method
// panics on the nil embedded interface.
type memPrimary struct {
	memcell.Primary // nil: the methods not written here are not called

	mu   sync.RWMutex
	docs map[memcell.ID]*memcell.MemCell
}

func newMemPrimary() *memPrimary {
	return &memPrimary{docs: map[memcell.ID]*memcell.MemCell{}}
}

// Append stores a copy of m as a new document, revision 1, with a write
// intent, as mongostore does. Unlike mongostore it does not validate m
// again: the benchmark measures the layers above the primary.
func (p *memPrimary) Append(_ context.Context, m *memcell.MemCell) (*memcell.MemCell, error) {
	d := *m
	if d.ID.IsZero() {
		d.ID = memcell.NewID()
	}
	now := memcell.NormalizeTime(time.Now())
	d.Timestamp = memcell.NormalizeTime(d.Timestamp)
	d.CreatedAt, d.UpdatedAt = &now, &now
	d.Revision, d.Intent = 1, memcell.NewID()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.docs[d.ID]; ok {
		return nil, fmt.Errorf("append %s: %w", d.ID, memcell.ErrConflict)
	}
	stored := d
	p.docs[d.ID] = &stored
	return &d, nil
}

// Get returns a copy of the live document.
func (p *memPrimary) Get(_ context.Context, id memcell.ID) (*memcell.MemCell, error) {
	p.mu.RLock()
	d, ok := p.docs[id]
	p.mu.RUnlock()
	if !ok || d.Deleted() {
		return nil, fmt.Errorf("get %s: %w", id, memcell.ErrNotFound)
	}
	out := *d
	out.Intent = memcell.ID{}
	return &out, nil
}

// ClearIntents forgets the intents: nothing here needs them.
func (p *memPrimary) ClearIntents(context.Context, []memcell.Intent) error { return nil }

// RecordPending is called only when a KV write fails; memkv does not fail.
func (p *memPrimary) RecordPending(context.Context, []memcell.ID, string) (memcell.ID, error) {
	return memcell.NewID(), nil
}

// Ping answers at once.
func (p *memPrimary) Ping(context.Context) error { return nil }
