package sqlstore

import (
	"fmt"
	"strings"
)

// pgCatalog reads and writes schemas of PostgreSQL.
type pgCatalog struct{}

// pgColumns reads the columns of a table, found as the statements of
// stores find it: through the search_path when it is not qualified.
const pgColumns = `SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory::text,
	a.attidentity <> '' OR COALESCE(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%', false)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`

// pgUniques reads the unique indexes of a table, one row per column,
// with whether the constraint that owns the index is deferred.
const pgUniques = `SELECT ci.relname, COALESCE(c.condeferred, false), a.attname
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
LEFT JOIN pg_catalog.pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u')
WHERE i.indrelid = to_regclass($1) AND i.indisunique`

// pgForeignKeys reads the foreign keys of a table, one row per column,
// with whether each lets a move through: deferred, or ON UPDATE CASCADE.
const pgForeignKeys = `SELECT c.conname, c.condeferred OR c.confupdtype = 'c', a.attname
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
WHERE c.conrelid = to_regclass($1) AND c.contype = 'f'
ORDER BY c.conname, array_position(c.conkey, a.attnum)`

func (pgCatalog) describe(name string, lt *liveTable) []stmt {
	q := postgres.quote(name)
	return []stmt{
		{sql: pgColumns, args: []any{q}, scan: func(r rowScanner) error {
			var n string
			c := &liveColumn{}
			if err := r.Scan(&n, &c.typ, &c.category, &c.serial); err != nil {
				return err
			}
			lt.cols[n] = c
			return nil
		}},
		{sql: pgUniques, args: []any{q}, scan: func(r rowScanner) error {
			var n, col string
			var deferred bool
			if err := r.Scan(&n, &deferred, &col); err != nil {
				return err
			}
			lt.addUnique(n, col, deferred)
			return nil
		}},
		{sql: pgForeignKeys, args: []any{q}, scan: func(r rowScanner) error {
			var n, col string
			var deferred bool
			if err := r.Scan(&n, &deferred, &col); err != nil {
				return err
			}
			lt.addForeignKey(n, col, deferred)
			return nil
		}},
	}
}

// pgCategories are the type categories (pg_type.typcategory) of the
// columns that hold each kind: B boolean, N numeric, S string, U user
// types (bytea, uuid, json, jsonb), E enum, I network address, D date
// and time, A array.
var pgCategories = map[kindClass]string{
	kBool: "B", kInt: "N", kUint: "N", kFloat: "N",
	kString: "SUEI", kBytes: "U", kTime: "D", kJSON: "SU", kArray: "A",
}

func (pgCatalog) compatible(k goKind, c *liveColumn) string {
	if k.kind == kAny {
		return ""
	}
	want := pgCategories[k.kind]
	if c.category != "" && strings.Contains(want, c.category) {
		return ""
	}
	t, err := pgCatalog{}.columnType(k, false)
	if err != nil {
		t = "another type"
	}
	return fmt.Sprintf("make it %s", t)
}

func (pgCatalog) generated(lt *liveTable, key string) string {
	if lt.cols[key].serial {
		return ""
	}
	return "the column is neither an identity column nor a serial: make it GENERATED ALWAYS AS IDENTITY"
}

func (pgCatalog) positionUnique(u *liveIndex) string {
	if u.deferred {
		return ""
	}
	return "a reorder moves one row at a time, so make it a constraint DEFERRABLE INITIALLY DEFERRED"
}

func (pgCatalog) columnType(k goKind, _ bool) (string, error) {
	switch k.kind {
	case kBool:
		return "boolean", nil
	case kInt, kUint:
		switch {
		case k.kind == kUint && k.size == 64:
			return "numeric(20)", nil
		case k.size <= 16 && !(k.kind == kUint && k.size == 16):
			return "smallint", nil
		case k.size <= 32 && !(k.kind == kUint && k.size == 32):
			return "integer", nil
		}
		return "bigint", nil
	case kFloat:
		if k.size == 32 {
			return "real", nil
		}
		return "double precision", nil
	case kString:
		return "text", nil
	case kBytes:
		return "bytea", nil
	case kTime:
		return "timestamptz", nil
	case kJSON:
		return "jsonb", nil
	case kArray:
		e, err := pgCatalog{}.columnType(*k.elem, false)
		if err != nil {
			return "", err
		}
		return e + "[]", nil
	}
	return "", fmt.Errorf("no column type for %v", k.typ)
}

func (pgCatalog) generatedKey(k goKind) (string, error) {
	if k.kind != kInt || k.size < 16 {
		return "", fmt.Errorf("a generated key must be an int16, int32 or int64, not %v", k.typ)
	}
	t, _ := pgCatalog{}.columnType(k, false)
	return t + " GENERATED ALWAYS AS IDENTITY PRIMARY KEY", nil
}

func (pgCatalog) reference(_, parent string) string { return postgres.quote(parent) }

func (pgCatalog) index(table string, cols []string) string {
	return fmt.Sprintf("CREATE INDEX ON %s (%s)", postgres.quote(table), postgres.quoteList(cols))
}

func (pgCatalog) moveClause() string { return " DEFERRABLE INITIALLY DEFERRED" }

func (pgCatalog) tableOptions() string { return "" }
