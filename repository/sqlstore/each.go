package sqlstore

import (
	"context"
	"fmt"
	"iter"
	"reflect"

	"github.com/dddkit/dddkit/internal/typeinfo"
)

// DefaultPageSize is the number of aggregates that [Repository.FindEach]
// loads at a time when no [PageSize] is given.
const DefaultPageSize = 500

// EachOption configures [Repository.FindEach].
type EachOption func(*eachOptions)

type eachOptions struct {
	pageSize int
	tracked  bool
}

// PageSize sets how many aggregates [Repository.FindEach] loads at a time,
// children included; it bounds the memory the iteration holds. A size
// below 1 makes the iteration fail with [ErrQuery].
func PageSize(n int) EachOption { return func(o *eachOptions) { o.pageSize = n } }

// Tracked makes [Repository.FindEach] track the aggregates it yields, as
// [Repository.FindAll] does, each one as it is yielded (one that the loop
// never reaches is not tracked). Without it they are not tracked: an
// export reads, and tracking would keep a snapshot of every aggregate
// read in the unit of work, which is what bounded memory rules out.
func Tracked() EachOption { return func(o *eachOptions) { o.tracked = true } }

// FindEach yields the aggregates that q selects, children included, in
// q's order, loading them a page at a time (see [PageSize]; by default
// [DefaultPageSize]): for exports and other passes over more aggregates
// than memory should hold at once. It pages by key, as [Query.After]
// does: the order is q's order and then the key, q's order must be all
// ascending or all descending, and its columns must hold no NULL (a NULL
// in the last aggregate of a page ends the iteration with [ErrQuery]).
// q's Limit caps the number yielded, and its Offset and After apply to
// the first page.
//
// Each page is one load, like [Repository.FindAll]'s: every aggregate in
// it whole, as it stood at one commit. The pages are separate reads, so
// an aggregate written between two of them is seen as it stands when its
// own page is read, and the export as a whole is not one snapshot unless
// it runs inside a unit of work at REPEATABLE READ or above
// ([DB.InTxWith]; on SQLite every transaction is one snapshot).
//
// The aggregates are not tracked unless [Tracked] is given. The iteration
// stops with ctx.Err() when ctx is done, and with the error of a page
// that fails; breaking out of the loop stops it, and nothing stays open
// between pages: no connection, no cursor and no transaction of its own.
func (r *Repository[T, ID]) FindEach(ctx context.Context, q Query, opts ...EachOption) iter.Seq2[T, error] {
	o := eachOptions{pageSize: DefaultPageSize}
	for _, opt := range opts {
		opt(&o)
	}
	return func(yield func(T, error) bool) {
		var zero T
		fail := func(err error) { yield(zero, err) }
		s := r.store
		if err := s.ready(); err != nil {
			fail(s.fail("find each", err))
			return
		}
		if o.pageSize < 1 {
			fail(s.fail("find each", fmt.Errorf("%w: page size %d", ErrQuery, o.pageSize)))
			return
		}
		rt := &s.m.root
		cq, err := rt.compile(q)
		if err != nil {
			fail(s.fail("find each", err))
			return
		}
		for _, t := range cq.order {
			if t.desc != cq.order[0].desc {
				fail(s.fail("find each", fmt.Errorf("%w: paging by key needs an order that is all ascending or all descending", ErrQuery)))
				return
			}
		}
		left := q.limit // 0: no limit
		page := q
		for {
			if err := ctx.Err(); err != nil {
				fail(err)
				return
			}
			n := o.pageSize
			if left > 0 && left < n {
				n = left
			}
			found, err := s.SelectWhere(ctx, page.Limit(n))
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					fail(ctxErr)
				} else {
					fail(err)
				}
				return
			}
			if len(found) == 0 {
				return
			}
			// The next page starts after the last aggregate as read, before
			// any tracked instance takes its place.
			last := typeinfo.PtrOf(found[len(found)-1])
			after := make([]any, len(cq.order))
			for i, t := range cq.order {
				c := &rt.cols[rt.column(t.column)]
				v := c.value(last)
				if isNull(v) {
					fail(s.fail("find each", fmt.Errorf("%w: cannot page after a NULL in column %s", ErrQuery, t.column)))
					return
				}
				after[i] = v
			}
			for _, agg := range found {
				if o.tracked {
					tr, err := r.Track(ctx, []T{agg})
					if err != nil {
						fail(err)
						return
					}
					agg = tr[0]
				}
				if !yield(agg, nil) {
					return
				}
			}
			if left > 0 {
				left -= len(found)
				if left <= 0 {
					return
				}
			}
			if len(found) < n {
				return
			}
			page = page.Offset(0).After(after...)
		}
	}
}

// isNull reports whether v, a column's value, is SQL NULL: nil, or a nil
// pointer.
func isNull(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		return rv.IsNil()
	}
	return false
}
