package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/jmoiron/sqlx"

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// cartMapping maps Cart, as in Example.
func cartMapping() *sqlstore.Mapping[*Cart] {
	m, err := sqlstore.NewMapping[*Cart](
		sqlstore.Table{Name: "carts"},
		sqlstore.Child{Field: "lines", Table: "cart_lines", ParentKey: "cart_id", Position: "position"},
	)
	if err != nil {
		log.Fatal(err)
	}
	return m
}

// ExampleMapping_DDL writes the tables of a mapping for a migration tool.
func ExampleMapping_DDL() {
	ddl, err := cartMapping().DDL(sqlstore.SQLite)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(ddl)
	// Output:
	// CREATE TABLE "carts" (
	// 	"id" INTEGER NOT NULL,
	// 	"owner" TEXT NOT NULL,
	// 	"version" INTEGER NOT NULL,
	// 	PRIMARY KEY ("id")
	// );
	// CREATE TABLE "cart_lines" (
	// 	"cart_id" INTEGER NOT NULL,
	// 	"id" INTEGER NOT NULL,
	// 	"product" TEXT NOT NULL,
	// 	"quantity" INTEGER NOT NULL,
	// 	"position" INTEGER NOT NULL,
	// 	PRIMARY KEY ("cart_id", "id"),
	// 	FOREIGN KEY ("cart_id") REFERENCES "carts" ("id")
	// );
}

// ExampleMapping_DDL_mysql writes the tables of a mapping for MySQL or
// MariaDB: InnoDB tables in utf8mb4, whose foreign keys are table
// constraints, as InnoDB ignores a REFERENCES in a column's definition.
func ExampleMapping_DDL_mysql() {
	ddl, err := cartMapping().DDL(sqlstore.MySQL)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(ddl)
	// Output:
	// CREATE TABLE `carts` (
	// 	`id` BIGINT NOT NULL,
	// 	`owner` LONGTEXT NOT NULL,
	// 	`version` BIGINT NOT NULL,
	// 	PRIMARY KEY (`id`)
	// ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
	// CREATE TABLE `cart_lines` (
	// 	`cart_id` BIGINT NOT NULL,
	// 	`id` BIGINT NOT NULL,
	// 	`product` LONGTEXT NOT NULL,
	// 	`quantity` BIGINT NOT NULL,
	// 	`position` BIGINT NOT NULL,
	// 	PRIMARY KEY (`cart_id`, `id`),
	// 	FOREIGN KEY (`cart_id`) REFERENCES `carts` (`id`)
	// ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
}

// ExampleMapping_Check checks the schema at startup: every mismatch is
// reported at once.
func ExampleMapping_Check() {
	x := sqlx.MustOpen("sqlite", ":memory:")
	defer x.Close()
	x.SetMaxOpenConns(1) // one in-memory database
	x.MustExec(`CREATE TABLE carts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, version REAL NOT NULL)`)
	x.MustExec(`CREATE TABLE cart_lines (
		cart_id INTEGER NOT NULL REFERENCES carts (id),
		id INTEGER NOT NULL,
		product TEXT NOT NULL,
		position INTEGER NOT NULL,
		PRIMARY KEY (cart_id, id),
		UNIQUE (cart_id, position))`)
	db, err := sqlstore.NewSQL(x)
	if err != nil {
		log.Fatal(err)
	}

	err = cartMapping().Check(context.Background(), db)
	var se *sqlstore.SchemaError
	if errors.As(err, &se) {
		for _, m := range se.Mismatches {
			fmt.Println(m)
		}
	}
	fmt.Println(errors.Is(err, sqlstore.ErrSchema))
	// Output:
	// table carts, column version: the column of the field version (int64) is REAL: its affinity REAL changes the values it stores: make it INTEGER
	// table cart_lines, column quantity: the column of the field quantity does not exist
	// table cart_lines, column position: the unique index sqlite_autoindex_cart_lines_2 holds the position column: SQLite cannot defer a unique index, and a reorder moves one row at a time: drop it
	// true
}
