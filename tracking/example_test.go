package tracking_test

import (
	"context"
	"fmt"

	"github.com/dddkit/dddkit/tracking"
)

type Basket struct {
	id    int
	items []*BasketItem
}

func (b *Basket) ID() int { return b.id }

type BasketItem struct {
	SKU string `ddd:"id"`
	Qty int
}

func ExampleTracker() {
	ctx := context.Background()
	tr := tracking.NewTracker[*Basket]()
	b := &Basket{id: 1, items: []*BasketItem{{SKU: "tea", Qty: 1}}}
	if err := tr.Attach(ctx, b); err != nil { // takes a deep copy
		panic(err)
	}

	b.items[0].Qty = 3
	b.items = append(b.items, &BasketItem{SKU: "milk", Qty: 1})
	changes, err := tr.Changes(ctx, b)
	if err != nil {
		panic(err)
	}
	fmt.Println(changes)

	// A save in a unit of work that rolls back leaves the snapshot as it was.
	_ = tracking.InScope(ctx, func(ctx context.Context) error {
		_ = tr.Attach(ctx, b)
		return fmt.Errorf("the transaction failed")
	})
	changed, _ := tr.Changed(ctx, b)
	fmt.Println("changed after rollback:", changed)

	_ = tr.Attach(ctx, b)
	changed, _ = tr.Changed(ctx, b)
	fmt.Println("changed after attach:", changed)
	// Output:
	// items[id=tea]: modified
	// items[id=tea].Qty: 1 -> 3
	// items[id=milk]: added
	// changed after rollback: true
	// changed after attach: false
}

// A unit of work tells what must happen once its changes are durable, and
// only then: after a rollback, nothing runs.
func ExampleScope_OnCommit() {
	ctx := context.Background()
	tr := tracking.NewTracker[*Basket]()
	b := &Basket{id: 1, items: []*BasketItem{{SKU: "tea", Qty: 1}}}
	_ = tr.Attach(ctx, b)

	save := func(ctx context.Context, fail bool) error {
		b.items[0].Qty++
		_ = tr.Attach(ctx, b) // the save's next snapshot, staged in the scope
		sc, _ := tracking.FromContext(ctx)
		sc.OnCommit(func() {
			changed, _ := tr.Changed(context.Background(), b)
			fmt.Printf("committed: drop basket %d from the cache (changed since the snapshot: %v)\n", b.id, changed)
		})
		if fail {
			return fmt.Errorf("the transaction failed")
		}
		return nil
	}
	err := tracking.InScope(ctx, func(ctx context.Context) error { return save(ctx, true) })
	fmt.Println("rolled back:", err)
	err = tracking.InScope(ctx, func(ctx context.Context) error { return save(ctx, false) })
	fmt.Println("done:", err)
	// Output:
	// rolled back: the transaction failed
	// committed: drop basket 1 from the cache (changed since the snapshot: false)
	// done: <nil>
}
