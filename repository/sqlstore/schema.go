package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/dddkit/dddkit/internal/typeinfo"
)

// ErrSchema is wrapped by the error of [Mapping.Check] when the database
// does not match the mapping. The error is a [*SchemaError], which lists
// every mismatch.
var ErrSchema = errors.New("the database schema does not match the mapping")

// SchemaError is the error of [Mapping.Check]: every mismatch found
// between the mapping and the database, in the order of the mapping's
// tables. It matches [ErrSchema] with errors.Is; read it with errors.As.
type SchemaError struct {
	Mismatches []Mismatch
}

// Mismatch is one difference between a mapping and the database.
type Mismatch struct {
	// Table is the table's name as mapped.
	Table string
	// Column is the column's name, or "" when the table itself is at
	// fault (it does not exist).
	Column string
	// Problem says what is wrong, and how to fix it.
	Problem string
}

func (m Mismatch) String() string {
	if m.Column == "" {
		return fmt.Sprintf("table %s: %s", m.Table, m.Problem)
	}
	return fmt.Sprintf("table %s, column %s: %s", m.Table, m.Column, m.Problem)
}

// Error lists the mismatches, one a line.
func (e *SchemaError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sqlstore: %v (%d mismatches)", ErrSchema, len(e.Mismatches))
	for _, m := range e.Mismatches {
		b.WriteString("\n\t")
		b.WriteString(m.String())
	}
	return b.String()
}

// Unwrap returns [ErrSchema].
func (e *SchemaError) Unwrap() error { return ErrSchema }

// Database names a database for [Mapping.DDL].
type Database uint8

const (
	// PostgreSQL is PostgreSQL, through pgx or database/sql.
	PostgreSQL Database = iota + 1
	// SQLite is SQLite.
	SQLite
	// MySQL is MySQL 8.0 and later, and MariaDB 10.5 and later, through
	// database/sql and github.com/go-sql-driver/mysql: one DDL serves
	// both.
	MySQL
)

func (d Database) dialect() (*dialect, error) {
	switch d {
	case PostgreSQL:
		return postgres, nil
	case SQLite:
		return sqlite, nil
	case MySQL:
		return mysqlDialect, nil
	}
	return nil, fmt.Errorf("sqlstore: unknown database %d (want PostgreSQL, SQLite or MySQL)", d)
}

// schemaDialect is what differs between databases in reading a schema
// and in writing DDL (schema_postgres.go, schema_sqlite.go,
// schema_mysql.go).
type schemaDialect interface {
	// describe returns the statements that read the table named name
	// into lt.
	describe(name string, lt *liveTable) []stmt
	// compatible returns why column c cannot hold a value of kind k, or
	// "" when it can.
	compatible(k goKind, c *liveColumn) string
	// generated returns why key, the key column of lt, is not made by the
	// database, or "" when it is.
	generated(lt *liveTable, key string) string
	// positionUnique returns why the unique index u, which holds a
	// position column, breaks a reorder, or "" when it does not.
	positionUnique(u *liveIndex) string
	// columnType returns the type DDL writes for a column of kind k; key
	// says that the column is in a key (the table's key or a parent key
	// column), which some databases index only within a length.
	columnType(k goKind, key bool) (string, error)
	// generatedKey returns the definition, after the name, of a generated
	// key of kind k, primary key included.
	generatedKey(k goKind) (string, error)
	// reference returns the name of parent as a foreign key of child
	// refers to it.
	reference(child, parent string) string
	// index returns the statement that indexes cols of table, or "" when
	// the foreign key that holds them has one already.
	index(table string, cols []string) string
	// moveClause returns the clause, after REFERENCES, of a foreign key
	// that holds the parent's own parent key columns: it lets a move of
	// the parent, which updates those columns of its row before those of
	// its children's rows, pass.
	moveClause() string
	// tableOptions returns what follows the closing parenthesis of a
	// CREATE TABLE.
	tableOptions() string
}

// liveTable is a table as the database has it.
type liveTable struct {
	cols    map[string]*liveColumn
	uniques map[string]*liveIndex
	// fks are the foreign keys, each deferred when it lets a move
	// through: DEFERRABLE INITIALLY DEFERRED, or ON UPDATE CASCADE.
	fks map[string]*liveIndex
}

// liveColumn is a column as the database has it.
type liveColumn struct {
	typ      string // as declared (SQLite) or formatted (PostgreSQL)
	category string // PostgreSQL's typcategory
	serial   bool   // an identity column, or a serial's default
	pk       int    // position in the primary key (SQLite), from 1
}

// liveIndex is a unique index or constraint.
type liveIndex struct {
	name     string
	cols     []string
	deferred bool // a constraint DEFERRABLE INITIALLY DEFERRED
}

func (lt *liveTable) addUnique(name, col string, deferred bool) {
	u := lt.uniques[name]
	if u == nil {
		u = &liveIndex{name: name, deferred: deferred}
		lt.uniques[name] = u
	}
	u.cols = append(u.cols, col)
}

func (lt *liveTable) addForeignKey(name, col string, deferred bool) {
	fk := lt.fks[name]
	if fk == nil {
		fk = &liveIndex{name: name, deferred: deferred}
		lt.fks[name] = fk
	}
	fk.cols = append(fk.cols, col)
}

// goKind is what a column holds, as far as its type in the database goes.
type goKind struct {
	kind kindClass
	typ  reflect.Type // the Go type
	size int          // bits of an integer or float
	elem *goKind      // the element of an array
	null bool         // a pointer, or a driver.Valuer: may be NULL
}

type kindClass uint8

const (
	kAny kindClass = iota // a driver.Valuer: the database's business
	kBool
	kInt
	kUint
	kFloat
	kString
	kBytes
	kTime
	kJSON
	kArray
)

// columnKind returns the kind of a column of Go type t stored with codec cd.
func columnKind(t reflect.Type, cd codec) goKind {
	switch cd {
	case codecJSON:
		return goKind{kind: kJSON, typ: t}
	case codecArray:
		e := columnKind(t.Elem(), codecPlain)
		return goKind{kind: kArray, typ: t, elem: &e}
	}
	k := goKind{typ: t}
	if t.Kind() == reflect.Pointer && !t.Implements(valuerType) {
		k = columnKind(t.Elem(), cd)
		k.null = true
		return k
	}
	if t == typeinfo.TimeType() {
		k.kind = kTime
		return k
	}
	if t.Implements(valuerType) || reflect.PointerTo(t).Implements(valuerType) {
		k.kind, k.null = kAny, true
		return k
	}
	switch t.Kind() {
	case reflect.Bool:
		k.kind = kBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		k.kind, k.size = kInt, t.Bits()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		k.kind, k.size = kUint, t.Bits()
	case reflect.Float32, reflect.Float64:
		k.kind, k.size = kFloat, t.Bits()
	case reflect.String:
		k.kind = kString
	case reflect.Slice:
		k.kind = kBytes
	}
	return k
}

// hint returns, for a column of kind kAny, the kind of the value that the
// zero value of its type gives the driver (with its Valid field set, for
// types such as sql.NullString), or false when it gives none.
func (k goKind) hint() (goKind, bool) {
	t := k.typ
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	v := reflect.New(t)
	value := func() any {
		var val driver.Valuer
		switch {
		case t.Implements(valuerType):
			val, _ = v.Elem().Interface().(driver.Valuer)
		default:
			val, _ = v.Interface().(driver.Valuer)
		}
		if val == nil {
			return nil
		}
		dv, err := val.Value()
		if err != nil {
			return nil
		}
		return dv
	}
	dv := value()
	if dv == nil && t.Kind() == reflect.Struct {
		// A nullable type, such as sql.NullString: the value it holds
		// when valid.
		if f := v.Elem().FieldByName("Valid"); f.IsValid() && f.Kind() == reflect.Bool && f.CanSet() {
			f.SetBool(true)
			dv = value()
		}
	}
	var h goKind
	switch dv.(type) {
	case int64:
		h = goKind{kind: kInt, size: 64}
	case float64:
		h = goKind{kind: kFloat, size: 64}
	case bool:
		h = goKind{kind: kBool}
	case []byte:
		h = goKind{kind: kBytes}
	case string:
		h = goKind{kind: kString}
	case time.Time:
		h = goKind{kind: kTime}
	default:
		return k, false
	}
	h.typ, h.null = k.typ, true
	return h, true
}

// needCol is a column that a mapped table must have.
type needCol struct {
	name string
	kind goKind
	what string // "field total.amount", "parent key", "position"
}

// whatParentKey is the what of a parent key column.
const whatParentKey = "parent key"

// needs returns the columns of tb, then the parent key and position
// columns of c (nil for the root).
func needs(tb *table, c *child) []needCol {
	var out []needCol
	if c != nil {
		for i, n := range c.refNames {
			out = append(out, needCol{name: n, kind: columnKind(c.refTypes[i], codecPlain), what: whatParentKey})
		}
	}
	for _, col := range tb.cols {
		out = append(out, needCol{name: col.name, kind: columnKind(col.typ, col.codec), what: "field " + col.field})
	}
	if c != nil && c.spec.Position != "" {
		out = append(out, needCol{name: c.spec.Position, kind: goKind{kind: kInt, size: 64, typ: reflect.TypeFor[int]()}, what: "position"})
	}
	return out
}

// Check compares the mapping with the schema of the database of db, and
// returns an error wrapping [ErrSchema], a [*SchemaError] that lists
// every mismatch, when:
//   - a table or a column of the mapping is missing, parent key and
//     position columns included, at every level;
//   - a column's type cannot hold its field's Go type (a column of a
//     driver.Valuer is taken as it is); on MySQL, also a time column that
//     keeps less than microseconds (a DATETIME keeps whole seconds), and
//     a FLOAT column of a float, which is single precision;
//   - a generated key (`db:"id,generated"`) is not made by the database:
//     an identity or serial column on PostgreSQL, an INTEGER PRIMARY KEY
//     on SQLite, an AUTO_INCREMENT column on MySQL;
//   - a unique index holds a position column and is not a constraint
//     DEFERRABLE INITIALLY DEFERRED on PostgreSQL, or at all on SQLite and
//     MySQL, where a unique index cannot be deferred: a reorder would
//     fail;
//   - a foreign key of a table below a child with a generated key holds
//     that child's parent key columns and is neither DEFERRABLE INITIALLY
//     DEFERRED nor ON UPDATE CASCADE: a move of the child to another
//     parent, which updates its row before its children's rows, would
//     fail. (On SQLite this is read from the table's SQL, for a table not
//     qualified by a schema.)
//
// Call it at startup, after migrations ran. It reads the catalog of the
// database (pg_catalog on PostgreSQL, where a table not qualified by a
// schema is found through the search_path as the statements of stores
// find it; pragma_table_info and pragma_index_list on SQLite;
// information_schema on MySQL, where a table not qualified is in the
// current database, DATABASE()), in one round trip on pgx. Columns the
// mapping does not use are not checked. An error that does not wrap
// ErrSchema is a failure to read the catalog.
func (m *Mapping[T]) Check(ctx context.Context, db *DB) error {
	if err := db.check(); err != nil {
		return fmt.Errorf("sqlstore: check: %w", err)
	}
	sd := db.dialect.schema
	type tableCheck struct {
		tb   *table
		c    *child
		live liveTable
	}
	checks := []*tableCheck{{tb: &m.root}}
	for _, c := range m.children {
		checks = append(checks, &tableCheck{tb: &c.table, c: c})
	}
	var stmts []stmt
	for _, tc := range checks {
		tc.live = liveTable{cols: map[string]*liveColumn{}, uniques: map[string]*liveIndex{}, fks: map[string]*liveIndex{}}
		stmts = append(stmts, sd.describe(tc.tb.name, &tc.live)...)
	}
	if err := db.run(ctx, stmts, false); err != nil {
		return fmt.Errorf("sqlstore: check: reading the schema: %w", err)
	}
	var out []Mismatch
	for _, tc := range checks {
		name := tc.tb.name
		add := func(col, format string, args ...any) {
			out = append(out, Mismatch{Table: name, Column: col, Problem: fmt.Sprintf(format, args...)})
		}
		if len(tc.live.cols) == 0 {
			add("", "the table does not exist")
			continue
		}
		for _, n := range needs(tc.tb, tc.c) {
			lc := tc.live.cols[n.name]
			if lc == nil {
				add(n.name, "the column of the %s does not exist", n.what)
				continue
			}
			if p := sd.compatible(n.kind, lc); p != "" {
				add(n.name, "the column of the %s (%v) is %s: %s", n.what, n.kind.typ, lc.typ, p)
			}
		}
		key := tc.tb.cols[tc.tb.key].name
		if tc.tb.generated && tc.live.cols[key] != nil {
			if p := sd.generated(&tc.live, key); p != "" {
				add(key, "the key is generated (`db:\"%s,generated\"`), but %s", key, p)
			}
		}
		if tc.c != nil && tc.c.spec.Position != "" {
			for _, u := range sortedUniques(&tc.live) {
				if !containsString(u.cols, tc.c.spec.Position) {
					continue
				}
				if p := sd.positionUnique(u); p != "" {
					add(tc.c.spec.Position, "the unique index %s holds the position column: %s", u.name, p)
				}
			}
		}
		if tc.c != nil {
			for _, fk := range movedForeignKeys(tc.c, &tc.live) {
				label := "(" + strings.Join(fk.cols, ", ") + ")"
				if fk.name != label {
					label = fk.name + " " + label
				}
				add(fk.cols[0], "the foreign key %s holds parent key columns that a move of a parent to another parent updates before those of this table's rows, and it is checked at once: a move would fail; declare it %s", label, strings.TrimSpace(sd.moveClause()))
			}
		}
	}
	if len(out) > 0 {
		return &SchemaError{Mismatches: out}
	}
	return nil
}

// movedForeignKeys returns the foreign keys of lt, the table of d, that
// are not deferred (nor cascade updates) and hold the parent key columns of a level above d
// with a generated key and a parent, which a move of that level's rows
// updates before those of d's rows (see Store.moveStmts).
func movedForeignKeys(d *child, lt *liveTable) []*liveIndex {
	var moved []string
	for c := d.parent; c != nil; c = c.parent {
		if c.generated && c.parent != nil && d.keyedThrough(c) {
			moved = append(moved, d.refNames[:len(c.refNames)]...)
		}
	}
	if len(moved) == 0 {
		return nil
	}
	var out []*liveIndex
	for _, fk := range sortedIndexes(lt.fks) {
		if fk.deferred {
			continue
		}
		for _, col := range fk.cols {
			if containsString(moved, col) {
				out = append(out, fk)
				break
			}
		}
	}
	return out
}

func sortedUniques(lt *liveTable) []*liveIndex { return sortedIndexes(lt.uniques) }

// sortedIndexes returns the indexes or keys of byName by name.
func sortedIndexes(byName map[string]*liveIndex) []*liveIndex {
	var out []*liveIndex
	for _, u := range byName {
		out = append(out, u)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].name < out[j-1].name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// DDL returns the CREATE TABLE statements of the mapping's tables for
// database d, parents first, each ending with a semicolon, for a
// migration tool: dddkit runs no migrations, and is used alongside tools
// such as golang-migrate, goose or Atlas.
//
// Each table has its mapped columns, NOT NULL but for pointers and
// driver.Valuer types (whose type is that of the value their zero value
// gives, such as text for a UUID); a child table has its parent key
// columns first and its position column last. A root's primary key is its
// key; a child's, its parent key columns and its key. A generated key is
// an identity column (PostgreSQL), an INTEGER PRIMARY KEY (SQLite) or an
// AUTO_INCREMENT column (MySQL), the table's primary key alone, and its
// table then gets an index, or a unique key, on its parent key columns
// (on MySQL, the index of the foreign key). A child refers to its parent
// with a foreign key, a table constraint; the parent gets the unique key
// it refers to. A foreign key that holds the parent's own parent key
// columns lets a move of the parent to another parent, which updates the
// parent key columns of its row before those of its children's rows,
// pass: it is DEFERRABLE INITIALLY DEFERRED, checked at commit, on
// PostgreSQL and SQLite, and ON UPDATE CASCADE on MySQL, which cannot
// defer a constraint. Times are timestamptz on PostgreSQL and DATETIME on
// SQLite, JSON columns jsonb and TEXT.
//
// On MySQL (and MariaDB) the tables are InnoDB, in utf8mb4 with collation
// utf8mb4_bin, so that text compares by code point and case-sensitively,
// as in Go. A string or []byte in a key (a table's key or a parent key
// column) is VARBINARY(255): an index holds values of a bounded length
// only, so such a key holds 255 bytes at most; and a binary string
// compares byte by byte, where utf8mb4_bin ignores trailing spaces and
// would take "a" and "a " for one key. Other strings are LONGTEXT, []byte
// LONGBLOB, floats DOUBLE, unsigned integers UNSIGNED, JSON columns JSON
// (on MariaDB a LONGTEXT that must hold valid JSON). Times are
// DATETIME(6): microseconds, without a time zone, which the driver writes
// and reads in UTC with the settings of [MySQLDSN] (loc=UTC). A TIMESTAMP
// column, which Check takes too, is converted by the server from the
// session's time_zone, which MySQLDSN sets to '+00:00'.
//
// DDL fails when a column's type cannot be chosen: a driver.Valuer whose
// zero value gives none, an array on SQLite or MySQL, a generated key that
// is not an integer.
func (m *Mapping[T]) DDL(d Database) (string, error) {
	dl, err := d.dialect()
	if err != nil {
		return "", err
	}
	sd := dl.schema
	var b strings.Builder
	var indexes []string
	fail := func(tb *table, col string, err error) (string, error) {
		return "", fmt.Errorf("sqlstore: DDL of table %s, column %s: %w", tb.name, col, err)
	}
	for _, tc := range m.tables() {
		var c *child
		if tc != &m.root {
			for _, k := range m.children {
				if &k.table == tc {
					c = k
				}
			}
		}
		key := tc.cols[tc.key].name
		fmt.Fprintf(&b, "CREATE TABLE %s (\n", dl.quote(tc.name))
		var lines []string
		for _, n := range needs(tc, c) {
			k := n.kind
			if k.kind == kAny {
				h, ok := k.hint()
				if !ok {
					return fail(tc, n.name, fmt.Errorf("the zero value of %v gives no value to choose a column type by", k.typ))
				}
				k = h
			}
			if n.name == key && tc.generated {
				def, err := sd.generatedKey(k)
				if err != nil {
					return fail(tc, n.name, err)
				}
				lines = append(lines, dl.quote(n.name)+" "+def)
				continue
			}
			typ, err := sd.columnType(k, n.name == key || n.what == whatParentKey)
			if err != nil {
				return fail(tc, n.name, err)
			}
			line := dl.quote(n.name) + " " + typ
			if !k.null {
				line += " NOT NULL"
			}
			lines = append(lines, line)
		}
		var refs []string
		if c != nil {
			refs = c.refNames
		}
		own := append(append([]string{}, refs...), key)
		if !tc.generated {
			lines = append(lines, "PRIMARY KEY ("+dl.quoteList(own)+")")
		}
		// The unique keys that the tables below refer to.
		var kids []*child
		if c == nil {
			kids = m.top
		} else {
			kids = c.kids
		}
		byKey, byAll := false, false
		for _, k := range kids {
			if c == nil || k.spec.ParentKeyOnly {
				byKey = true
			} else {
				byAll = true
			}
		}
		if byKey && c != nil && !tc.generated {
			lines = append(lines, "UNIQUE ("+dl.quote(key)+")")
		}
		if byAll && tc.generated {
			lines = append(lines, "UNIQUE ("+dl.quoteList(own)+")") // also serves loads by parent
		} else if tc.generated && c != nil {
			if ix := sd.index(tc.name, refs); ix != "" {
				indexes = append(indexes, ix) // for loads by parent
			}
		}
		if c != nil {
			ptb := &m.root
			var pRefs []string
			if c.parent != nil {
				ptb = &c.parent.table
				if !c.spec.ParentKeyOnly {
					pRefs = c.parent.refNames
				}
			}
			target := append(append([]string{}, pRefs...), ptb.cols[ptb.key].name)
			fk := fmt.Sprintf("FOREIGN KEY (%s) REFERENCES %s (%s)", dl.quoteList(refs), sd.reference(tc.name, ptb.name), dl.quoteList(target))
			if len(pRefs) > 0 {
				// A move of the parent updates its parent key columns
				// before those of its children's rows.
				fk += sd.moveClause()
			}
			lines = append(lines, fk)
		}
		b.WriteString("\t" + strings.Join(lines, ",\n\t") + "\n)" + sd.tableOptions() + ";\n")
	}
	for _, ix := range indexes {
		b.WriteString(ix + ";\n")
	}
	return b.String(), nil
}

// lastPart returns the name of a table without its schema.
func lastPart(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}
