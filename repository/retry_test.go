package repository_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
)

func TestRetryPolicyRun(t *testing.T) {
	other := errors.New("not a conflict")
	tests := []struct {
		name    string
		policy  repository.RetryPolicy
		errs    []error // fn's results, in order; nil once they run out
		inScope bool
		calls   int
		wantErr error
	}{{
		name:  "the zero policy runs once, even after a conflict",
		errs:  []error{repository.ErrConflict},
		calls: 1, wantErr: repository.ErrConflict,
	}, {
		name:   "a conflict is retried until it succeeds",
		policy: repository.RetryPolicy{Attempts: 5},
		errs:   []error{repository.ErrConflict, repository.ErrConflict},
		calls:  3,
	}, {
		name:   "an error that is not retryable is returned at once",
		policy: repository.RetryPolicy{Attempts: 5},
		errs:   []error{other},
		calls:  1, wantErr: other,
	}, {
		name:   "attempts are bounded and the last error is kept",
		policy: repository.RetryPolicy{Attempts: 3},
		errs:   []error{repository.ErrConflict, repository.ErrConflict, repository.ErrConflict, repository.ErrConflict},
		calls:  3, wantErr: repository.ErrConflict,
	}, {
		name:   "a wrapped conflict is a conflict",
		policy: repository.RetryPolicy{Attempts: 2},
		errs:   []error{errors.Join(other, repository.ErrConflict)},
		calls:  2,
	}, {
		name:   "ErrExists is not retried: the same insert fails the same way",
		policy: repository.RetryPolicy{Attempts: 5},
		errs:   []error{repository.ErrExists},
		calls:  1, wantErr: repository.ErrExists,
	}, {
		name:   "a custom Retryable decides",
		policy: repository.RetryPolicy{Attempts: 5, Retryable: func(err error) bool { return errors.Is(err, other) }},
		errs:   []error{other, repository.ErrConflict},
		calls:  2, wantErr: repository.ErrConflict,
	}, {
		name:    "inside an enclosing unit of work only the outer one may retry",
		policy:  repository.RetryPolicy{Attempts: 5},
		errs:    []error{repository.ErrConflict},
		inScope: true,
		calls:   1, wantErr: repository.ErrConflict,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.inScope {
				ctx = tracking.WithScope(ctx, tracking.NewScope())
			}
			calls, retries := 0, 0
			p := tt.policy
			p.OnRetry = func(_ context.Context, attempt int, err error) {
				retries++
				assert.Equal(t, retries, attempt)
				assert.Error(t, err)
			}
			err := p.Run(ctx, func(context.Context) error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			assert.Equal(t, tt.calls, calls, "calls")
			assert.Equal(t, tt.calls-1, retries, "OnRetry calls")
			if tt.wantErr == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

func TestRetryPolicyBackoffAndCancel(t *testing.T) {
	waiting := make(chan struct{})
	p := repository.RetryPolicy{Attempts: 10, Backoff: time.Hour, OnRetry: func(context.Context, int, error) { close(waiting) }}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan error, 1)
	go func() {
		done <- p.Run(ctx, func(context.Context) error { calls++; return repository.ErrConflict })
	}()
	<-waiting // the first attempt failed: Run waits before the next
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled, "the wait between attempts ends with the context")
		assert.ErrorIs(t, err, repository.ErrConflict, "and keeps the error of the attempt")
		assert.Equal(t, 1, calls)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return when the context was cancelled")
	}
	require.Error(t, repository.RetryPolicy{}.Run(context.Background(), nil), "a nil function is an error")
}

// TestUpdateRetriesConflicts runs concurrent increments through Update with
// a retry policy: every increment lands once, none is lost or doubled, and
// the retries are observable.
func TestUpdateRetriesConflicts(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	var retries atomic.Int64
	repo := newRepo(t, store, repository.WithTransactor(&fakeTx{}), repository.WithRetry(repository.RetryPolicy{
		Attempts: 1000,
		OnRetry:  func(context.Context, int, error) { retries.Add(1) },
	}))
	require.NoError(t, repo.Save(ctx, placeOrder(1)))

	const workers, each = 8, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				err := repo.Update(ctx, 1, func(_ context.Context, o *order) error {
					o.setQuantity(1, o.items[0].quantity+1)
					time.Sleep(time.Microsecond) // widen the race
					return nil
				})
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	got, err := store.Select(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, 1+workers*each, got.items[0].quantity, "no lost and no doubled increment")
	assert.Equal(t, int64(workers*each), got.version)
	t.Logf("%d increments, %d retries", workers*each, retries.Load())
}

func TestUpdateNilFunction(t *testing.T) {
	repo := newRepo(t, newMemStore())
	var err error
	assert.NotPanics(t, func() { err = repo.Update(context.Background(), 1, nil) })
	assert.ErrorContains(t, err, "nil function")
}

// lockingStore is a memStore whose loads can lock, and which records which
// kind of select ran.
type lockingStore struct{ *memStore }

func (l lockingStore) SelectForUpdate(ctx context.Context, id orderID) (*order, error) {
	l.mu.Lock()
	l.calls = append(l.calls, "lock")
	l.mu.Unlock()
	return l.Select(ctx, id)
}

// unversioned is an aggregate without a version field.
type unversioned struct {
	id orderID
	n  int
}

func (u *unversioned) ID() orderID { return u.id }

type unversionedStore struct {
	row   unversioned
	calls []string
}

func (s *unversionedStore) Select(context.Context, orderID) (*unversioned, error) {
	s.calls = append(s.calls, "select")
	c := s.row
	return &c, nil
}

func (s *unversionedStore) SelectForUpdate(context.Context, orderID) (*unversioned, error) {
	s.calls = append(s.calls, "select for update")
	c := s.row
	return &c, nil
}
func (s *unversionedStore) Insert(context.Context, *unversioned) error { return nil }
func (s *unversionedStore) Update(_ context.Context, u *unversioned, _ repository.Changes) error {
	s.row = *u
	return nil
}
func (s *unversionedStore) Delete(context.Context, *unversioned, int64) error { return nil }

func TestUpdateLocksAggregatesWithoutVersion(t *testing.T) {
	ctx := context.Background()
	us := &unversionedStore{row: unversioned{id: 1}}
	repo, err := repository.NewSupport[*unversioned, orderID](us)
	require.NoError(t, err)
	require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, u *unversioned) error { u.n++; return nil }))
	assert.Equal(t, []string{"select for update"}, us.calls, "an aggregate without a version is loaded with a lock")
	assert.Equal(t, 1, us.row.n)

	// A versioned aggregate relies on its version: no lock.
	ls := lockingStore{newMemStore()}
	vrepo, err := repository.NewSupport[*order, orderID](ls)
	require.NoError(t, err)
	require.NoError(t, vrepo.Save(ctx, placeOrder(1)))
	ls.takeCalls()
	require.NoError(t, vrepo.Update(ctx, 1, func(_ context.Context, o *order) error { o.setQuantity(1, 2); return nil }))
	assert.Equal(t, []string{"select 1", "update 1 v0->v1"}, ls.takeCalls())

	// FindForUpdate locks, and within a scope returns the same instance.
	require.NoError(t, tracking.InScope(ctx, func(ctx context.Context) error {
		a, err := vrepo.Find(ctx, 1)
		require.NoError(t, err)
		b, err := vrepo.FindForUpdate(ctx, 1)
		require.NoError(t, err)
		assert.Same(t, a, b)
		return nil
	}))
	assert.Equal(t, []string{"select 1", "lock", "select 1"}, ls.takeCalls())

	// Changed by another writer between the plain Find and the lock: the
	// instance loaded first would overwrite that change.
	require.NoError(t, tracking.InScope(ctx, func(ctx context.Context) error {
		_, err := vrepo.Find(ctx, 1)
		require.NoError(t, err)
		ls.mu.Lock()
		ls.rows[1].total += 1
		ls.mu.Unlock()
		_, err = vrepo.FindForUpdate(ctx, 1)
		assert.ErrorIs(t, err, repository.ErrConflict)
		return nil
	}))

	// Hooks that cannot lock are told so.
	plain := newRepo(t, newMemStore())
	_, err = plain.FindForUpdate(ctx, 1)
	assert.ErrorIs(t, err, repository.ErrUnsupported)
}
