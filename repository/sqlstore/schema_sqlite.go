package sqlstore

import (
	"fmt"
	"regexp"
	"strings"
)

// sqliteCatalog reads and writes schemas of SQLite.
type sqliteCatalog struct{}

func (sqliteCatalog) describe(name string, lt *liveTable) []stmt {
	schema, tbl := "", name
	if i := strings.IndexByte(name, '.'); i >= 0 {
		schema, tbl = name[:i], name[i+1:]
	}
	cols := `SELECT name, type, pk FROM pragma_table_info(?)`
	uniques := `SELECT il.name, COALESCE(ii.name, '') FROM pragma_index_list(?) AS il JOIN pragma_index_info(il.name) AS ii WHERE il."unique"`
	args := []any{tbl}
	if schema != "" {
		// Through the list of databases, so that a schema that is not
		// attached holds no table rather than failing the check.
		cols = `SELECT p.name, p.type, p.pk FROM pragma_database_list AS d JOIN pragma_table_info(?, d.name) AS p WHERE d.name = ?`
		uniques = `SELECT il.name, COALESCE(ii.name, '') FROM pragma_database_list AS d JOIN pragma_index_list(?, d.name) AS il JOIN pragma_index_info(il.name, d.name) AS ii WHERE d.name = ? AND il."unique"`
		args = append(args, schema)
	}
	stmts := []stmt{
		{sql: cols, args: args, scan: func(r rowScanner) error {
			var n string
			c := &liveColumn{}
			if err := r.Scan(&n, &c.typ, &c.pk); err != nil {
				return err
			}
			lt.cols[n] = c
			return nil
		}},
		{sql: uniques, args: args, scan: func(r rowScanner) error {
			var n, col string
			if err := r.Scan(&n, &col); err != nil {
				return err
			}
			lt.addUnique(n, col, false)
			return nil
		}},
	}
	if schema == "" {
		// Whether a foreign key is deferred is in the table's SQL only.
		stmts = append(stmts, stmt{sql: `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, args: args, scan: func(r rowScanner) error {
			var ddl string
			if err := r.Scan(&ddl); err != nil {
				return err
			}
			sqliteForeignKeys(ddl, lt)
			return nil
		}})
	}
	return stmts
}

var (
	sqliteFK       = regexp.MustCompile(`(?i)\bFOREIGN\s+KEY\s*\(([^)]*)\)`)
	sqliteDeferred = regexp.MustCompile(`(?i)(\bNOT\s+)?\bDEFERRABLE\s+INITIALLY\s+DEFERRED\b`)
	sqliteCascade  = regexp.MustCompile(`(?i)\bON\s+UPDATE\s+CASCADE\b`)
)

// sqliteForeignKeys adds to lt the foreign keys that are table
// constraints of the CREATE TABLE statement ddl (a foreign key of one
// column declared with the column is left out), named by their columns,
// each deferred when DEFERRABLE INITIALLY DEFERRED or ON UPDATE CASCADE
// (either lets a move through).
func sqliteForeignKeys(ddl string, lt *liveTable) {
	at := sqliteFK.FindAllStringSubmatchIndex(ddl, -1)
	for i, m := range at {
		end := len(ddl)
		if i+1 < len(at) {
			end = at[i+1][0]
		}
		d := sqliteDeferred.FindStringSubmatch(ddl[m[1]:end])
		deferred := (d != nil && d[1] == "") || sqliteCascade.MatchString(ddl[m[1]:end])
		var cols []string
		for _, c := range strings.Split(ddl[m[2]:m[3]], ",") {
			cols = append(cols, strings.Trim(strings.TrimSpace(c), "\"`[]"))
		}
		name := "(" + strings.Join(cols, ", ") + ")"
		for _, c := range cols {
			lt.addForeignKey(name, c, deferred)
		}
	}
}

// affinity returns the type affinity of a column declared typ, by
// SQLite's rules (section 3.1 of its datatype documentation).
func affinity(typ string) string {
	t := strings.ToUpper(typ)
	switch {
	case strings.Contains(t, "INT"):
		return "INTEGER"
	case strings.Contains(t, "CHAR"), strings.Contains(t, "CLOB"), strings.Contains(t, "TEXT"):
		return "TEXT"
	case strings.Contains(t, "BLOB"), t == "":
		return "BLOB"
	case strings.Contains(t, "REAL"), strings.Contains(t, "FLOA"), strings.Contains(t, "DOUB"):
		return "REAL"
	}
	return "NUMERIC"
}

// sqliteAffinities are the affinities of the columns that hold each kind
// without changing its values: an integer in a REAL column loses
// precision, a string in a NUMERIC column such as "007" becomes 7.
var sqliteAffinities = map[kindClass][]string{
	kBool: {"INTEGER", "NUMERIC"}, kInt: {"INTEGER", "NUMERIC"}, kUint: {"INTEGER", "NUMERIC"},
	kFloat: {"REAL", "NUMERIC"}, kString: {"TEXT", "BLOB"}, kBytes: {"BLOB", "TEXT"}, kJSON: {"TEXT", "BLOB"},
}

func (sqliteCatalog) compatible(k goKind, c *liveColumn) string {
	switch k.kind {
	case kAny:
		return ""
	case kTime:
		switch strings.ToUpper(c.typ) {
		case "DATE", "DATETIME", "TIMESTAMP":
			return ""
		}
		return "make it DATETIME, which the driver reads back as a time"
	case kArray:
		return "SQLite has no arrays: store the field with `db:\"column,json\"`"
	}
	a := affinity(c.typ)
	for _, ok := range sqliteAffinities[k.kind] {
		if a == ok {
			return ""
		}
	}
	t, _ := sqliteCatalog{}.columnType(k, false)
	return fmt.Sprintf("its affinity %s changes the values it stores: make it %s", a, t)
}

func (sqliteCatalog) generated(lt *liveTable, key string) string {
	c := lt.cols[key]
	pks := 0
	for _, o := range lt.cols {
		if o.pk > 0 {
			pks++
		}
	}
	if strings.EqualFold(c.typ, "INTEGER") && c.pk == 1 && pks == 1 {
		return ""
	}
	return "the column is not an INTEGER PRIMARY KEY, the table's primary key alone"
}

func (sqliteCatalog) positionUnique(*liveIndex) string {
	return "SQLite cannot defer a unique index, and a reorder moves one row at a time: drop it"
}

func (sqliteCatalog) columnType(k goKind, _ bool) (string, error) {
	switch k.kind {
	case kBool:
		return "BOOLEAN", nil
	case kInt, kUint:
		return "INTEGER", nil
	case kFloat:
		return "REAL", nil
	case kString, kJSON:
		return "TEXT", nil
	case kBytes:
		return "BLOB", nil
	case kTime:
		return "DATETIME", nil
	case kArray:
		return "", fmt.Errorf("SQLite has no arrays: store %v with `db:\"column,json\"`", k.typ)
	}
	return "", fmt.Errorf("no column type for %v", k.typ)
}

func (sqliteCatalog) generatedKey(k goKind) (string, error) {
	if k.kind != kInt {
		return "", fmt.Errorf("a generated key must be an integer, not %v", k.typ)
	}
	return "INTEGER PRIMARY KEY", nil
}

// reference: SQLite's foreign keys name a table of the same schema,
// unqualified.
func (sqliteCatalog) reference(_, parent string) string { return sqlite.quote(lastPart(parent)) }

func (sqliteCatalog) index(table string, cols []string) string {
	schema := ""
	if i := strings.IndexByte(table, '.'); i >= 0 {
		schema = table[:i] + "."
	}
	name := lastPart(table) + "_" + strings.Join(cols, "_")
	return fmt.Sprintf("CREATE INDEX %s ON %s (%s)", sqlite.quote(schema+name), sqlite.quote(lastPart(table)), sqlite.quoteList(cols))
}

func (sqliteCatalog) moveClause() string { return " DEFERRABLE INITIALLY DEFERRED" }

func (sqliteCatalog) tableOptions() string { return "" }
