package dddkit_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/dddkit/dddkit/examples/order/application"
	"github.com/dddkit/dddkit/examples/order/domain"
	"github.com/dddkit/dddkit/examples/order/infrastructure"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// Example_orderStatements places an order of three items on the embedded
// SQLite database of the order example, then changes the quantity of one
// item, and prints what the observer saw of that change: the load (BEGIN
// IMMEDIATE, which takes SQLite's write lock, and a SELECT per table:
// the order, its items, their discounts), then the save, which writes only
// what changed, one UPDATE of the item's quantity and one of the order's
// total and version, and the COMMIT: the save is the last operation of the
// unit of work, so it needs no savepoint.
func Example_orderStatements() {
	ctx := context.Background()
	show := false
	db, closeDB, err := infrastructure.Open(ctx, infrastructure.Config{}, sqlstore.WithObserver(func(_ context.Context, s sqlstore.Statement) {
		if show {
			fmt.Println(s.RoundTrip, s.SQL, goArgs(s.Args))
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer closeDB()
	orders, err := infrastructure.NewOrderRepository(db)
	if err != nil {
		log.Fatal(err)
	}
	svc := application.NewService(orders)

	recipient, err := domain.NewRecipientInfo("Ada Lovelace", "+44 20 7946 0000", "12 St James's Square, London")
	if err != nil {
		log.Fatal(err)
	}
	_, err = svc.PlaceOrder(ctx, 1, "ada", recipient,
		domain.ItemSpec{Product: "tea", Quantity: 2, UnitPrice: 350},
		domain.ItemSpec{Product: "coffee", Quantity: 1, UnitPrice: 1200},
		domain.ItemSpec{Product: "milk", Quantity: 3, UnitPrice: 120},
	)
	if err != nil {
		log.Fatal(err)
	}

	show = true
	o, err := svc.ChangeQuantity(ctx, 1, 2, 4)
	if err != nil {
		log.Fatal(err)
	}
	show = false
	fmt.Println("version", o.Version(), "total", o.Total())
	// Output:
	// 5 BEGIN IMMEDIATE []
	// 6 SELECT "id", "customer", "recipient_name", "recipient_phone", "recipient_address", "last_item_id", "total", "status", "version" FROM "orders" WHERE "id" = ? [1]
	// 7 SELECT "id", "product", "quantity", "unit_price" FROM "order_items" WHERE "order_id" = ? ORDER BY "id" [1]
	// 8 SELECT "order_id", "item_id", "id", "code", "percent" FROM "item_discounts" WHERE "order_id" = ? ORDER BY "order_id", "item_id", "id" [1]
	// 9 UPDATE "orders" SET "total" = ?, "version" = ? WHERE "id" = ? AND "version" = ? [5860 1 1 0]
	// 10 UPDATE "order_items" SET "quantity" = ? WHERE "order_id" = ? AND "id" = ? [4 1 2]
	// 11 COMMIT []
	// version 1 total 58.60
}

// goArgs prints bind parameters in Go syntax (%#v), so that a domain.Money
// shows as the cents the driver gets, not as units and cents.
func goArgs(args []any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = fmt.Sprintf("%#v", a)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
