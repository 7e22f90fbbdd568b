package repository_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
)

// countingHooks wraps the hooks of a store: it counts the loads that go
// through it, and tells when an update it passed on is committed.
type countingHooks struct {
	repository.Hooks[*Order, int64]
	selects int
}

// Unwrap returns the hooks it wraps, so that their abilities are found.
func (c *countingHooks) Unwrap() repository.Hooks[*Order, int64] { return c.Hooks }

func (c *countingHooks) Select(ctx context.Context, id int64) (*Order, error) {
	c.selects++
	return c.Hooks.Select(ctx, id)
}

func (c *countingHooks) Update(ctx context.Context, o *Order, ch repository.Changes) error {
	if err := c.Hooks.Update(ctx, o, ch); err != nil {
		return err
	}
	repository.AfterCommit(ctx, func() {
		fmt.Printf("committed: order %d at version %d\n", o.id, ch.NewVersion)
	})
	return nil
}

func ExampleWrapHooks() {
	ctx := context.Background()
	store := printingHooks{saved: map[int64]*Order{1: {id: 1, lines: []*Line{{sku: "pen", qty: 1, price: 150}}, total: 150}}}
	counter := &countingHooks{}
	repo, err := repository.NewSupport[*Order, int64](store, repository.WrapHooks(func(h repository.Hooks[*Order, int64]) repository.Hooks[*Order, int64] {
		counter.Hooks = h
		return counter
	}))
	if err != nil {
		panic(err)
	}

	// Outside a unit of work, the write is committed when Save returns.
	o, _ := repo.Find(ctx, 1)
	o.SetQty("pen", 2)
	_ = repo.Save(ctx, o)
	fmt.Println("saved")

	// In one, once it commits; loaded once, as the identity map returns
	// the instance loaded first.
	_ = tracking.InScope(ctx, func(ctx context.Context) error {
		a, _ := repo.Find(ctx, 1)
		b, _ := repo.Find(ctx, 1)
		a.SetQty("pen", 3)
		_ = repo.Save(ctx, a)
		fmt.Println("saved in the unit of work; the same instance:", a == b)
		return nil
	})
	fmt.Println("loads through the wrapper:", counter.selects)
	// Output:
	// UPDATE order 1 SET total = 300
	// UPDATE order 1 SET version = 1 WHERE version = 0
	// UPDATE line pen SET qty = 2
	// committed: order 1 at version 1
	// saved
	// UPDATE order 1 SET total = 450
	// UPDATE order 1 SET version = 2 WHERE version = 1
	// UPDATE line pen SET qty = 3
	// saved in the unit of work; the same instance: true
	// committed: order 1 at version 2
	// loads through the wrapper: 2
}

func ExampleAs() {
	var hooks repository.Hooks[*Order, int64] = &countingHooks{Hooks: printingHooks{}}

	// The store under the wrapper, found through Unwrap.
	_, ok := repository.As[printingHooks](hooks)
	fmt.Println("printingHooks:", ok)
	// An ability that no hooks of the chain have.
	_, ok = repository.As[repository.Locker[*Order, int64]](hooks)
	fmt.Println("Locker:", ok)
	// Output:
	// printingHooks: true
	// Locker: false
}

func ExampleAfterCommit() {
	ctx := context.Background()
	_ = tracking.InScope(ctx, func(ctx context.Context) error {
		repository.AfterCommit(ctx, func() { fmt.Println("never printed: the unit of work rolls back") })
		return errors.New("a step failed")
	})
	_ = tracking.InScope(ctx, func(ctx context.Context) error {
		repository.AfterCommit(ctx, func() { fmt.Println("committed") })
		fmt.Println("in the unit of work")
		return nil
	})
	// Output:
	// in the unit of work
	// committed
}
