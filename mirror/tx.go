package mirror

import (
	"context"
	"sync"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

type txKey struct{}

// txBuffer holds the KV writes of one transaction attempt.
type txBuffer struct {
	mu  sync.Mutex
	ops []txOp
}

// txOp is a held put of entry, or a held delete of entry.Key at revision
// entry.Rev, and the write intent to clear once it is done.
type txOp struct {
	entry  kv.Entry
	delete bool
	intent memcell.Intent
}

func (b *txBuffer) add(e kv.Entry, del bool, intent memcell.Intent) {
	b.mu.Lock()
	b.ops = append(b.ops, txOp{entry: e, delete: del, intent: intent})
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
// each key wins, puts in one batch and deletes in another; then their
// intents are cleared (each key's last, which its document carries).
func (r *Repository) applyHeld(ctx context.Context, ops []txOp) Mirror {
	if len(ops) == 0 {
		return Mirror{Status: MirrorSkipped}
	}
	last := make(map[string]int, len(ops))
	for i, op := range ops {
		last[op.entry.Key] = i
	}
	var (
		puts, deletes []txOp
	)
	for i, op := range ops {
		if last[op.entry.Key] != i {
			continue
		}
		if op.delete {
			deletes = append(deletes, op)
		} else {
			puts = append(puts, op)
		}
	}
	if r.queued(ctx) {
		return r.enqueue(heldJobs(puts, deletes))
	}
	var total Mirror
	if len(puts) > 0 {
		entries := make([]kv.Entry, len(puts))
		for i, op := range puts {
			entries[i] = op.entry
		}
		mir := r.batchPut(ctx, "transaction", entries)
		if mir.Status != MirrorFailed {
			r.done(heldIntents(puts)...)
		}
		total = merge(total, mir)
	}
	if len(deletes) > 0 {
		dels := make([]kv.Deletion, len(deletes))
		for i, op := range deletes {
			dels[i] = kv.Deletion{Key: op.entry.Key, Rev: op.entry.Rev}
		}
		mir := r.deleteKeys(ctx, "transaction", dels)
		if mir.Status != MirrorFailed {
			r.done(heldIntents(deletes)...)
		}
		total = merge(total, mir)
	}
	return total
}

// heldIntents returns the intents of held operations that have one.
func heldIntents(ops []txOp) []memcell.Intent {
	out := make([]memcell.Intent, 0, len(ops))
	for _, op := range ops {
		if !op.intent.Mark.IsZero() {
			out = append(out, op.intent)
		}
	}
	return out
}

// heldJobs turns a committed transaction's last write of each key into
// queued jobs. The deletes whose pending notes share a mark form one group,
// cleared once all of them are done.
func heldJobs(puts, deletes []txOp) []*job {
	jobs := make([]*job, 0, len(puts)+len(deletes))
	for _, op := range puts {
		j := &job{key: op.entry.Key, id: op.intent.ID, val: op.entry.Value, rev: op.entry.Rev, op: "transaction"}
		if !op.intent.Mark.IsZero() {
			j.intents = []memcell.Intent{op.intent}
		}
		jobs = append(jobs, j)
	}
	count := map[memcell.ID]int{}
	for _, op := range deletes {
		count[op.intent.Mark]++
	}
	groups := map[memcell.ID]*jobGroup{}
	for _, op := range deletes {
		j := &job{key: op.entry.Key, id: op.intent.ID, del: true, rev: op.entry.Rev, op: "transaction"}
		if m := op.intent.Mark; !m.IsZero() {
			if groups[m] == nil {
				groups[m] = newJobGroup(op.intent, count[m])
			}
			j.groups = []*jobGroup{groups[m]}
		}
		jobs = append(jobs, j)
	}
	return jobs
}
