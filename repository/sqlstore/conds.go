package sqlstore

import (
	"fmt"
	"strings"
)

// This file holds the conditions beyond comparisons: their combinations,
// conditions on child collections, and text matches, which run the same
// way on every database.

// And is the condition that every one of conds holds; with none, every row
// holds it.
func And(conds ...Cond) Cond { return Cond{op: "AND", conds: conds} }

// Or is the condition that at least one of conds holds; with none, no row
// holds it.
func Or(conds ...Cond) Cond { return Cond{op: "OR", conds: conds} }

// Not is the condition that c does not hold: it selects exactly the rows
// that c does not select, those where c's SQL gives NULL included. So
// Not(Eq("coupon", "X")) selects the rows whose coupon is NULL too, where
// the SQL NOT ("coupon" = 'X') would not.
func Not(c Cond) Cond { return Cond{op: "NOT", conds: []Cond{c}} }

// Has is the condition that the collection named field (the Field of its
// [Child], such as "items") holds at least one element that meets all of
// conds, or any element with no conds: Has("items", Eq("sku", "tea")).
// It is written as EXISTS (SELECT 1 FROM the child table WHERE its row
// belongs to the parent row AND conds). The columns of conds are those of
// the collection's element, checked against its mapping, and Has nests:
// inside it, Has names a collection of the element, at any depth, in either
// layout of [Child]. Not(Has("items")) selects aggregates with no items;
// Not(Has("items", Not(c))) those whose every item meets c.
func Has(field string, conds ...Cond) Cond {
	return Cond{column: field, op: "HAS", conds: conds}
}

// Like is column LIKE pattern, on a column of a string type, on every
// database in the same way: % matches any run of characters, _ any one
// character, and a backslash makes the character after it literal (\%,
// \_, \\), as LIKE ... ESCAPE '\' does; a pattern that ends in a lone
// backslash is refused with [ErrQuery]. The match is case-sensitive on
// every database: on SQLite, whose LIKE ignores the case of ASCII letters,
// the pattern is run as the equivalent GLOB; on MySQL and MariaDB, whose
// LIKE follows the column's collation (the _ci ones ignore case and
// accents), under the binary collation utf8mb4_bin, with the escape
// rewritten to one that no sql_mode changes. Use [EqualFold] to ignore
// case, [Contains] and [HasPrefix] to match a text given as it is. No text
// match takes a column stored with the json or array option: it fails with
// [ErrQuery] on every database.
func Like(column, pattern string) Cond {
	return Cond{column: column, op: "LIKE", name: "Like", args: []any{pattern}}
}

// Contains is the condition that column, of a string type, holds sub, as
// strings.Contains tells: case-sensitive, with %, _ and \ in sub matched
// as themselves, on every database.
func Contains(column, sub string) Cond {
	return Cond{column: column, op: "LIKE", name: "Contains", args: []any{"%" + EscapeLike(sub) + "%"}}
}

// HasPrefix is the condition that column, of a string type, starts with
// prefix, as strings.HasPrefix tells: case-sensitive, with %, _ and \ in
// prefix matched as themselves, on every database.
func HasPrefix(column, prefix string) Cond {
	return Cond{column: column, op: "LIKE", name: "HasPrefix", args: []any{EscapeLike(prefix) + "%"}}
}

// EqualFold is the condition that column, of a string type, equals s when
// the ASCII letters A to Z of both are lowered: EqualFold("customer",
// "alice") selects "Alice" and "ALICE". Other letters are compared as
// they are, on every database ("É" does not match "é"), unlike
// strings.EqualFold: SQLite's lower() folds ASCII alone, and PostgreSQL's
// and MySQL's are made to do the same (on MySQL, with 26 REPLACEs whose
// result is compared under the binary collation utf8mb4_bin, as a _ci
// collation would ignore case and accents). An index that serves it on
// PostgreSQL is one on the expression translate(column,
// 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'); on SQLite,
// one on lower(column).
func EqualFold(column, s string) Cond {
	return Cond{column: column, op: "FOLD", args: []any{lowerASCII(s)}}
}

// EscapeLike returns s with a backslash before each %, _ and \, so that a
// [Like] pattern matches s as it is: Like("code", EscapeLike("50%")+"%")
// selects the codes that start with "50%".
func EscapeLike(s string) string {
	if !strings.ContainsAny(s, `%_\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '%' || r == '_' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// likeFor returns p, a LIKE pattern with \ as its escape, rewritten with
// esc as its escape instead (p itself when esc is zero or \): each \x
// becomes esc x when x is % or _, and x alone otherwise (an escaped
// character that is not special is itself), and a literal esc is
// doubled. p must not end in a lone backslash (see likeToGlob).
func likeFor(p string, esc byte) string {
	if esc == 0 || esc == '\\' || !strings.ContainsAny(p, `\`+string(rune(esc))) {
		return p
	}
	var b strings.Builder
	escaped := false
	for _, r := range p {
		switch {
		case escaped:
			escaped = false
			if r == '%' || r == '_' {
				b.WriteByte(esc)
			}
		case r == '\\':
			escaped = true
			continue
		}
		if r == rune(esc) {
			b.WriteByte(esc)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// likeToGlob returns the GLOB pattern that matches what the LIKE pattern
// p, with \ as its escape, matches, case-sensitively; ok is false when p
// ends in a lone backslash.
func likeToGlob(p string) (g string, ok bool) {
	var b strings.Builder
	esc := false
	for _, r := range p {
		switch {
		case esc:
			esc = false
		case r == '\\':
			esc = true
			continue
		case r == '%':
			b.WriteByte('*')
			continue
		case r == '_':
			b.WriteByte('?')
			continue
		}
		switch r {
		case '*', '?', '[':
			b.WriteByte('[')
			b.WriteRune(r)
			b.WriteByte(']')
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), !esc
}

// condFunc is the name of the function that made c, for messages.
func condFunc(c Cond) string {
	if c.name != "" {
		return c.name
	}
	return condName(c.op)
}

// checkCond returns c, a condition on the rows of tb, with its columns
// checked against tb's, its collections against tb's, and each value
// against its column's type (see condArg); the arguments of a raw
// fragment are left as they are.
func (tb *table) checkCond(c Cond) (Cond, error) {
	switch {
	case c.raw != "":
		if err := (&builder{d: sqlite}).raw(c.raw, c.args); err != nil {
			return c, fmt.Errorf("raw fragment: %w", err)
		}
		return c, nil
	case c.op == "":
		return c, fmt.Errorf("%w: an empty Cond", ErrQuery)
	case c.op == "AND" || c.op == "OR" || c.op == "NOT":
		return tb.checkConds(c)
	case c.op == "HAS":
		for _, k := range tb.colls {
			if k.spec.Field == c.column {
				return k.table.checkConds(c)
			}
		}
		names := make([]string, len(tb.colls))
		for i, k := range tb.colls {
			names[i] = k.spec.Field
		}
		return c, fmt.Errorf("%w: Has(%q): %v has no mapped collection %s (it has: %s)", ErrQuery, c.column, tb.typ, c.column, strings.Join(names, ", "))
	}
	i := tb.column(c.column)
	if i < 0 {
		return c, fmt.Errorf("%w: %q is not a column of %s", ErrQuery, c.column, tb.name)
	}
	col := &tb.cols[i]
	switch c.op {
	case "IS NULL":
		return c, nil
	case "LIKE", "FOLD":
		// Like takes a column whose values cannot be told too (a Valuer of
		// unknown kind); the others text alone. A JSON or array column is
		// never text: PostgreSQL has no LIKE on json, jsonb or arrays, and
		// SQLite would match the encoding.
		text := kindOf(col.typ).fam == famString && col.codec == codecPlain
		if col.codec != codecPlain || !text && (c.name != "Like" || kindOf(col.typ).fam != famOther) {
			return c, fmt.Errorf("%w: %s(%q): a column of type %v is not text", ErrQuery, condFunc(c), c.column, col.typ)
		}
		if _, ok := likeToGlob(c.args[0].(string)); c.op == "LIKE" && !ok {
			return c, fmt.Errorf("%w: %s(%q): pattern %q ends in a lone backslash, which escapes nothing (write \\\\ for a backslash)", ErrQuery, condFunc(c), c.column, c.args[0])
		}
		return c, nil
	}
	name := condFunc(c)
	args := make([]any, len(c.args))
	for j, a := range c.args {
		v, err := condArg(col, name, a)
		if err != nil {
			return c, err
		}
		args[j] = v
	}
	c.args = args
	return c, nil
}

// checkConds checks the conditions inside c, which are on the rows of tb.
func (tb *table) checkConds(c Cond) (Cond, error) {
	kids := make([]Cond, len(c.conds))
	for i, k := range c.conds {
		var err error
		if kids[i], err = tb.checkCond(k); err != nil {
			return c, err
		}
	}
	c.conds = kids
	return c, nil
}

// writeCond writes c, a checked condition on the rows of tb. qual is ""
// for the root, whose columns are written as they are, or the name of tb,
// which a child's columns are qualified with inside EXISTS. tb is in the
// FROM clause under its own name.
func writeCond(w *builder, tb *table, qual string, c Cond) error {
	if c.raw != "" {
		w.s("(")
		if err := w.raw(c.raw, c.args); err != nil {
			return err
		}
		w.s(")")
		return nil
	}
	switch c.op {
	case "AND", "OR":
		if len(c.conds) == 0 {
			if c.op == "AND" {
				w.s("1 = 1")
			} else {
				w.s("1 = 0")
			}
			return nil
		}
		w.s("(")
		for i, k := range c.conds {
			if i > 0 {
				w.s(" " + c.op + " ")
			}
			if err := writeCond(w, tb, qual, k); err != nil {
				return err
			}
		}
		w.s(")")
		return nil
	case "NOT":
		// IS NOT TRUE, not NOT: a condition that is NULL for a row (a
		// comparison with a NULL column) does not select it, and neither
		// would its NOT.
		w.s("(")
		if err := writeCond(w, tb, qual, c.conds[0]); err != nil {
			return err
		}
		w.s(") IS NOT TRUE")
		return nil
	case "HAS":
		var k *child
		for _, kk := range tb.colls {
			if kk.spec.Field == c.column {
				k = kk
			}
		}
		return writeHas(w, tb, k, c.conds)
	}
	col := &tb.cols[tb.column(c.column)]
	switch c.op {
	case "IS NULL":
		w.column(qual, col.name)
		w.s(" IS NULL")
	case "LIKE":
		pattern := c.args[0].(string)
		w.column(qual, col.name)
		if w.d.glob {
			g, _ := likeToGlob(pattern)
			w.s(" GLOB ")
			w.p(g)
			return nil
		}
		w.like(pattern)
	case "FOLD":
		pre, post, _ := strings.Cut(w.d.foldASCII, "%s")
		w.s(pre)
		w.column(qual, col.name)
		w.s(post)
		if w.d.padSpace {
			// = would ignore trailing spaces: a LIKE of the text escaped
			// compares every character.
			w.like(EscapeLike(c.args[0].(string)))
			return nil
		}
		w.s(" = ")
		w.p(c.args[0])
		w.s(w.d.exactText)
	case "IN":
		if len(c.args) == 0 {
			w.s("1 = 0")
			return nil
		}
		at := w.b.Len()
		w.column(qual, col.name)
		// The column as written, for messages: what the builder wrote
		// stays as it is.
		return inValues(w, w.b.String()[at:], col, c.args)
	default:
		w.column(qual, col.name)
		w.s(" " + c.op + " ")
		w.p(c.args[0])
	}
	return nil
}

// like writes " LIKE pattern ESCAPE ...", pattern being a pattern of
// Like, with \ as its escape, bound as the dialect takes it.
func (w *builder) like(pattern string) {
	w.s(" LIKE ")
	w.p(likeFor(pattern, w.d.likeEscape))
	w.s(w.d.exactText)
	if w.d.likeEscape != 0 {
		w.s(" ESCAPE '" + string(rune(w.d.likeEscape)) + "'")
	} else {
		w.s(` ESCAPE '\'`)
	}
}

// writeHas writes EXISTS (SELECT 1 FROM k WHERE <k's row is under the row
// of its parent table p> AND conds). A table refers to its parent by the
// parent's key, and, unless ParentKeyOnly, by the parent key columns of
// the levels above, which the parent's row holds under the same names.
func writeHas(w *builder, p *table, k *child, conds []Cond) error {
	w.s("EXISTS (SELECT 1 FROM ")
	w.ident(k.name)
	w.s(" WHERE ")
	if k.parent != nil && !k.spec.ParentKeyOnly {
		for i, rc := range k.parent.refNames {
			w.column(k.name, k.refNames[i])
			w.s(" = ")
			w.column(p.name, rc)
			w.s(" AND ")
		}
	}
	w.column(k.name, k.spec.ParentKey)
	w.s(" = ")
	w.column(p.name, p.cols[p.key].name)
	for _, c := range conds {
		w.s(" AND ")
		if err := writeCond(w, &k.table, k.name, c); err != nil {
			return err
		}
	}
	w.s(")")
	return nil
}
