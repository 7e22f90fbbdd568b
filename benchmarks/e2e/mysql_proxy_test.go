package e2e

import (
	"context"
	"testing"

	"github.com/dddkit/dddkit/benchmarks/internal/model"
)

// TestMySQLProxy checks the counts of the MariaDB proxy on traffic whose
// round trips, statements and rows are known.
func TestMySQLProxy(t *testing.T) {
	e := mysqlEnv(t)
	ctx := context.Background()
	o := model.New(e.NewOrderID(), 10)
	if err := e.Insert(ctx, o); err != nil {
		t.Fatal(err)
	}
	p, err := NewMySQLProxy(mustAddr(t, e))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db, err := openMySQL(ctx, e.DSN(p.Addr()), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := int64(o.Number)
	for _, tc := range []struct {
		name string
		run  func() error
		want Counts
		fail bool // the traffic ends in an error
	}{
		{"one query", func() error { return db.QueryRowContext(ctx, "SELECT 1").Scan(new(int)) }, Counts{1, 1, 0}, false},
		{"one UPDATE: the row it matched, although it changes nothing", func() error {
			_, err := db.ExecContext(ctx, "UPDATE orders SET status = status WHERE id = ?", id)
			return err
		}, Counts{1, 1, 1}, false},
		{"a multi-statement round trip of writes, a result set and a SET", func() error {
			_, err := db.ExecContext(ctx, "UPDATE order_items SET quantity = quantity WHERE order_id = ?; SELECT id FROM order_items WHERE order_id = ?; SET @x = 1; DELETE FROM order_items WHERE order_id = ? AND id > 8",
				id, id, id)
			return err
		}, Counts{1, 4, 12}, false},
		{"a multi-statement round trip that fails in its second statement: the third does not run", func() error {
			_, err := db.ExecContext(ctx, "UPDATE orders SET version = version WHERE id = ?; SELECT * FROM no_such_table; UPDATE orders SET version = version WHERE id = ?", id, id)
			return err
		}, Counts{1, 2, 1}, true},
		{"a transaction of database/sql: BEGIN, a statement and COMMIT, one round trip each", func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE orders SET version = version WHERE id = ?", id); err != nil {
				return err
			}
			return tx.Commit()
		}, Counts{3, 3, 1}, false},
		{"a prepared statement: prepare and execute are round trips, the close is not", func() error {
			s, err := db.PrepareContext(ctx, "SELECT id FROM order_items WHERE order_id = ?")
			if err != nil {
				return err
			}
			rows, err := s.QueryContext(ctx, id)
			if err != nil {
				return err
			}
			if err := rows.Close(); err != nil {
				return err
			}
			return s.Close()
		}, Counts{2, 1, 0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Start()
			err := tc.run()
			got := p.Stop()
			if (err != nil) != tc.fail {
				t.Fatalf("error %v, want one: %v", err, tc.fail)
			}
			if got != tc.want {
				t.Errorf("counted %+v, want %+v", got, tc.want)
			}
		})
	}
}

func mustAddr(t *testing.T, e *MySQLEnv) string {
	t.Helper()
	a, err := e.ServerAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestMySQLHandConflict checks that the hand-written save on MariaDB
// refuses a save against a version that changed, with nothing of it
// written, and that its connection is usable afterwards.
func TestMySQLHandConflict(t *testing.T) {
	e := mysqlEnv(t)
	ctx := context.Background()
	o := model.New(e.NewOrderID(), 10)
	s, err := openMySQLHand(ctx, e.DSN(""), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Setup(ctx, o); err != nil {
		t.Fatal(err)
	}
	h := s.(*mysqlHand)
	if _, err := h.db.ExecContext(ctx, "UPDATE orders SET version = version + 1 WHERE id = ?", int64(o.Number)); err != nil {
		t.Fatal(err)
	}
	stored, err := e.Stored(ctx, o.Number)
	if err != nil {
		t.Fatal(err)
	}
	h.Prepare(model.Step(o, model.TenPercent, 0))
	if err := h.Save(ctx); err != errConflict {
		t.Fatalf("save against a changed version: %v, want %v", err, errConflict)
	}
	if err := e.Check(ctx, stored); err != nil {
		t.Fatalf("after the refused save: %v", err)
	}
	// The next save, on the version stored, goes through.
	h.o.Version = stored.Version
	if err := h.Save(ctx); err != nil {
		t.Fatal(err)
	}
	o.Version = stored.Version + 1
	if err := e.Check(ctx, o); err != nil {
		t.Fatalf("after the save: %v", err)
	}
}
