package sqlstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// openSQLite opens a SQLite file in dir with the DSN the package doc
// recommends: a wait for the write lock, foreign keys checked, and WAL.
func openSQLite(dir string) *sqlx.DB {
	dsn := "file:" + filepath.Join(dir, "app.db") +
		"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)"
	return sqlx.MustOpen("sqlite", dsn)
}

// Money is a value object, mapped twice in products with column prefixes.
type Money struct {
	amount   int64  `db:"amount"`
	currency string `db:"currency"`
}

// Product maps its price to price_amount and price_currency, and its cost
// to cost_amount and cost_currency.
type Product struct {
	id    int64 `db:"id"`
	price Money `db:"price_,prefix"`
	cost  Money `db:"cost_,prefix"`
}

func (p *Product) ID() int64 { return p.id }

// ExampleNewMapping_prefix maps one value object type twice in a table,
// with a column prefix on each field; a change of one of them updates its
// columns alone, and conditions name the prefixed columns.
func ExampleNewMapping_prefix() {
	dir, err := os.MkdirTemp("", "sqlstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	x := openSQLite(dir)
	defer x.Close()
	x.MustExec(`CREATE TABLE products (id BIGINT PRIMARY KEY,
		price_amount BIGINT NOT NULL, price_currency TEXT NOT NULL,
		cost_amount BIGINT NOT NULL, cost_currency TEXT NOT NULL)`)

	db, err := sqlstore.NewSQL(x, sqlstore.WithObserver(func(_ context.Context, s sqlstore.Statement) {
		if strings.HasPrefix(s.SQL, "INSERT") || strings.HasPrefix(s.SQL, "UPDATE") {
			fmt.Println(s.SQL, s.Args)
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
	m, err := sqlstore.NewMapping[*Product](sqlstore.Table{Name: "products"})
	if err != nil {
		log.Fatal(err)
	}
	products, err := sqlstore.NewRepository[*Product, int64](db, m)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	p := &Product{id: 1, price: Money{1200, "EUR"}, cost: Money{700, "EUR"}}
	if err := products.Save(ctx, p); err != nil {
		log.Fatal(err)
	}
	p.cost.amount = 750
	if err := products.Save(ctx, p); err != nil {
		log.Fatal(err)
	}
	n, err := products.Count(ctx, sqlstore.Where(sqlstore.Gt("price_amount", 1000)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "product over 1000")
	// Output:
	// INSERT INTO "products" ("id", "price_amount", "price_currency", "cost_amount", "cost_currency") VALUES (?, ?, ?, ?, ?) [1 1200 EUR 700 EUR]
	// UPDATE "products" SET "cost_amount" = ? WHERE "id" = ? [750 1]
	// 1 product over 1000
}

// TicketUUID is the identity of a Ticket.
type TicketUUID string

// Ticket is a root without an ID method: its domain reads its identity
// with UUID, and the field that holds it is tagged `ddd:"id"`.
type Ticket struct {
	uuid  TicketUUID `db:"uuid" ddd:"id"`
	title string     `db:"title"`
}

func (t *Ticket) UUID() TicketUUID { return t.uuid }

// ExampleNewRepository_identityField builds a repository of a root whose
// identity is its field tagged `ddd:"id"`, the key column.
func ExampleNewRepository_identityField() {
	dir, err := os.MkdirTemp("", "sqlstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	x := openSQLite(dir)
	defer x.Close()
	x.MustExec(`CREATE TABLE tickets (uuid TEXT PRIMARY KEY, title TEXT NOT NULL)`)

	db, err := sqlstore.NewSQL(x)
	if err != nil {
		log.Fatal(err)
	}
	m, err := sqlstore.NewMapping[*Ticket](sqlstore.Table{Name: "tickets", Key: "uuid"})
	if err != nil {
		log.Fatal(err)
	}
	tickets, err := sqlstore.NewRepository[*Ticket, TicketUUID](db, m)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	const id = TicketUUID("0b7e2c5e-4d5f-4c4f-9d3e-2f1a8c6b7d10")
	if err := tickets.Save(ctx, &Ticket{uuid: id, title: "printer jammed"}); err != nil {
		log.Fatal(err)
	}
	err = db.InTx(ctx, func(ctx context.Context) error {
		t, err := tickets.Find(ctx, id)
		if err != nil {
			return err
		}
		again, err := tickets.Find(ctx, t.UUID())
		if err != nil {
			return err
		}
		fmt.Println(t.title, t == again)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// printer jammed true
}
