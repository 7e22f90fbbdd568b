package repository_test

import (
	"context"
	"fmt"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/repository"
)

// Order is an aggregate root with unexported fields and a version.
type Order struct {
	id      int64
	lines   []*Line
	total   int64
	version int64 `ddd:"version"`
}

// ID returns the order's identity.
func (o *Order) ID() int64 { return o.id }

// Line is a child entity; its identity is the tagged field.
type Line struct {
	sku   string `ddd:"id"`
	qty   int
	price int64
}

// SetQty changes a line and keeps the total right.
func (o *Order) SetQty(sku string, qty int) {
	o.total = 0
	for _, l := range o.lines {
		if l.sku == sku {
			l.qty = qty
		}
		o.total += int64(l.qty) * l.price
	}
}

// printingHooks stands for a store: it prints what it would write.
type printingHooks struct{ saved map[int64]*Order }

func (h printingHooks) Select(_ context.Context, id int64) (*Order, error) {
	o, ok := h.saved[id]
	if !ok {
		return nil, repository.ErrNotFound
	}
	return o, nil
}

func (h printingHooks) Insert(_ context.Context, o *Order) error {
	fmt.Printf("INSERT order %d with %d lines\n", o.id, len(o.lines))
	return nil
}

func (h printingHooks) Update(_ context.Context, o *Order, ch repository.Changes) error {
	for _, f := range ch.Diff.Fields {
		fmt.Printf("UPDATE order %d SET %s = %v\n", o.id, f.Path, f.New)
	}
	fmt.Printf("UPDATE order %d SET version = %d WHERE version = %d\n", o.id, ch.NewVersion, ch.OldVersion)
	for _, e := range ch.Diff.Collection("lines") {
		switch e.Kind {
		case diff.Added:
			fmt.Printf("INSERT line %v\n", e.ID)
		case diff.Removed:
			fmt.Printf("DELETE line %v\n", e.ID)
		case diff.Modified:
			for _, f := range e.Fields {
				fmt.Printf("UPDATE line %v SET %s = %v\n", e.ID, f.Path, f.New)
			}
		}
	}
	return nil
}

func (h printingHooks) Delete(_ context.Context, o *Order, version int64) error {
	fmt.Printf("DELETE order %d WHERE version = %d\n", o.id, version)
	return nil
}

func ExampleAggregateRepositorySupport() {
	ctx := context.Background()
	repo, err := repository.NewSupport[*Order, int64](printingHooks{})
	if err != nil {
		panic(err)
	}

	o := &Order{id: 1, lines: []*Line{{sku: "pen", qty: 1, price: 150}, {sku: "ink", qty: 3, price: 400}}}
	o.SetQty("pen", 1)
	_ = repo.Save(ctx, o) // new: inserted, then tracked

	o.SetQty("ink", 5)
	_ = repo.Save(ctx, o) // only what changed

	fmt.Println("saving again:")
	_ = repo.Save(ctx, o) // nothing changed: nothing written

	_ = repo.Remove(ctx, o)
	// Output:
	// INSERT order 1 with 2 lines
	// UPDATE order 1 SET total = 2150
	// UPDATE order 1 SET version = 1 WHERE version = 0
	// UPDATE line ink SET qty = 5
	// saving again:
	// DELETE order 1 WHERE version = 1
}

// Note is an aggregate with a field its store does not keep.
type Note struct {
	id      int64
	text    string
	draft   string // not stored: the hooks leave it out
	version int64  `ddd:"version"`
}

// ID returns the note's identity.
func (n *Note) ID() int64 { return n.id }

// noteHooks stores a note's text only, and says so with Stores.
type noteHooks struct{}

func (noteHooks) Select(context.Context, int64) (*Note, error) { return nil, repository.ErrNotFound }
func (noteHooks) Insert(_ context.Context, n *Note) error {
	fmt.Printf("INSERT note %d\n", n.id)
	return nil
}
func (noteHooks) Update(_ context.Context, n *Note, ch repository.Changes) error {
	fmt.Printf("UPDATE note %d SET text = %q, version = %d\n", n.id, n.text, ch.NewVersion)
	return nil
}
func (noteHooks) Delete(context.Context, *Note, int64) error { return nil }

// Stores reports whether the changes touch the text, the one stored field.
func (noteHooks) Stores(d diff.Result) bool {
	for _, f := range d.Fields {
		if f.Path.String() == "text" {
			return true
		}
	}
	return false
}

func ExamplePartial() {
	ctx := context.Background()
	repo, err := repository.NewSupport[*Note, int64](noteHooks{})
	if err != nil {
		panic(err)
	}
	n := &Note{id: 1, text: "hello"}
	_ = repo.Save(ctx, n)

	n.draft = "hello, wor"
	_ = repo.Save(ctx, n) // a change the store does not keep: nothing written
	fmt.Println("version", n.version)

	n.text = "hello, world"
	_ = repo.Save(ctx, n)
	// Output:
	// INSERT note 1
	// version 0
	// UPDATE note 1 SET text = "hello, world", version = 1
}
