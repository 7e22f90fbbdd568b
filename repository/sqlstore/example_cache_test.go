package sqlstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// ExampleStore_Encode encodes a cart as a load returned it, for a cache,
// and decodes it back into a cart equal to that load.
func ExampleStore_Encode() {
	dir, err := os.MkdirTemp("", "sqlstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	x := sqlx.MustOpen("sqlite", "file:"+filepath.Join(dir, "shop.db")+"?_pragma=foreign_keys(1)")
	defer x.Close()
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
	ddl, err := m.DDL(sqlstore.SQLite)
	if err != nil {
		log.Fatal(err)
	}
	x.MustExec(ddl)
	carts, err := sqlstore.NewRepository[*Cart, int64](db, m)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	cart := &Cart{id: 1, owner: "alice", lines: []*Line{{id: 1, product: "tea", quantity: 1}, {id: 2, product: "milk", quantity: 2}}}
	if err := carts.Save(ctx, cart); err != nil {
		log.Fatal(err)
	}

	store := carts.Store()
	loaded, err := store.Select(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	entry, err := store.Encode(loaded)
	if err != nil {
		log.Fatal(err)
	}
	decoded, err := store.Decode(entry)
	if err != nil {
		log.Fatal(err)
	}
	same, err := diff.Equal(loaded, decoded)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes, equal to the load: %t\n", len(entry), same)
	// Output:
	// 40 bytes, equal to the load: true
}
