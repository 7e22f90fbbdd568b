package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// ExampleDB_CommitWith changes a cart in a unit of work whose save is its
// last operation: the save goes without a savepoint, and on pgx with the
// COMMIT in its round trip.
func ExampleDB_CommitWith() {
	show := false
	_, db, carts, done := openShop(func(s sqlstore.Statement) {
		if show {
			fmt.Println(s.SQL, s.Args)
		}
	})
	defer done()
	ctx := context.Background()
	if err := carts.Save(ctx, &Cart{id: 1, owner: "alice", lines: []*Line{{id: 1, product: "tea", quantity: 1}}}); err != nil {
		log.Fatal(err)
	}

	show = true
	err := db.InTx(ctx, func(ctx context.Context) error {
		c, err := carts.FindForUpdate(ctx, 1)
		if err != nil {
			return err
		}
		c.lines[0].quantity = 2
		return carts.Save(db.CommitWith(ctx), c)
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// BEGIN IMMEDIATE []
	// SELECT "id", "owner", "version" FROM "carts" WHERE "id" = ? [1]
	// SELECT "id", "product", "quantity" FROM "cart_lines" WHERE "cart_id" = ? ORDER BY "id" [1]
	// UPDATE "carts" SET "version" = ? WHERE "id" = ? AND "version" = ? [1 1 0]
	// UPDATE "cart_lines" SET "quantity" = ? WHERE "cart_id" = ? AND "id" = ? [2 1 1]
	// COMMIT []
}

// ExampleRepository_RemoveByID removes a cart by its identity, at the
// version the caller last saw, without loading it.
func ExampleRepository_RemoveByID() {
	show := false
	_, _, carts, done := openShop(func(s sqlstore.Statement) {
		if show {
			fmt.Println(s.SQL, s.Args)
		}
	})
	defer done()
	ctx := context.Background()
	if err := carts.Save(ctx, &Cart{id: 1, owner: "alice", lines: []*Line{{id: 1, product: "tea", quantity: 1}}}); err != nil {
		log.Fatal(err)
	}

	err := carts.RemoveByID(ctx, 1, repository.IfVersion(3))
	fmt.Println("at version 3:", errors.Is(err, repository.ErrConflict))
	show = true
	if err := carts.RemoveByID(ctx, 1, repository.IfVersion(0)); err != nil {
		log.Fatal(err)
	}
	show = false
	err = carts.RemoveByID(ctx, 1)
	fmt.Println("again:", errors.Is(err, repository.ErrNotFound))
	// Output:
	// at version 3: true
	// BEGIN []
	// DELETE FROM "cart_lines" WHERE "cart_id" = ? [1]
	// DELETE FROM "carts" WHERE "id" = ? AND "version" = ? [1 0]
	// COMMIT []
	// again: true
}

// ExampleRepository_UpdateOrCreate adds to a cart that may not exist
// yet: the first call makes and inserts it, the second updates it.
func ExampleRepository_UpdateOrCreate() {
	_, _, carts, done := openShop(func(sqlstore.Statement) {})
	defer done()
	ctx := context.Background()
	newCart := func(_ context.Context, id int64) (*Cart, error) {
		return &Cart{id: id, owner: "alice"}, nil
	}
	addTea := func(_ context.Context, c *Cart) error {
		for _, l := range c.lines {
			if l.product == "tea" {
				l.quantity++
				return nil
			}
		}
		c.lines = append(c.lines, &Line{id: int64(len(c.lines) + 1), product: "tea", quantity: 1})
		return nil
	}
	for range 2 {
		if err := carts.UpdateOrCreate(ctx, 1, newCart, addTea); err != nil {
			log.Fatal(err)
		}
	}
	c, err := carts.Find(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.owner, c.lines[0].product, c.lines[0].quantity, "version", c.version)
	// Output:
	// alice tea 2 version 1
}
