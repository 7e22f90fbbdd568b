package e2e

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/benchmarks/internal/model"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// Saver is one way to persist an order: a contender of the save
// benchmark, working on its own connection pool and its own order.
type Saver interface {
	// Setup inserts o (untimed) and loads it as the contender loads an
	// order it is going to change.
	Setup(ctx context.Context, o *model.Order) error
	// Prepare applies ch, one step of a workload, to the contender's
	// in-memory order (untimed).
	Prepare(ch model.Change)
	// Save writes the change to the database (timed).
	Save(ctx context.Context) error
	// Exec runs a statement on the contender's own connections.
	Exec(ctx context.Context, sql string) error
	// Close releases the connections.
	Close() error
}

// Loader is one way to load an order: a contender of the load benchmark.
type Loader interface {
	// Load reads order id with its items.
	Load(ctx context.Context, id model.OrderID) (*model.Order, error)
	// Exec runs a statement on the contender's own connections.
	Exec(ctx context.Context, sql string) error
	// Close releases the connections.
	Close() error
}

// Contender names a way to save or load an order and opens it.
type Contender struct {
	// Name is the name the report prints.
	Name string
	// Note says how it works.
	Note string
	// Saver opens the contender's save on dsn with at most maxConns
	// connections; nil when it does not save.
	Saver func(ctx context.Context, dsn string, maxConns int32) (Saver, error)
	// Loader opens the contender's load; nil when it does not load.
	Loader func(ctx context.Context, dsn string, maxConns int32) (Loader, error)
	// LoadNote says how the load works.
	LoadNote string
}

// LoadName is the name the report prints for the contender's load:
// [DddkitFind] for dddkit's.
func (c Contender) LoadName() string {
	if c.Name == DddkitSave {
		return DddkitFind
	}
	return c.Name
}

// DddkitFind is the name of the reference contender of the load.
const DddkitFind = "dddkit Find"

// Hand is the name of the hand-written contender, the floor.
const Hand = "hand-written SQL"

// DddkitSave is the name of the reference contender: ratios are computed
// against it.
const DddkitSave = "dddkit Save"

// Contenders returns every contender, dddkit's first.
func Contenders() []Contender {
	return []Contender{
		{Name: DddkitSave, Note: "snapshot diff, only the changed rows and columns, one pgx.Batch",
			Saver: openDddkitSave, Loader: openDddkitLoad,
			LoadNote: "Find: both SELECTs in one pgx.Batch in a read-only snapshot, and the snapshot copy"},
		{Name: "dddkit Update", Note: "Update(ctx, id, fn): load, change and save in one transaction (the load is timed too)",
			Saver: openDddkitUpdate},
		{Name: Hand, Note: "floor: exactly the needed statements in one pgx.Batch",
			Saver: openHand, Loader: openHandLoad, LoadNote: "floor: both SELECTs in one pgx.Batch, scanned by hand"},
		{Name: "naive", Note: "in a transaction: root UPDATE, then one upsert per item and a DELETE of the others, one round trip each",
			Saver: openNaive},
		{Name: "delete and reinsert", Note: "Spring Data JDBC style: root UPDATE, DELETE of all items, one multi-row INSERT of all, one pgx.Batch",
			Saver: openReinsert},
		{Name: "GORM", Note: "Save with FullSaveAssociations (upsert of every item) and a DELETE of the others, in a transaction; version written, not checked",
			Saver: openGORM, Loader: openGORMLoad, LoadNote: "First with Preload(\"Items\")"},
		{Name: "bun", Note: "in RunInTx: root UPDATE with version check, bulk upsert of every item, DELETE of the others",
			Saver: openBun, Loader: openBunLoad, LoadNote: "NewSelect with Relation(\"Items\")"},
	}
}

var orderMapping = func() *sqlstore.Mapping[*model.Order] {
	m, err := sqlstore.NewMapping[*model.Order](
		sqlstore.Table{Name: "orders"},
		sqlstore.Child{Field: "Items", Table: "order_items", ParentKey: "order_id"},
	)
	if err != nil {
		panic(err)
	}
	return m
}()

// orderRepo is what the benchmarks use of dddkit's repository of orders
// (its Update is called through [update]).
type orderRepo interface {
	Find(ctx context.Context, id model.OrderID) (*model.Order, error)
	Save(ctx context.Context, o *model.Order) error
	Detach(ctx context.Context, o *model.Order)
}

type pgxBase struct{ pool *pgxpool.Pool }

// Exec implements [Saver] and [Loader].
func (p *pgxBase) Exec(ctx context.Context, sql string) error {
	_, err := p.pool.Exec(ctx, sql)
	return err
}

// Close implements [Saver] and [Loader].
func (p *pgxBase) Close() error { p.pool.Close(); return nil }

func newDddkit(ctx context.Context, dsn string, maxConns int32) (pgxBase, orderRepo, error) {
	pool, err := newPool(ctx, dsn, maxConns)
	if err != nil {
		return pgxBase{}, nil, err
	}
	repo, err := sqlstore.NewRepository[*model.Order, model.OrderID](sqlstore.NewPGX(pool), orderMapping)
	if err != nil {
		pool.Close()
		return pgxBase{}, nil, err
	}
	return pgxBase{pool}, repo, nil
}

// dddkitSave saves the order it loaded with Save.
type dddkitSave struct {
	pgxBase
	repo orderRepo
	o    *model.Order
}

func openDddkitSave(ctx context.Context, dsn string, maxConns int32) (Saver, error) {
	b, repo, err := newDddkit(ctx, dsn, maxConns)
	return &dddkitSave{pgxBase: b, repo: repo}, err
}

// Setup implements [Saver].
func (d *dddkitSave) Setup(ctx context.Context, o *model.Order) error {
	if err := d.repo.Save(ctx, model.CopyHand(o)); err != nil {
		return err
	}
	var err error
	d.o, err = d.repo.Find(ctx, o.Number)
	return err
}

// Prepare implements [Saver].
func (d *dddkitSave) Prepare(ch model.Change) { model.Apply(d.o, ch) }

// Save implements [Saver].
func (d *dddkitSave) Save(ctx context.Context) error { return d.repo.Save(ctx, d.o) }

// dddkitUpdate runs each step through Update.
type dddkitUpdate struct {
	pgxBase
	repo orderRepo
	id   model.OrderID
	ch   model.Change
}

func openDddkitUpdate(ctx context.Context, dsn string, maxConns int32) (Saver, error) {
	b, repo, err := newDddkit(ctx, dsn, maxConns)
	return &dddkitUpdate{pgxBase: b, repo: repo}, err
}

// Setup implements [Saver].
func (d *dddkitUpdate) Setup(ctx context.Context, o *model.Order) error {
	d.id = o.Number
	return d.repo.Save(ctx, model.CopyHand(o))
}

// Prepare implements [Saver].
func (d *dddkitUpdate) Prepare(ch model.Change) { d.ch = ch }

// Save implements [Saver].
func (d *dddkitUpdate) Save(ctx context.Context) error {
	return update(ctx, d.repo, d.id, func(o *model.Order) error {
		model.Apply(o, d.ch)
		return nil
	})
}

// update calls the repository's Update with fn, whichever form its
// callback takes (with or without a context).
func update(ctx context.Context, repo any, id model.OrderID, fn func(*model.Order) error) error {
	switch r := repo.(type) {
	case interface {
		Update(context.Context, model.OrderID, func(*model.Order) error) error
	}:
		return r.Update(ctx, id, fn)
	case interface {
		Update(context.Context, model.OrderID, func(context.Context, *model.Order) error) error
	}:
		return r.Update(ctx, id, func(_ context.Context, o *model.Order) error { return fn(o) })
	}
	return fmt.Errorf("%T has no Update method of a known form", repo)
}

type dddkitLoad struct {
	pgxBase
	repo orderRepo
}

func openDddkitLoad(ctx context.Context, dsn string, maxConns int32) (Loader, error) {
	b, repo, err := newDddkit(ctx, dsn, maxConns)
	return &dddkitLoad{pgxBase: b, repo: repo}, err
}

// Load implements [Loader].
func (d *dddkitLoad) Load(ctx context.Context, id model.OrderID) (*model.Order, error) {
	o, err := d.repo.Find(ctx, id)
	if err == nil {
		// Stop tracking it, as a caller that drops the order would let
		// the weak pointer do: the next Find must select again.
		d.repo.Detach(ctx, o)
	}
	return o, err
}

// errConflict is the hand-written contenders' optimistic-lock failure.
var errConflict = errors.New("optimistic lock conflict")

const insertRoot = `INSERT INTO orders (id, customer, recipient_name, recipient_phone, recipient_address, total, status, version)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// insertItems returns one multi-row INSERT of items and its arguments.
func insertItems(id model.OrderID, items []model.Item) (string, []any) {
	sql := make([]byte, 0, 64+len(items)*32)
	sql = append(sql, "INSERT INTO order_items (order_id, id, product, quantity, unit_price) VALUES "...)
	args := make([]any, 0, 5*len(items))
	for i, it := range items {
		if i > 0 {
			sql = append(sql, ", "...)
		}
		n := len(args)
		sql = fmt.Appendf(sql, "($%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5)
		args = append(args, int64(id), int64(it.ID), it.Product, it.Quantity, it.UnitPrice)
	}
	return string(sql), args
}

func values(o *model.Order) []model.Item {
	v := make([]model.Item, len(o.Items))
	for i, it := range o.Items {
		v[i] = *it
	}
	return v
}

// insertPlain inserts o with plain pgx, in one batch.
func insertPlain(ctx context.Context, pool *pgxpool.Pool, o *model.Order) error {
	b := &pgx.Batch{}
	b.Queue(insertRoot, int64(o.Number), o.Customer, o.Recipient.Name, o.Recipient.Phone, o.Recipient.Address, o.Total, o.Status, o.Version)
	sql, args := insertItems(o.Number, values(o))
	b.Queue(sql, args...)
	return pool.SendBatch(ctx, b).Close()
}

// hand sends exactly the statements the change needs, in one batch.
type hand struct {
	pgxBase
	o  *model.Order
	ch model.Change
}

func openHand(ctx context.Context, dsn string, maxConns int32) (Saver, error) {
	pool, err := newPool(ctx, dsn, maxConns)
	return &hand{pgxBase: pgxBase{pool}}, err
}

// Setup implements [Saver].
func (h *hand) Setup(ctx context.Context, o *model.Order) error {
	if err := insertPlain(ctx, h.pool, o); err != nil {
		return err
	}
	var err error
	h.o, err = loadPlain(ctx, h.pool, o.Number)
	return err
}

// Prepare implements [Saver].
func (h *hand) Prepare(ch model.Change) { model.Apply(h.o, ch); h.ch = ch }

// Save implements [Saver].
func (h *hand) Save(ctx context.Context) error {
	o, ch := h.o, h.ch
	b := &pgx.Batch{}
	b.Queue(`UPDATE orders SET total = $1, version = $2 WHERE id = $3 AND version = $4`,
		o.Total, o.Version+1, int64(o.Number), o.Version)
	if len(ch.Removed) > 0 {
		ids := make([]int64, len(ch.Removed))
		for i, id := range ch.Removed {
			ids[i] = int64(id)
		}
		b.Queue(`DELETE FROM order_items WHERE order_id = $1 AND id = ANY($2)`, int64(o.Number), ids)
	}
	for _, it := range ch.Changed {
		b.Queue(`UPDATE order_items SET quantity = $1 WHERE order_id = $2 AND id = $3`, it.Quantity, int64(o.Number), int64(it.ID))
	}
	if len(ch.Added) > 0 {
		sql, args := insertItems(o.Number, ch.Added)
		b.Queue(sql, args...)
	}
	br := h.pool.SendBatch(ctx, b)
	ct, err := br.Exec()
	if err == nil && ct.RowsAffected() != 1 {
		err = errConflict
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		o.Version++
	}
	return err
}

type handLoad struct{ pgxBase }

func openHandLoad(ctx context.Context, dsn string, maxConns int32) (Loader, error) {
	pool, err := newPool(ctx, dsn, maxConns)
	return &handLoad{pgxBase{pool}}, err
}

// Load implements [Loader].
func (h *handLoad) Load(ctx context.Context, id model.OrderID) (*model.Order, error) {
	return loadPlain(ctx, h.pool, id)
}

// loadPlain reads an order with its items by hand: both SELECTs in one
// batch.
func loadPlain(ctx context.Context, pool *pgxpool.Pool, id model.OrderID) (*model.Order, error) {
	b := &pgx.Batch{}
	o := &model.Order{Number: id}
	b.Queue(`SELECT customer, recipient_name, recipient_phone, recipient_address, total, status, version FROM orders WHERE id = $1`, int64(id)).
		QueryRow(func(r pgx.Row) error {
			return r.Scan(&o.Customer, &o.Recipient.Name, &o.Recipient.Phone, &o.Recipient.Address, &o.Total, &o.Status, &o.Version)
		})
	b.Queue(`SELECT id, product, quantity, unit_price FROM order_items WHERE order_id = $1 ORDER BY id`, int64(id)).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				it := new(model.Item)
				if err := rows.Scan(&it.ID, &it.Product, &it.Quantity, &it.UnitPrice); err != nil {
					return err
				}
				o.Items = append(o.Items, it)
			}
			return rows.Err()
		})
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return o, nil
}

// naive writes the root and every item, one statement and one round trip
// each, in a transaction: what a save that does not know what changed
// does.
type naive struct {
	pgxBase
	o *model.Order
}

func openNaive(ctx context.Context, dsn string, maxConns int32) (Saver, error) {
	pool, err := newPool(ctx, dsn, maxConns)
	return &naive{pgxBase: pgxBase{pool}}, err
}

// Setup implements [Saver].
func (n *naive) Setup(ctx context.Context, o *model.Order) error {
	if err := insertPlain(ctx, n.pool, o); err != nil {
		return err
	}
	var err error
	n.o, err = loadPlain(ctx, n.pool, o.Number)
	return err
}

// Prepare implements [Saver].
func (n *naive) Prepare(ch model.Change) { model.Apply(n.o, ch) }

// Save implements [Saver].
func (n *naive) Save(ctx context.Context) error {
	o := n.o
	err := pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		ct, err := tx.Exec(ctx, `UPDATE orders SET customer = $1, recipient_name = $2, recipient_phone = $3, recipient_address = $4,
			total = $5, status = $6, version = $7 WHERE id = $8 AND version = $9`,
			o.Customer, o.Recipient.Name, o.Recipient.Phone, o.Recipient.Address, o.Total, o.Status, o.Version+1, int64(o.Number), o.Version)
		if err != nil {
			return err
		}
		if ct.RowsAffected() != 1 {
			return errConflict
		}
		ids := make([]int64, len(o.Items))
		for i, it := range o.Items {
			ids[i] = int64(it.ID)
			if _, err := tx.Exec(ctx, `INSERT INTO order_items (order_id, id, product, quantity, unit_price) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (order_id, id) DO UPDATE SET product = excluded.product, quantity = excluded.quantity, unit_price = excluded.unit_price`,
				int64(o.Number), int64(it.ID), it.Product, it.Quantity, it.UnitPrice); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM order_items WHERE order_id = $1 AND NOT (id = ANY($2))`, int64(o.Number), ids)
		return err
	})
	if err == nil {
		o.Version++
	}
	return err
}

// reinsert replaces all the items, as Spring Data JDBC saves an aggregate.
type reinsert struct {
	pgxBase
	o *model.Order
}

func openReinsert(ctx context.Context, dsn string, maxConns int32) (Saver, error) {
	pool, err := newPool(ctx, dsn, maxConns)
	return &reinsert{pgxBase: pgxBase{pool}}, err
}

// Setup implements [Saver].
func (r *reinsert) Setup(ctx context.Context, o *model.Order) error {
	if err := insertPlain(ctx, r.pool, o); err != nil {
		return err
	}
	var err error
	r.o, err = loadPlain(ctx, r.pool, o.Number)
	return err
}

// Prepare implements [Saver].
func (r *reinsert) Prepare(ch model.Change) { model.Apply(r.o, ch) }

// Save implements [Saver].
func (r *reinsert) Save(ctx context.Context) error {
	o := r.o
	b := &pgx.Batch{}
	b.Queue(`UPDATE orders SET customer = $1, recipient_name = $2, recipient_phone = $3, recipient_address = $4,
		total = $5, status = $6, version = $7 WHERE id = $8 AND version = $9`,
		o.Customer, o.Recipient.Name, o.Recipient.Phone, o.Recipient.Address, o.Total, o.Status, o.Version+1, int64(o.Number), o.Version)
	b.Queue(`DELETE FROM order_items WHERE order_id = $1`, int64(o.Number))
	sql, args := insertItems(o.Number, values(o))
	b.Queue(sql, args...)
	br := r.pool.SendBatch(ctx, b)
	ct, err := br.Exec()
	if err == nil && ct.RowsAffected() != 1 {
		err = errConflict
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		o.Version++
	}
	return err
}
