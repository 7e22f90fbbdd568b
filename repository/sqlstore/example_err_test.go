package sqlstore_test

import (
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// DB.Err says where the DB is built that NewPGX was given a transaction,
// which a DB cannot run on.
func ExampleDB_Err() {
	var tx pgx.Tx = txOfCaller{} // as pool.Begin returns it
	db := sqlstore.NewPGX(tx)
	if err := db.Err(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// sqlstore: NewPGX given a transaction: a pgx.Tx (sqlstore_test.txOfCaller) cannot be the connection of a sqlstore.DB: pass its pool or connection to NewPGX, and run the unit of work in DB.InTx (DB.PGXTx gives its pgx.Tx)
}

// txOfCaller stands for a pgx.Tx that the caller began.
type txOfCaller struct{ pgx.Tx }
