package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dddkit/dddkit/benchmarks/internal/model"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// MySQLDSNVar is the environment variable that holds the DSN of a MariaDB
// or MySQL server (a DSN of go-sql-driver/mysql, or a mysql:// URL).
const MySQLDSNVar = "DDDKIT_TEST_MYSQL_DSN"

// mysqlSchema holds the tables of the order example in MySQL's form
// (examples/order/infrastructure/schema/mysql.sql) with the columns of
// the benchmarks' order, as [schemaSQL] holds them for PostgreSQL.
var mysqlSchema = []string{`
CREATE TABLE orders (
    id                BIGINT       NOT NULL PRIMARY KEY,
    customer          VARCHAR(255) NOT NULL,
    recipient_name    TEXT         NOT NULL,
    recipient_phone   TEXT         NOT NULL,
    recipient_address TEXT         NOT NULL,
    total             BIGINT       NOT NULL CHECK (total >= 0),
    status            VARCHAR(16)  NOT NULL,
    version           BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`, `
CREATE TABLE order_items (
    order_id   BIGINT       NOT NULL,
    id         BIGINT       NOT NULL,
    product    VARCHAR(255) NOT NULL,
    quantity   INTEGER      NOT NULL CHECK (quantity > 0),
    unit_price BIGINT       NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, id),
    UNIQUE (order_id, product),
    FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`}

// MySQLEnv is a database of its own on a MariaDB (or MySQL) server, with
// the order example's tables.
type MySQLEnv struct {
	// Database is the name of the database.
	Database string
	base     *mysql.Config // the DSN given, as sqlstore.MySQLDSN completes it
	root     *sql.DB       // on the DSN given: creates and drops the database
	admin    *sql.DB       // in the database: setup and checks
	nextID   model.OrderID
}

// OpenMySQL creates a new database and its tables on the server at dsn.
func OpenMySQL(ctx context.Context, dsn string) (*MySQLEnv, error) {
	full, err := sqlstore.MySQLDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", MySQLDSNVar, err)
	}
	cfg, err := mysql.ParseDSN(full)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", MySQLDSNVar, err)
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	e := &MySQLEnv{Database: fmt.Sprintf("dddkit_bench_%d_%s", os.Getpid(), hex.EncodeToString(b[:])), base: cfg}
	e.root, err = sql.Open("mysql", full)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := e.root.PingContext(cctx); err != nil {
		_ = e.root.Close()
		return nil, fmt.Errorf("connect to MariaDB: %w", err)
	}
	if _, err := e.root.ExecContext(ctx, "CREATE DATABASE "+quoteMySQL(e.Database)+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		_ = e.root.Close()
		return nil, fmt.Errorf("create database %s: %w", e.Database, err)
	}
	e.admin, err = sql.Open("mysql", e.DSN(""))
	if err == nil {
		for _, q := range mysqlSchema {
			if _, err = e.admin.ExecContext(ctx, q); err != nil {
				err = fmt.Errorf("create the tables: %w", err)
				break
			}
		}
	}
	if err != nil {
		return nil, errors.Join(err, e.Close(ctx))
	}
	return e, nil
}

// quoteMySQL quotes an identifier with backticks.
func quoteMySQL(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// Close drops the database with all it holds.
func (e *MySQLEnv) Close(ctx context.Context) error {
	var errs []error
	if e.admin != nil {
		errs = append(errs, e.admin.Close())
	}
	_, err := e.root.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteMySQL(e.Database))
	if err != nil {
		err = fmt.Errorf("drop database %s: %w", e.Database, err)
	}
	return errors.Join(append(errs, err, e.root.Close())...)
}

// Name implements [Backend].
func (e *MySQLEnv) Name() string { return "MariaDB" }

// Contenders implements [Backend].
func (e *MySQLEnv) Contenders() []Contender { return MySQLContenders() }

// NewOrderID implements [Backend].
func (e *MySQLEnv) NewOrderID() model.OrderID {
	e.nextID++
	return e.nextID
}

// DSN implements [Backend]: the DSN given, completed by
// sqlstore.MySQLDSN (multiStatements, interpolateParams, parseTime,
// clientFoundRows, loc=UTC and the session's time_zone), in the run's
// database. Every contender connects with it.
func (e *MySQLEnv) DSN(hostport string) string {
	c := e.base.Clone()
	c.DBName = e.Database
	if hostport != "" {
		c.Net, c.Addr = "tcp", hostport
		c.TLSConfig, c.TLS = "false", nil
	}
	return c.FormatDSN()
}

// ServerAddr returns the server's host:port, the address of a counting
// proxy's connections.
func (e *MySQLEnv) ServerAddr() (string, error) {
	if e.base.Net != "tcp" {
		return "", fmt.Errorf("%s: the counting proxy needs a TCP address, not %s(%s)", MySQLDSNVar, e.base.Net, e.base.Addr)
	}
	if _, _, err := net.SplitHostPort(e.base.Addr); err != nil {
		return net.JoinHostPort(e.base.Addr, "3306"), nil
	}
	return e.base.Addr, nil
}

// ServerVersion returns the server's version string.
func (e *MySQLEnv) ServerVersion(ctx context.Context) (string, error) {
	var v string
	err := e.admin.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v)
	return v, err
}

// Variable returns a server variable as a connection of the contenders
// sees it.
func (e *MySQLEnv) Variable(ctx context.Context, name string) (string, error) {
	var v string
	err := e.admin.QueryRowContext(ctx, "SELECT @@"+name).Scan(&v)
	return v, err
}

// Stored implements [Backend].
func (e *MySQLEnv) Stored(ctx context.Context, id model.OrderID) (*model.Order, error) {
	o := &model.Order{Number: id}
	err := e.admin.QueryRowContext(ctx, `SELECT customer, recipient_name, recipient_phone, recipient_address, total, status, version
		FROM orders WHERE id = ?`, int64(id)).Scan(&o.Customer, &o.Recipient.Name, &o.Recipient.Phone,
		&o.Recipient.Address, &o.Total, &o.Status, &o.Version)
	if err != nil {
		return nil, fmt.Errorf("read order %d: %w", id, err)
	}
	rows, err := e.admin.QueryContext(ctx, `SELECT id, product, quantity, unit_price FROM order_items WHERE order_id = ? ORDER BY id`, int64(id))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		it := new(model.Item)
		if err := rows.Scan(&it.ID, &it.Product, &it.Quantity, &it.UnitPrice); err != nil {
			return nil, err
		}
		o.Items = append(o.Items, it)
	}
	return o, rows.Err()
}

// Check implements [Backend].
func (e *MySQLEnv) Check(ctx context.Context, want *model.Order) error {
	got, err := e.Stored(ctx, want.Number)
	if err != nil {
		return err
	}
	return Same(got, want)
}

// Insert implements [Backend].
func (e *MySQLEnv) Insert(ctx context.Context, o *model.Order) error {
	return insertMySQL(ctx, e.admin, o)
}

func (e *MySQLEnv) newCounter() (counter, error) {
	addr, err := e.ServerAddr()
	if err != nil {
		return nil, err
	}
	return NewMySQLProxy(addr)
}

// rowsWritten implements [Backend]: MariaDB reports the rows each
// statement wrote, which the proxy counts.
func (e *MySQLEnv) rowsWritten(context.Context, execer) int64 { return -1 }

// openMySQL opens a pool of at most maxConns connections on dsn.
func openMySQL(ctx context.Context, dsn string, maxConns int32) (*sql.DB, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(int(maxConns))
	db.SetMaxIdleConns(int(maxConns))
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}
