package mongostore

import (
	"context"
	"fmt"
	"sync"

	"github.com/memcell/memcell"
)

// txSupport caches SupportsTransactions: the answer of one server does not
// change while the store is open.
type txSupport struct {
	mu        sync.Mutex
	known, ok bool
}

func (s *Store) transactionsSupported(ctx context.Context) (bool, error) {
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	if !s.tx.known {
		ok, err := s.SupportsTransactions(ctx)
		if err != nil {
			return false, err
		}
		s.tx.known, s.tx.ok = true, ok
	}
	return s.tx.ok, nil
}

// RunTransaction runs fn in a transaction with the driver's retry rules (fn
// may run more than once) and returns when the transaction committed or
// failed. The ctx fn receives carries the session: store operations called
// with it take part in the transaction. On a server without transactions it
// returns memcell.ErrTransactionsUnsupported without calling fn.
func (s *Store) RunTransaction(ctx context.Context, fn func(ctx context.Context) error) error {
	ok, err := s.transactionsSupported(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return memcell.ErrTransactionsUnsupported
	}
	sess, err := s.client.StartSession()
	if err != nil {
		return fmt.Errorf("mongostore: start session: %w", mapErr(err))
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
	_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
		return nil, fn(ctx)
	})
	if err != nil {
		return fmt.Errorf("mongostore: transaction: %w", mapErr(err))
	}
	return nil
}
