package sqlstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// ExampleSelectPage reads a list page of carts as rows of a struct of its
// own, with the total count, without loading the aggregates: the page's
// SELECT names the columns of CartRow, checked against the mapping, and
// the count runs in the same snapshot (one round trip on pgx). SelectSQL
// reads the rows of SQL of one's own, with ? placeholders on every
// database.
func ExampleSelectPage() {
	var show bool
	_, db, carts, done := openShop(func(s sqlstore.Statement) {
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
	m, err := sqlstore.NewMapping[*Cart](
		sqlstore.Table{Name: "carts"},
		sqlstore.Child{Field: "lines", Table: "cart_lines", ParentKey: "cart_id"},
	)
	if err != nil {
		log.Fatal(err)
	}

	// CartRow is what the list shows: plain exported fields, not tracked.
	type CartRow struct {
		ID    int64  `db:"id"`
		Owner string `db:"owner"`
	}
	show = true
	rows, total, err := sqlstore.SelectPage[CartRow](ctx, db, m,
		sqlstore.Where(sqlstore.Eq("owner", "alice")).OrderByDesc("id").Limit(2))
	show = false
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rows, "of", total)

	type Quantity struct {
		Owner string `db:"owner"`
		Total int64  `db:"total"`
	}
	sums, err := sqlstore.SelectSQL[Quantity](ctx, db, `
		SELECT c.owner AS owner, sum(l.quantity) AS total
		FROM carts c JOIN cart_lines l ON l.cart_id = c.id
		WHERE l.product = ?
		GROUP BY c.owner ORDER BY c.owner`, "tea")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sums)
	// Output:
	// BEGIN []
	// SELECT "id", "owner" FROM "carts" WHERE "owner" = ? ORDER BY "id" DESC LIMIT ? [alice 2]
	// SELECT count(*) FROM "carts" WHERE "owner" = ? [alice]
	// COMMIT []
	// [{5 alice} {4 alice}] of 4
	// [{alice 12} {bob 3}]
}
