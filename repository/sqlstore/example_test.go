package sqlstore_test

import (
	"context"
	"database/sql"
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
	// 8 UPDATE "carts" SET "version" = ? WHERE "id" = ? AND "version" = ? [1 1 0]
	// 9 UPDATE "cart_lines" SET "quantity" = ? WHERE "cart_id" = ? AND "id" = ? [3 1 2]
	// 10 COMMIT []
}

// ExampleDB_JoinSQL saves a cart in a transaction the caller began, next
// to a statement of the caller's, and tells the unit of work that the
// caller committed.
func ExampleDB_JoinSQL() {
	x, db, carts, done := openShop(func(s sqlstore.Statement) { fmt.Println(s.SQL, s.Args) })
	defer done()
	x.MustExec(`CREATE TABLE audit (what TEXT NOT NULL)`)

	ctx := context.Background()
	tx, err := x.BeginTxx(ctx, nil) // the caller's transaction
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()
	jctx, unit, err := db.JoinSQL(ctx, tx.Tx)
	if err != nil {
		log.Fatal(err)
	}
	cart := &Cart{id: 1, owner: "alice", lines: []*Line{{id: 1, product: "tea", quantity: 1}}}
	if err := carts.Save(jctx, cart); err != nil {
		log.Fatal(err)
	}
	tx.MustExec(`INSERT INTO audit (what) VALUES ('cart 1 created')`)
	if err := tx.Commit(); err != nil {
		unit.RolledBack()
		log.Fatal(err)
	}
	unit.Committed()

	// The snapshot advanced with the commit: the next save sends only the
	// change.
	fmt.Println("--")
	cart.lines[0].quantity = 2
	if err := carts.Save(ctx, cart); err != nil {
		log.Fatal(err)
	}
	// Output:
	// SAVEPOINT dddkit_save []
	// INSERT INTO "carts" ("id", "owner", "version") VALUES (?, ?, ?) [1 alice 0]
	// INSERT INTO "cart_lines" ("cart_id", "id", "product", "quantity") VALUES (?, ?, ?, ?) [1 1 tea 1]
	// RELEASE SAVEPOINT dddkit_save []
	// --
	// BEGIN []
	// UPDATE "carts" SET "version" = ? WHERE "id" = ? AND "version" = ? [1 1 0]
	// UPDATE "cart_lines" SET "quantity" = ? WHERE "cart_id" = ? AND "id" = ? [2 1 1]
	// COMMIT []
}

// ExampleDB_InSQLTx saves a cart in a transaction the caller began, next
// to a statement of the caller's, and lets the DB commit the transaction
// and tell the unit of work: nothing is left to forget.
func ExampleDB_InSQLTx() {
	x, db, carts, done := openShop(func(s sqlstore.Statement) { fmt.Println(s.SQL, s.Args) })
	defer done()
	x.MustExec(`CREATE TABLE audit (what TEXT NOT NULL)`)

	ctx := context.Background()
	tx, err := x.BeginTxx(ctx, nil) // the caller's transaction
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback() // a no-op once InSQLTx ended it
	cart := &Cart{id: 1, owner: "alice", lines: []*Line{{id: 1, product: "tea", quantity: 1}}}
	err = db.InSQLTx(ctx, tx.Tx, func(ctx context.Context) error {
		if err := carts.Save(ctx, cart); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO audit (what) VALUES ('cart 1 created')`)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}

	// tx committed, and the snapshot advanced with it: the next save sends
	// only the change.
	fmt.Println("--")
	cart.lines[0].quantity = 2
	if err := carts.Save(ctx, cart); err != nil {
		log.Fatal(err)
	}
	var n int
	if err := x.Get(&n, `SELECT count(*) FROM audit`); err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "audit row")
	// Output:
	// SAVEPOINT dddkit_save []
	// INSERT INTO "carts" ("id", "owner", "version") VALUES (?, ?, ?) [1 alice 0]
	// INSERT INTO "cart_lines" ("cart_id", "id", "product", "quantity") VALUES (?, ?, ?, ?) [1 1 tea 1]
	// RELEASE SAVEPOINT dddkit_save []
	// --
	// BEGIN []
	// UPDATE "carts" SET "version" = ? WHERE "id" = ? AND "version" = ? [1 1 0]
	// UPDATE "cart_lines" SET "quantity" = ? WHERE "cart_id" = ? AND "id" = ? [2 1 1]
	// COMMIT []
	// 1 audit row
}

// ExampleRepository_FindAll queries carts by a condition, a page at a time
// by key, printing the statements of one page: the roots, then the lines of
// the selected roots.
func ExampleRepository_FindAll() {
	var show bool
	_, _, carts, done := openShop(func(s sqlstore.Statement) {
		if show {
			fmt.Println(s.SQL, s.Args)
		}
	})
	defer done()
	ctx := context.Background()
	for id := int64(1); id <= 5; id++ {
		owner := "alice"
		if id == 3 {
			owner = "bob"
		}
		if err := carts.Save(ctx, &Cart{id: id, owner: owner, lines: []*Line{{id: 1, product: "tea", quantity: int(id)}}}); err != nil {
			log.Fatal(err)
		}
	}

	q := sqlstore.Where(sqlstore.Eq("owner", "alice")).Limit(2)
	var after int64
	for page := 1; ; page++ {
		pq := q
		if after > 0 {
			pq = q.After(after)
		}
		show = page == 2
		found, err := carts.FindAll(ctx, pq)
		show = false
		if err != nil {
			log.Fatal(err)
		}
		for _, c := range found {
			fmt.Printf("page %d: cart %d, %d x %s\n", page, c.id, c.lines[0].quantity, c.lines[0].product)
		}
		if len(found) < 2 {
			break
		}
		after = found[len(found)-1].id
	}
	n, err := carts.Count(ctx, sqlstore.Where(sqlstore.Eq("owner", "alice")))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "carts of alice")
	// Output:
	// page 1: cart 1, 1 x tea
	// page 1: cart 2, 2 x tea
	// BEGIN []
	// SELECT "id", "owner", "version" FROM "carts" WHERE "owner" = ? AND ("id") > (?) ORDER BY "id" LIMIT ? [alice 2 2]
	// SELECT "cart_id", "id", "product", "quantity" FROM "cart_lines" WHERE "cart_id" IN (SELECT "id" FROM "carts" WHERE "owner" = ? AND ("id") > (?) ORDER BY "id" LIMIT ?) ORDER BY "cart_id", "id" [alice 2 2]
	// COMMIT []
	// page 2: cart 4, 4 x tea
	// page 2: cart 5, 5 x tea
	// 4 carts of alice
}

// ExampleWithTxOptions runs an Update at an isolation level of its
// choice: the transaction Update begins takes its options from the
// context, and its save still carries the COMMIT (on pgx, the Update is
// still two round trips). At REPEATABLE READ on PostgreSQL the load reads
// one snapshot and locks nothing, and a concurrent change fails the save
// with an error matching repository.ErrConflict, which WithRetry retries.
// Options the database cannot honour are refused before the function
// runs.
func ExampleWithTxOptions() {
	var show bool
	_, _, carts, done := openShop(func(s sqlstore.Statement) {
		if show {
			fmt.Println(s.SQL)
		}
	})
	defer done()
	ctx := context.Background()
	if err := carts.Save(ctx, &Cart{id: 1, owner: "alice"}); err != nil {
		log.Fatal(err)
	}

	show = true
	rr := sqlstore.WithTxOptions(ctx, sqlstore.TxOptions{Isolation: sql.LevelRepeatableRead})
	err := carts.Update(rr, 1, func(_ context.Context, c *Cart) error {
		c.owner = "bob"
		return nil
	})
	fmt.Println(err)

	bad := sqlstore.WithTxOptions(ctx, sqlstore.TxOptions{Isolation: sql.LevelLinearizable})
	err = carts.Update(bad, 1, func(context.Context, *Cart) error { return nil })
	fmt.Println(err)
	// Output:
	// BEGIN IMMEDIATE
	// SELECT "id", "owner", "version" FROM "carts" WHERE "id" = ?
	// SELECT "id", "product", "quantity" FROM "cart_lines" WHERE "cart_id" = ? ORDER BY "id"
	// UPDATE "carts" SET "owner" = ?, "version" = ? WHERE "id" = ? AND "version" = ?
	// COMMIT
	// <nil>
	// sqlstore: transaction: SQLite cannot run isolation level Linearizable
}

// openShop opens a SQLite database of carts in a temporary directory, with
// a DB that calls observe after every statement and the carts' repository;
// done closes and removes it.
func openShop(observe func(s sqlstore.Statement)) (x *sqlx.DB, db *sqlstore.DB, carts *sqlstore.Repository[*Cart, int64], done func()) {
	dir, err := os.MkdirTemp("", "sqlstore-example")
	if err != nil {
		log.Fatal(err)
	}
	x = sqlx.MustOpen("sqlite", "file:"+filepath.Join(dir, "shop.db"))
	x.MustExec(`CREATE TABLE carts (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, version BIGINT NOT NULL)`)
	x.MustExec(`CREATE TABLE cart_lines (cart_id BIGINT NOT NULL, id BIGINT NOT NULL, product TEXT NOT NULL, quantity INTEGER NOT NULL, PRIMARY KEY (cart_id, id))`)
	db, err = sqlstore.NewSQL(x, sqlstore.WithObserver(func(_ context.Context, s sqlstore.Statement) { observe(s) }))
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
	carts, err = sqlstore.NewRepository[*Cart, int64](db, m)
	if err != nil {
		log.Fatal(err)
	}
	return x, db, carts, func() {
		x.Close()
		os.RemoveAll(dir)
	}
}
