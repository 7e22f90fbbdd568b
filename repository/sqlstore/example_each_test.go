package sqlstore_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// ExampleRepository_FindEach exports carts a page at a time: FindEach
// loads two carts (roots and lines) per page here, by key after the last
// one of the page before, and yields them one by one, untracked. Breaking
// out of the loop, or a done context, ends it.
func ExampleRepository_FindEach() {
	pages := 0
	_, _, carts, done := openShop(func(s sqlstore.Statement) {
		if strings.HasPrefix(s.SQL, `SELECT "id", "owner"`) {
			pages++
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

	q := sqlstore.Where(sqlstore.Eq("owner", "alice")).OrderByDesc("id")
	for c, err := range carts.FindEach(ctx, q, sqlstore.PageSize(2)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("cart %d: %d x %s\n", c.id, c.lines[0].quantity, c.lines[0].product)
	}
	fmt.Println(pages, "pages read")
	// Output:
	// cart 5: 5 x tea
	// cart 4: 4 x tea
	// cart 2: 2 x tea
	// cart 1: 1 x tea
	// 3 pages read
}
