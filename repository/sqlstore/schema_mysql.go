package sqlstore

import (
	"fmt"
	"strconv"
	"strings"
)

// mysqlCatalog reads and writes schemas of MySQL and MariaDB. The types
// its DDL writes keep every value as Go has it; [Mapping.DDL] says which,
// and why.
type mysqlCatalog struct{}

// mysqlKeyLength is the length, in bytes, of a string or []byte in a key.
const mysqlKeyLength = 255

// mysqlTable returns the condition that selects the rows of the table
// named name in a table of information_schema whose columns schemaCol and
// tableCol name a table's database and name, and its arguments. A name
// not qualified is in the current database (DATABASE()). The server
// compares the names as it finds tables: case-sensitively where
// lower_case_table_names is 0.
func mysqlTable(schemaCol, tableCol, name string) (string, []any) {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return schemaCol + " = ? AND " + tableCol + " = ?", []any{name[:i], name[i+1:]}
	}
	return schemaCol + " = DATABASE() AND " + tableCol + " = ?", []any{name}
}

func (mysqlCatalog) describe(name string, lt *liveTable) []stmt {
	where, args := mysqlTable("TABLE_SCHEMA", "TABLE_NAME", name)
	// Each foreign key with whether it lets a move through (ON UPDATE
	// CASCADE: MySQL cannot defer a constraint), one row per column.
	kw, kargs := mysqlTable("k.TABLE_SCHEMA", "k.TABLE_NAME", name)
	rw, rargs := mysqlTable("r.CONSTRAINT_SCHEMA", "r.TABLE_NAME", name)
	fks := `SELECT k.CONSTRAINT_NAME, r.UPDATE_RULE = 'CASCADE', k.COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
WHERE ` + kw + ` AND ` + rw + `
ORDER BY k.CONSTRAINT_NAME, k.ORDINAL_POSITION`
	return []stmt{
		{sql: `SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, EXTRA LIKE '%auto_increment%' FROM information_schema.COLUMNS WHERE ` + where,
			args: args, scan: func(r rowScanner) error {
				var n string
				c := &liveColumn{}
				if err := r.Scan(&n, &c.typ, &c.category, &c.serial); err != nil {
					return err
				}
				c.category = strings.ToLower(c.category)
				lt.cols[n] = c
				return nil
			}},
		{sql: `SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE ` + where + ` AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
			args: args, scan: func(r rowScanner) error {
				var n, col string
				if err := r.Scan(&n, &col); err != nil {
					return err
				}
				lt.addUnique(n, col, false)
				return nil
			}},
		{sql: fks, args: append(kargs, rargs...), scan: func(r rowScanner) error {
			var n, col string
			var cascade bool
			if err := r.Scan(&n, &cascade, &col); err != nil {
				return err
			}
			lt.addForeignKey(n, col, cascade)
			return nil
		}},
	}
}

// mysqlTypes are the data types (information_schema.COLUMNS.DATA_TYPE) of
// the columns that hold each kind without changing its values. A JSON
// column is LONGTEXT on MariaDB.
var mysqlTypes = map[kindClass][]string{
	kBool:   {"tinyint", "smallint", "mediumint", "int", "bigint"},
	kInt:    {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal"},
	kUint:   {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal"},
	kFloat:  {"double"},
	kString: {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "json", "uuid", "inet4", "inet6"},
	kBytes:  {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"},
	kJSON:   {"json", "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"},
	kTime:   {"datetime", "timestamp"},
}

func (mysqlCatalog) compatible(k goKind, c *liveColumn) string {
	switch k.kind {
	case kAny:
		return ""
	case kArray:
		return "MySQL has no arrays: store the field with `db:\"column,json\"`"
	}
	want, _ := mysqlCatalog{}.columnType(k, false)
	if !containsString(mysqlTypes[k.kind], c.category) {
		if k.kind == kFloat && c.category == "float" {
			return "a FLOAT is single precision, and MariaDB writes it as text with six significant digits: make it DOUBLE"
		}
		return fmt.Sprintf("make it %s", want)
	}
	if k.kind == kTime {
		if n := mysqlFraction(c.typ); n < 6 {
			return fmt.Sprintf("it keeps %d digits of the fraction of a second, and the server drops or rounds the rest: make it %s", n, want)
		}
	}
	return ""
}

// mysqlFraction returns the digits of a fraction of a second that a
// column of type typ ("datetime(6)") keeps.
func mysqlFraction(typ string) int {
	i := strings.IndexByte(typ, '(')
	j := strings.IndexByte(typ, ')')
	if i < 0 || j < i {
		return 0
	}
	n, err := strconv.Atoi(typ[i+1 : j])
	if err != nil {
		return 0
	}
	return n
}

func (mysqlCatalog) generated(lt *liveTable, key string) string {
	if lt.cols[key].serial {
		return ""
	}
	return "the column is not AUTO_INCREMENT: make it BIGINT AUTO_INCREMENT PRIMARY KEY"
}

func (mysqlCatalog) positionUnique(*liveIndex) string {
	return "MySQL cannot defer a unique index, and a reorder moves one row at a time: drop it"
}

func (mysqlCatalog) columnType(k goKind, key bool) (string, error) {
	switch k.kind {
	case kBool:
		return "BOOLEAN", nil
	case kInt, kUint:
		t := "BIGINT"
		switch {
		case k.size == 8:
			t = "TINYINT"
		case k.size == 16:
			t = "SMALLINT"
		case k.size == 32:
			t = "INT"
		}
		if k.kind == kUint {
			t += " UNSIGNED"
		}
		return t, nil
	case kFloat:
		return "DOUBLE", nil
	case kString:
		if key {
			return fmt.Sprintf("VARBINARY(%d)", mysqlKeyLength), nil
		}
		return "LONGTEXT", nil
	case kBytes:
		if key {
			return fmt.Sprintf("VARBINARY(%d)", mysqlKeyLength), nil
		}
		return "LONGBLOB", nil
	case kTime:
		return "DATETIME(6)", nil
	case kJSON:
		return "JSON", nil
	case kArray:
		return "", fmt.Errorf("MySQL has no arrays: store %v with `db:\"column,json\"`", k.typ)
	}
	return "", fmt.Errorf("no column type for %v", k.typ)
}

func (mysqlCatalog) generatedKey(k goKind) (string, error) {
	if k.kind != kInt || k.size < 16 {
		return "", fmt.Errorf("a generated key must be an int16, int32 or int64, not %v", k.typ)
	}
	t, _ := mysqlCatalog{}.columnType(k, true)
	return t + " AUTO_INCREMENT PRIMARY KEY", nil
}

func (mysqlCatalog) reference(_, parent string) string { return mysqlDialect.quote(parent) }

// index: InnoDB indexes the columns of a foreign key, and the parent key
// columns that a generated key's table is loaded by are one.
func (mysqlCatalog) index(string, []string) string { return "" }

// moveClause: MySQL checks a foreign key at each row, and cannot defer
// it; ON UPDATE CASCADE updates the rows below a moved one with it, and
// the store's own UPDATE of them then changes nothing.
func (mysqlCatalog) moveClause() string { return " ON UPDATE CASCADE" }

// tableOptions: InnoDB, the engine with foreign keys and transactions.
func (mysqlCatalog) tableOptions() string {
	return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
}
