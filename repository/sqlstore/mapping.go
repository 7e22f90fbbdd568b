package sqlstore

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unsafe"

	"github.com/dddkit/dddkit/internal/typeinfo"
	"github.com/dddkit/dddkit/repository"
)

// Table names the root table of a [Mapping].
type Table struct {
	// Name is the table's name, optionally qualified by a schema
	// ("sales.orders").
	Name string
	// Key is the key column; "id" when empty. It must be the db tag of a
	// field of the root.
	Key string
}

// Child maps an entity collection of the root to a table of its own, one
// row per element.
type Child struct {
	// Field is the Go name of the collection field in the root struct,
	// exported or not, for example "items". It must be a slice of structs
	// or of pointers to structs, or a map of them keyed by their identity,
	// whose element type is an entity (see package ddd).
	Field string
	// Table is the child table's name, optionally qualified by a schema.
	Table string
	// Key is the child's key column; "id" when empty. It must be the db
	// tag of a field of the element type.
	Key string
	// ParentKey is the child table's foreign key column (for example
	// "order_id"), filled with the root's key value. It must not be the
	// db tag of a field of the element type.
	ParentKey string
}

// Mapping maps an aggregate type T, a pointer to the root struct, to a root
// table and one table per child entity collection. Build it once with
// [NewMapping] and share it: it is immutable.
type Mapping[T any] struct {
	root     table
	children []*child
}

// column is one mapped column: a field of a struct, possibly inside
// value objects.
type column struct {
	name   string
	quoted string
	index  []int   // field index path from the struct
	offset uintptr // offset from the start of the struct
	typ    reflect.Type
	field  string // Go path, for messages: "total.amount"
}

// value returns the column's value in the struct at base.
func (c *column) value(base unsafe.Pointer) any {
	return reflect.NewAt(c.typ, unsafe.Add(base, c.offset)).Elem().Interface()
}

// dest returns a pointer to the column's field in the struct at base, to
// scan into.
func (c *column) dest(base unsafe.Pointer) any {
	return reflect.NewAt(c.typ, unsafe.Add(base, c.offset)).Interface()
}

// table is a mapped table.
type table struct {
	name    string
	quoted  string
	typ     reflect.Type // the struct
	cols    []column
	key     int // index in cols of the key column
	version int // index in cols of the version column, or -1
}

// child is a mapped entity collection.
type child struct {
	table
	spec      Child
	fieldIdx  int // index of the collection field in the root
	offset    uintptr
	collType  reflect.Type // the slice or map type
	elem      reflect.Type // the element type as stored: S or *S
	ptr       bool         // elem is *S
	ident     *typeinfo.Identity
	parentKey string // quoted
}

// collField is an entity collection found in a struct.
type collField struct {
	index []int
	field string // Go path
	typ   reflect.Type
}

var (
	valuerType  = reflect.TypeFor[driver.Valuer]()
	scannerType = reflect.TypeFor[sql.Scanner]()
)

// isValueObject reports whether an untagged field of type t is flattened:
// a struct that the driver does not handle as a value itself.
func isValueObject(t reflect.Type) bool {
	if t.Kind() != reflect.Struct || typeinfo.Of(t).Kind == typeinfo.KindTime {
		return false
	}
	return !t.Implements(valuerType) && !reflect.PointerTo(t).Implements(valuerType) &&
		!reflect.PointerTo(t).Implements(scannerType)
}

// entityCollection reports whether t is a slice or map of entities.
func entityCollection(t reflect.Type) (bool, error) {
	m := typeinfo.Of(t)
	if m.Kind != typeinfo.KindSlice && m.Kind != typeinfo.KindMap {
		return false, nil
	}
	return m.Identity != nil, m.IdentityErr
}

// collect appends the columns of struct type t (and of its value objects)
// to cols, and its entity collections to colls.
func collect(t reflect.Type, index []int, offset uintptr, path string, cols *[]column, colls *[]collField) error {
	s, err := typeinfo.StructOf(t)
	if err != nil {
		return fmt.Errorf("%w: %w", repository.ErrUnsupported, err)
	}
	for i := range s.Fields {
		f := &s.Fields[i]
		if f.Ignored {
			continue
		}
		idx := append(index[:len(index):len(index)], i)
		goPath := path + f.Name
		tag, tagged := f.Tag.Lookup("db")
		name, _, _ := strings.Cut(tag, ",")
		name = strings.TrimSpace(name)
		if tagged && name == "-" {
			continue
		}
		isColl, err := entityCollection(f.Type)
		if err != nil {
			return fmt.Errorf("field %s: %w: %w", goPath, repository.ErrUnsupported, err)
		}
		if isColl {
			if tagged {
				return fmt.Errorf("field %s is a collection of entities and cannot be a column: remove its db tag and map it with a Child", goPath)
			}
			*colls = append(*colls, collField{index: idx, field: goPath, typ: f.Type})
			continue
		}
		if tagged {
			if name == "" {
				return fmt.Errorf("field %s: empty db tag", goPath)
			}
			if err := checkIdent("column", name, columnRE); err != nil {
				return fmt.Errorf("field %s: %w", goPath, err)
			}
			if m := typeinfo.Of(f.Type); m.Kind == typeinfo.KindUnsupported && m.TagErr == nil { // a func, chan or unsafe.Pointer
				return fmt.Errorf("field %s: %w: a %v cannot be a column (tag it `db:\"-\" ddd:\"-\"`)", goPath, repository.ErrUnsupported, f.Type.Kind())
			}
			if f.Version && len(index) > 0 {
				return fmt.Errorf("field %s: a version field must be a field of the root itself", goPath)
			}
			*cols = append(*cols, column{name: name, quoted: quote(name), index: idx, offset: offset + f.Offset, typ: f.Type, field: goPath})
			continue
		}
		if isValueObject(f.Type) {
			if err := collect(f.Type, idx, offset+f.Offset, goPath+".", cols, colls); err != nil {
				return err
			}
		}
	}
	return nil
}

// newTable builds the table of struct type t.
func newTable(name, key string, t reflect.Type) (table, []collField, error) {
	tb := table{name: name, typ: t, key: -1, version: -1}
	if err := checkIdent("table", name, tableRE); err != nil {
		return tb, nil, err
	}
	tb.quoted = quote(name)
	var colls []collField
	if err := collect(t, nil, 0, "", &tb.cols, &colls); err != nil {
		return tb, nil, err
	}
	seen := make(map[string]string, len(tb.cols))
	for i, c := range tb.cols {
		if prev, ok := seen[c.name]; ok {
			return tb, nil, fmt.Errorf("column %q is mapped twice, by fields %s and %s", c.name, prev, c.field)
		}
		seen[c.name] = c.field
		if c.name == key {
			tb.key = i
		}
	}
	if tb.key < 0 {
		return tb, nil, fmt.Errorf("key column %q is not the db tag of any field of %v", key, t)
	}
	return tb, colls, nil
}

func (tb *table) column(name string) int {
	for i := range tb.cols {
		if tb.cols[i].name == name {
			return i
		}
	}
	return -1
}

// NewMapping validates and returns the mapping of aggregate type T (a
// pointer to the root struct) to root and to one table per child.
//
// Columns are the fields tagged `db:"column"`, exported or not. Fields
// tagged `db:"-"` or `ddd:"-"` are skipped. An untagged field of a struct
// type other than time.Time and the types implementing driver.Valuer or
// sql.Scanner is a value object: its own fields are columns of the same
// table, recursively. Other untagged fields are not mapped. The root's
// version field (tagged `ddd:"version"`), if any, must have a db tag.
//
// NewMapping fails when a name is not a plain identifier (a table may be
// schema-qualified), a key column is missing, a column is mapped twice, a
// Child names no entity collection of the root, an entity collection of
// the root is left unmapped (map it, or tag it `ddd:"-"`), or an element
// type holds entity collections of its own: sqlstore maps one level of
// children.
func NewMapping[T any](root Table, children ...Child) (*Mapping[T], error) {
	rt := reflect.TypeFor[T]()
	fail := func(format string, args ...any) (*Mapping[T], error) {
		return nil, fmt.Errorf("sqlstore: mapping %v: %w", rt, fmt.Errorf(format, args...))
	}
	if rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
		return fail("an aggregate must be a pointer to a struct")
	}
	st := rt.Elem()
	if root.Key == "" {
		root.Key = "id"
	}
	if err := checkIdent("key column", root.Key, columnRE); err != nil {
		return fail("root: %w", err)
	}
	tb, colls, err := newTable(root.Name, root.Key, st)
	if err != nil {
		return fail("root: %w", err)
	}
	m := &Mapping[T]{root: tb}

	vf, ok, err := typeinfo.VersionOf(st)
	if err != nil {
		return fail("%w: %w", repository.ErrUnsupported, err)
	}
	if ok {
		for i, c := range tb.cols {
			if len(c.index) == 1 && c.index[0] == vf.Index[0] {
				m.root.version = i
			}
		}
		if m.root.version < 0 {
			return fail("version field %s has no db tag", vf.Name)
		}
		if m.root.version == m.root.key {
			return fail("version field %s is the key column", vf.Name)
		}
	}

	used := make([]bool, len(colls))
	tables := map[string]bool{tb.name: true}
	for _, spec := range children {
		c, err := newChild(st, &tb, colls, used, spec)
		if err != nil {
			return fail("child %q: %w", spec.Field, err)
		}
		if tables[c.name] {
			return fail("child %q: table %q is mapped twice", spec.Field, c.name)
		}
		tables[c.name] = true
		m.children = append(m.children, c)
	}
	for i, cf := range colls {
		if !used[i] {
			if len(cf.index) > 1 {
				return fail("field %s is a collection of entities inside a value object: not supported (tag it `ddd:\"-\"`)", cf.field)
			}
			return fail("field %s is a collection of entities that no Child maps (map it, or tag it `ddd:\"-\"`)", cf.field)
		}
	}
	return m, nil
}

func newChild(root reflect.Type, rootTable *table, colls []collField, used []bool, spec Child) (*child, error) {
	if spec.Field == "" {
		return nil, fmt.Errorf("empty Field")
	}
	at := -1
	for i, cf := range colls {
		if len(cf.index) == 1 && cf.field == spec.Field {
			at = i
		}
	}
	if at < 0 {
		f, ok := root.FieldByName(spec.Field)
		switch {
		case !ok || len(f.Index) != 1:
			return nil, fmt.Errorf("%v has no field %s", root, spec.Field)
		case f.Tag.Get("ddd") == "-":
			return nil, fmt.Errorf("field %s is tagged `ddd:\"-\"`", spec.Field)
		default:
			return nil, fmt.Errorf("field %s (%v) is not a slice or map of entities", spec.Field, f.Type)
		}
	}
	if used[at] {
		return nil, fmt.Errorf("field %s is mapped twice", spec.Field)
	}
	used[at] = true
	cf := colls[at]

	if spec.Key == "" {
		spec.Key = "id"
	}
	if err := checkIdent("key column", spec.Key, columnRE); err != nil {
		return nil, err
	}
	if spec.ParentKey == "" {
		return nil, fmt.Errorf("empty ParentKey: name the column that refers to the root's %q", rootTable.cols[rootTable.key].name)
	}
	if err := checkIdent("parent key column", spec.ParentKey, columnRE); err != nil {
		return nil, err
	}

	c := &child{spec: spec, fieldIdx: cf.index[0], offset: root.Field(cf.index[0]).Offset, collType: cf.typ, elem: cf.typ.Elem()}
	st := c.elem
	if st.Kind() == reflect.Pointer {
		c.ptr = true
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct {
		return nil, fmt.Errorf("element type %v is not a struct or a pointer to one", c.elem)
	}
	ident := typeinfo.Of(cf.typ).Identity // an entity collection (see collect)
	c.ident = ident
	if cf.typ.Kind() == reflect.Map && cf.typ.Key() != ident.Type {
		return nil, fmt.Errorf("map key type %v is not the identity type %v of %v", cf.typ.Key(), ident.Type, c.elem)
	}
	tb, grand, err := newTable(spec.Table, spec.Key, st)
	if err != nil {
		return nil, err
	}
	if len(grand) > 0 {
		return nil, fmt.Errorf("field %s of %v is a collection of entities: nested child collections are not supported by sqlstore", grand[0].field, st)
	}
	if i := tb.column(spec.ParentKey); i >= 0 {
		return nil, fmt.Errorf("parent key column %q is the db tag of field %s of %v: sqlstore fills it from the root's key; remove the tag", spec.ParentKey, tb.cols[i].field, st)
	}
	if s, _ := typeinfo.StructOf(st); s != nil && s.Version >= 0 {
		return nil, fmt.Errorf("%v has a version field: only the root has one", st)
	}
	c.table = tb
	c.parentKey = quote(spec.ParentKey)
	return c, nil
}

// changed marks in out the columns of tb that a change at field index path
// idx touches: the column at idx, a column inside a value object changed
// as a whole, or the column holding a value changed inside.
func (tb *table) changed(idx []int, out []bool) {
	for i := range tb.cols {
		ci := tb.cols[i].index
		n := min(len(ci), len(idx))
		if slices.Equal(ci[:n], idx[:n]) {
			out[i] = true
		}
	}
}
