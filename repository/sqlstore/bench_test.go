package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// BenchmarkSaveOneItemChanged saves an order of n items after a change of
// one item's quantity and of the order's total, on PostgreSQL over
// pgxpool, outside a transaction:
//
//   - impl=dddkit: through the repository: snapshot diff, generated
//     statements, one batch, snapshot advance;
//   - impl=hand: the lower bound: the two UPDATEs written by hand (the
//     order's total and version with the version check, and the item's
//     quantity) in one pgx.Batch.
func BenchmarkSaveOneItemChanged(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			be := pgxBackend(b)
			pool := be.raw.(pgxRaw).p
			ctx := context.Background()
			repo, err := NewRepository[*order, orderID](be.quiet, orderMapping(b))
			require.NoError(b, err)
			for id := orderID(1); id <= 2; id++ {
				o := newOrder(id, "alice")
				for i := 1; i <= n; i++ {
					o.items = append(o.items, &item{id: itemID(i), sku: fmt.Sprintf("SKU-%05d", i), quantity: 1})
				}
				o.recompute()
				require.NoError(b, repo.Save(ctx, o))
			}

			b.Run("impl=dddkit", func(b *testing.B) {
				o, err := repo.Find(ctx, 1)
				require.NoError(b, err)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					it := o.items[i%n]
					it.quantity++
					o.total.amount += 100
					if err := repo.Save(ctx, o); err != nil {
						b.Fatal(err)
					}
				}
			})

			b.Run("impl=hand", func(b *testing.B) {
				o, err := NewStore[*order, orderID](be.quiet, orderMapping(b)).Select(ctx, 2)
				require.NoError(b, err)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					it := o.items[i%n]
					it.quantity++
					o.total.amount += 100
					if err := handSave(ctx, pool, o, it); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func handSave(ctx context.Context, pool *pgxpool.Pool, o *order, it *item) error {
	err := checkedPair(ctx, pool,
		`UPDATE orders SET total_amount = $1, version = $2 WHERE id = $3 AND version = $4`, []any{o.total.amount, o.version + 1, int64(o.id), o.version},
		`UPDATE order_items SET quantity = $1 WHERE order_id = $2 AND id = $3`, []any{it.quantity, int64(o.id), int64(it.id)})
	if err == nil {
		o.version++
	}
	return err
}

// checkedPair sends, by hand, a root UPDATE checked to touch one row (the
// version check) and a second statement, in one pgx.Batch.
func checkedPair(ctx context.Context, pool *pgxpool.Pool, root string, rootArgs []any, next string, nextArgs []any) error {
	batch := &pgx.Batch{}
	batch.Queue(root, rootArgs...)
	batch.Queue(next, nextArgs...)
	br := pool.SendBatch(ctx, batch)
	ct, err := br.Exec()
	if err == nil && ct.RowsAffected() != 1 {
		err = errors.New("conflict")
	}
	if err == nil {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// BenchmarkLoadByCondition loads the 100 orders of one customer, 10 items
// each, out of 200 orders, on PostgreSQL over pgxpool, outside a
// transaction:
//
//   - impl=dddkit: Repository.FindAll with a condition: one batch (roots,
//     then the children of the selected roots), tracked aggregates;
//   - impl=hand: the floor: the same two SELECTs written by hand in one
//     batch, scanned into the same structs, not tracked;
//   - impl=n+1: the approach without a query API: the ids by hand, then one
//     Find per id.
//
// Each reports round trips per operation (trips/op).
func BenchmarkLoadByCondition(b *testing.B) {
	be := pgxBackend(b)
	pool := be.raw.(pgxRaw).p
	ctx := context.Background()
	seedRepo, err := NewRepository[*order, orderID](be.quiet, orderMapping(b))
	require.NoError(b, err)
	for id := orderID(1); id <= 200; id++ {
		cust := "alice"
		if id%2 == 0 {
			cust = "bob"
		}
		o := newOrder(id, cust)
		for i := 1; i <= 10; i++ {
			o.items = append(o.items, &item{id: itemID(i), sku: fmt.Sprintf("SKU-%02d", i), quantity: i})
		}
		o.recompute()
		require.NoError(b, seedRepo.Save(ctx, o))
	}
	q := Where(Eq("customer", "alice"))
	counting := func(b *testing.B) (*DB, func()) {
		var trips int
		last := 0
		db := NewPGX(pool, WithObserver(func(_ context.Context, s Statement) {
			if s.RoundTrip != last {
				trips, last = trips+1, s.RoundTrip
			}
		}))
		return db, func() { b.ReportMetric(float64(trips)/float64(b.N), "trips/op") }
	}
	check := func(b *testing.B, os []*order) {
		if len(os) != 100 || len(os[0].items) != 10 {
			b.Fatalf("loaded %d orders", len(os))
		}
	}

	b.Run("impl=dddkit", func(b *testing.B) {
		db, report := counting(b)
		repo, err := NewRepository[*order, orderID](db, orderMapping(b))
		require.NoError(b, err)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			os, err := repo.FindAll(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			check(b, os)
		}
		report()
	})

	b.Run("impl=hand", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			os, err := handLoad(ctx, pool, "alice")
			if err != nil {
				b.Fatal(err)
			}
			check(b, os)
		}
		b.ReportMetric(1, "trips/op")
	})

	b.Run("impl=n+1", func(b *testing.B) {
		db, report := counting(b)
		repo, err := NewRepository[*order, orderID](db, orderMapping(b))
		require.NoError(b, err)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			rows, err := pool.Query(ctx, `SELECT id FROM orders WHERE customer = $1 ORDER BY id`, "alice")
			if err != nil {
				b.Fatal(err)
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				b.Fatal(err)
			}
			os := make([]*order, 0, len(ids))
			for _, id := range ids {
				o, err := repo.Find(ctx, orderID(id))
				if err != nil {
					b.Fatal(err)
				}
				os = append(os, o)
			}
			check(b, os)
		}
		b.StopTimer()
		report() // the Finds' trips; the query of the ids adds one
	})
}

// handLoad is the floor of BenchmarkLoadByCondition: two SELECTs in one
// batch, scanned by hand.
func handLoad(ctx context.Context, pool *pgxpool.Pool, customer string) ([]*order, error) {
	batch := &pgx.Batch{}
	batch.Queue(`SELECT id, customer, total_amount, total_currency, version FROM orders WHERE customer = $1 ORDER BY id`, customer)
	batch.Queue(`SELECT order_id, id, sku, quantity FROM order_items WHERE order_id IN (SELECT id FROM orders WHERE customer = $1) ORDER BY order_id, id`, customer)
	br := pool.SendBatch(ctx, batch)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	var out []*order
	byID := map[orderID]*order{}
	for rows.Next() {
		o := &order{}
		if err := rows.Scan(&o.id, &o.customer, &o.total.amount, &o.total.currency, &o.version); err != nil {
			return nil, err
		}
		out = append(out, o)
		byID[o.id] = o
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = br.Query()
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var parent orderID
		it := &item{}
		if err := rows.Scan(&parent, &it.id, &it.sku, &it.quantity); err != nil {
			return nil, err
		}
		if o := byID[parent]; o != nil {
			o.items = append(o.items, it)
		}
	}
	return out, rows.Err()
}

// BenchmarkSaveOneGrandchildChangedMap is
// BenchmarkSaveOneGrandchildChanged with the leaves in maps of values:
// an invoice of 10 lines of 100 taxes each, in a map by code (1,000
// leaves), after a change of one tax's rate, on PostgreSQL over pgxpool,
// outside a transaction:
//
//   - impl=dddkit: through the repository: the diff finds the one changed
//     leaf, the store writes the version bump and its UPDATE in one batch;
//   - impl=hand: the floor: the same two UPDATEs written by hand (the
//     version with its check, and the tax's rate by its three-part key) in
//     one pgx.Batch.
func BenchmarkSaveOneGrandchildChangedMap(b *testing.B) {
	const lines, taxes = 10, 100
	be := pgxBackend(b)
	pool := be.raw.(pgxRaw).p
	ctx := context.Background()
	for _, s := range invoiceDDL {
		be.raw.exec(b, s)
	}
	repo, err := NewRepository[*invoice, int64](be.quiet, invoiceMapping(b))
	require.NoError(b, err)
	for id := int64(1); id <= 2; id++ {
		inv := &invoice{id: id, customer: "alice"}
		for l := 1; l <= lines; l++ {
			line := &invLine{id: int64(l), product: fmt.Sprintf("P%02d", l), taxes: map[string]invTax{}}
			for x := 1; x <= taxes; x++ {
				code := fmt.Sprintf("T%03d", x)
				line.taxes[code] = invTax{code: code, rate: 1}
			}
			inv.lines = append(inv.lines, line)
		}
		require.NoError(b, repo.Save(ctx, inv))
	}
	codes := make([]string, taxes)
	for x := range codes {
		codes[x] = fmt.Sprintf("T%03d", x+1)
	}
	bump := func(inv *invoice, i int) (*invLine, string) {
		line := inv.lines[i%lines]
		code := codes[(i/lines)%taxes]
		t := line.taxes[code]
		t.rate++
		line.taxes[code] = t
		return line, code
	}

	saveTurns(b, func() (*invoice, error) { return repo.Find(ctx, 1) }, func(inv *invoice, i int) error {
		bump(inv, i)
		return repo.Save(ctx, inv)
	}, func() (*invoice, error) {
		return NewStore[*invoice, int64](be.quiet, invoiceMapping(b)).Select(ctx, 2)
	}, func(inv *invoice, i int) error {
		line, code := bump(inv, i)
		err := checkedPair(ctx, pool,
			`UPDATE invoices SET version = $1 WHERE id = $2 AND version = $3`, []any{inv.version + 1, inv.id, inv.version},
			`UPDATE line_taxes SET rate = $1 WHERE invoice_id = $2 AND line_id = $3 AND code = $4`, []any{line.taxes[code].rate, inv.id, line.id, code})
		if err == nil {
			inv.version++
		}
		return err
	})
}

// A deep aggregate of slices of pointers at every level, the usual shape:
// a plan of sections of tasks.

type plan3 struct {
	id       int64 `db:"id"`
	sections []*section3
	version  int64 `db:"version" ddd:"version"`
}

func (p *plan3) ID() int64 { return p.id }

type section3 struct {
	id    int64  `db:"id" ddd:"id"`
	title string `db:"title"`
	tasks []*task3
}

type task3 struct {
	id   int64  `db:"id" ddd:"id"`
	name string `db:"name"`
	done int    `db:"done"`
}

// BenchmarkSaveOneGrandchildChanged saves a plan of three levels, 10
// sections of 100 tasks each (1,000 leaves, slices of pointers at every
// level), after a change of one task, on PostgreSQL over pgxpool, outside
// a transaction:
//
//   - impl=dddkit: through the repository: the diff finds the one changed
//     leaf, the store writes the version bump and its UPDATE in one batch;
//   - impl=hand: the floor: the same two UPDATEs written by hand (the
//     version with its check, and the task by its three-part key) in one
//     pgx.Batch.
func BenchmarkSaveOneGrandchildChanged(b *testing.B) {
	const sections, tasks = 10, 100
	be := pgxBackend(b)
	pool := be.raw.(pgxRaw).p
	ctx := context.Background()
	for _, s := range []string{
		`CREATE TABLE plans (id BIGINT PRIMARY KEY, version BIGINT NOT NULL)`,
		`CREATE TABLE sections (plan_id BIGINT NOT NULL REFERENCES plans (id), id BIGINT NOT NULL, title TEXT NOT NULL, PRIMARY KEY (plan_id, id))`,
		`CREATE TABLE tasks (plan_id BIGINT NOT NULL, section_id BIGINT NOT NULL, id BIGINT NOT NULL, name TEXT NOT NULL, done INTEGER NOT NULL,
			PRIMARY KEY (plan_id, section_id, id), FOREIGN KEY (plan_id, section_id) REFERENCES sections (plan_id, id))`,
	} {
		be.raw.exec(b, s)
	}
	m, err := NewMapping[*plan3](Table{Name: "plans"},
		Child{Field: "sections", Table: "sections", ParentKey: "plan_id", Children: []Child{
			{Field: "tasks", Table: "tasks", ParentKey: "section_id"},
		}})
	require.NoError(b, err)
	repo, err := NewRepository[*plan3, int64](be.quiet, m)
	require.NoError(b, err)
	for id := int64(1); id <= 2; id++ {
		p := &plan3{id: id}
		for s := 1; s <= sections; s++ {
			sec := &section3{id: int64(s), title: fmt.Sprintf("S%02d", s)}
			for t := 1; t <= tasks; t++ {
				sec.tasks = append(sec.tasks, &task3{id: int64(t), name: fmt.Sprintf("T%03d", t)})
			}
			p.sections = append(p.sections, sec)
		}
		require.NoError(b, repo.Save(ctx, p))
	}
	bump := func(p *plan3, i int) (*section3, *task3) {
		sec := p.sections[i%sections]
		t := sec.tasks[(i/sections)%tasks]
		t.done++
		return sec, t
	}

	saveTurns(b, func() (*plan3, error) { return repo.Find(ctx, 1) }, func(p *plan3, i int) error {
		bump(p, i)
		return repo.Save(ctx, p)
	}, func() (*plan3, error) {
		return NewStore[*plan3, int64](be.quiet, m).Select(ctx, 2)
	}, func(p *plan3, i int) error {
		sec, t := bump(p, i)
		err := checkedPair(ctx, pool,
			`UPDATE plans SET version = $1 WHERE id = $2 AND version = $3`, []any{p.version + 1, p.id, p.version},
			`UPDATE tasks SET done = $1 WHERE plan_id = $2 AND section_id = $3 AND id = $4`, []any{t.done, p.id, sec.id, t.id})
		if err == nil {
			p.version++
		}
		return err
	})
}

// saveTurns runs the sub-benchmarks impl=dddkit and impl=hand: each loads
// its aggregate once, untimed, then saves a change of it b.N times.
func saveTurns[T any](b *testing.B, load func() (T, error), save func(T, int) error, loadHand func() (T, error), saveHand func(T, int) error) {
	turn := func(name string, load func() (T, error), save func(T, int) error) {
		b.Run(name, func(b *testing.B) {
			agg, err := load()
			require.NoError(b, err)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := save(agg, i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	turn("impl=dddkit", load, save)
	turn("impl=hand", loadHand, saveHand)
}

// BenchmarkListPage reads a list page of 20 roots, with the total count
// of its condition, out of 1,000 orders of 100 items each, on PostgreSQL
// over pgxpool, outside a transaction:
//
//   - impl=dddkit: SelectPage into a row struct: the page's SELECT and a
//     count(*), in one batch that reads one snapshot;
//   - impl=hand: the same two queries written by hand, in one pgx.Batch,
//     scanned with pgx.RowToStructByName, each query reading its own
//     snapshot;
//   - impl=hand-snapshot: the same batch between BEGIN ISOLATION LEVEL
//     REPEATABLE READ READ ONLY and COMMIT, which make the page and the
//     count agree, as SelectPage does.
func BenchmarkListPage(b *testing.B) {
	be := pgxBackend(b)
	pool := be.raw.(pgxRaw).p
	ctx := context.Background()
	be.raw.exec(b, `INSERT INTO orders (id, customer, total_amount, total_currency, version)
		SELECT g, CASE WHEN g % 2 = 0 THEN 'alice' ELSE 'bob' END, g * 100, 'EUR', 1 FROM generate_series(1, 1000) g`)
	be.raw.exec(b, `INSERT INTO order_items (order_id, id, sku, quantity)
		SELECT o, i, 'SKU-' || i, 1 FROM generate_series(1, 1000) o, generate_series(1, 100) i`)
	be.raw.exec(b, `ANALYZE`)
	m := orderMapping(b)
	q := Where(Eq("customer", "alice")).OrderByDesc("id").Limit(20).Offset(40)

	b.Run("impl=dddkit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rows, total, err := SelectPage[orderRow](ctx, be.quiet, m, q)
			if err != nil || len(rows) != 20 || total != 500 {
				b.Fatal(len(rows), total, err)
			}
		}
	})

	b.Run("impl=hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rows, total, err := handPage(ctx, pool, "alice", 20, 40, false)
			if err != nil || len(rows) != 20 || total != 500 {
				b.Fatal(len(rows), total, err)
			}
		}
	})

	b.Run("impl=hand-snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rows, total, err := handPage(ctx, pool, "alice", 20, 40, true)
			if err != nil || len(rows) != 20 || total != 500 {
				b.Fatal(len(rows), total, err)
			}
		}
	})
}

func handPage(ctx context.Context, pool *pgxpool.Pool, customer string, limit, offset int, snapshot bool) ([]orderRow, int64, error) {
	batch := &pgx.Batch{}
	if snapshot {
		batch.Queue(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
	}
	batch.Queue(`SELECT id, customer, total_amount FROM orders WHERE customer = $1 ORDER BY id DESC LIMIT $2 OFFSET $3`, customer, limit, offset)
	batch.Queue(`SELECT count(*) FROM orders WHERE customer = $1`, customer)
	if snapshot {
		batch.Queue(`COMMIT`)
	}
	br := pool.SendBatch(ctx, batch)
	defer br.Close()
	if snapshot {
		if _, err := br.Exec(); err != nil {
			return nil, 0, err
		}
	}
	rs, err := br.Query()
	if err != nil {
		return nil, 0, err
	}
	rows, err := pgx.CollectRows(rs, pgx.RowToStructByName[orderRow])
	if err != nil {
		return nil, 0, err
	}
	var total int64
	if err := br.QueryRow().Scan(&total); err != nil {
		return nil, 0, err
	}
	if snapshot {
		if _, err := br.Exec(); err != nil {
			return nil, 0, err
		}
	}
	return rows, total, br.Close()
}
