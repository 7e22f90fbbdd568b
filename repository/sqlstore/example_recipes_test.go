package sqlstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// ExampleQuery_After is a list endpoint that pages by key: each page asks
// for one row more than it shows, to know whether another follows, and
// passes the last key shown to After for the next; SelectPage adds the
// total of the conditions.
func ExampleQuery_After() {
	_, db, carts, done := openShop(func(sqlstore.Statement) {})
	defer done()
	ctx := context.Background()
	for id := int64(1); id <= 5; id++ {
		if err := carts.Save(ctx, &Cart{id: id, owner: "alice", lines: []*Line{{id: 1, product: "tea", quantity: 1}}}); err != nil {
			log.Fatal(err)
		}
	}
	m, err := sqlstore.NewMapping[*Cart](
		sqlstore.Table{Name: "carts"},
		sqlstore.Child{Field: "lines", Table: "cart_lines", ParentKey: "cart_id"},
	)
	if err != nil {
		log.Fatal(err)
	}
	type CartRow struct {
		ID    int64  `db:"id"`
		Owner string `db:"owner"`
	}
	// page is the handler of GET /carts?owner=&after=&limit=.
	page := func(owner string, after int64, limit int) (rows []CartRow, next int64, total int64) {
		q := sqlstore.Where(sqlstore.Eq("owner", owner)).OrderBy("id").Limit(limit + 1)
		if after > 0 {
			q = q.After(after)
		}
		rows, total, err := sqlstore.SelectPage[CartRow](ctx, db, m, q)
		if err != nil {
			log.Fatal(err)
		}
		if len(rows) > limit {
			rows = rows[:limit]
			next = rows[limit-1].ID
		}
		return rows, next, total
	}
	for after := int64(0); ; {
		rows, next, total := page("alice", after, 2)
		fmt.Println(rows, "next", next, "of", total)
		if next == 0 {
			break
		}
		after = next
	}
	// Output:
	// [{1 alice} {2 alice}] next 2 of 5
	// [{3 alice} {4 alice}] next 4 of 5
	// [{5 alice}] next 0 of 5
}

// ExampleDB_SQLTx sends a statement of its own with database/sql (with pgx
// on a DB of NewPGX, through PGXTx) in the transaction of the unit of
// work, next to the repository's, and it commits with them. It bypasses
// the DB, so it takes the driver's own placeholders ($1 on PostgreSQL).
func ExampleDB_SQLTx() {
	x, db, carts, done := openShop(func(sqlstore.Statement) {})
	defer done()
	ctx := context.Background()
	x.MustExec(`CREATE TABLE audit (cart_id BIGINT NOT NULL, what TEXT NOT NULL)`)

	err := db.InTx(ctx, func(ctx context.Context) error {
		if err := carts.Save(ctx, &Cart{id: 1, owner: "alice", lines: []*Line{{id: 1, product: "tea", quantity: 2}}}); err != nil {
			return err
		}
		tx, err := db.SQLTx(ctx)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO audit (cart_id, what) VALUES (?, ?)`, 1, "created")
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	var audit []struct {
		CartID int64  `db:"cart_id"`
		What   string `db:"what"`
	}
	if err := x.Select(&audit, `SELECT cart_id, what FROM audit`); err != nil {
		log.Fatal(err)
	}
	fmt.Println(audit)
	// Output:
	// [{1 created}]
}
