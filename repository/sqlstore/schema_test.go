package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The schema test aggregate: a generated root key, a time, a pointer, a
// value object, ordered children with children of their own, and a
// second collection of the root.

type shelf struct {
	id      int64   `db:"id,generated"`
	name    string  `db:"name"`
	note    *string `db:"note"`
	size    dims
	books   []*book
	tags    []*shelfTag
	version int64 `db:"version" ddd:"version"`
}

func (s *shelf) ID() int64 { return s.id }

type dims struct {
	width  float64 `db:"width"`
	height int32   `db:"height"`
}

type book struct {
	id    int64     `db:"id" ddd:"id"`
	title string    `db:"title"`
	added time.Time `db:"added"`
	notes []*bookNote
}

type bookNote struct {
	id   int64  `db:"id" ddd:"id"`
	text string `db:"text"`
	done bool   `db:"done"`
}

type shelfTag struct {
	id    string `db:"id" ddd:"id"`
	label []byte `db:"label"`
}

func shelfMapping(t testing.TB, prefix string) *Mapping[*shelf] {
	t.Helper()
	m, err := NewMapping[*shelf](
		Table{Name: prefix + "shelves"},
		Child{Field: "books", Table: prefix + "books", ParentKey: "shelf_id", Position: "pos", Children: []Child{
			{Field: "notes", Table: prefix + "book_notes", ParentKey: "book_id"},
		}},
		Child{Field: "tags", Table: prefix + "shelf_tags", ParentKey: "shelf_id"},
	)
	require.NoError(t, err)
	return m
}

// statements splits DDL into its statements.
func statements(ddl string) []string {
	var out []string
	for s := range strings.SplitSeq(ddl, ";\n") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (b *backend) database() Database {
	switch b.db.dialect.schema.(type) {
	case sqliteCatalog:
		return SQLite
	case mysqlCatalog:
		return MySQL
	}
	return PostgreSQL
}

// TestDDLPassesCheck applies the DDL of a mapping to an empty database,
// checks the schema, and saves and loads an aggregate through it.
func TestDDLPassesCheck(t *testing.T) {
	forEachBackendAndMySQLPath(t, func(t *testing.T, b *backend) {
		m := shelfMapping(t, "")
		ddl, err := m.DDL(b.database())
		require.NoError(t, err)
		for _, s := range statements(ddl) {
			b.raw.exec(t, s)
		}
		ctx := context.Background()
		require.NoError(t, m.Check(ctx, b.db))

		r, err := NewRepository[*shelf, int64](b.db, m)
		require.NoError(t, err)
		note := "top"
		s := &shelf{name: "fiction", note: &note, size: dims{width: 1.5, height: 3},
			books: []*book{
				{id: 2, title: "b", added: time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC), notes: []*bookNote{{id: 1, text: "x", done: true}}},
				{id: 1, title: "a", added: time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)},
			},
			tags: []*shelfTag{{id: "t", label: []byte{0, 1}}},
		}
		require.NoError(t, r.Save(ctx, s))
		require.NotZero(t, s.id)
		got, err := r.Find(ctx, s.id)
		require.NoError(t, err)
		require.Equal(t, "fiction", got.name)
		require.Equal(t, "top", *got.note)
		require.Equal(t, s.size, got.size)
		require.Len(t, got.books, 2)
		require.Equal(t, "b", got.books[0].title, "the saved order")
		require.True(t, s.books[0].added.Equal(got.books[0].added))
		require.Equal(t, s.books[0].notes, got.books[0].notes)
		require.Equal(t, s.tags, got.tags)

		// A reorder is saved: the position column has no unique index
		// to trip over.
		require.NoError(t, r.Update(ctx, s.id, func(_ context.Context, s *shelf) error {
			s.books[0], s.books[1] = s.books[1], s.books[0]
			return nil
		}))
		got, err = r.Find(ctx, s.id)
		require.NoError(t, err)
		require.Equal(t, "a", got.books[0].title)
	})
}

// TestCheckReportsEveryMismatch breaks the schema of a mapping in six
// ways and finds all six in one error.
func TestCheckReportsEveryMismatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		var ddl []string
		if b.database() == SQLite {
			ddl = []string{
				// The key is not generated.
				`CREATE TABLE shelves (id BIGINT PRIMARY KEY, name TEXT NOT NULL, note TEXT, width REAL NOT NULL, height INTEGER NOT NULL, version INTEGER NOT NULL)`,
				// title is not text; added is missing; a unique index
				// holds the position.
				`CREATE TABLE books (shelf_id INTEGER NOT NULL, id INTEGER NOT NULL, title INTEGER NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY (shelf_id, id), UNIQUE (shelf_id, pos))`,
				// The parent key column book_id is missing.
				`CREATE TABLE book_notes (shelf_id INTEGER NOT NULL, id INTEGER NOT NULL, text TEXT NOT NULL, done BOOLEAN NOT NULL)`,
				// shelf_tags is missing.
			}
		} else {
			ddl = []string{
				`CREATE TABLE shelves (id BIGINT PRIMARY KEY, name TEXT NOT NULL, note TEXT, width double precision NOT NULL, height INTEGER NOT NULL, version BIGINT NOT NULL)`,
				`CREATE TABLE books (shelf_id BIGINT NOT NULL, id BIGINT NOT NULL, title BIGINT NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY (shelf_id, id), UNIQUE (shelf_id, pos))`,
				`CREATE TABLE book_notes (shelf_id BIGINT NOT NULL, id BIGINT NOT NULL, text TEXT NOT NULL, done BOOLEAN NOT NULL)`,
			}
		}
		for _, s := range ddl {
			b.raw.exec(t, s)
		}
		err := shelfMapping(t, "").Check(context.Background(), b.db)
		require.ErrorIs(t, err, ErrSchema)
		var se *SchemaError
		require.True(t, errors.As(err, &se), "%v", err)
		type at struct{ table, column string }
		var got []at
		for _, m := range se.Mismatches {
			got = append(got, at{m.Table, m.Column})
		}
		require.Equal(t, []at{
			{"shelves", "id"},
			{"books", "title"},
			{"books", "added"},
			{"books", "pos"},
			{"book_notes", "book_id"},
			{"shelf_tags", ""},
		}, got, "%v", err)
		msg := err.Error()
		require.Contains(t, msg, "6 mismatches")
		require.Contains(t, msg, "table shelf_tags: the table does not exist")
		require.Contains(t, msg, "column book_id: the column of the parent key does not exist")
	})
}

// TestCheckSchemaQualified checks tables qualified by a schema, and a
// deferred unique key on a position column, on PostgreSQL.
func TestCheckSchemaQualified(t *testing.T) {
	b := pgxBackend(t)
	var schema string
	require.NoError(t, b.db.QueryRow(context.Background(), `SELECT current_schema()`).Scan(&schema))
	m := shelfMapping(t, schema+".")
	ddl, err := m.DDL(PostgreSQL)
	require.NoError(t, err)
	require.Contains(t, ddl, `CREATE TABLE "`+schema+`"."shelves"`)
	for _, s := range statements(ddl) {
		b.raw.exec(t, s)
	}
	b.raw.exec(t, `ALTER TABLE `+schema+`.books ADD UNIQUE (shelf_id, pos) DEFERRABLE INITIALLY DEFERRED`)
	require.NoError(t, m.Check(context.Background(), b.db))
	// A schema that does not exist holds no table.
	err = shelfMapping(t, "nosuchschema.").Check(context.Background(), b.db)
	require.ErrorIs(t, err, ErrSchema)
	require.Len(t, err.(*SchemaError).Mismatches, 4)
}

// TestDDLShapes checks the keys and references that DDL writes.
func TestDDLShapes(t *testing.T) {
	m := shelfMapping(t, "")
	pg, err := m.DDL(PostgreSQL)
	require.NoError(t, err)
	for _, want := range []string{
		`"id" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`,
		`"note" text,`,
		`"height" integer NOT NULL`,
		`"added" timestamptz NOT NULL`,
		`"pos" bigint NOT NULL`,
		`PRIMARY KEY ("shelf_id", "id")`,
		`FOREIGN KEY ("shelf_id", "book_id") REFERENCES "books" ("shelf_id", "id")`,
		`"label" bytea NOT NULL`,
	} {
		require.Contains(t, pg, want)
	}
	lite, err := m.DDL(SQLite)
	require.NoError(t, err)
	require.Contains(t, lite, `"id" INTEGER PRIMARY KEY`)
	require.Contains(t, lite, `"added" DATETIME NOT NULL`)

	_, err = m.DDL(Database(0))
	require.Error(t, err)
}

// A root with a child whose key is generated, and below it one level
// that refers to it by all the parent keys, one by its key alone.

type kit struct {
	id    string         `db:"id"`
	label sql.NullString `db:"label"`
	parts []*kitPart
}

func (k *kit) ID() string { return k.id }

type kitPart struct {
	id     int64  `db:"id,generated" ddd:"id"`
	weight *int32 `db:"weight"`
	screws []*screw
	bolts  []*screw
}

type screw struct {
	id   int16  `db:"id" ddd:"id"`
	size uint32 `db:"size"`
}

// TestDDLGeneratedChild applies the DDL of a generated child key with
// levels below it, and round-trips an aggregate through it.
func TestDDLGeneratedChild(t *testing.T) {
	forEachBackendAndMySQLPath(t, func(t *testing.T, b *backend) {
		m, err := NewMapping[*kit](Table{Name: "kits"},
			Child{Field: "parts", Table: "kit_parts", ParentKey: "kit_id", Children: []Child{
				{Field: "screws", Table: "part_screws", ParentKey: "part_id"},
				{Field: "bolts", Table: "part_bolts", ParentKey: "part_id", ParentKeyOnly: true},
			}})
		require.NoError(t, err)
		ddl, err := m.DDL(b.database())
		require.NoError(t, err)
		for _, s := range statements(ddl) {
			b.raw.exec(t, s)
		}
		ctx := context.Background()
		require.NoError(t, m.Check(ctx, b.db), ddl)
		r, err := NewRepository[*kit, string](b.db, m)
		require.NoError(t, err)
		w := int32(7)
		k := &kit{id: "k", label: sql.NullString{String: "x", Valid: true}, parts: []*kitPart{
			{id: -1, weight: &w, screws: []*screw{{id: 1, size: 3}}, bolts: []*screw{{id: 2, size: 4}}},
		}}
		require.NoError(t, r.Save(ctx, k))
		got, err := r.Find(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, k.label, got.label)
		require.Len(t, got.parts, 1)
		require.Equal(t, int32(7), *got.parts[0].weight)
		require.Equal(t, k.parts[0].screws, got.parts[0].screws)
		require.Equal(t, k.parts[0].bolts, got.parts[0].bolts)
	})
}

// TestSQLiteSchemaQualified applies and checks the DDL of tables
// qualified by a schema on SQLite, whose foreign keys name their parent
// unqualified.
func TestSQLiteSchemaQualified(t *testing.T) {
	b := sqliteBackend(t)
	m := shelfMapping(t, "main.")
	ddl, err := m.DDL(SQLite)
	require.NoError(t, err)
	require.Contains(t, ddl, `REFERENCES "books" ("shelf_id", "id")`)
	for _, s := range statements(ddl) {
		b.raw.exec(t, s)
	}
	require.NoError(t, m.Check(context.Background(), b.db))
	b.raw.exec(t, `CREATE UNIQUE INDEX main.books_pos ON books (shelf_id, pos)`)
	err = m.Check(context.Background(), b.db)
	var se *SchemaError
	require.True(t, errors.As(err, &se), "%v", err)
	require.Equal(t, []Mismatch{{Table: "main.books", Column: "pos", Problem: "the unique index books_pos holds the position column: SQLite cannot defer a unique index, and a reorder moves one row at a time: drop it"}}, se.Mismatches)
	err = shelfMapping(t, "nosuch.").Check(context.Background(), b.db)
	require.True(t, errors.As(err, &se), "%v", err)
	require.Len(t, se.Mismatches, 4)
}

// TestCheckImmediateCompositeForeignKey checks that Check reports a
// foreign key that holds the parent key columns of a parent with a
// generated key and is checked at once: a move of that parent to another
// parent, which updates its row before its children's, would fail.
func TestCheckImmediateCompositeForeignKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		serial, deferred := "INTEGER PRIMARY KEY", "DEFERRABLE INITIALLY DEFERRED"
		switch b.database() {
		case PostgreSQL:
			serial = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
		case MySQL:
			serial, deferred = "BIGINT AUTO_INCREMENT PRIMARY KEY", "ON UPDATE CASCADE"
		}
		b.raw.exec(t, `CREATE TABLE boards (id `+serial+`, name TEXT NOT NULL, version BIGINT NOT NULL)`)
		b.raw.exec(t, `CREATE TABLE kcolumns (id `+serial+`, board_id BIGINT NOT NULL REFERENCES boards (id), pos INTEGER NOT NULL, title TEXT NOT NULL, UNIQUE (board_id, id))`)
		b.raw.exec(t, `CREATE TABLE kcards (id `+serial+`, board_id BIGINT NOT NULL, column_id BIGINT NOT NULL, pos INTEGER NOT NULL, title TEXT NOT NULL,
			UNIQUE (board_id, column_id, id),
			FOREIGN KEY (board_id, column_id) REFERENCES kcolumns (board_id, id) `+deferred+`)`)
		b.raw.exec(t, `CREATE TABLE kitems (id `+serial+`, board_id BIGINT NOT NULL, column_id BIGINT NOT NULL, card_id BIGINT NOT NULL, text TEXT NOT NULL,
			CONSTRAINT kitems_card FOREIGN KEY (board_id, column_id, card_id) REFERENCES kcards (board_id, column_id, id))`)
		m := kanbanMapping(t, true, false)
		err := m.Check(context.Background(), b.db)
		require.ErrorIs(t, err, ErrSchema)
		var se *SchemaError
		require.ErrorAs(t, err, &se)
		require.Len(t, se.Mismatches, 1, "%v", err)
		got := se.Mismatches[0]
		require.Equal(t, "kitems", got.Table)
		require.Contains(t, got.Problem, "declare it "+deferred)
		require.Contains(t, got.Problem, "move")

		// ON UPDATE CASCADE lets a move through too.
		b.raw.exec(t, `DROP TABLE kitems`)
		b.raw.exec(t, `CREATE TABLE kitems (id `+serial+`, board_id BIGINT NOT NULL, column_id BIGINT NOT NULL, card_id BIGINT NOT NULL, text TEXT NOT NULL,
			CONSTRAINT kitems_card FOREIGN KEY (board_id, column_id, card_id) REFERENCES kcards (board_id, column_id, id) ON UPDATE CASCADE)`)
		require.NoError(t, m.Check(context.Background(), b.db))
	})
}
