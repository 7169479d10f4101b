package mongostore

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
)

// writeLocks serialise this process's writes for servers whose updates are
// not atomic. FerretDB v1 applies findAndModify and updateMany as a read,
// a change in Go and a write, so two concurrent updates of one document can
// both read revision n and one of them is lost. A single process that owns
// the database (the embedded primary) gets atomic updates back by holding a
// per-document lock around each single-document write and an exclusive lock
// around each bulk write. Several processes writing one FerretDB are not
// protected; the README says so.
type writeLocks struct {
	enabled bool
	bulk    sync.RWMutex
	seed    maphash.Seed
	stripes [256]sync.Mutex
}

// one locks the document id for a single-document write; call the returned
// function to unlock.
func (w *writeLocks) one(id memcell.ID) func() {
	if !w.enabled {
		return func() {}
	}
	w.bulk.RLock()
	m := &w.stripes[maphash.Bytes(w.seed, id[:])%uint64(len(w.stripes))]
	m.Lock()
	return func() {
		m.Unlock()
		w.bulk.RUnlock()
	}
}

// many locks the documents ids for writes of each of them, taking their
// stripes in order so that two callers cannot deadlock.
func (w *writeLocks) many(ids []memcell.ID) func() {
	if !w.enabled {
		return func() {}
	}
	stripes := make([]int, 0, len(ids))
	for _, id := range ids {
		stripes = append(stripes, int(maphash.Bytes(w.seed, id[:])%uint64(len(w.stripes))))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	w.bulk.RLock()
	for _, i := range stripes {
		w.stripes[i].Lock()
	}
	return func() {
		for _, i := range stripes {
			w.stripes[i].Unlock()
		}
		w.bulk.RUnlock()
	}
}

// all locks out every other write for a bulk write.
func (w *writeLocks) all() func() {
	if !w.enabled {
		return func() {}
	}
	w.bulk.Lock()
	return w.bulk.Unlock
}

// isFerretDB reports whether the server is FerretDB, which says so in
// buildInfo.
func (s *Store) isFerretDB(ctx context.Context) (bool, error) {
	var info bson.M
	if err := s.client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, mapErr(err)
	}
	_, ok := info["ferretdbVersion"]
	return ok, nil
}
