package testdb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestToMySQL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"text keys become VARCHAR, inline references table-level foreign keys",
			`CREATE TABLE order_items (
				order_id BIGINT NOT NULL REFERENCES orders (id),
				id BIGINT NOT NULL,
				sku TEXT NOT NULL,
				note TEXT,
				quantity INTEGER NOT NULL CHECK (quantity > 0),
				PRIMARY KEY (order_id, id),
				UNIQUE (order_id, sku)
			)`,
			"CREATE TABLE order_items (order_id BIGINT NOT NULL, id BIGINT NOT NULL, sku VARCHAR(255) COLLATE utf8mb4_bin NOT NULL, note LONGTEXT, " +
				"quantity INTEGER NOT NULL CHECK (quantity > 0), PRIMARY KEY (order_id, id), UNIQUE (order_id, sku), " +
				"INDEX (order_id), FOREIGN KEY (order_id) REFERENCES orders (id))"},
		{"a text primary key",
			`CREATE TABLE customers (name TEXT PRIMARY KEY)`,
			`CREATE TABLE customers (name VARCHAR(255) COLLATE utf8mb4_bin PRIMARY KEY)`},
		{"a text column that references one",
			`CREATE TABLE notes (ticket TEXT NOT NULL REFERENCES tickets (uuid) ON DELETE CASCADE, body TEXT NOT NULL)`,
			`CREATE TABLE notes (ticket VARCHAR(255) COLLATE utf8mb4_bin NOT NULL, body LONGTEXT NOT NULL, INDEX (ticket), FOREIGN KEY (ticket) REFERENCES tickets (uuid) ON DELETE CASCADE)`},
		{"identities and serials",
			`CREATE TABLE g (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n BIGSERIAL UNIQUE, "label" TEXT NOT NULL)`,
			"CREATE TABLE g (id BIGINT AUTO_INCREMENT PRIMARY KEY, n BIGINT AUTO_INCREMENT UNIQUE, `label` LONGTEXT NOT NULL)"},
		{"PostgreSQL's types",
			`CREATE TABLE p (id BIGINT PRIMARY KEY, d JSONB, at TIMESTAMPTZ NOT NULL DEFAULT now(), b BYTEA, w double precision)`,
			`CREATE TABLE p (id BIGINT PRIMARY KEY, d JSON, at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), b LONGBLOB, w DOUBLE)`},
		{"quoted names",
			`CREATE TABLE "sales"."orders" ("id" BIGINT PRIMARY KEY)`,
			"CREATE TABLE `sales`.`orders` (`id` BIGINT PRIMARY KEY)"},
		{"a cast in a query",
			`SELECT CAST(COALESCE(SUM(a), 0) AS BIGINT), CAST(b AS TEXT) FROM "t" WHERE s = 'say "hi"'`,
			"SELECT CAST(COALESCE(SUM(a), 0) AS SIGNED), CAST(b AS CHAR) FROM `t` WHERE s = 'say \"hi\"'"},
		{"MariaDB's own DDL is kept",
			"CREATE TABLE `books` (\n\t`shelf_id` BIGINT NOT NULL,\n\t`id` VARBINARY(255) NOT NULL,\n\t`added` DATETIME(6) NOT NULL,\n\t`note` LONGTEXT,\n" +
				"\tPRIMARY KEY (`shelf_id`, `id`),\n\tFOREIGN KEY (`shelf_id`) REFERENCES `shelves` (`id`) ON UPDATE CASCADE\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
			"CREATE TABLE `books` (`shelf_id` BIGINT NOT NULL, `id` VARBINARY(255) NOT NULL, `added` DATETIME(6) NOT NULL, `note` LONGTEXT, " +
				"PRIMARY KEY (`shelf_id`, `id`), FOREIGN KEY (`shelf_id`) REFERENCES `shelves` (`id`) ON UPDATE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
		{"a table-level foreign key is kept",
			`ALTER TABLE t ADD FOREIGN KEY (a, b) REFERENCES u (a, b)`,
			`ALTER TABLE t ADD FOREIGN KEY (a, b) REFERENCES u (a, b)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ToMySQL(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	refused := []struct{ name, in, why string }{
		{"deferrable", `CREATE TABLE t (a BIGINT REFERENCES u (id) DEFERRABLE INITIALLY DEFERRED)`, "DEFERRABLE"},
		{"arrays", `CREATE TABLE t (id BIGINT PRIMARY KEY, tags TEXT[])`, "array"},
		{"an inline reference in ALTER TABLE, ignored by InnoDB", `ALTER TABLE t ADD COLUMN u BIGINT REFERENCES u (id)`, "REFERENCES in a column definition"},
		{"an inline reference after a type's length", `ALTER TABLE t ADD COLUMN u VARCHAR(9) REFERENCES u (id)`, "REFERENCES in a column definition"},
		{"SQLite's table options", `CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT`, "table options"},
		{"PostgreSQL's casts", `SELECT a::text FROM t`, "cast"},
		{"concatenation", `SELECT a || b FROM t`, "||"},
		{"collations", `CREATE TABLE t (a TEXT COLLATE "C")`, "collation"},
		{"an index dropped by its name alone", `DROP INDEX orders_customer_once`, "DROP INDEX without ON"},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			_, err := ToMySQL(tt.in)
			require.Error(t, err, "the statement has no faithful MariaDB form")
			assert.Contains(t, err.Error(), tt.why)
		})
	}
}

func TestMySQLScript(t *testing.T) {
	got, err := MySQLScript(`CREATE TABLE IF NOT EXISTS orders (
    id       BIGINT PRIMARY KEY,
    customer TEXT   NOT NULL
);

-- The customer's orders.
CREATE INDEX IF NOT EXISTS orders_customer_id ON orders (customer, id);
`)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"CREATE TABLE IF NOT EXISTS orders (id BIGINT PRIMARY KEY, customer VARCHAR(255) COLLATE utf8mb4_bin NOT NULL)",
		"CREATE INDEX IF NOT EXISTS orders_customer_id ON orders (customer, id)",
	}, got, "a TEXT column that an index of a later statement holds is a key")

	_, err = MySQLScript("CREATE TABLE t (a TEXT[]);\nCREATE TABLE u (b TEXT);\n")
	require.ErrorContains(t, err, "CREATE TABLE t (a TEXT[])", "the error names the statement")
}

func TestMySQLURL(t *testing.T) {
	got, err := MySQLURL("root@tcp(127.0.0.1:3306)/test")
	require.NoError(t, err)
	assert.Equal(t, "mysql://root@127.0.0.1:3306/test", got)
	got, err = MySQLURL("app:s@cret@tcp(db:3307)/shop?timeout=5s")
	require.NoError(t, err)
	assert.Equal(t, "mysql://app:s%40cret@db:3307/shop?timeout=5s", got)
	_, err = MySQLURL("root@unix(/run/mysqld/mysqld.sock)/test")
	assert.ErrorContains(t, err, "unix")
}
