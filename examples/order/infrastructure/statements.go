package infrastructure

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// StatementLog keeps the statements a database sends: pass its Observe to
// [Open] with sqlstore.WithObserver. It is safe for concurrent use.
type StatementLog struct {
	mu    sync.Mutex
	stmts []sqlstore.Statement
}

// Observe records s; it is a sqlstore observer.
func (l *StatementLog) Observe(_ context.Context, s sqlstore.Statement) {
	s.Args = slices.Clone(s.Args) // an observer must not keep them
	l.mu.Lock()
	l.stmts = append(l.stmts, s)
	l.mu.Unlock()
}

// Reset forgets the statements recorded so far.
func (l *StatementLog) Reset() {
	l.mu.Lock()
	l.stmts = nil
	l.mu.Unlock()
}

// Statements returns the statements recorded since the last Reset.
func (l *StatementLog) Statements() []sqlstore.Statement {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.stmts)
}

// RoundTrips returns how many round trips the statements recorded since
// the last Reset took.
func (l *StatementLog) RoundTrips() int {
	seen := map[int]bool{}
	for _, s := range l.Statements() {
		seen[s.RoundTrip] = true
	}
	return len(seen)
}

// Writes returns the [Summarize] of each INSERT, UPDATE and DELETE
// recorded since the last Reset that succeeded, in order.
func (l *StatementLog) Writes() []string {
	var out []string
	for _, s := range l.Statements() {
		if w, ok := Summarize(s.SQL); ok && s.Err == nil {
			out = append(out, w)
		}
	}
	return out
}

var (
	// Names are quoted with " on PostgreSQL and SQLite, with ` on MySQL.
	dml     = regexp.MustCompile("^(?:WITH r AS \\()?(INSERT INTO|UPDATE|DELETE FROM) [\"`]([^\"`]+)[\"`](?: SET (.*?) WHERE )?")
	setCols = regexp.MustCompile("[\"`]([^\"`]+)[\"`] = ")
)

// Summarize describes an INSERT, UPDATE or DELETE statement by its verb,
// its table and, for an UPDATE, the columns it sets: "INSERT orders",
// "UPDATE orders (total, version)", "DELETE order_items". It knows the
// UPDATEs that pgx wraps for their version check (WITH r AS (UPDATE
// ...)). It reports false for any other statement.
func Summarize(sql string) (string, bool) {
	m := dml.FindStringSubmatch(sql)
	if m == nil {
		return "", false
	}
	verb, _, _ := strings.Cut(m[1], " ")
	out := verb + " " + m[2]
	if m[3] != "" {
		var cols []string
		for _, c := range setCols.FindAllStringSubmatch(m[3], -1) {
			cols = append(cols, c[1])
		}
		out += " (" + strings.Join(cols, ", ") + ")"
	}
	return out, true
}
