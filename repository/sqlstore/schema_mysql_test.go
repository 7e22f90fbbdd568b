package sqlstore

import (
	"context"
	"database/sql"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/internal/testdb"
)

// mysqlSchemaDB returns a connection, with the settings of MySQLDSN, to
// a database of its own, named at random, on the server of
// DDDKIT_TEST_MYSQL_DSN, and the database's name; the database is dropped
// when t ends. t is skipped when the DSN is unset.
func mysqlSchemaDB(t *testing.T) (*sqlx.DB, string) {
	t.Helper()
	dsn, name := testdb.MySQLDatabase(t, "dddkit_schema_", true)
	dsn, err := MySQLDSN(dsn)
	require.NoError(t, err)
	x, err := sqlx.Open("mysql", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	return x, name
}

// mysqlCheckDB returns a DB on x.
func mysqlCheckDB(t *testing.T, x *sqlx.DB) *DB {
	t.Helper()
	db, err := NewSQL(x)
	require.NoError(t, err)
	return db
}

func mysqlExec(t *testing.T, x *sqlx.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		_, err := x.Exec(s)
		require.NoError(t, err, s)
	}
}

// TestMySQLDDLShapes checks the types, keys and references that DDL
// writes for MySQL.
func TestMySQLDDLShapes(t *testing.T) {
	ddl, err := shelfMapping(t, "").DDL(MySQL)
	require.NoError(t, err)
	for _, want := range []string{
		"CREATE TABLE `shelves` (\n\t`id` BIGINT AUTO_INCREMENT PRIMARY KEY,",
		"`note` LONGTEXT,",
		"`width` DOUBLE NOT NULL",
		"`height` INT NOT NULL",
		"`added` DATETIME(6) NOT NULL",
		"`done` BOOLEAN NOT NULL",
		"`pos` BIGINT NOT NULL",
		"PRIMARY KEY (`shelf_id`, `id`)",
		// A child's foreign key is a table constraint: InnoDB ignores a
		// REFERENCES in a column's definition.
		"FOREIGN KEY (`shelf_id`) REFERENCES `shelves` (`id`)\n)",
		// One that holds the parent's parent key cascades a move.
		"FOREIGN KEY (`shelf_id`, `book_id`) REFERENCES `books` (`shelf_id`, `id`) ON UPDATE CASCADE\n)",
		// A string key is bounded, and compares as bytes.
		"`id` VARBINARY(255) NOT NULL",
		"`label` LONGBLOB NOT NULL",
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;\n",
	} {
		require.Contains(t, ddl, want)
	}
	require.Equal(t, 4, strings.Count(ddl, "ENGINE=InnoDB"), ddl)
	require.NotContains(t, ddl, `"`, "MySQL quotes with backticks")
	require.NotContains(t, ddl, "DEFERRABLE", "MySQL cannot defer a constraint")

	// The loads by parent of a generated key's table use the index of its
	// foreign key: no CREATE INDEX.
	ddl, err = kanbanMapping(t, true, false).DDL(MySQL)
	require.NoError(t, err)
	require.NotContains(t, ddl, "INDEX", ddl)
	require.Contains(t, ddl, "`id` BIGINT AUTO_INCREMENT PRIMARY KEY,\n\t`title` LONGTEXT NOT NULL")

	ddl, err = shelfMapping(t, "sales.").DDL(MySQL)
	require.NoError(t, err)
	require.Contains(t, ddl, "CREATE TABLE `sales`.`books`")
	require.Contains(t, ddl, "REFERENCES `sales`.`shelves` (`id`)")
}

type mysqlKinds struct {
	id    string            `db:"id"`
	i8    int8              `db:"i8"`
	u8    uint8             `db:"u8"`
	u16   uint16            `db:"u16"`
	u32   uint32            `db:"u32"`
	u64   uint64            `db:"u64"`
	f32   float32           `db:"f32"`
	doc   map[string]string `db:"doc,json"`
	at    *int64            `db:"at"`
	when  time.Time         `db:"when"`
	label sql.NullString    `db:"label"`
	raw   []byte            `db:"raw"`
}

func (k *mysqlKinds) ID() string { return k.id }

type mysqlArray struct {
	id   int64   `db:"id"`
	tags []int64 `db:"tags,array"`
}

func (a *mysqlArray) ID() int64 { return a.id }

type mysqlTextKey struct {
	id string `db:"id,generated"`
}

func (k *mysqlTextKey) ID() string { return k.id }

// TestMySQLDDLKinds checks the column type of each kind, and the kinds
// DDL refuses.
func TestMySQLDDLKinds(t *testing.T) {
	m, err := NewMapping[*mysqlKinds](Table{Name: "kinds"})
	require.NoError(t, err)
	ddl, err := m.DDL(MySQL)
	require.NoError(t, err)
	for _, want := range []string{
		"`id` VARBINARY(255) NOT NULL,",
		"`i8` TINYINT NOT NULL,",
		"`u8` TINYINT UNSIGNED NOT NULL,",
		"`u16` SMALLINT UNSIGNED NOT NULL,",
		"`u32` INT UNSIGNED NOT NULL,",
		"`u64` BIGINT UNSIGNED NOT NULL,",
		"`f32` DOUBLE NOT NULL,",
		"`doc` JSON NOT NULL,",
		"`at` BIGINT,",
		"`when` DATETIME(6) NOT NULL,",
		"`label` LONGTEXT,",
		"`raw` LONGBLOB NOT NULL,",
		"PRIMARY KEY (`id`)",
	} {
		require.Contains(t, ddl, want)
	}

	a, err := NewMapping[*mysqlArray](Table{Name: "arrays"})
	require.NoError(t, err)
	_, err = a.DDL(MySQL)
	require.ErrorContains(t, err, "column tags: MySQL has no arrays")

	g, err := NewMapping[*mysqlTextKey](Table{Name: "texts"})
	require.NoError(t, err)
	_, err = g.DDL(MySQL)
	require.ErrorContains(t, err, "a generated key must be an int16, int32 or int64")
}

// TestMySQLDDLPassesCheck applies the DDL of mappings to an empty
// database of MariaDB or MySQL, and checks the schema.
func TestMySQLDDLPassesCheck(t *testing.T) {
	x, name := mysqlSchemaDB(t)
	db := mysqlCheckDB(t, x)
	ctx := context.Background()
	kit, err := NewMapping[*kit](Table{Name: "kits"},
		Child{Field: "parts", Table: "kit_parts", ParentKey: "kit_id", Children: []Child{
			{Field: "screws", Table: "part_screws", ParentKey: "part_id"},
			{Field: "bolts", Table: "part_bolts", ParentKey: "part_id", ParentKeyOnly: true},
		}})
	require.NoError(t, err)
	kinds, err := NewMapping[*mysqlKinds](Table{Name: "kinds"})
	require.NoError(t, err)
	for _, m := range []interface {
		DDL(Database) (string, error)
		Check(context.Context, *DB) error
	}{shelfMapping(t, ""), kit, kanbanMapping(t, true, false), kinds, shelfMapping(t, name+".q_")} {
		ddl, err := m.DDL(MySQL)
		require.NoError(t, err)
		mysqlExec(t, x, statements(ddl)...)
		require.NoError(t, m.Check(ctx, db), ddl)
	}

	// A database that does not exist holds no table.
	err = shelfMapping(t, "dddkit_no_such_db.").Check(ctx, db)
	var se *SchemaError
	require.ErrorAs(t, err, &se)
	require.Len(t, se.Mismatches, 4, "%v", err)
}

// TestMySQLDDLLetsAMovePass runs, on a schema of DDL, the statements of a
// move of a column of a board to another board (see Store.moveStmts): the
// row of the column first, then the rows below it, whose foreign keys
// cascade the update.
func TestMySQLDDLLetsAMovePass(t *testing.T) {
	x, _ := mysqlSchemaDB(t)
	ddl, err := kanbanMapping(t, true, false).DDL(MySQL)
	require.NoError(t, err)
	mysqlExec(t, x, statements(ddl)...)
	mysqlExec(t, x,
		"INSERT INTO boards (id, name, version) VALUES (1, 'a', 1), (2, 'b', 1)",
		"INSERT INTO kcolumns (board_id, id, title, pos) VALUES (1, 10, 'todo', 0)",
		"INSERT INTO kcards (board_id, column_id, id, title, pos) VALUES (1, 10, 100, 'card', 0)",
		"INSERT INTO kitems (board_id, column_id, card_id, id, text) VALUES (1, 10, 100, 1000, 'item')",
	)
	tx, err := x.Begin()
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	for _, s := range []string{
		"UPDATE kcolumns SET board_id = 2, pos = 0 WHERE id = 10",
		"UPDATE kcards SET board_id = 2 WHERE column_id = 10",
		"UPDATE kitems SET board_id = 2 WHERE column_id = 10",
	} {
		_, err := tx.Exec(s)
		require.NoError(t, err, s)
	}
	require.NoError(t, tx.Commit())
	var boards string
	require.NoError(t, x.Get(&boards, "SELECT CONCAT((SELECT board_id FROM kcards), (SELECT board_id FROM kitems))"))
	require.Equal(t, "22", boards)
}

// TestMySQLCheckReportsEveryMismatch breaks a schema in every way Check
// knows, and finds each in one error.
func TestMySQLCheckReportsEveryMismatch(t *testing.T) {
	x, _ := mysqlSchemaDB(t)
	mysqlExec(t, x,
		// The key is not generated; a FLOAT is single precision.
		"CREATE TABLE shelves (id BIGINT PRIMARY KEY, name LONGTEXT NOT NULL, note TEXT, width FLOAT NOT NULL, height INT NOT NULL, version BIGINT NOT NULL) ENGINE=InnoDB",
		// title is not text; added keeps whole seconds; a unique key
		// holds the position.
		"CREATE TABLE books (shelf_id BIGINT NOT NULL, id BIGINT NOT NULL, title BIGINT NOT NULL, added DATETIME NOT NULL, pos INT NOT NULL, PRIMARY KEY (shelf_id, id), UNIQUE KEY books_pos (shelf_id, pos), FOREIGN KEY (shelf_id) REFERENCES shelves (id)) ENGINE=InnoDB",
		// The parent key column book_id is missing; done is a bit.
		"CREATE TABLE book_notes (shelf_id BIGINT NOT NULL, id BIGINT NOT NULL, text TEXT NOT NULL, done BIT(1) NOT NULL) ENGINE=InnoDB",
		// shelf_tags is missing.
	)
	err := shelfMapping(t, "").Check(context.Background(), mysqlCheckDB(t, x))
	require.ErrorIs(t, err, ErrSchema)
	var se *SchemaError
	require.ErrorAs(t, err, &se)
	require.Equal(t, []Mismatch{
		{Table: "shelves", Column: "width", Problem: "the column of the field size.width (float64) is float: a FLOAT is single precision, and MariaDB writes it as text with six significant digits: make it DOUBLE"},
		{Table: "shelves", Column: "id", Problem: "the key is generated (`db:\"id,generated\"`), but the column is not AUTO_INCREMENT: make it BIGINT AUTO_INCREMENT PRIMARY KEY"},
		{Table: "books", Column: "title", Problem: "the column of the field title (string) is bigint(20): make it LONGTEXT"},
		{Table: "books", Column: "added", Problem: "the column of the field added (time.Time) is datetime: it keeps 0 digits of the fraction of a second, and the server drops or rounds the rest: make it DATETIME(6)"},
		{Table: "books", Column: "pos", Problem: "the unique index books_pos holds the position column: MySQL cannot defer a unique index, and a reorder moves one row at a time: drop it"},
		{Table: "book_notes", Column: "book_id", Problem: "the column of the parent key does not exist"},
		{Table: "book_notes", Column: "done", Problem: "the column of the field done (bool) is bit(1): make it BOOLEAN"},
		{Table: "shelf_tags", Problem: "the table does not exist"},
	}, mysqlTypeNames(se.Mismatches), "%v", err)
}

// mysqlTypeNames rewrites the types of MySQL 8, which shows no display
// width ("bigint"), as MariaDB shows them ("bigint(20)").
func mysqlTypeNames(ms []Mismatch) []Mismatch {
	for i := range ms {
		ms[i].Problem = strings.Replace(ms[i].Problem, "is bigint:", "is bigint(20):", 1)
	}
	return ms
}

// TestMySQLCheckForeignKeyOfAMove checks that Check reports a foreign key
// that holds the parent key columns of a parent with a generated key and
// does not cascade updates: a move of that parent would fail.
func TestMySQLCheckForeignKeyOfAMove(t *testing.T) {
	x, _ := mysqlSchemaDB(t)
	serial := "BIGINT AUTO_INCREMENT PRIMARY KEY"
	mysqlExec(t, x,
		"CREATE TABLE boards (id "+serial+", name TEXT NOT NULL, version BIGINT NOT NULL)",
		"CREATE TABLE kcolumns (id "+serial+", board_id BIGINT NOT NULL, pos INT NOT NULL, title TEXT NOT NULL, UNIQUE (board_id, id), FOREIGN KEY (board_id) REFERENCES boards (id))",
		"CREATE TABLE kcards (id "+serial+", board_id BIGINT NOT NULL, column_id BIGINT NOT NULL, pos INT NOT NULL, title TEXT NOT NULL, UNIQUE (board_id, column_id, id), FOREIGN KEY (board_id, column_id) REFERENCES kcolumns (board_id, id) ON UPDATE CASCADE)",
		"CREATE TABLE kitems (id "+serial+", board_id BIGINT NOT NULL, column_id BIGINT NOT NULL, card_id BIGINT NOT NULL, text TEXT NOT NULL, CONSTRAINT kitems_card FOREIGN KEY (board_id, column_id, card_id) REFERENCES kcards (board_id, column_id, id) ON DELETE CASCADE)",
	)
	db := mysqlCheckDB(t, x)
	m := kanbanMapping(t, true, false)
	err := m.Check(context.Background(), db)
	var se *SchemaError
	require.ErrorAs(t, err, &se)
	require.Equal(t, []Mismatch{{Table: "kitems", Column: "board_id", Problem: "the foreign key kitems_card (board_id, column_id, card_id) holds parent key columns that a move of a parent to another parent updates before those of this table's rows, and it is checked at once: a move would fail; declare it ON UPDATE CASCADE"}}, se.Mismatches)

	mysqlExec(t, x, "ALTER TABLE kitems DROP FOREIGN KEY kitems_card",
		"ALTER TABLE kitems ADD CONSTRAINT kitems_card FOREIGN KEY (board_id, column_id, card_id) REFERENCES kcards (board_id, column_id, id) ON UPDATE CASCADE")
	require.NoError(t, m.Check(context.Background(), db))
}

// TestMySQLCheckNames checks that Check finds a table by its name as the
// server does: the tables of another database are not read, and where
// names of tables are case-sensitive, a name in another case is another
// table.
func TestMySQLCheckNames(t *testing.T) {
	x, name := mysqlSchemaDB(t)
	ddl, err := shelfMapping(t, "").DDL(MySQL)
	require.NoError(t, err)
	mysqlExec(t, x, statements(ddl)...)
	db := mysqlCheckDB(t, x)
	ctx := context.Background()
	require.NoError(t, shelfMapping(t, name+".").Check(ctx, db))

	// The tables of the current database only.
	other, _ := mysqlSchemaDB(t)
	err = shelfMapping(t, "").Check(ctx, mysqlCheckDB(t, other))
	var se *SchemaError
	require.ErrorAs(t, err, &se)
	require.Len(t, se.Mismatches, 4, "%v", err)

	var lower int
	require.NoError(t, x.Get(&lower, "SELECT @@lower_case_table_names"))
	if lower != 0 {
		t.Skip("the server's names of tables are not case-sensitive")
	}
	ddl, err = shelfMapping(t, "S").DDL(MySQL) // Sshelves, Sbooks, ...
	require.NoError(t, err)
	mysqlExec(t, other, statements(ddl)...)
	require.NoError(t, shelfMapping(t, "S").Check(ctx, mysqlCheckDB(t, other)))
	err = shelfMapping(t, "s").Check(ctx, mysqlCheckDB(t, other))
	require.ErrorAs(t, err, &se)
	require.Len(t, se.Mismatches, 4, "%v", err)
}

// TestMySQLDDLRoundTrip saves and loads values at the ends of their
// kinds' ranges through the tables of DDL: each comes back as it was,
// times to the microsecond, and two string keys that differ in trailing
// spaces alone are two aggregates.
func TestMySQLDDLRoundTrip(t *testing.T) {
	x, _ := mysqlSchemaDB(t)
	m, err := NewMapping[*mysqlKinds](Table{Name: "kinds"})
	require.NoError(t, err)
	ddl, err := m.DDL(MySQL)
	require.NoError(t, err)
	mysqlExec(t, x, statements(ddl)...)
	db := mysqlCheckDB(t, x)
	r, err := NewRepository[*mysqlKinds, string](db, m)
	require.NoError(t, err)
	ctx := context.Background()
	at := int64(math.MinInt64)
	when := time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.FixedZone("x", 3600))
	a := &mysqlKinds{id: "a", i8: math.MinInt8, u8: math.MaxUint8, u16: math.MaxUint16, u32: math.MaxUint32, u64: math.MaxUint64,
		f32: math.MaxFloat32, doc: map[string]string{"k": "\u00e9\"'"}, at: &at, when: when,
		label: sql.NullString{String: "Ünïcode 🙂", Valid: true}, raw: []byte{0, 0xff, 'a'}}
	spaced := &mysqlKinds{id: "a ", f32: math.SmallestNonzeroFloat32, doc: map[string]string{}, raw: []byte{}}
	require.NoError(t, r.Save(ctx, a))
	require.NoError(t, r.Save(ctx, spaced))

	got, err := r.Find(ctx, "a")
	require.NoError(t, err)
	require.True(t, when.Truncate(time.Microsecond).Equal(got.when), "%v", got.when)
	got.when = a.when
	require.Equal(t, a, got)
	got, err = r.Find(ctx, "a ")
	require.NoError(t, err)
	require.Equal(t, "a ", got.id)
	require.Equal(t, float32(math.SmallestNonzeroFloat32), got.f32)
	require.Nil(t, got.at)
	require.False(t, got.label.Valid)
}
