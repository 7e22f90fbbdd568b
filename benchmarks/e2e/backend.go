package e2e

import (
	"context"

	"github.com/dddkit/dddkit/benchmarks/internal/model"
)

// Backend is a database server the end-to-end benchmarks run on, in a
// schema or database of the run's own: [Env] (PostgreSQL) and [MySQLEnv]
// (MariaDB or MySQL).
type Backend interface {
	// Name names the server in the report: "PostgreSQL" or "MariaDB".
	Name() string
	// Contenders returns the contenders that run on the server, dddkit's
	// first.
	Contenders() []Contender
	// DSN returns what a contender connects with. A non-empty hostport
	// replaces the server's address (a counting proxy's), with TLS off so
	// that the proxy can read the protocol.
	DSN(hostport string) string
	// NewOrderID returns an order identity not used before in the run.
	NewOrderID() model.OrderID
	// Stored reads order id from the tables.
	Stored(ctx context.Context, id model.OrderID) (*model.Order, error)
	// Check compares the stored order want.Number with want, its version
	// included, and describes the first difference.
	Check(ctx context.Context, want *model.Order) error
	// Insert stores o with plain SQL (the setup of a load).
	Insert(ctx context.Context, o *model.Order) error
	// Close drops the run's schema or database.
	Close(ctx context.Context) error

	// newCounter opens a proxy in front of the server that counts the
	// traffic of the connections made through it.
	newCounter() (counter, error)
	// rowsWritten returns the rows inserted, updated and deleted in the
	// run's tables so far, from the server's statistics, once the
	// connection of x (its only one) has published them; or -1 when the
	// server has no such figure (the counter then gives it).
	rowsWritten(ctx context.Context, x execer) int64
}

// execer runs a statement on a contender's own connections.
type execer interface {
	Exec(ctx context.Context, sql string) error
}

// Counts are what a counting proxy counted. A figure it cannot count is
// negative.
type Counts struct {
	// Trips is the number of round trips: the times a client waited for
	// the server.
	Trips int64
	// Stmts is the number of statements the server ran.
	Stmts int64
	// Rows is the number of rows the statements wrote, as the server
	// reported them (negative when the protocol does not report them;
	// the backend's statistics then give them).
	Rows int64
}

// counter is a counting proxy: [Proxy] or [MySQLProxy].
type counter interface {
	// Addr returns the proxy's host:port.
	Addr() string
	// Start resets the counts and starts counting.
	Start()
	// Stop stops counting and returns the counts since Start.
	Stop() Counts
	// Close stops the proxy and closes its connections.
	Close() error
}
