package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/dddkit/dddkit/repository"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests check the statements built for MySQL and MariaDB, where
// they differ from those of PostgreSQL and SQLite, without a database.

func mysqlStore[T any, ID comparable](t *testing.T, d *dialect, m *Mapping[T]) *Store[T, ID] {
	t.Helper()
	s := NewStore[T, ID](&DB{sql: new(sqlx.DB), dialect: d}, m)
	require.NoError(t, s.err)
	return s
}

// TestLikeFor: a pattern of Like, whose escape is the backslash, is
// rewritten for a database whose LIKE escape is another character.
func TestLikeFor(t *testing.T) {
	for _, tt := range []struct {
		in, want, reason string
	}{
		{`abc%`, `abc%`, "no escape, no bang: as it is"},
		{`50\%`, `50!%`, "an escaped % keeps its escape, the new one"},
		{`a\_b`, `a!_b`, "an escaped _ likewise"},
		{`a\\b`, `a\b`, "an escaped backslash is a plain backslash, which is no escape any more"},
		{`a\bc`, `abc`, "an escaped ordinary character is itself"},
		{`a!b%`, `a!!b%`, "a literal bang is doubled: it is the escape now"},
		{`\!%`, `!!%`, "an escaped bang is a literal bang"},
		{`é\%ü`, `é!%ü`, "multi-byte characters are kept"},
	} {
		assert.Equal(t, tt.want, likeFor(tt.in, '!'), tt.reason)
	}
	assert.Equal(t, `50\%`, likeFor(`50\%`, 0), "the backslash dialects keep the pattern")
}

// TestMySQLConds: the text matches of MySQL are exact whatever the
// column's collation, and their escape is one that no sql_mode changes.
func TestMySQLConds(t *testing.T) {
	tb := &orderMapping(t).root
	for _, tt := range []struct {
		cond   Cond
		sql    string
		args   []any
		reason string
	}{
		{Like("customer", `a\%b_`), ` WHERE "customer" LIKE ? COLLATE utf8mb4_bin ESCAPE '!'`, []any{`a!%b_`},
			"a binary collation makes the match case- and accent-sensitive; the pattern's backslash escape becomes a bang"},
		{Contains("customer", `5!%`), ` WHERE "customer" LIKE ? COLLATE utf8mb4_bin ESCAPE '!'`, []any{`%5!!!%%`},
			"Contains matches its text as it is: the bang and the percent are escaped"},
		{HasPrefix("customer", `a\b`), ` WHERE "customer" LIKE ? COLLATE utf8mb4_bin ESCAPE '!'`, []any{`a\b%`},
			"a backslash in the text is a plain character"},
		{EqualFold("customer", "ALICE"), ` WHERE ` + strings.ReplaceAll(mysqlFoldASCII, "%s", `"customer"`) + ` LIKE ? COLLATE utf8mb4_bin ESCAPE '!'`, []any{"alice"},
			"the folded column is compared exactly (é stays apart from e), with LIKE, as = under a PAD SPACE collation ignores trailing spaces"},
		{EqualFold("customer", `5%_!\`), ` WHERE ` + strings.ReplaceAll(mysqlFoldASCII, "%s", `"customer"`) + ` LIKE ? COLLATE utf8mb4_bin ESCAPE '!'`, []any{`5!%!_!!\`},
			"EqualFold's text is matched as it is"},
	} {
		cq, err := tb.compile(Where(tt.cond))
		require.NoError(t, err)
		w := &builder{d: mysqlDialect}
		require.NoError(t, cq.where(w))
		// Written with double quotes: MySQL quotes with backticks.
		assert.Equal(t, strings.ReplaceAll(tt.sql, `"`, "`"), w.b.String(), tt.reason)
		assert.Equal(t, tt.args, w.args, tt.reason)
	}
	// PostgreSQL keeps its SQL.
	cq, err := tb.compile(Where(Like("customer", `a\%`)))
	require.NoError(t, err)
	w := &builder{d: postgres}
	require.NoError(t, cq.where(w))
	assert.Equal(t, ` WHERE "customer" LIKE $1 ESCAPE '\'`, w.b.String())
	assert.Equal(t, []any{`a\%`}, w.args)
}

// TestMySQLPagedChildren: the children of a page of roots are selected
// by the page's query in a derived table, as MySQL refuses a LIMIT in the
// subquery of an IN; an OFFSET without a limit gets the largest LIMIT.
func TestMySQLPagedChildren(t *testing.T) {
	m := orderMapping(t)
	for _, tt := range []struct {
		d      *dialect
		q      Query
		want   string
		reason string
	}{
		{mysqlDialect, Where(Eq("customer", "alice")).Limit(2).Offset(1),
			`SELECT order_id, "id", "sku", "quantity" FROM "order_items" WHERE order_id IN (SELECT "id" FROM (SELECT "id" FROM "orders" WHERE "customer" = ? ORDER BY "id" LIMIT ? OFFSET ?) AS dddkit_page) ORDER BY order_id, "id"`,
			"a limit and an offset: a derived table"},
		{mysqlDialect, Query{}.Offset(3),
			`SELECT order_id, "id", "sku", "quantity" FROM "order_items" WHERE order_id IN (SELECT "id" FROM (SELECT "id" FROM "orders" ORDER BY "id" LIMIT 18446744073709551615 OFFSET ?) AS dddkit_page) ORDER BY order_id, "id"`,
			"an offset alone needs a LIMIT on MySQL"},
		{mysqlDialect, Where(Eq("customer", "alice")),
			`SELECT order_id, "id", "sku", "quantity" FROM "order_items" WHERE order_id IN (SELECT "id" FROM "orders" WHERE "customer" = ?) ORDER BY order_id, "id"`,
			"no page: the subquery needs no derived table"},
		{sqlite, Where(Eq("customer", "alice")).Limit(2),
			`SELECT order_id, "id", "sku", "quantity" FROM "order_items" WHERE order_id IN (SELECT "id" FROM "orders" WHERE "customer" = ? ORDER BY "id" LIMIT ?) ORDER BY order_id, "id"`,
			"SQLite takes the LIMIT in the subquery, as before"},
	} {
		s := mysqlStore[*order, orderID](t, tt.d, m)
		cq, err := m.root.compile(tt.q)
		require.NoError(t, err)
		got, err := s.childSelects(&builder{d: tt.d}, cq, nil, false, "")
		require.NoError(t, err)
		require.Len(t, got, 1)
		want := strings.ReplaceAll(tt.want, "order_id", `"order_id"`)
		if tt.d.quoteChar == '`' {
			want = strings.ReplaceAll(want, `"`, "`") // written with double quotes
		}
		assert.Equal(t, want, got[0].sql, tt.reason)
	}
}

// TestMySQLGeneratedKeys: without INSERT ... RETURNING, each row whose key
// the database generates is inserted alone, and its key is read from the
// statement's result, LAST_INSERT_ID(), never guessed from a multi-row
// INSERT.
func TestMySQLGeneratedKeys(t *testing.T) {
	m, err := NewMapping[*genRoot](Table{Name: "gen_roots"},
		Child{Field: "lines", Table: "gen_lines", ParentKey: "root_id", Children: []Child{
			{Field: "notes", Table: "gen_notes", ParentKey: "line_id", ParentKeyOnly: true},
		}})
	require.NoError(t, err)
	s := mysqlStore[*genRoot, int64](t, mysqlDialect, m)
	g := &genRoot{name: "first", lines: []*genLine{
		{label: "a", notes: []genNote{{id: 1, text: "x"}}},
		{label: "b"},
	}}
	pl, err := s.insertStmts(unsafe.Pointer(g))
	require.NoError(t, err)
	require.Len(t, pl.first, 1, "the root alone: its lines need its key")
	root := pl.first[0]
	assert.Equal(t, bq(`INSERT INTO "gen_roots" ("name", "version") VALUES (?, ?)`), root.sql, "no RETURNING")
	require.NotNil(t, root.lastID)
	assert.Nil(t, root.scan)
	require.NoError(t, root.lastID(41))
	assert.Equal(t, int64(41), g.id, "the key is the INSERT's LAST_INSERT_ID")

	lines := pl.stage(1)
	require.Len(t, lines, 2, "one INSERT per line")
	for i, st := range lines {
		assert.Equal(t, bq(`INSERT INTO "gen_lines" ("root_id", "label") VALUES (?, ?)`), st.sql)
		assert.Equal(t, []any{int64(41), g.lines[i].label}, st.args)
		require.NotNil(t, st.lastID)
		require.NoError(t, st.lastID(int64(100+i)))
	}
	assert.Equal(t, int64(100), g.lines[0].id)
	assert.Equal(t, int64(101), g.lines[1].id)
	notes := pl.stage(2)
	require.Len(t, notes, 1)
	assert.Equal(t, []any{int64(100), int64(1), "x"}, notes[0].args, "the notes get their line's key")

	pl.restore()
	assert.Zero(t, g.id, "a failed save puts the keys back")
	assert.Zero(t, g.lines[0].id)

	require.Error(t, root.lastID(0), "no AUTO_INCREMENT: LAST_INSERT_ID() is 0, an error rather than a key 0")

	// With RETURNING (MariaDB 10.5 and later, as its probe finds), the key
	// comes back as a row.
	s.db.srv.Store(&server{d: mariadbDialect})
	pl, err = s.insertStmts(unsafe.Pointer(&genRoot{name: "x", lines: []*genLine{{label: "a"}}}))
	require.NoError(t, err)
	assert.Equal(t, bq(`INSERT INTO "gen_roots" ("name", "version") VALUES (?, ?) RETURNING "id"`), pl.first[0].sql)
	assert.NotNil(t, pl.first[0].scan)
	assert.Nil(t, pl.first[0].lastID)
	assert.Equal(t, bq(`INSERT INTO "gen_lines" ("root_id", "label") VALUES (?, ?) RETURNING "id"`), pl.stage(1)[0].sql)
}

type smallID int8

type scannedID struct{ v int64 }

func (s *scannedID) Scan(src any) error { s.v = src.(int64) * 10; return nil }

// TestAssignID: a generated key is stored in a key field of any integer
// type it fits, or a sql.Scanner.
func TestAssignID(t *testing.T) {
	var i8 smallID
	require.NoError(t, assignID(&i8, 127))
	assert.Equal(t, smallID(127), i8)
	assert.Error(t, assignID(&i8, 128), "too large for an int8")
	var u uint32
	require.NoError(t, assignID(&u, 7))
	assert.Equal(t, uint32(7), u)
	var s string
	assert.Error(t, assignID(&s, 7), "not an integer")
	var sc scannedID
	require.NoError(t, assignID(&sc, 7))
	assert.Equal(t, int64(70), sc.v, "a Scanner scans the int64")
}

// bq returns sql, written with double quotes, with the backticks of MySQL.
func bq(sql string) string { return strings.ReplaceAll(sql, `"`, "`") }

// TestMySQLStatementBytes: where the database bounds the size of a
// statement with its arguments formatted in (MySQL's max_allowed_packet),
// a multi-row INSERT and the key list of a DELETE are split to keep
// within it, each row counted at the most its arguments can take.
func TestMySQLStatementBytes(t *testing.T) {
	// Every row of an item takes 4 numbers and a 1,000-byte SKU: at most
	// 2,002 + 4*20 + 4*2 + 4 bytes. 6 rows fit in 6*2,100 bytes, 7 do not.
	maxBytes := stmtMargin + 6*2100
	s := mysqlStore[*order, orderID](t, mysqlDialect, orderMapping(t))
	s.db.srv.Store(&server{d: mysqlDialect, maxPacket: maxBytes})
	o := newOrder(1, "alice")
	for i := 1; i <= 14; i++ {
		o.items = append(o.items, &item{id: itemID(i), sku: strings.Repeat(string(rune('A'+i)), 1000), quantity: i})
	}
	got, err := first(s.insertStmts(unsafe.Pointer(o)))
	require.NoError(t, err)
	require.Len(t, got, 1+3, "the root, then 14 rows as 6 + 6 + 2")
	assert.Len(t, got[1].args, 6*4)
	assert.Len(t, got[3].args, 2*4)
	for _, st := range got[1:] {
		size := len(st.sql)
		for _, a := range st.args {
			size += argBytes(a)
		}
		assert.LessOrEqual(t, size, maxBytes-stmtMargin+len(st.sql), "within the bound")
	}

	keys := make([]any, 0, 2000)
	for i := range 2000 {
		keys = append(keys, itemID(i))
	}
	g := group{refs: []any{orderID(1)}, keys: keys}
	chunks := g.chunks(mysqlDialect, maxBytes, s.m.children[0])
	// A key takes at most 20 bytes and its separator: 12,600 / 22 = 572
	// keys a statement, less the parent's key.
	require.Greater(t, len(chunks), 1)
	total := 0
	for _, c := range chunks {
		total += len(c.keys)
		assert.LessOrEqual(t, len(c.keys)*22, maxBytes-stmtMargin)
		assert.Equal(t, []any{orderID(1)}, c.refs)
	}
	assert.Equal(t, 2000, total, "every key is in a chunk")

	// Without a bound, one statement takes all (up to maxParams).
	got, err = first(mysqlStore[*order, orderID](t, mysqlDialect, orderMapping(t)).insertStmts(unsafe.Pointer(o)))
	require.NoError(t, err)
	assert.Len(t, got, 2)
}

type valued struct{}

func (valued) Value() (driver.Value, error) { return strings.Repeat("x", 10), nil }

// TestArgBytes: the size of an argument formatted into a statement is
// never underestimated.
func TestArgBytes(t *testing.T) {
	s := "it's"
	for _, tt := range []struct {
		v    any
		min  int
		name string
	}{
		{nil, 4, "NULL"},
		{`a'b\c`, len(`'a\'b\\c'`), "every byte may be escaped"},
		{[]byte("ab"), len(`_binary'ab'`), "bytes"},
		{int64(-9223372036854775808), 20, "the longest int64"},
		{uint64(18446744073709551615), 20, "the longest uint64"},
		{-1.2345678901234567e-308, len("-1.2345678901234567e-308"), "a long float"},
		{time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC), len(`'2024-01-02 03:04:05.000006'`), "a time"},
		{&s, len(`'it\'s'`), "a pointer to a string"},
		{(*string)(nil), 4, "a nil pointer"},
		{valued{}, 12, "a Valuer's value"},
		{jsonValue{map[string]string{"a": "b"}}, len(`'{\"a\":\"b\"}'`), "a JSON column's text"},
		{smallID(-100), 4, "a named integer"},
		{true, 1, "a bool"},
	} {
		assert.GreaterOrEqual(t, argBytes(tt.v), tt.min, tt.name)
	}
}

// mysqlStmtDB returns a DB on a database of its own of the MySQL or
// MariaDB server of DDDKIT_TEST_MYSQL_DSN, with opts, and the database
// itself for fixtures; the test is skipped without the variable.
func mysqlStmtDB(t *testing.T, opts ...Option) (*DB, *sqlx.DB) {
	t.Helper()
	x := mysqlDatabase(t)
	db, err := NewSQL(x, opts...)
	require.NoError(t, err)
	return db, x
}

// TestMySQLGeneratedKeysLive: generated keys at every level on MariaDB, by
// INSERT ... RETURNING and, on MySQL's path, by LAST_INSERT_ID() of
// single-row INSERTs, with keys that do not follow each other (another
// session inserts between the rows).
func TestMySQLGeneratedKeysLive(t *testing.T) {
	for _, path := range []struct {
		name      string
		opts      []Option
		returning bool
	}{
		{"returning", nil, true},
		{"last-insert-id", []Option{withMySQLPath()}, false},
	} {
		t.Run(path.name, func(t *testing.T) {
			log := &stmtLog{}
			db, x := mysqlStmtDB(t, append(path.opts, WithObserver(log.observe))...)
			ctx := context.Background()
			x.MustExec("CREATE TABLE gen_roots (id BIGINT AUTO_INCREMENT PRIMARY KEY, name TEXT NOT NULL, version BIGINT NOT NULL)")
			x.MustExec("CREATE TABLE gen_lines (id BIGINT AUTO_INCREMENT PRIMARY KEY, root_id BIGINT NOT NULL REFERENCES gen_roots (id), label VARCHAR(20) NOT NULL CHECK (label <> ''))")
			x.MustExec("CREATE TABLE gen_notes (line_id BIGINT NOT NULL REFERENCES gen_lines (id), id BIGINT NOT NULL, text TEXT NOT NULL, PRIMARY KEY (line_id, id))")
			// Keys that do not follow each other.
			x.MustExec("SET SESSION auto_increment_increment = 1")
			x.MustExec("ALTER TABLE gen_lines AUTO_INCREMENT = 1000")
			m, err := NewMapping[*genRoot](Table{Name: "gen_roots"},
				Child{Field: "lines", Table: "gen_lines", ParentKey: "root_id", Children: []Child{
					{Field: "notes", Table: "gen_notes", ParentKey: "line_id", ParentKeyOnly: true},
				}})
			require.NoError(t, err)
			repo, err := NewRepository[*genRoot, int64](db, m)
			require.NoError(t, err)

			g := &genRoot{name: "first", lines: []*genLine{
				{label: "a", notes: []genNote{{id: 1, text: "x"}, {id: 2, text: "y"}}},
				{label: "b", notes: []genNote{{id: 1, text: "z"}}},
				{label: "c"},
			}}
			log.take()
			require.NoError(t, repo.Save(ctx, g))
			var inserts []string
			for _, s := range log.take() {
				if strings.HasPrefix(s.SQL, "INSERT") {
					inserts = append(inserts, s.SQL)
				}
			}
			require.Len(t, inserts, 1+3+1, "the root, one INSERT per line, the notes in one")
			for _, s := range inserts[:4] {
				assert.Equal(t, path.returning, strings.HasSuffix(s, " RETURNING `id`"), s)
			}
			require.NotZero(t, g.id)
			assert.Equal(t, int64(1000), g.lines[0].id)
			got, err := repo.Find(ctx, g.id)
			require.NoError(t, err)
			assert.Equal(t, g, got, "every key read back is the row's")

			// A new line among gaps: another session takes keys between.
			got.lines = append(got.lines, &genLine{id: -1, label: "d", notes: []genNote{{id: 1, text: "w"}}}, &genLine{id: -2, label: "e"})
			x.MustExec("ALTER TABLE gen_lines AUTO_INCREMENT = 2000")
			require.NoError(t, repo.Save(ctx, got))
			assert.Equal(t, int64(2000), got.lines[3].id)
			assert.Equal(t, int64(2001), got.lines[4].id)
			again, err := NewStore[*genRoot, int64](db, m).Select(ctx, g.id)
			require.NoError(t, err)
			assert.Equal(t, got, again)

			// A failed save puts the keys back and leaves nothing.
			bad := &genRoot{name: "bad", lines: []*genLine{{label: "ok"}, {label: ""}}}
			require.Error(t, repo.Save(ctx, bad))
			assert.Zero(t, bad.id)
			assert.Zero(t, bad.lines[0].id)
			var n int
			require.NoError(t, x.Get(&n, "SELECT count(*) FROM gen_roots"))
			assert.Equal(t, 1, n)
		})
	}
}

// TestMySQLLockedChildrenAtRepeatableRead: in a transaction of InnoDB at
// REPEATABLE READ, whose snapshot was taken before another transaction
// changed an aggregate, SelectForUpdate returns the latest root, which
// its lock reads, with its latest children: read with a lock too, not
// from the older snapshot.
func TestMySQLLockedChildrenAtRepeatableRead(t *testing.T) {
	db, x := mysqlStmtDB(t)
	x.MustExec("CREATE TABLE orders (id BIGINT PRIMARY KEY, customer VARCHAR(100) NOT NULL, total_amount BIGINT NOT NULL, total_currency VARCHAR(10) NOT NULL, version BIGINT NOT NULL)")
	x.MustExec("CREATE TABLE order_items (order_id BIGINT NOT NULL REFERENCES orders (id), id BIGINT NOT NULL, sku VARCHAR(100) NOT NULL, quantity INTEGER NOT NULL, PRIMARY KEY (order_id, id))")
	repo, err := NewRepository[*order, orderID](db, orderMapping(t))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, repo.Save(ctx, newOrder(1, "alice", &item{id: 1, sku: "A", quantity: 1})))
	require.NoError(t, repo.Save(ctx, newOrder(2, "bob", &item{id: 1, sku: "A", quantity: 1})))
	st := repo.Store()
	require.NoError(t, db.InTxWith(ctx, TxOptions{Isolation: sql.LevelRepeatableRead}, func(ctx context.Context) error {
		if _, err := st.Select(ctx, 2); err != nil { // takes the snapshot
			return err
		}
		require.NoError(t, repo.Update(context.Background(), 1, func(_ context.Context, o *order) error {
			o.items[0].quantity = 5
			o.items = append(o.items, &item{id: 2, sku: "B", quantity: 2})
			return nil
		}), "another transaction changes order 1 and commits")
		o, err := st.SelectForUpdate(ctx, 1)
		if err != nil {
			return err
		}
		assert.EqualValues(t, 1, o.version, "the locked root is the latest")
		require.Len(t, o.items, 2, "and so are its items")
		assert.Equal(t, 5, o.items[0].quantity)
		stale, err := st.Select(ctx, 1)
		if err != nil {
			return err
		}
		assert.Len(t, stale.items, 1, "a plain load reads the snapshot, whole")
		assert.EqualValues(t, 0, stale.version)
		return nil
	}))
}

// textRow has the same text in columns of four collations.
type textRow struct {
	id  int64  `db:"id"`
	ci  string `db:"ci"`  // utf8mb4_general_ci: ignores case, accents, trailing spaces
	lat string `db:"lat"` // latin1_swedish_ci
	bin string `db:"bin"` // utf8mb4_bin: ignores trailing spaces
	vb  string `db:"vb"`  // VARBINARY
}

func (r *textRow) ID() int64 { return r.id }

// TestMySQLTextMatchCollations: Like, Contains, HasPrefix and EqualFold
// select the same rows of a column whatever its collation, those that they
// select on PostgreSQL: case- and accent-sensitive, trailing spaces
// minded, %, _, \ and ! taken as the pattern says.
func TestMySQLTextMatchCollations(t *testing.T) {
	db, x := mysqlStmtDB(t)
	x.MustExec("CREATE TABLE texts (id BIGINT PRIMARY KEY, ci VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL, lat VARCHAR(50) CHARACTER SET latin1 NOT NULL, bin VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, vb VARBINARY(200) NOT NULL)")
	m, err := NewMapping[*textRow](Table{Name: "texts"})
	require.NoError(t, err)
	repo, err := NewRepository[*textRow, int64](db, m)
	require.NoError(t, err)
	ctx := context.Background()
	texts := []string{"Alice", "alice", "álice", "alice ", "50%", "50x", "a_b", "axb", `a\b`, "a!b", "é", "e"}
	for i, s := range texts {
		require.NoError(t, repo.Save(ctx, &textRow{id: int64(i + 1), ci: s, lat: s, bin: s, vb: s}))
	}
	for _, tt := range []struct {
		name string
		cond func(col string) Cond
		want []int64
	}{
		{"Like is exact", func(c string) Cond { return Like(c, "alice") }, []int64{2}},
		{"Like _ is one character", func(c string) Cond { return Like(c, "_lice") }, []int64{1, 2, 3}},
		{"Like _ matches é whole", func(c string) Cond { return Like(c, "_") }, []int64{11, 12}},
		{`Like \%`, func(c string) Cond { return Like(c, `50\%`) }, []int64{5}},
		{`Like \_`, func(c string) Cond { return Like(c, `a\_b`) }, []int64{7}},
		{`Like \\`, func(c string) Cond { return Like(c, `a\\b`) }, []int64{9}},
		{"Like !", func(c string) Cond { return Like(c, `a!b`) }, []int64{10}},
		{"Like a%", func(c string) Cond { return Like(c, "a%b") }, []int64{7, 8, 9, 10}},
		{"Contains %", func(c string) Cond { return Contains(c, "%") }, []int64{5}},
		{"Contains !", func(c string) Cond { return Contains(c, "!") }, []int64{10}},
		{`Contains \`, func(c string) Cond { return Contains(c, `\`) }, []int64{9}},
		{"Contains a space", func(c string) Cond { return Contains(c, " ") }, []int64{4}},
		{"HasPrefix is case-sensitive", func(c string) Cond { return HasPrefix(c, "A") }, []int64{1}},
		{"EqualFold folds ASCII", func(c string) Cond { return EqualFold(c, "ALICE") }, []int64{1, 2}},
		{"EqualFold minds accents", func(c string) Cond { return EqualFold(c, "E") }, []int64{12}},
		{"EqualFold minds a trailing space", func(c string) Cond { return EqualFold(c, "alice ") }, []int64{4}},
		{"EqualFold takes _ as itself", func(c string) Cond { return EqualFold(c, "A_B") }, []int64{7}},
	} {
		for _, col := range []string{"ci", "lat", "bin", "vb"} {
			got, err := repo.FindAll(ctx, Where(tt.cond(col)).OrderBy("id"))
			require.NoError(t, err, "%s on %s", tt.name, col)
			ids := []int64{}
			for _, r := range got {
				ids = append(ids, r.id)
			}
			assert.Equal(t, tt.want, ids, "%s on %s", tt.name, col)
		}
	}
}

// TestMySQLJoinedRepeatableRead: a caller's transaction at InnoDB's
// default, REPEATABLE READ, joined with InSQLTx, whose level MySQL cannot
// report: a load locks the root, which reads the latest row, and its
// children too, which then are the latest as well, never those of the
// caller's older snapshot.
func TestMySQLJoinedRepeatableRead(t *testing.T) {
	db, x := mysqlStmtDB(t)
	x.MustExec("CREATE TABLE orders (id BIGINT PRIMARY KEY, customer VARCHAR(100) NOT NULL, total_amount BIGINT NOT NULL, total_currency VARCHAR(10) NOT NULL, version BIGINT NOT NULL)")
	x.MustExec("CREATE TABLE order_items (order_id BIGINT NOT NULL REFERENCES orders (id), id BIGINT NOT NULL, sku VARCHAR(100) NOT NULL, quantity INTEGER NOT NULL, PRIMARY KEY (order_id, id))")
	repo, err := NewRepository[*order, orderID](db, orderMapping(t))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, repo.Save(ctx, newOrder(1, "alice", &item{id: 1, sku: "A", quantity: 1})))

	tx, err := x.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	require.NoError(t, err)
	defer tx.Rollback()
	var n int
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT count(*) FROM order_items").Scan(&n), "takes the snapshot")
	require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, o *order) error {
		o.items = append(o.items, &item{id: 2, sku: "B", quantity: 2})
		return nil
	}), "another transaction adds an item and commits")
	require.NoError(t, db.InSQLTx(ctx, tx, func(ctx context.Context) error {
		o, err := repo.Store().Select(ctx, 1)
		if err != nil {
			return err
		}
		assert.EqualValues(t, 1, o.version, "the root, locked, is the latest")
		assert.Len(t, o.items, 2, "and so are its items, locked too")
		return nil
	}))
}

// TestMySQLGeneratedKeyNotInteger: without INSERT ... RETURNING, a key
// that the database generates is read with LAST_INSERT_ID(), an
// AUTO_INCREMENT integer: a generated key of another type (a UUID made by
// a DEFAULT) is refused before anything is sent, on insert and on update,
// as its row would be committed with its key unread.
func TestMySQLGeneratedKeyNotInteger(t *testing.T) {
	m, err := NewMapping[*uuidRoot](Table{Name: "uuid_roots"})
	require.NoError(t, err)
	db := &DB{sql: new(sqlx.DB), dialect: mysqlDialect}
	db.srv.Store(&server{d: mysqlDialect})
	s := NewStore[*uuidRoot, string](db, m)
	err = s.Insert(context.Background(), &uuidRoot{name: "x"})
	require.ErrorIs(t, err, ErrMapping)
	assert.Contains(t, err.Error(), "LAST_INSERT_ID()")
	err = s.Update(context.Background(), &uuidRoot{id: "u", name: "x"}, repository.Changes{})
	require.ErrorIs(t, err, ErrMapping)

	// MariaDB's RETURNING reads it back.
	db.srv.Store(&server{d: mariadbDialect})
	pl, err := NewStore[*uuidRoot, string](db, m).insertStmts(unsafe.Pointer(&uuidRoot{name: "x"}))
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(pl.first[0].sql, " RETURNING `id`"))
}

type narrowRoot struct {
	id   int32  `db:"id,generated"`
	name string `db:"name"`
}

func (n *narrowRoot) ID() int32 { return n.id }

// TestMySQLGeneratedKeyNarrow: on MySQL's path a generated key is read
// with LAST_INSERT_ID() once the server ran the whole round trip, its
// COMMIT included, so a key field narrower than 64 bits is refused before
// anything is sent: a key it cannot hold would leave the row committed
// while the save fails, and a retry would insert it again.
func TestMySQLGeneratedKeyNarrow(t *testing.T) {
	db, x := mysqlStmtDB(t, withMySQLPath())
	ctx := context.Background()
	x.MustExec("CREATE TABLE narrow_roots (id BIGINT AUTO_INCREMENT PRIMARY KEY, name TEXT NOT NULL)")
	x.MustExec("ALTER TABLE narrow_roots AUTO_INCREMENT = 2147483648") // past an int32
	m, err := NewMapping[*narrowRoot](Table{Name: "narrow_roots"})
	require.NoError(t, err)
	repo, err := NewRepository[*narrowRoot, int32](db, m)
	require.NoError(t, err)
	n := &narrowRoot{name: "x"}
	err = repo.Save(ctx, n)
	require.ErrorIs(t, err, ErrMapping)
	assert.NotErrorIs(t, err, repository.ErrOutcomeUnknown)
	assert.Contains(t, err.Error(), "64-bit")
	var rows int
	require.NoError(t, x.Get(&rows, "SELECT count(*) FROM narrow_roots"))
	assert.Zero(t, rows, "nothing was sent")
	assert.Zero(t, n.id)
}
