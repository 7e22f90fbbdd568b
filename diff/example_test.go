package diff_test

import (
	"fmt"

	"github.com/dddkit/dddkit/diff"
)

type Order struct {
	ID    int64
	Total int64
	Items []*OrderItem
}

type OrderItem struct {
	ID       int64 `ddd:"id"`
	Product  string
	Quantity int
}

func ExampleCompare() {
	old := &Order{ID: 1, Total: 1100, Items: []*OrderItem{
		{ID: 1, Product: "pen", Quantity: 2},
		{ID: 2, Product: "ink", Quantity: 3},
	}}
	cur := &Order{ID: 1, Total: 1700, Items: []*OrderItem{
		{ID: 2, Product: "ink", Quantity: 5}, // moved and changed
		{ID: 3, Product: "pad", Quantity: 1}, // new
	}} // item 1 removed

	r, err := diff.Compare(old, cur)
	if err != nil {
		panic(err)
	}
	fmt.Println(r)
	fmt.Println("root modified:", r.RootModified())
	for _, e := range r.Collection("Items") {
		fmt.Printf("item %v %s with %d field changes\n", e.ID, e.Kind, len(e.Fields))
	}
	// Output:
	// Total: 1100 -> 1700
	// Items[id=1]: removed
	// Items[id=2]: modified
	// Items[id=2].Quantity: 3 -> 5
	// Items[id=3]: added
	// root modified: true
	// item 1 removed with 0 field changes
	// item 2 modified with 1 field changes
	// item 3 added with 0 field changes
}
