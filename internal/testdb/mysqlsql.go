package testdb

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The tests write their fixtures' SQL once, for PostgreSQL and SQLite;
// ToMySQL gives it MariaDB's form. It rewrites the patterns the tests use
// and refuses, with an error, what it cannot carry over faithfully: above
// all a foreign key written inline in a column definition, which InnoDB
// parses and ignores (it becomes a table-level FOREIGN KEY here, so that
// no constraint is lost silently), and a DEFERRABLE constraint, which
// MariaDB cannot defer (a test that needs one skips on MariaDB).

// mysqlKeyText is the type of a TEXT column that a key holds: MariaDB
// cannot index a TEXT column without a prefix length. Its collation
// compares keys byte by byte, as PostgreSQL and SQLite do, where the
// database's default would take "a" and "A" for one key. Any other TEXT
// column becomes LONGTEXT, of the database's default collation, so that
// the text conditions run against MariaDB's usual case-insensitive
// comparisons.
const mysqlKeyText = "VARCHAR(255) COLLATE utf8mb4_bin"

// ToMySQL returns q in MariaDB's form: identifiers in double quotes are
// quoted with backquotes, CREATE TABLE statements get MariaDB's types and
// table-level foreign keys, and CAST to BIGINT or TEXT casts to SIGNED or
// CHAR. It fails on what has no faithful MariaDB form.
func ToMySQL(q string) (string, error) {
	return toMySQL(q, nil)
}

// toMySQL is ToMySQL, with indexed naming the columns of each table that
// an index of a later statement holds.
func toMySQL(q string, indexed map[string][]string) (string, error) {
	toks, err := sqlTokens(q)
	if err != nil {
		return "", err
	}
	for i, tk := range toks {
		switch {
		case tk == "::":
			return "", errors.New("a PostgreSQL cast (::)")
		case tk == "||":
			return "", errors.New("|| concatenates in PostgreSQL and SQLite, but is OR in MariaDB")
		case tk == "[" || tk == "]":
			return "", errors.New("an array type: MariaDB has none")
		case isWord(tk, "DEFERRABLE"):
			return "", errors.New("a DEFERRABLE constraint: MariaDB checks every constraint at each statement")
		case isWord(tk, "ILIKE"):
			return "", errors.New("ILIKE is PostgreSQL's")
		case strings.HasPrefix(tk, `"`):
			toks[i] = "`" + strings.ReplaceAll(tk[1:len(tk)-1], `""`, `"`) + "`"
		}
	}
	var at []int // the indexes of the tokens that are not white space
	for i, tk := range toks {
		if strings.TrimSpace(tk) != "" {
			at = append(at, i)
		}
	}
	if len(at) >= 2 && isWord(toks[at[0]], "CREATE") && isWord(toks[at[1]], "TABLE") {
		return mysqlCreateTable(toks, at, indexed)
	}
	if len(at) >= 2 && isWord(toks[at[0]], "DROP") && isWord(toks[at[1]], "INDEX") && !slices.ContainsFunc(at, func(i int) bool { return isWord(toks[i], "ON") }) {
		return "", errors.New("DROP INDEX without ON: an index of MariaDB is dropped with its table's name")
	}
	for k, i := range at {
		if isWord(toks[i], "REFERENCES") && !afterForeignKey(toks, at[:k]) {
			return "", errors.New("REFERENCES in a column definition, which InnoDB ignores: write FOREIGN KEY (...) REFERENCES")
		}
		// CAST(x AS BIGINT) and CAST(x AS TEXT): the closing parenthesis
		// tells a CAST from a column definition.
		if isWord(toks[i], "AS") && k+2 < len(at) && toks[at[k+2]] == ")" {
			switch typ := toks[at[k+1]]; {
			case isWord(typ, "BIGINT"), isWord(typ, "INTEGER"):
				toks[at[k+1]] = "SIGNED"
			case isWord(typ, "TEXT"):
				toks[at[k+1]] = "CHAR"
			}
		}
	}
	return strings.Join(toks, ""), nil
}

// afterForeignKey reports whether the words at (indexes into toks) end
// with KEY (...).
func afterForeignKey(toks []string, at []int) bool {
	k := len(at) - 1
	if k < 0 || toks[at[k]] != ")" {
		return false
	}
	for k >= 0 && toks[at[k]] != "(" {
		k--
	}
	return k >= 1 && isWord(toks[at[k-1]], "KEY")
}

func isWord(tok, word string) bool { return strings.EqualFold(tok, word) }

var (
	sqlTokenRE = regexp.MustCompile(`^(?:\s+|'(?:[^']|'')*'|"(?:[^"]|"")*"|` + "`[^`]*`" + `|::|\|\||[A-Za-z_][A-Za-z0-9_$]*|[0-9]+(?:\.[0-9]+)?|.)`)
)

// sqlTokens splits q into tokens that join back into q: runs of white
// space, quoted strings and identifiers, words, numbers, and single
// characters.
func sqlTokens(q string) ([]string, error) {
	var out []string
	for q != "" {
		tk := sqlTokenRE.FindString(q)
		if tk == "" || (tk[0] == '\'' || tk[0] == '"') && len(tk) < 2 {
			return nil, fmt.Errorf("cannot split the SQL at %.20q", q)
		}
		out = append(out, tk)
		q = q[len(tk):]
	}
	return out, nil
}

// mysqlCreateTable rewrites a CREATE TABLE statement, split into toks, of
// which at are the words.
func mysqlCreateTable(toks []string, at []int, indexed map[string][]string) (string, error) {
	open := -1
	for i, tk := range toks {
		if tk == "(" {
			open = i
			break
		}
	}
	if open < 0 {
		return "", errors.New("CREATE TABLE without a column list")
	}
	depth, end := 0, -1
	var elems [][]string
	start := open + 1
	for i := open; i < len(toks) && end < 0; i++ {
		switch toks[i] {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				end = i
				elems = append(elems, toks[start:i])
			}
		case ",":
			if depth == 1 {
				elems = append(elems, toks[start:i])
				start = i + 1
			}
		}
	}
	if end < 0 {
		return "", errors.New("CREATE TABLE with unbalanced parentheses")
	}
	rest := strings.TrimSpace(strings.Join(toks[end+1:], ""))
	if !mysqlTableOptions.MatchString(rest) {
		return "", fmt.Errorf("table options %q are not MariaDB's", rest)
	}

	var (
		cols        [][]word // the columns' definitions
		constraints []string
		keys        = map[string]bool{} // columns that a key or an index holds
	)
	name := 2
	if len(at) > 5 && isWord(toks[at[2]], "IF") {
		name = 5 // IF NOT EXISTS
	}
	if len(at) > name {
		for _, c := range indexed[unquoteIdent(toks[at[name]])] {
			keys[c] = true
		}
	}
	for _, e := range elems {
		words := sqlWords(e)
		if len(words) == 0 {
			return "", errors.New("an empty element in CREATE TABLE")
		}
		first := strings.ToUpper(words[0].s)
		if first == "CONSTRAINT" && len(words) > 2 {
			first = strings.ToUpper(words[2].s)
		}
		switch first {
		case "PRIMARY", "UNIQUE", "FOREIGN":
			for _, c := range parenWords(words) {
				keys[c] = true
			}
			constraints = append(constraints, joinWords(words))
		case "CHECK":
			constraints = append(constraints, joinWords(words))
		case "EXCLUDE", "LIKE":
			return "", fmt.Errorf("%s in CREATE TABLE is not MariaDB's", first)
		default:
			if len(words) < 2 {
				return "", fmt.Errorf("column %s has no type", words[0].s)
			}
			for _, w := range words[2:] {
				if isWord(w.s, "PRIMARY") || isWord(w.s, "UNIQUE") || isWord(w.s, "REFERENCES") {
					keys[unquoteIdent(words[0].s)] = true
				}
			}
			cols = append(cols, words)
		}
	}
	var defs, fks []string
	for _, words := range cols {
		def, fk, err := mysqlColumn(words, keys[unquoteIdent(words[0].s)])
		if err != nil {
			return "", fmt.Errorf("column %s: %w", words[0].s, err)
		}
		defs = append(defs, def)
		if fk != "" {
			fks = append(fks, fk)
		}
	}
	all := append(append(defs, constraints...), fks...)
	out := strings.Join(toks[:open], "") + "(" + strings.Join(all, ", ") + ")"
	if rest != "" {
		out += " " + rest
	}
	return out, nil
}

// mysqlTableOptions matches the table options of MariaDB that a CREATE
// TABLE of MariaDB's own (Mapping.DDL) carries: the engine, the character
// set and the collation.
var mysqlTableOptions = regexp.MustCompile(`(?i)^(\s*(ENGINE|(DEFAULT\s+)?(CHARSET|CHARACTER\s+SET|COLLATE))\s*=?\s*\w+)*$`)

// word is a token that is not white space, and whether white space came
// before it.
type word struct {
	s  string
	sp bool
}

// sqlWords returns the tokens of e that are not white space.
func sqlWords(e []string) []word {
	var out []word
	sp := false
	for _, tk := range e {
		if strings.TrimSpace(tk) == "" {
			sp = true
			continue
		}
		out = append(out, word{tk, sp})
		sp = false
	}
	return out
}

// joinWords joins words with one space where there was white space.
func joinWords(words []word) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 && w.sp {
			b.WriteByte(' ')
		}
		b.WriteString(w.s)
	}
	return b.String()
}

// parenWords returns the column names in the first parentheses of words.
func parenWords(words []word) []string {
	var out []string
	in := false
	for _, w := range words {
		switch {
		case w.s == "(":
			in = true
		case w.s == ")":
			if in {
				return out
			}
		case in && w.s != ",":
			out = append(out, unquoteIdent(w.s))
		}
	}
	return out
}

func unquoteIdent(w string) string {
	if len(w) >= 2 && (w[0] == '`' || w[0] == '"') {
		return w[1 : len(w)-1]
	}
	return w
}

// mysqlTypes maps the types the tests declare to MariaDB's; a type not
// listed is left as it is (BIGINT, INTEGER, VARCHAR(n), BOOLEAN, UUID...).
var mysqlTypes = map[string]string{
	"JSONB":       "JSON",
	"TIMESTAMPTZ": "DATETIME(6)",
	"TIMESTAMP":   "DATETIME(6)",
	"DATETIME":    "DATETIME(6)",
	"BYTEA":       "LONGBLOB",
	"BLOB":        "LONGBLOB",
	"BIGSERIAL":   "BIGINT AUTO_INCREMENT",
	"SERIAL":      "INT AUTO_INCREMENT",
}

// mysqlColumn rewrites the definition of a column, as words; key says
// that a key or a foreign key holds it. It returns the definition and the
// table-level foreign key that replaces an inline REFERENCES.
func mysqlColumn(words []word, key bool) (def, fk string, err error) {
	sp := func(s string) word { return word{s, true} }
	out := []word{words[0]}
	typ := strings.ToUpper(words[1].s)
	i := 2
	switch {
	case typ == "TEXT" && key:
		out = append(out, sp(mysqlKeyText))
	case typ == "TEXT":
		// PostgreSQL's and SQLite's TEXT hold any length; MariaDB's
		// holds 64 KiB.
		out = append(out, sp("LONGTEXT"))
	case typ == "TIMESTAMP" && i+2 < len(words) && isWord(words[i].s, "WITH"):
		out = append(out, sp(mysqlTypes[typ]))
		i += 3 // WITH TIME ZONE
	case mysqlTypes[typ] != "" && (i == len(words) || words[i].s != "("):
		out = append(out, sp(mysqlTypes[typ]))
	case typ == "DOUBLE" && i < len(words) && isWord(words[i].s, "PRECISION"):
		out = append(out, sp("DOUBLE"))
		i++
	default:
		out = append(out, words[1])
	}
	for i < len(words) {
		w := strings.ToUpper(words[i].s)
		switch {
		case w == "GENERATED":
			// GENERATED { ALWAYS | BY DEFAULT } AS IDENTITY
			j := i + 1
			for j < len(words) && !isWord(words[j].s, "IDENTITY") {
				if words[j].s == "(" {
					return "", "", errors.New("a generated column other than an identity")
				}
				j++
			}
			if j == len(words) {
				return "", "", errors.New("GENERATED without AS IDENTITY")
			}
			out = append(out, sp("AUTO_INCREMENT"))
			i = j + 1
		case w == "REFERENCES":
			// REFERENCES t (c) [ON DELETE|UPDATE action]...
			j := i + 1
			for j < len(words) && words[j].s != ")" {
				j++
			}
			if j == len(words) {
				return "", "", errors.New("REFERENCES without a column")
			}
			j++
			for j+2 < len(words) && isWord(words[j].s, "ON") {
				j += 3
				if isWord(words[j-1].s, "SET") || isWord(words[j-1].s, "NO") {
					j++
				}
			}
			// An index of its own: InnoDB drops the index it makes for a
			// foreign key when another index can serve, and then refuses
			// to drop that one.
			fk = "INDEX (" + words[0].s + "), FOREIGN KEY (" + words[0].s + ") " + joinWords(words[i:j])
			i = j
		case w == "DEFAULT" && i+1 < len(words) && (isWord(words[i+1].s, "now") || isWord(words[i+1].s, "CURRENT_TIMESTAMP")):
			out = append(out, words[i], sp("CURRENT_TIMESTAMP(6)"))
			i += 2
			if i+1 < len(words) && words[i].s == "(" && words[i+1].s == ")" {
				i += 2
			}
		case w == "COLLATE":
			return "", "", errors.New("a collation: the tests' collations are PostgreSQL's or SQLite's")
		default:
			out = append(out, words[i])
			i++
		}
	}
	return joinWords(out), fk, nil
}

// MySQLScript splits script, statements written for PostgreSQL and ended
// by a semicolon at the end of a line, and returns them in MariaDB's form
// (see ToMySQL): the TEXT columns that a CREATE INDEX holds are declared
// as keys in their CREATE TABLE.
func MySQLScript(script string) ([]string, error) {
	var stmts []string
	for s := range strings.SplitSeq(script, ";\n") {
		var lines []string
		for l := range strings.SplitSeq(s, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				lines = append(lines, l)
			}
		}
		if s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";")); s != "" {
			stmts = append(stmts, s)
		}
	}
	indexed := map[string][]string{}
	for _, s := range stmts {
		if m := createIndexRE.FindStringSubmatch(s); m != nil {
			for c := range strings.SplitSeq(m[2], ",") {
				indexed[unquoteIdent(m[1])] = append(indexed[unquoteIdent(m[1])], unquoteIdent(strings.TrimSpace(c)))
			}
		}
	}
	out := make([]string, len(stmts))
	for i, s := range stmts {
		var err error
		if out[i], err = toMySQL(s, indexed); err != nil {
			return nil, fmt.Errorf("%w: %s", err, s)
		}
	}
	return out, nil
}

var createIndexRE = regexp.MustCompile(`(?is)^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?\S+\s+ON\s+(\S+)\s*\(([^)]*)\)`)
