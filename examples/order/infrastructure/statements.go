package infrastructure

import (
	"context"
	"slices"
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
