package mirror

import (
	"context"
	"sync"

	"github.com/memcell/memcell/kv"
)

type txKey struct{}

// txBuffer holds the KV writes of one transaction attempt.
type txBuffer struct {
	mu  sync.Mutex
	ops []txOp
}

// txOp is a held put of entry, or a held delete of entry.Key at revision
// entry.Rev.
type txOp struct {
	entry  kv.Entry
	delete bool
}

func (b *txBuffer) add(e kv.Entry, del bool) {
	b.mu.Lock()
	b.ops = append(b.ops, txOp{entry: e, delete: del})
	b.mu.Unlock()
}

func txFrom(ctx context.Context) *txBuffer {
	b, _ := ctx.Value(txKey{}).(*txBuffer)
	return b
}

// WithTransaction runs fn in a primary transaction. Repository calls made
// with the ctx that fn receives take part in it; their KV writes are held
// and applied only after the commit succeeds, and dropped if it aborts.
// fn may run more than once when the server asks for a retry; each attempt
// starts with no held writes.
//
// It returns memcell.ErrTransactionsUnsupported, without calling fn, when
// the primary has no transactions (the embedded primary, a standalone
// mongod). Validated reads inside a transaction are skipped: the KV copy
// cannot know uncommitted state.
func (r *Repository) WithTransaction(ctx context.Context, fn func(ctx context.Context) error) (Mirror, error) {
	var buf *txBuffer
	err := r.primary.RunTransaction(ctx, func(tctx context.Context) error {
		buf = &txBuffer{}
		return fn(context.WithValue(tctx, txKey{}, buf))
	})
	if err != nil {
		if buf != nil && len(buf.ops) > 0 {
			r.log.DebugContext(ctx, "mirror: transaction failed; held kv writes dropped", "writes", len(buf.ops))
		}
		return Mirror{}, err
	}
	return r.applyHeld(ctx, buf.ops), nil
}

// applyHeld applies a committed transaction's KV writes: the last write of
// each key wins, puts in one batch and deletes in another.
func (r *Repository) applyHeld(ctx context.Context, ops []txOp) Mirror {
	if len(ops) == 0 {
		return Mirror{Status: MirrorSkipped}
	}
	last := make(map[string]int, len(ops))
	for i, op := range ops {
		last[op.entry.Key] = i
	}
	var (
		puts    []kv.Entry
		deletes []kv.Deletion
	)
	for i, op := range ops {
		if last[op.entry.Key] != i {
			continue
		}
		if op.delete {
			deletes = append(deletes, kv.Deletion{Key: op.entry.Key, Rev: op.entry.Rev})
		} else {
			puts = append(puts, op.entry)
		}
	}
	var total Mirror
	if len(puts) > 0 {
		total = merge(total, r.batchPut(ctx, "transaction", puts))
	}
	if len(deletes) > 0 {
		total = merge(total, r.deleteKeys(ctx, "transaction", deletes))
	}
	return total
}
