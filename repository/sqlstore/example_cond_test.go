package sqlstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// ExampleHas selects carts by their lines: a condition on a child
// collection is an EXISTS on the child table, combined with the root's
// conditions by And, Or and Not.
func ExampleHas() {
	var show bool
	_, _, carts, done := openShop(func(s sqlstore.Statement) {
		if show {
			fmt.Println(s.SQL, s.Args)
		}
	})
	defer done()
	ctx := context.Background()
	for _, c := range []*Cart{
		{id: 1, owner: "alice", lines: []*Line{{id: 1, product: "green tea", quantity: 2}}},
		{id: 2, owner: "bob", lines: []*Line{{id: 1, product: "coffee", quantity: 1}, {id: 2, product: "tea", quantity: 5}}},
		{id: 3, owner: "carol", lines: []*Line{{id: 1, product: "Tea cups", quantity: 1}}},
		{id: 4, owner: "dave"},
	} {
		if err := carts.Save(ctx, c); err != nil {
			log.Fatal(err)
		}
	}
	print := func(q sqlstore.Query) {
		found, err := carts.FindAll(ctx, q.OrderBy("id"))
		if err != nil {
			log.Fatal(err)
		}
		for _, c := range found {
			fmt.Print(" ", c.owner)
		}
		fmt.Println()
	}

	// Carts with a line of tea, Contains being case-sensitive: on SQLite
	// it is a GLOB, on PostgreSQL a LIKE, with the same result.
	show = true
	n, err := carts.Count(ctx, sqlstore.Where(sqlstore.Has("lines", sqlstore.Contains("product", "tea"))))
	show = false
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "carts with tea")
	// Carts with more than one of a product, or none at all.
	print(sqlstore.Where(sqlstore.Or(
		sqlstore.Has("lines", sqlstore.Gt("quantity", 1)),
		sqlstore.Not(sqlstore.Has("lines")),
	)))
	// Carts whose every line is of one item, owned by anyone but Carol.
	print(sqlstore.Where(
		sqlstore.Not(sqlstore.Has("lines", sqlstore.Ne("quantity", 1))),
		sqlstore.Not(sqlstore.EqualFold("owner", "CAROL")),
	))
	// Output:
	// SELECT count(*) FROM "carts" WHERE EXISTS (SELECT 1 FROM "cart_lines" WHERE "cart_lines"."cart_id" = "carts"."id" AND "cart_lines"."product" GLOB ?) [*tea*]
	// 2 carts with tea
	//  alice bob dave
	//  dave
}
