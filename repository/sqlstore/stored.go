package sqlstore

import "github.com/dddkit/dddkit/diff"

// Stores reports whether the changes d touch anything the mapping stores:
// a column of the root or of an element, or an element added to or
// removed from a mapped collection, at any depth. A change confined to
// fields excluded with `db:"-"`, which are neither loaded nor saved, is
// not: a repository's Save then writes nothing, and does not bump the
// version. It implements [repository.Partial].
func (s *Store[T, ID]) Stores(d diff.Result) bool {
	if s.ready() != nil {
		return true // the update reports the error
	}
	return stores(&s.m.root, s.m.top, &d.Changes)
}

// stores reports whether ch, the changes of an entity of table tb whose
// collections are mapped by kids, touch a column or a row.
func stores(tb *table, kids []*child, ch *diff.Changes) bool {
	if anyTrue(tb.changedColumns(ch.Fields)) {
		return true
	}
	for i := range ch.Collections {
		col := &ch.Collections[i]
		idx, ok := col.Path.FieldIndex()
		if !ok || len(idx) != 1 {
			continue
		}
		for _, c := range kids {
			if c.fieldIdx != idx[0] {
				continue
			}
			for j := range col.Elements {
				e := &col.Elements[j]
				if e.Kind != diff.Modified || stores(&c.table, c.kids, &e.Changes) {
					return true
				}
			}
		}
	}
	return false
}
