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
