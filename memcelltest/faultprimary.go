package memcelltest

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/memcell/memcell"
)

// ErrPrimaryDown is the error FaultPrimary returns while it is down; it
// wraps memcell.ErrUnavailable, as mongostore's errors for an unreachable
// server do.
var ErrPrimaryDown = fmt.Errorf("%w: memcelltest: injected primary outage", memcell.ErrUnavailable)

// FaultPrimary wraps a real memcell.Primary and makes it unavailable on
// demand, for the tests of what happens while the primary is down. Every
// call that is not failed goes to the wrapped primary.
type FaultPrimary struct {
	memcell.Primary
	// Down fails every call with ErrPrimaryDown.
	Down atomic.Bool
	// Hang makes every call wait for its context to end, then fail with
	// ErrPrimaryDown: a server that does not answer (the driver waits for
	// its server selection timeout).
	Hang atomic.Bool
	// Reads counts the calls of Get and GetMany, failed ones included.
	Reads atomic.Int64
}

// NewFaultPrimary wraps p.
func NewFaultPrimary(p memcell.Primary) *FaultPrimary { return &FaultPrimary{Primary: p} }

// fault returns the injected error, if any, after waiting for ctx when
// hanging.
func (f *FaultPrimary) fault(ctx context.Context) error {
	if f.Hang.Load() {
		<-ctx.Done()
		return fmt.Errorf("%w: %w", ErrPrimaryDown, ctx.Err())
	}
	if f.Down.Load() {
		return ErrPrimaryDown
	}
	return nil
}

func (f *FaultPrimary) Append(ctx context.Context, m *memcell.MemCell) (*memcell.MemCell, error) {
	if err := f.fault(ctx); err != nil {
		return nil, err
	}
	return f.Primary.Append(ctx, m)
}

func (f *FaultPrimary) Get(ctx context.Context, id memcell.ID) (*memcell.MemCell, error) {
	f.Reads.Add(1)
	if err := f.fault(ctx); err != nil {
		return nil, err
	}
	return f.Primary.Get(ctx, id)
}

func (f *FaultPrimary) GetMany(ctx context.Context, ids []memcell.ID, fields []string) (map[memcell.ID]*memcell.MemCell, error) {
	f.Reads.Add(1)
	if err := f.fault(ctx); err != nil {
		return nil, err
	}
	return f.Primary.GetMany(ctx, ids, fields)
}

func (f *FaultPrimary) Update(ctx context.Context, id memcell.ID, fields map[string]any) (*memcell.MemCell, error) {
	if err := f.fault(ctx); err != nil {
		return nil, err
	}
	return f.Primary.Update(ctx, id, fields)
}

func (f *FaultPrimary) SoftDelete(ctx context.Context, id memcell.ID, by string) (*memcell.MemCell, error) {
	if err := f.fault(ctx); err != nil {
		return nil, err
	}
	return f.Primary.SoftDelete(ctx, id, by)
}

func (f *FaultPrimary) Restore(ctx context.Context, id memcell.ID) (*memcell.MemCell, error) {
	if err := f.fault(ctx); err != nil {
		return nil, err
	}
	return f.Primary.Restore(ctx, id)
}

func (f *FaultPrimary) HardDelete(ctx context.Context, id memcell.ID) (memcell.Removal, error) {
	if err := f.fault(ctx); err != nil {
		return memcell.Removal{}, err
	}
	return f.Primary.HardDelete(ctx, id)
}

func (f *FaultPrimary) SoftDeleteMany(ctx context.Context, sc memcell.Scope, by string) (memcell.BulkResult, error) {
	if err := f.fault(ctx); err != nil {
		return memcell.BulkResult{}, err
	}
	return f.Primary.SoftDeleteMany(ctx, sc, by)
}

func (f *FaultPrimary) RestoreMany(ctx context.Context, sc memcell.Scope) (memcell.BulkResult, error) {
	if err := f.fault(ctx); err != nil {
		return memcell.BulkResult{}, err
	}
	return f.Primary.RestoreMany(ctx, sc)
}

func (f *FaultPrimary) HardDeleteMany(ctx context.Context, sc memcell.Scope) (memcell.BulkResult, error) {
	if err := f.fault(ctx); err != nil {
		return memcell.BulkResult{}, err
	}
	return f.Primary.HardDeleteMany(ctx, sc)
}

func (f *FaultPrimary) Find(ctx context.Context, q memcell.Query) ([]*memcell.MemCell, error) {
	if err := f.fault(ctx); err != nil {
		return nil, err
	}
	return f.Primary.Find(ctx, q)
}

func (f *FaultPrimary) Count(ctx context.Context, q memcell.Query) (int64, error) {
	if err := f.fault(ctx); err != nil {
		return 0, err
	}
	return f.Primary.Count(ctx, q)
}

func (f *FaultPrimary) Latest(ctx context.Context, userID string, limit int64) ([]*memcell.MemCell, error) {
	if err := f.fault(ctx); err != nil {
		return nil, err
	}
	return f.Primary.Latest(ctx, userID, limit)
}

func (f *FaultPrimary) RecordPending(ctx context.Context, ids []memcell.ID, reason string) (memcell.ID, error) {
	if err := f.fault(ctx); err != nil {
		return memcell.ID{}, err
	}
	return f.Primary.RecordPending(ctx, ids, reason)
}

func (f *FaultPrimary) Pending(ctx context.Context) ([]memcell.ID, error) {
	if err := f.fault(ctx); err != nil {
		return nil, err
	}
	return f.Primary.Pending(ctx)
}

func (f *FaultPrimary) ClearIntents(ctx context.Context, intents []memcell.Intent) error {
	if err := f.fault(ctx); err != nil {
		return err
	}
	return f.Primary.ClearIntents(ctx, intents)
}

func (f *FaultPrimary) RunTransaction(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := f.fault(ctx); err != nil {
		return err
	}
	return f.Primary.RunTransaction(ctx, fn)
}

func (f *FaultPrimary) Ping(ctx context.Context) error {
	if err := f.fault(ctx); err != nil {
		return err
	}
	return f.Primary.Ping(ctx)
}
