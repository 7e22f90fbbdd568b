package sqlstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"

	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// countingCarts wraps the store of carts: it counts the loads that go
// through it, and tells when a write it passed on is committed.
type countingCarts struct {
	repository.Hooks[*Cart, int64]
	selects int
}

// Unwrap returns the store, so that its abilities (Locker, ...) are found.
func (c *countingCarts) Unwrap() repository.Hooks[*Cart, int64] { return c.Hooks }

func (c *countingCarts) Select(ctx context.Context, id int64) (*Cart, error) {
	c.selects++
	return c.Hooks.Select(ctx, id)
}

func (c *countingCarts) Update(ctx context.Context, cart *Cart, ch repository.Changes) error {
	if err := c.Hooks.Update(ctx, cart, ch); err != nil {
		return err
	}
	repository.AfterCommit(ctx, func() {
		fmt.Printf("committed: cart %d at version %d\n", cart.id, ch.NewVersion)
	})
	return nil
}

// ExampleNewRepository_wrapHooks puts a wrapper between the repository
// and its store: business code calls the repository as before.
func ExampleNewRepository_wrapHooks() {
	dir, err := os.MkdirTemp("", "sqlstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	x := sqlx.MustOpen("sqlite", "file:"+filepath.Join(dir, "shop.db")+"?_pragma=foreign_keys(1)")
	defer x.Close()
	x.MustExec(`CREATE TABLE carts (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, version BIGINT NOT NULL)`)
	x.MustExec(`CREATE TABLE cart_lines (
		cart_id BIGINT NOT NULL REFERENCES carts (id),
		id BIGINT NOT NULL,
		product TEXT NOT NULL,
		quantity INTEGER NOT NULL,
		PRIMARY KEY (cart_id, id))`)
	db, err := sqlstore.NewSQL(x)
	if err != nil {
		log.Fatal(err)
	}
	m, err := sqlstore.NewMapping[*Cart](
		sqlstore.Table{Name: "carts"},
		sqlstore.Child{Field: "lines", Table: "cart_lines", ParentKey: "cart_id"},
	)
	if err != nil {
		log.Fatal(err)
	}
	counter := &countingCarts{}
	carts, err := sqlstore.NewRepository[*Cart, int64](db, m, repository.WrapHooks(func(h repository.Hooks[*Cart, int64]) repository.Hooks[*Cart, int64] {
		counter.Hooks = h
		return counter
	}))
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	if err := carts.Save(ctx, &Cart{id: 1, owner: "alice", lines: []*Line{{id: 1, product: "tea", quantity: 1}}}); err != nil {
		log.Fatal(err)
	}
	// Update loads through the wrapper, and its save commits.
	err = carts.Update(ctx, 1, func(_ context.Context, c *Cart) error {
		c.lines[0].quantity = 2
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// FindForUpdate finds the store's Locker through Unwrap: the locked
	// load goes to the store.
	err = db.InTx(ctx, func(ctx context.Context) error {
		c, err := carts.FindForUpdate(ctx, 1)
		if err != nil {
			return err
		}
		c.owner = "bob"
		if err := carts.Save(ctx, c); err != nil {
			return err
		}
		fmt.Println("saved; not yet committed")
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("loads through the wrapper:", counter.selects)
	// Output:
	// committed: cart 1 at version 1
	// saved; not yet committed
	// committed: cart 1 at version 2
	// loads through the wrapper: 1
}
