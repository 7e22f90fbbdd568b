package sqlstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// Cart is an aggregate root: unexported fields, a version, child entities.
type Cart struct {
	id      int64  `db:"id"`
	owner   string `db:"owner"`
	lines   []*Line
	version int64 `db:"version" ddd:"version"`
}

func (c *Cart) ID() int64 { return c.id }

// Line is a child entity of Cart.
type Line struct {
	id       int64  `db:"id" ddd:"id"`
	product  string `db:"product"`
	quantity int    `db:"quantity"`
}

// Example saves a new cart, then changes one line's quantity in a unit of
// work, printing each statement with its round trip.
func Example() {
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

	db, err := sqlstore.NewSQL(x, sqlstore.WithObserver(func(_ context.Context, s sqlstore.Statement) {
		fmt.Println(s.RoundTrip, s.SQL, s.Args)
	}))
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
	carts, err := sqlstore.NewRepository[*Cart, int64](db, m)
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	cart := &Cart{id: 1, owner: "alice", lines: []*Line{{id: 1, product: "tea", quantity: 1}, {id: 2, product: "milk", quantity: 2}}}
	if err := carts.Save(ctx, cart); err != nil {
		log.Fatal(err)
	}
	fmt.Println("--")
	err = carts.Update(ctx, 1, func(_ context.Context, c *Cart) error {
		c.lines[1].quantity = 3
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 1 BEGIN []
	// 2 INSERT INTO "carts" ("id", "owner", "version") VALUES (?, ?, ?) [1 alice 0]
	// 3 INSERT INTO "cart_lines" ("cart_id", "id", "product", "quantity") VALUES (?, ?, ?, ?), (?, ?, ?, ?) [1 1 tea 1 1 2 milk 2]
	// 4 COMMIT []
	// --
	// 5 BEGIN IMMEDIATE []
	// 6 SELECT "id", "owner", "version" FROM "carts" WHERE "id" = ? [1]
	// 7 SELECT "id", "product", "quantity" FROM "cart_lines" WHERE "cart_id" = ? ORDER BY "id" [1]
	// 8 SAVEPOINT dddkit_save []
	// 9 UPDATE "carts" SET "version" = ? WHERE "id" = ? AND "version" = ? [1 1 0]
	// 10 UPDATE "cart_lines" SET "quantity" = ? WHERE "cart_id" = ? AND "id" = ? [3 1 2]
	// 11 RELEASE SAVEPOINT dddkit_save []
	// 12 COMMIT []
}
