package sqlstore

import (
	"fmt"
	"strings"
)

// SQL of your own ([DB.Exec], [DB.Query], [DB.QueryRow], [SelectSQL] and
// [RawWhere]) takes one placeholder style on every backend: ?, one per
// argument, in order, as sqlx writes it. sqlstore numbers them ($1, $2,
// ...) for PostgreSQL. A question mark inside a string literal, a quoted
// identifier or a comment is not a placeholder; write ?? for a question
// mark that must reach the database as it is, such as PostgreSQL's jsonb
// operator ? ("data ?? 'key'"). The database's own numbered placeholders
// ($1 on PostgreSQL, ?1 on SQLite) are refused with [ErrQuery], and so is
// a statement whose placeholders and arguments differ in number: nothing
// is sent.
//
// On MySQL and MariaDB the text is read as MySQL and its driver read it: a
// backslash escapes the next character in '...' and "..." (write a
// session's text for NO_BACKSLASH_ESCAPES without backslashes before a
// quote), names are quoted in `...`, # and -- followed by a space start a
// comment, and comments do not nest. There the driver formats the
// arguments into the statement's text: ?? is refused with [ErrQuery], as
// the driver would take its ? for a placeholder; put such a ? in a
// literal.

// rebind returns text, written with ? placeholders, in the placeholder
// style of d, after checking that it has n of them and none of another
// style.
func (d *dialect) rebind(text string, n int) (string, error) {
	w := &builder{d: d}
	w.b.Grow(len(text) + 2*n)
	if err := w.raw(text, make([]any, n)); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

// raw writes text, SQL of the caller's with a ? placeholder for each of
// args, binding args to them.
func (w *builder) raw(text string, args []any) error {
	count := 0
	err := walkSQL(w.d, text, w.s, func() {
		if count < len(args) {
			w.p(args[count])
		}
		count++
	})
	if err != nil {
		return err
	}
	if count != len(args) {
		return fmt.Errorf("%w: %q has %d placeholders (?) and %d arguments", ErrQuery, abbrev(text), count, len(args))
	}
	return nil
}

// walkSQL reads text, SQL with ? placeholders, as d's database reads it,
// calling lit with each piece of text between them and param for each
// placeholder. ?? is a literal ?. It fails with ErrQuery on a numbered
// placeholder ($1, ?1) outside literals, quoted identifiers and comments,
// and, where d's driver formats arguments into the text, on ??.
func walkSQL(d *dialect, text string, lit func(string), param func()) error {
	start := 0
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\'' || c == '"' || (c == '`' && d.quoteChar == '`'):
			i = skipQuoted(d, text, i, c)
			continue
		case c == '-' && strings.HasPrefix(text[i:], "--") && (!d.hashComments || i+2 >= len(text) || text[i+2] <= ' '),
			c == '#' && d.hashComments:
			// MySQL's -- starts a comment only before a space or a
			// control character.
			j := strings.IndexByte(text[i:], '\n')
			if j < 0 {
				j = len(text) - i
			}
			i += j
			continue
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			i = skipComment(text, i, !d.hashComments)
			continue
		case c == '$' && i+1 < len(text) && isDigit(text[i+1]) && !d.hashComments:
			return fmt.Errorf("%w: %q uses the placeholder %s: write ? for each argument, on every database (sqlstore numbers them for PostgreSQL)", ErrQuery, abbrev(text), numbered(text, i))
		case c == '$' && (i == 0 || !isIdentByte(text[i-1])) && !d.hashComments:
			if j, ok := skipDollarQuoted(text, i); ok {
				i = j
				continue
			}
		case c == '?' && i+1 < len(text) && text[i+1] == '?':
			if d.textArgs {
				return errTextArgs(d, text)
			}
			lit(text[start : i+1])
			i += 2
			start = i
			continue
		case c == '?' && i+1 < len(text) && isDigit(text[i+1]):
			return fmt.Errorf("%w: %q uses the placeholder %s: write ? for each argument, without a number", ErrQuery, abbrev(text), numbered(text, i))
		case c == '?':
			lit(text[start:i])
			param()
			i++
			start = i
			continue
		}
		i++
	}
	lit(text[start:])
	return nil
}

// errTextArgs is the error of SQL of the caller's that writes ??, for a
// driver that formats arguments into the text.
func errTextArgs(d *dialect, text string) error {
	return fmt.Errorf("%w: %q writes ??: on %s the driver formats the arguments into the statement's text and takes a ? outside literals, quoted names and comments for a placeholder; put the ? in a literal", ErrQuery, abbrev(text), d.title)
}

// skipQuoted returns the index after the literal or quoted identifier
// that starts at i with q; a doubled q is part of it. A backslash escapes
// the next byte in an escape string (E'...'), and, where d's strings take
// backslash escapes (MySQL), in every '...' and "...".
func skipQuoted(d *dialect, text string, i int, q byte) int {
	escapes := q == '\'' && i > 0 && (text[i-1] == 'E' || text[i-1] == 'e') && (i == 1 || !isIdentByte(text[i-2]))
	escapes = escapes || (d.backslashEscapes && q != '`')
	for j := i + 1; j < len(text); j++ {
		switch text[j] {
		case '\\':
			if escapes {
				j++
			}
		case q:
			if j+1 < len(text) && text[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(text)
}

// skipComment returns the index after the /* */ comment that starts at i;
// comments nest when nest is set, as PostgreSQL has them (MySQL's do not).
func skipComment(text string, i int, nest bool) int {
	depth := 0
	for j := i; j < len(text); {
		switch {
		case strings.HasPrefix(text[j:], "/*") && (nest || depth == 0):
			depth++
			j += 2
		case strings.HasPrefix(text[j:], "*/"):
			depth--
			j += 2
			if depth == 0 {
				return j
			}
		default:
			j++
		}
	}
	return len(text)
}

// skipDollarQuoted returns the index after the dollar-quoted string
// ($$...$$ or $tag$...$tag$) that starts at i, if one does.
func skipDollarQuoted(text string, i int) (int, bool) {
	j := i + 1
	for j < len(text) && isIdentByte(text[j]) {
		j++
	}
	if j >= len(text) || text[j] != '$' {
		return 0, false
	}
	tag := text[i : j+1]
	end := strings.Index(text[j+1:], tag)
	if end < 0 {
		return len(text), true
	}
	return j + 1 + end + len(tag), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentByte(c byte) bool {
	return c == '_' || isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= 0x80
}

// numbered returns the numbered placeholder at i, such as $1 or ?2.
func numbered(text string, i int) string {
	j := i + 1
	for j < len(text) && isDigit(text[j]) {
		j++
	}
	return text[i:j]
}

// abbrev returns text, cut for an error message.
func abbrev(text string) string {
	const max = 80
	if len(text) <= max {
		return text
	}
	return text[:max] + "..."
}
