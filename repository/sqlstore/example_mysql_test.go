package sqlstore_test

import (
	"fmt"

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// MySQLDSN turns a DSN of go-sql-driver/mysql, or a mysql:// URL, into the
// DSN that a DB needs, to open with sqlx.Open("mysql", dsn).
func ExampleMySQLDSN() {
	dsn, err := sqlstore.MySQLDSN("mysql://app:secret@db.internal:3306/shop")
	if err != nil {
		panic(err)
	}
	fmt.Println(dsn)

	_, err = sqlstore.MySQLDSN("app:secret@tcp(db.internal:3306)/shop?clientFoundRows=false")
	fmt.Println(err)
	// Output:
	// app:secret@tcp(db.internal:3306)/shop?clientFoundRows=true&interpolateParams=true&multiStatements=true&parseTime=true&time_zone=%27%2B00%3A00%27
	// sqlstore: MySQLDSN: clientFoundRows=false: sqlstore needs clientFoundRows=true: an UPDATE reports the rows it matched, not only those it changed, which the checks of a save read (leave the parameter out)
}
