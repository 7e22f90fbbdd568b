package e2e

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/dddkit/dddkit/benchmarks/internal/model"
)

// bunOrder is the order as a bun model.
type bunOrder struct {
	bun.BaseModel `bun:"table:orders"`

	ID        int64        `bun:"id,pk"`
	Customer  string       `bun:"customer"`
	Recipient bunRecipient `bun:"embed:recipient_"`
	Items     []*bunItem   `bun:"rel:has-many,join:id=order_id"`
	Total     int64        `bun:"total"`
	Status    string       `bun:"status"`
	Version   int64        `bun:"version"`
}

type bunRecipient struct {
	Name    string `bun:"name"`
	Phone   string `bun:"phone"`
	Address string `bun:"address"`
}

type bunItem struct {
	bun.BaseModel `bun:"table:order_items"`

	OrderID   int64  `bun:"order_id,pk"`
	ID        int64  `bun:"id,pk"`
	Product   string `bun:"product"`
	Quantity  int    `bun:"quantity"`
	UnitPrice int64  `bun:"unit_price"`
}

func toBun(o *model.Order) *bunOrder {
	b := &bunOrder{ID: int64(o.Number), Customer: o.Customer, Recipient: bunRecipient(o.Recipient),
		Total: o.Total, Status: o.Status, Version: o.Version}
	for _, it := range o.Items {
		b.Items = append(b.Items, &bunItem{OrderID: int64(o.Number), ID: int64(it.ID), Product: it.Product, Quantity: it.Quantity, UnitPrice: it.UnitPrice})
	}
	return b
}

func fromBun(b *bunOrder) *model.Order {
	o := &model.Order{Number: model.OrderID(b.ID), Customer: b.Customer, Recipient: model.Recipient(b.Recipient),
		Total: b.Total, Status: b.Status, Version: b.Version}
	for _, it := range b.Items {
		o.Items = append(o.Items, &model.Item{ID: model.ItemID(it.ID), Product: it.Product, Quantity: it.Quantity, UnitPrice: it.UnitPrice})
	}
	return o
}

type bunBase struct{ db *bun.DB }

// openBunDB opens bun on pgx through database/sql, the driver dddkit uses
// natively.
func openBunDB(dsn string, maxConns int32) (bunBase, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return bunBase{}, err
	}
	sqlDB := stdlib.OpenDB(*cfg)
	sqlDB.SetMaxOpenConns(int(maxConns))
	sqlDB.SetMaxIdleConns(int(maxConns))
	return bunBase{bun.NewDB(sqlDB, pgdialect.New())}, nil
}

// Exec implements [Saver] and [Loader].
func (b bunBase) Exec(ctx context.Context, sql string) error {
	_, err := b.db.ExecContext(ctx, sql)
	return err
}

// Close implements [Saver] and [Loader].
func (b bunBase) Close() error { return b.db.Close() }

// bunSaver saves as a bun user writes the relation by hand: bun saves no
// relation by itself.
type bunSaver struct {
	bunBase
	o *bunOrder
}

func openBun(_ context.Context, dsn string, maxConns int32) (Saver, error) {
	b, err := openBunDB(dsn, maxConns)
	return &bunSaver{bunBase: b}, err
}

// Setup implements [Saver].
func (b *bunSaver) Setup(ctx context.Context, o *model.Order) error {
	bo := toBun(o)
	err := b.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(bo).Exec(ctx); err != nil {
			return err
		}
		_, err := tx.NewInsert().Model(&bo.Items).Exec(ctx)
		return err
	})
	if err != nil {
		return err
	}
	b.o = new(bunOrder)
	return b.db.NewSelect().Model(b.o).Relation("Items", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("id") }).
		Where("id = ?", int64(o.Number)).Scan(ctx)
}

// Prepare implements [Saver].
func (b *bunSaver) Prepare(ch model.Change) {
	o := fromBun(b.o)
	model.Apply(o, ch)
	b.o = toBun(o)
}

// Save implements [Saver].
func (b *bunSaver) Save(ctx context.Context) error {
	o := b.o
	old := o.Version
	o.Version++
	err := b.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model(o).WherePK().Where("version = ?", old).Exec(ctx)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			if err == nil {
				err = errConflict
			}
			return err
		}
		if _, err := tx.NewInsert().Model(&o.Items).
			On("CONFLICT (order_id, id) DO UPDATE").
			Set("product = EXCLUDED.product, quantity = EXCLUDED.quantity, unit_price = EXCLUDED.unit_price").
			Exec(ctx); err != nil {
			return err
		}
		ids := make([]int64, len(o.Items))
		for i, it := range o.Items {
			ids[i] = it.ID
		}
		_, err = tx.NewDelete().Model((*bunItem)(nil)).Where("order_id = ?", o.ID).Where("id NOT IN (?)", bun.In(ids)).Exec(ctx)
		return err
	})
	if err != nil {
		o.Version = old
	}
	return err
}

type bunLoader struct{ bunBase }

func openBunLoad(_ context.Context, dsn string, maxConns int32) (Loader, error) {
	b, err := openBunDB(dsn, maxConns)
	return &bunLoader{b}, err
}

// Load implements [Loader].
func (b *bunLoader) Load(ctx context.Context, id model.OrderID) (*model.Order, error) {
	o := new(bunOrder)
	err := b.db.NewSelect().Model(o).Relation("Items", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("id") }).
		Where("id = ?", int64(id)).Scan(ctx)
	if err != nil {
		return nil, err
	}
	return fromBun(o), nil
}
