package e2e

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/dddkit/dddkit/benchmarks/internal/model"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// MySQLContenders returns the contenders on MariaDB (or MySQL), dddkit's
// first: dddkit and the hand-written floor, through the same driver
// (go-sql-driver/mysql) with the same DSN, the one sqlstore.MySQLDSN
// makes.
func MySQLContenders() []Contender {
	return []Contender{
		{Name: DddkitSave, Note: "snapshot diff, only the changed rows and columns, in one multi-statement round trip with BEGIN and COMMIT",
			Saver: openMySQLDddkitSave, Loader: openMySQLDddkitLoad,
			LoadNote: "Find: both SELECTs in one multi-statement round trip, in a read-only snapshot begun and committed in it, and the snapshot copy"},
		{Name: "dddkit Update", Note: "Update(ctx, id, fn): load, change and save in one transaction (the load is timed too)",
			Saver: openMySQLDddkitUpdate},
		{Name: Hand, Note: "floor: in one multi-statement round trip, START TRANSACTION, the needed statements, the version check that fails on the server, COMMIT",
			Saver: openMySQLHand, Loader: openMySQLHandLoad,
			LoadNote: "floor: both SELECTs in one multi-statement round trip, scanned by hand"},
	}
}

type sqlBase struct{ db *sql.DB }

// Exec implements [Saver] and [Loader].
func (s *sqlBase) Exec(ctx context.Context, q string) error {
	_, err := s.db.ExecContext(ctx, q)
	return err
}

// Close implements [Saver] and [Loader].
func (s *sqlBase) Close() error { return s.db.Close() }

func newMySQLDddkit(ctx context.Context, dsn string, maxConns int32) (sqlBase, orderRepo, error) {
	db, err := openMySQL(ctx, dsn, maxConns)
	if err != nil {
		return sqlBase{}, nil, err
	}
	sdb, err := sqlstore.NewSQL(sqlx.NewDb(db, "mysql"))
	if err != nil {
		_ = db.Close()
		return sqlBase{}, nil, err
	}
	repo, err := sqlstore.NewRepository[*model.Order, model.OrderID](sdb, orderMapping)
	if err != nil {
		_ = db.Close()
		return sqlBase{}, nil, err
	}
	return sqlBase{db}, repo, nil
}

// mysqlDddkitSave saves the order it loaded with Save.
type mysqlDddkitSave struct {
	sqlBase
	repo orderRepo
	o    *model.Order
}

func openMySQLDddkitSave(ctx context.Context, dsn string, maxConns int32) (Saver, error) {
	b, repo, err := newMySQLDddkit(ctx, dsn, maxConns)
	return &mysqlDddkitSave{sqlBase: b, repo: repo}, err
}

// Setup implements [Saver].
func (d *mysqlDddkitSave) Setup(ctx context.Context, o *model.Order) error {
	if err := d.repo.Save(ctx, model.CopyHand(o)); err != nil {
		return err
	}
	var err error
	d.o, err = d.repo.Find(ctx, o.Number)
	return err
}

// Prepare implements [Saver].
func (d *mysqlDddkitSave) Prepare(ch model.Change) { model.Apply(d.o, ch) }

// Save implements [Saver].
func (d *mysqlDddkitSave) Save(ctx context.Context) error { return d.repo.Save(ctx, d.o) }

// mysqlDddkitUpdate runs each step through Update.
type mysqlDddkitUpdate struct {
	sqlBase
	repo orderRepo
	id   model.OrderID
	ch   model.Change
}

func openMySQLDddkitUpdate(ctx context.Context, dsn string, maxConns int32) (Saver, error) {
	b, repo, err := newMySQLDddkit(ctx, dsn, maxConns)
	return &mysqlDddkitUpdate{sqlBase: b, repo: repo}, err
}

// Setup implements [Saver].
func (d *mysqlDddkitUpdate) Setup(ctx context.Context, o *model.Order) error {
	d.id = o.Number
	return d.repo.Save(ctx, model.CopyHand(o))
}

// Prepare implements [Saver].
func (d *mysqlDddkitUpdate) Prepare(ch model.Change) { d.ch = ch }

// Save implements [Saver].
func (d *mysqlDddkitUpdate) Save(ctx context.Context) error {
	return update(ctx, d.repo, d.id, func(o *model.Order) error {
		model.Apply(o, d.ch)
		return nil
	})
}

type mysqlDddkitLoad struct {
	sqlBase
	repo orderRepo
}

func openMySQLDddkitLoad(ctx context.Context, dsn string, maxConns int32) (Loader, error) {
	b, repo, err := newMySQLDddkit(ctx, dsn, maxConns)
	return &mysqlDddkitLoad{sqlBase: b, repo: repo}, err
}

// Load implements [Loader].
func (d *mysqlDddkitLoad) Load(ctx context.Context, id model.OrderID) (*model.Order, error) {
	o, err := d.repo.Find(ctx, id)
	if err == nil {
		// Stop tracking it, as a caller that drops the order would let
		// the weak pointer do: the next Find must select again.
		d.repo.Detach(ctx, o)
	}
	return o, err
}

// insertMySQL inserts o with plain SQL: the order and one multi-row
// INSERT of its items, in one round trip (autocommitted, untimed setup).
func insertMySQL(ctx context.Context, db *sql.DB, o *model.Order) error {
	var b strings.Builder
	b.WriteString(`INSERT INTO orders (id, customer, recipient_name, recipient_phone, recipient_address, total, status, version)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	args := []any{int64(o.Number), o.Customer, o.Recipient.Name, o.Recipient.Phone, o.Recipient.Address, o.Total, o.Status, o.Version}
	if len(o.Items) > 0 {
		b.WriteString(";\n")
		args = appendInsertItems(&b, args, o.Number, values(o))
	}
	_, err := db.ExecContext(ctx, b.String(), args...)
	return err
}

// appendInsertItems writes one multi-row INSERT of items to b and returns
// args with its arguments.
func appendInsertItems(b *strings.Builder, args []any, id model.OrderID, items []model.Item) []any {
	b.WriteString("INSERT INTO order_items (order_id, id, product, quantity, unit_price) VALUES ")
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?)")
		args = append(args, int64(id), int64(it.ID), it.Product, it.Quantity, it.UnitPrice)
	}
	return args
}

// mysqlConflict is the message of the hand-written version check, which
// the server refuses to take as a time zone.
const mysqlConflict = "version conflict"

// mysqlCheck follows the root's UPDATE: when it matched no row (another
// save changed the version), it sets the session's time zone to a name
// no time zone has, which the server refuses with error 1298, so that the
// statements after it, the COMMIT among them, do not run. When the row
// matched it sets the time zone to what it is. (A multi-statement round
// trip stops at the first statement that fails; a check read by the
// client after the round trip would come after the COMMIT.)
const mysqlCheck = "SET @@session.time_zone = IF(ROW_COUNT() = 1, @@session.time_zone, '" + mysqlConflict + "')"

// isMySQLConflict reports the failure of [mysqlCheck].
func isMySQLConflict(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1298 && strings.Contains(me.Message, mysqlConflict)
}

// mysqlHand sends exactly the statements the change needs, in one
// multi-statement round trip that begins and commits the transaction.
type mysqlHand struct {
	sqlBase
	o   *model.Order
	ch  model.Change
	buf strings.Builder
}

func openMySQLHand(ctx context.Context, dsn string, maxConns int32) (Saver, error) {
	db, err := openMySQL(ctx, dsn, maxConns)
	return &mysqlHand{sqlBase: sqlBase{db}}, err
}

// Setup implements [Saver].
func (h *mysqlHand) Setup(ctx context.Context, o *model.Order) error {
	if err := insertMySQL(ctx, h.db, o); err != nil {
		return err
	}
	var err error
	h.o, err = loadMySQL(ctx, h.db, o.Number)
	return err
}

// Prepare implements [Saver].
func (h *mysqlHand) Prepare(ch model.Change) { model.Apply(h.o, ch); h.ch = ch }

// Save implements [Saver].
func (h *mysqlHand) Save(ctx context.Context) error {
	o, ch := h.o, h.ch
	b := &h.buf
	b.Reset()
	args := make([]any, 0, 4+1+len(ch.Removed)+3*len(ch.Changed)+5*len(ch.Added))
	b.WriteString("START TRANSACTION;\nUPDATE orders SET total = ?, version = ? WHERE id = ? AND version = ?;\n")
	b.WriteString(mysqlCheck)
	args = append(args, o.Total, o.Version+1, int64(o.Number), o.Version)
	if len(ch.Removed) > 0 {
		b.WriteString(";\nDELETE FROM order_items WHERE order_id = ? AND id IN (")
		args = append(args, int64(o.Number))
		for i, id := range ch.Removed {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('?')
			args = append(args, int64(id))
		}
		b.WriteByte(')')
	}
	for _, it := range ch.Changed {
		b.WriteString(";\nUPDATE order_items SET quantity = ? WHERE order_id = ? AND id = ?")
		args = append(args, it.Quantity, int64(o.Number), int64(it.ID))
	}
	if len(ch.Added) > 0 {
		b.WriteString(";\n")
		args = appendInsertItems(b, args, o.Number, ch.Added)
	}
	b.WriteString(";\nCOMMIT")
	conn, err := h.db.Conn(ctx)
	if err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, b.String(), args...)
	if err != nil {
		// The round trip stopped at the failed statement, in the
		// transaction: roll it back, or drop the connection.
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		if isMySQLConflict(err) {
			err = errConflict
		}
	}
	_ = conn.Close()
	if err == nil {
		o.Version++
	}
	return err
}

type mysqlHandLoad struct{ sqlBase }

func openMySQLHandLoad(ctx context.Context, dsn string, maxConns int32) (Loader, error) {
	db, err := openMySQL(ctx, dsn, maxConns)
	return &mysqlHandLoad{sqlBase{db}}, err
}

// Load implements [Loader].
func (h *mysqlHandLoad) Load(ctx context.Context, id model.OrderID) (*model.Order, error) {
	return loadMySQL(ctx, h.db, id)
}

// loadMySQL reads an order with its items by hand: both SELECTs in one
// multi-statement round trip.
func loadMySQL(ctx context.Context, db *sql.DB, id model.OrderID) (*model.Order, error) {
	rows, err := db.QueryContext(ctx, `SELECT customer, recipient_name, recipient_phone, recipient_address, total, status, version FROM orders WHERE id = ?;
SELECT id, product, quantity, unit_price FROM order_items WHERE order_id = ? ORDER BY id`, int64(id), int64(id))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	o := &model.Order{Number: id}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, sql.ErrNoRows
	}
	if err := rows.Scan(&o.Customer, &o.Recipient.Name, &o.Recipient.Phone, &o.Recipient.Address, &o.Total, &o.Status, &o.Version); err != nil {
		return nil, err
	}
	if !rows.NextResultSet() {
		return nil, errors.Join(errors.New("the items' result is missing"), rows.Err())
	}
	for rows.Next() {
		it := new(model.Item)
		if err := rows.Scan(&it.ID, &it.Product, &it.Quantity, &it.UnitPrice); err != nil {
			return nil, err
		}
		o.Items = append(o.Items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return o, rows.Close()
}
