package e2e

import (
	"context"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/dddkit/dddkit/benchmarks/internal/model"
)

// gormOrder is the order as a GORM model.
type gormOrder struct {
	ID        int64         `gorm:"primaryKey;autoIncrement:false"`
	Customer  string        `gorm:"column:customer"`
	Recipient gormRecipient `gorm:"embedded;embeddedPrefix:recipient_"`
	Items     []gormItem    `gorm:"foreignKey:OrderID"`
	Total     int64
	Status    string
	Version   int64
}

// TableName tells GORM the table.
func (gormOrder) TableName() string { return "orders" }

type gormRecipient struct {
	Name    string
	Phone   string
	Address string
}

type gormItem struct {
	OrderID   int64 `gorm:"primaryKey;autoIncrement:false"`
	ID        int64 `gorm:"primaryKey;autoIncrement:false"`
	Product   string
	Quantity  int
	UnitPrice int64
}

// TableName tells GORM the table.
func (gormItem) TableName() string { return "order_items" }

func toGORM(o *model.Order) *gormOrder {
	g := &gormOrder{ID: int64(o.Number), Customer: o.Customer, Recipient: gormRecipient(o.Recipient),
		Total: o.Total, Status: o.Status, Version: o.Version}
	for _, it := range o.Items {
		g.Items = append(g.Items, gormItem{OrderID: int64(o.Number), ID: int64(it.ID), Product: it.Product, Quantity: it.Quantity, UnitPrice: it.UnitPrice})
	}
	return g
}

func fromGORM(g *gormOrder) *model.Order {
	o := &model.Order{Number: model.OrderID(g.ID), Customer: g.Customer, Recipient: model.Recipient(g.Recipient),
		Total: g.Total, Status: g.Status, Version: g.Version}
	for _, it := range g.Items {
		o.Items = append(o.Items, &model.Item{ID: model.ItemID(it.ID), Product: it.Product, Quantity: it.Quantity, UnitPrice: it.UnitPrice})
	}
	return o
}

type gormBase struct{ db *gorm.DB }

func openGORMDB(dsn string, maxConns int32) (gormBase, error) {
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return gormBase{}, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return gormBase{}, err
	}
	sqlDB.SetMaxOpenConns(int(maxConns))
	sqlDB.SetMaxIdleConns(int(maxConns))
	return gormBase{db}, nil
}

// Exec implements [Saver] and [Loader].
func (g gormBase) Exec(ctx context.Context, sql string) error {
	return g.db.WithContext(ctx).Exec(sql).Error
}

// Close implements [Saver] and [Loader].
func (g gormBase) Close() error {
	sqlDB, err := g.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// gormSaver saves with GORM's Save and FullSaveAssociations, which upserts
// the order and every item but never deletes an item: the removed ones
// need a DELETE of their own.
type gormSaver struct {
	gormBase
	o *gormOrder
}

func openGORM(_ context.Context, dsn string, maxConns int32) (Saver, error) {
	b, err := openGORMDB(dsn, maxConns)
	return &gormSaver{gormBase: b}, err
}

// Setup implements [Saver].
func (g *gormSaver) Setup(ctx context.Context, o *model.Order) error {
	db := g.db.WithContext(ctx)
	if err := db.Create(toGORM(o)).Error; err != nil {
		return err
	}
	g.o = new(gormOrder)
	return db.Preload("Items", func(db *gorm.DB) *gorm.DB { return db.Order("id") }).First(g.o, int64(o.Number)).Error
}

// Prepare implements [Saver].
func (g *gormSaver) Prepare(ch model.Change) {
	o := fromGORM(g.o)
	model.Apply(o, ch)
	o.Version++
	g.o = toGORM(o)
}

// Save implements [Saver].
func (g *gormSaver) Save(ctx context.Context) error {
	o := g.o
	return g.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Session(&gorm.Session{FullSaveAssociations: true}).Save(o).Error; err != nil {
			return err
		}
		ids := make([]int64, len(o.Items))
		for i, it := range o.Items {
			ids[i] = it.ID
		}
		return tx.Where("order_id = ? AND id NOT IN ?", o.ID, ids).Delete(&gormItem{}).Error
	})
}

type gormLoader struct{ gormBase }

func openGORMLoad(_ context.Context, dsn string, maxConns int32) (Loader, error) {
	b, err := openGORMDB(dsn, maxConns)
	return &gormLoader{b}, err
}

// Load implements [Loader].
func (g *gormLoader) Load(ctx context.Context, id model.OrderID) (*model.Order, error) {
	o := new(gormOrder)
	err := g.db.WithContext(ctx).Preload("Items", func(db *gorm.DB) *gorm.DB { return db.Order("id") }).First(o, int64(id)).Error
	if err != nil {
		return nil, err
	}
	return fromGORM(o), nil
}
