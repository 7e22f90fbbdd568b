package repository

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dddkit/dddkit/tracking"
)

// RetryPolicy runs a unit of work again when it lost a race with a
// concurrent one: an optimistic-lock conflict, or what a store reports as
// one (a serialization failure or a deadlock on PostgreSQL, a busy SQLite
// database). Each attempt starts afresh: the aggregates are loaded again,
// since the snapshots of a failed unit of work were never advanced. The
// function retried must therefore be safe to run again: it must derive
// what it writes from what it loads, and have no effect outside the unit
// of work (no message sent, no counter kept in memory) that a second run
// would repeat.
//
// The zero RetryPolicy runs a unit of work once.
type RetryPolicy struct {
	// Attempts is the most times the unit of work runs, the first one
	// included. Zero or less means one.
	Attempts int
	// Backoff is the wait before the first retry; it doubles with each
	// retry, up to MaxBackoff. Each wait is jittered: a random duration
	// between half of it and all of it, so that writers that collided once
	// do not collide again in step. Zero means retry at once.
	Backoff time.Duration
	// MaxBackoff caps the wait; zero means 100 times Backoff.
	MaxBackoff time.Duration
	// Retryable reports whether an error is worth another attempt. Nil
	// means errors.Is(err, ErrConflict).
	Retryable func(err error) bool
	// OnRetry, when set, is called before each retry with the number of the
	// attempt that failed (from 1) and its error: a place to count or log
	// retries.
	OnRetry func(ctx context.Context, attempt int, err error)
}

// Run runs fn until it returns nil or an error that is not retryable,
// until ctx is done, or until the attempts are used up, and returns fn's
// last error; after more than one attempt it is wrapped with their number.
//
// Inside an enclosing unit of work (ctx carries a [tracking.Scope]) fn
// runs once: only a whole unit of work can be run again, and the enclosing
// one decides.
func (p RetryPolicy) Run(ctx context.Context, fn func(ctx context.Context) error) error {
	if fn == nil {
		return errors.New("repository: retry: nil function")
	}
	if _, ok := tracking.FromContext(ctx); ok || p.Attempts <= 1 {
		return fn(ctx)
	}
	retryable := p.Retryable
	if retryable == nil {
		retryable = func(err error) bool { return errors.Is(err, ErrConflict) }
	}
	wait, maxWait := p.Backoff, p.MaxBackoff
	if maxWait <= 0 {
		maxWait = 100 * wait
	}
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || !retryable(err) {
			return err
		}
		if attempt >= p.Attempts {
			return fmt.Errorf("repository: %d attempts: %w", attempt, err)
		}
		if p.OnRetry != nil {
			p.OnRetry(ctx, attempt, err)
		}
		if wait > 0 {
			d := wait/2 + rand.N(wait/2+1)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("repository: %d attempts: %w", attempt, errors.Join(err, ctx.Err()))
			case <-t.C:
			}
			wait = min(2*wait, maxWait)
		} else if ctx.Err() != nil {
			return fmt.Errorf("repository: %d attempts: %w", attempt, errors.Join(err, ctx.Err()))
		}
	}
}
