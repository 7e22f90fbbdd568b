package sqlstore

import (
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unsafe"

	"github.com/dddkit/dddkit/internal/typeinfo"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
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

// Child maps an entity collection of the root, or of a child entity, to a
// table of its own, one row per element.
//
// A row is keyed by its parent's key and its own: the table of a level
// below the root holds ParentKey, filled by sqlstore with the parent's
// key, and, below the first level, the parent key columns of every level
// above it, under the same names. The items of an order, Child{Field:
// "items", Table: "order_items", ParentKey: "order_id"}, are keyed by
// (order_id, id); their options, Child{Field: "options", Table:
// "item_options", ParentKey: "item_id"} in the items' Children, by
// (order_id, item_id, id). A parent whose key is unique in its whole
// table (a generated or surrogate key) may be referred to by its key
// alone: with ParentKeyOnly the options are keyed by (item_id, id).
type Child struct {
	// Field is the Go name of the collection field in the parent struct
	// (the root, or the element of the enclosing Child), exported or not,
	// for example "items". It must be a slice of structs or of pointers to
	// structs, or a map of them keyed by their identity, whose element type
	// is an entity (see package ddd).
	Field string
	// Table is the child table's name, optionally qualified by a schema.
	Table string
	// Key is the child's key column; "id" when empty. It must be the db
	// tag of a field of the element type.
	Key string
	// ParentKey is the child table's column that refers to the parent's
	// key (for example "order_id"), filled by sqlstore. It must not be the
	// db tag of a field of the element type.
	ParentKey string
	// ParentKeyOnly says that the table refers to its parent by ParentKey
	// alone, not by the parent key columns of the levels above too: the
	// parent's key must then be unique in the parent's table. It has no
	// effect on the first level, whose parent is the root.
	ParentKeyOnly bool
	// Position, when set, is a column that stores each element's index in
	// its collection, a slice: the collection reloads in the order it was
	// saved, and a change of order alone is saved (see package doc). It
	// must not be the db tag of a field of the element. A unique key on it
	// must be DEFERRABLE INITIALLY DEFERRED on PostgreSQL, and cannot be
	// used on SQLite: a reorder moves one row at a time.
	Position string
	// Children maps the entity collections of the element type, a level
	// further down. Every entity collection of the element must be mapped
	// (or tagged `ddd:"-"`).
	Children []Child
}

// Mapping maps an aggregate type T, a pointer to the root struct, to a root
// table and one table per child entity collection, at any depth. Build it
// once with [NewMapping] and share it: it is immutable.
type Mapping[T any] struct {
	root table
	top  []*child // the collections of the root
	// children holds every child table, parents before their children
	// (depth first, in mapping order): inserts run in this order, deletes
	// in the reverse one.
	children []*child
}

// column is one mapped column: a field of a struct, possibly inside
// value objects.
type column struct {
	name string
	// quoted is name as the dialect of a store quotes it: empty in a
	// Mapping, which holds names only, and set in a store's copy of it
	// (see Mapping.quotedBy).
	quoted string
	index  []int   // field index path from the struct
	offset uintptr // offset from the start of the struct
	typ    reflect.Type
	field  string // Go path, for messages: "total.amount"
	codec  codec  // how the value is stored
	// generated: the database makes the value (`db:"name,generated"`).
	generated bool
}

// codec is how a column's value is stored.
type codec uint8

const (
	codecPlain codec = iota // as the driver stores the Go value
	codecJSON               // `db:"name,json"`: as JSON text
	codecArray              // `db:"name,array"`: as a PostgreSQL array
)

// value returns the column's value in the struct at base.
func (c *column) value(base unsafe.Pointer) any {
	v := reflect.NewAt(c.typ, unsafe.Add(base, c.offset)).Elem().Interface()
	if c.codec == codecJSON {
		return jsonValue{v}
	}
	return v
}

// dest returns a pointer to the column's field in the struct at base, to
// scan into; native says that pgx scans it, which reads arrays itself.
func (c *column) dest(base unsafe.Pointer, native bool) any {
	p := reflect.NewAt(c.typ, unsafe.Add(base, c.offset)).Interface()
	switch {
	case c.codec == codecJSON:
		return jsonDest{p}
	case c.codec == codecArray && !native:
		return arrayDest{p}
	}
	return p
}

// table is a mapped table.
type table struct {
	name    string
	quoted  string       // name as a store's dialect quotes it, like column.quoted
	typ     reflect.Type // the struct
	cols    []column
	key     int   // index in cols of the key column
	version int   // index in cols of the version column, or -1
	times   []int // indexes in cols of the time columns (timeCols)
	// generated: the key is made by the database when it is zero.
	generated bool
	// colls are the collections of the struct, a level down.
	colls []*child
}

// child is a mapped entity collection.
type child struct {
	table
	spec     Child
	parent   *child // the table of the parent entity; nil for the root
	index    int    // in Mapping.children
	fieldIdx int    // index of the collection field in the parent struct
	offset   uintptr
	collType reflect.Type // the slice or map type
	elem     reflect.Type // the element type as stored: S or *S
	ptr      bool         // elem is *S
	ident    *typeinfo.Identity
	// parentKey (spec.ParentKey), refCols (refNames) and position
	// (spec.Position) are quoted by a store's dialect, like column.quoted:
	// empty in a Mapping.
	parentKey string
	// refNames are the columns that identify the parent row, the parent's
	// key last; refCols are them quoted; refTypes are their Go types (see
	// Child).
	refCols  []string
	refNames []string
	refTypes []reflect.Type
	kids     []*child // the collections of the element, a level down
	position string   // the quoted Position column, or ""
	// posBelow: this table or one below it has a Position column.
	posBelow bool
	// genBelow: this table or one below it has a generated key.
	genBelow bool
	// ownKeys: some kid refers to a row of this table by its key alone.
	ownKeys bool
	path    string // Go path from the root, for messages: "items.options"
}

// collField is an entity collection found in a struct.
type collField struct {
	index []int
	field string // Go path
	typ   reflect.Type
}

var (
	valuerType        = reflect.TypeFor[driver.Valuer]()
	scannerType       = reflect.TypeFor[sql.Scanner]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
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
// to cols, each name prefixed with prefix (the prefixes of the enclosing
// value objects tagged `db:"p_,prefix"`), and its entity collections to
// colls.
func collect(t reflect.Type, index []int, offset uintptr, path, prefix string, cols *[]column, colls *[]collField) error {
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
		name, opt, _ := strings.Cut(tag, ",")
		name, opt = strings.TrimSpace(name), strings.TrimSpace(opt)
		if tagged && name == "-" {
			if err := typeinfo.CopyErr(f.Type); err != nil {
				return fmt.Errorf("field %s: %w: it is excluded with `db:\"-\"`, but it cannot be snapshotted (%v): exclude it with `ddd:\"-\"` instead", goPath, repository.ErrUnsupported, err)
			}
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
		if tagged && opt == "prefix" {
			if name == "" {
				return fmt.Errorf("field %s: empty column prefix: tag it `db:\"p_,prefix\"`", goPath)
			}
			if err := checkIdent("column prefix", prefix+name, columnRE); err != nil {
				return fmt.Errorf("field %s: %w", goPath, err)
			}
			if !isValueObject(f.Type) {
				return fmt.Errorf("field %s: the prefix option needs a value object (a struct mapped field by field), not %v", goPath, f.Type)
			}
			if f.Version {
				return fmt.Errorf("version field %s: a version must be a column of the root itself", goPath)
			}
			if err := valueObject(f.Type, idx, offset+f.Offset, goPath, prefix+name, cols, colls); err != nil {
				return err
			}
			continue
		}
		if tagged {
			if name == "" {
				return fmt.Errorf("field %s: empty db tag", goPath)
			}
			if err := checkIdent("column", name, columnRE); err != nil {
				return fmt.Errorf("field %s: %w", goPath, err)
			}
			name = prefix + name
			if err := checkIdent("column", name, columnRE); err != nil {
				return fmt.Errorf("field %s: %w", goPath, err)
			}
			gen := false
			if opt == "generated" {
				gen, opt = true, ""
			}
			cd, err := columnCodec(f.Type, opt)
			if err != nil {
				return fmt.Errorf("field %s: %w", goPath, err)
			}
			if f.Version && len(index) > 0 {
				return fmt.Errorf("field %s: a version field must be a field of the root itself", goPath)
			}
			*cols = append(*cols, column{name: name, index: idx, offset: offset + f.Offset, typ: f.Type, field: goPath, codec: cd, generated: gen})
			continue
		}
		if isValueObject(f.Type) {
			if err := valueObject(f.Type, idx, offset+f.Offset, goPath, prefix, cols, colls); err != nil {
				return err
			}
			continue
		}
		if f.Version {
			return fmt.Errorf("version field %s has no db tag", goPath)
		}
		return fmt.Errorf("field %s: it is not mapped, so a change of it would be lost: %s", goPath, fixes(f.Type, ""))
	}
	return nil
}

// valueObject appends the columns of the value object of struct type t,
// the field at goPath, each name prefixed with prefix, and its entity
// collections.
func valueObject(t reflect.Type, index []int, offset uintptr, goPath, prefix string, cols *[]column, colls *[]collField) error {
	n := len(*cols)
	if err := collect(t, index, offset, goPath+".", prefix, cols, colls); err != nil {
		return err
	}
	if len(*cols) == n {
		return fmt.Errorf("field %s: the value object %v maps to no column, so a change of it would be lost: %s", goPath, t, fixes(t, "tag its fields `db:\"column\"`"))
	}
	return nil
}

// columnCodec returns how a column of type t, with the db tag option opt,
// is stored, or why it cannot be: a type the drivers cannot both write and
// read back is refused here rather than at the first save.
func columnCodec(t reflect.Type, opt string) (codec, error) {
	switch opt {
	case "":
	case "json":
		if err := jsonable(t, map[reflect.Type]bool{}); err != nil {
			return 0, fmt.Errorf("%v cannot be stored as JSON: %w", t, err)
		}
		return codecJSON, nil
	case "array":
		et := t
		if et.Kind() != reflect.Slice || et.Elem().Kind() == reflect.Uint8 {
			return 0, fmt.Errorf("the array option needs a slice (of other than bytes), not %v", t)
		}
		if _, err := columnCodec(et.Elem(), ""); err != nil {
			return 0, fmt.Errorf("array element: %w", err)
		}
		if !arrayType(t) {
			return 0, fmt.Errorf("%w: pgx knows no PostgreSQL array type for %v", repository.ErrUnsupported, t)
		}
		return codecArray, nil
	default:
		return 0, fmt.Errorf("unknown db tag option %q (want json, array or generated, or prefix on a value object)", opt)
	}
	if t == typeinfo.TimeType() {
		return codecPlain, nil
	}
	if m := typeinfo.Of(t); m.Kind == typeinfo.KindUnsupported && m.TagErr == nil {
		// A func, chan or unsafe.Pointer: no driver stores it, and it
		// cannot even be snapshotted.
		return 0, fmt.Errorf("%w: a %v cannot be a column: exclude it with `ddd:\"-\"` (it can be neither stored nor snapshotted)", repository.ErrUnsupported, t)
	}
	if t.Implements(valuerType) || reflect.PointerTo(t).Implements(valuerType) {
		if t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(scannerType) {
			return 0, fmt.Errorf("%v implements driver.Valuer but *%v does not implement sql.Scanner: it could be written but not read back", t, t)
		}
		return codecPlain, nil
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.String:
		return codecPlain, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return codecPlain, nil // bytes
		}
		return 0, fmt.Errorf("%w: a %v column needs a chosen storage: `db:\"column,json\"` (JSON text), or `db:\"column,array\"` (a PostgreSQL array)", repository.ErrUnsupported, t)
	case reflect.Map, reflect.Array:
		return 0, fmt.Errorf("%w: a %v column needs a chosen storage: `db:\"column,json\"`", repository.ErrUnsupported, t)
	case reflect.Pointer:
		if _, err := columnCodec(t.Elem(), ""); err != nil {
			return 0, err
		}
		return codecPlain, nil // NULL for nil
	case reflect.Struct:
		return 0, fmt.Errorf("%w: the struct %v cannot be a column: remove the db tag to map its fields as columns (a value object), tag it `db:\"p_,prefix\"` to map them with a prefix, store it with `db:\"column,json\"`, or implement driver.Valuer and sql.Scanner", repository.ErrUnsupported, t)
	}
	// An interface, a complex number or a uintptr: it can be snapshotted.
	return 0, fmt.Errorf("%w: a %v cannot be a column: exclude it with `db:\"-\"` (not stored: not loaded, and a change of it alone not saved)", repository.ErrUnsupported, t)
}

// fixes says how a field of type t that maps to no column can be mapped
// or excluded, offering only what works: first, when given, the fix of
// its own; then a plain column or a JSON one, when columnCodec takes the
// type; and the exclusion that the type allows: `db:"-"` (not stored,
// but snapshotted and compared, see package doc), or `ddd:"-"` when it
// cannot be snapshotted either.
func fixes(t reflect.Type, first string) string {
	if err := typeinfo.CopyErr(t); err != nil {
		return fmt.Sprintf("exclude it with `ddd:\"-\"`: it can be neither stored nor snapshotted (%v)", err)
	}
	var out []string
	if first != "" {
		out = append(out, first)
	}
	if _, err := columnCodec(t, ""); err == nil {
		out = append(out, "tag it `db:\"column\"`")
	} else if _, err := columnCodec(t, "json"); err == nil {
		out = append(out, "store it whole with `db:\"column,json\"`")
	}
	out = append(out, "exclude it with `db:\"-\"` (not stored: not loaded, and a change of it alone not saved)")
	return strings.Join(out, ", or ")
}

// jsonable checks that encoding/json writes and reads back every part of
// a value of type t: no func, chan, complex or unsafe.Pointer, and no
// unexported struct field, which encoding/json would silently skip.
func jsonable(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	if t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType) {
		return nil // its own encoding
	}
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return fmt.Errorf("%w: %v has no JSON encoding", repository.ErrUnsupported, t)
	case reflect.Interface:
		return fmt.Errorf("%w: %v: an interface does not read back as the type it held", repository.ErrUnsupported, t)
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return jsonable(t.Elem(), seen)
	case reflect.Map:
		if err := jsonable(t.Key(), seen); err != nil {
			return err
		}
		return jsonable(t.Elem(), seen)
	case reflect.Struct:
		if t == typeinfo.TimeType() {
			return nil
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				return fmt.Errorf("%w: field %s of %v is unexported, and encoding/json would drop it: export it, or implement json.Marshaler and json.Unmarshaler", repository.ErrUnsupported, f.Name, t)
			}
			if f.Tag.Get("json") == "-" {
				return fmt.Errorf("%w: field %s of %v is tagged `json:\"-\"`, and would not be stored", repository.ErrUnsupported, f.Name, t)
			}
			if err := jsonable(f.Type, seen); err != nil {
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
	var colls []collField
	if err := collect(t, nil, 0, "", "", &tb.cols, &colls); err != nil {
		return tb, nil, err
	}
	seen := make(map[string]string, len(tb.cols))
	for i, c := range tb.cols {
		if prev, ok := seen[c.name]; ok {
			hint := ""
			if strings.Contains(prev, ".") || strings.Contains(c.field, ".") {
				hint = ": a value object mapped more than once needs a column prefix, `db:\"p_,prefix\"` on its field"
			}
			return tb, nil, fmt.Errorf("column %q is mapped twice, by fields %s and %s%s", c.name, prev, c.field, hint)
		}
		seen[c.name] = c.field
		if c.name == key {
			tb.key = i
		}
	}
	if tb.key < 0 {
		return tb, nil, fmt.Errorf("key column %q is not the db tag of any field of %v", key, t)
	}
	for i, c := range tb.cols {
		if c.generated && i != tb.key {
			return tb, nil, fmt.Errorf("field %s: only the key column can be generated", c.field)
		}
	}
	tb.generated = tb.cols[tb.key].generated
	tb.times = timeCols(tb.cols)
	return tb, colls, nil
}

// posBelow reports whether a table of m has a position column.
func (m *Mapping[T]) posBelow() bool {
	for _, c := range m.top {
		if c.posBelow {
			return true
		}
	}
	return false
}

// tables returns the tables of m: the root's, then the children's.
func (m *Mapping[T]) tables() []*table {
	out := []*table{&m.root}
	for _, c := range m.children {
		out = append(out, &c.table)
	}
	return out
}

// insertCols returns the columns an INSERT into tb writes: all but a
// generated key.
func (tb *table) insertCols() []column {
	if !tb.generated {
		return tb.cols
	}
	out := make([]column, 0, len(tb.cols)-1)
	out = append(out, tb.cols[:tb.key]...)
	return append(out, tb.cols[tb.key+1:]...)
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
// Columns are the fields tagged `db:"column"`, exported or not, with the
// options `db:"column,json"` and `db:"column,array"` for collections of
// values (see the package doc). Fields tagged `db:"-"` or `ddd:"-"` are
// excluded. An untagged field of a struct type other than time.Time and
// the types implementing driver.Valuer or sql.Scanner is a value object:
// its own fields are columns of the same table, recursively; tagged
// `db:"p_,prefix"`, its column names take the prefix p_, so that one value
// object type can be mapped twice in a table. The root's
// version field (tagged `ddd:"version"`), if any, must have a db tag.
//
// NewMapping is strict: it fails, with an error wrapping [ErrMapping] that
// names the field and the fix, for any field of the root, of a value
// object or of a child entity that is neither mapped nor excluded, for a
// value object that maps to no column, and for a column whose type the
// drivers cannot both write and read back. It also fails when a name is
// not a plain identifier (a table may be schema-qualified), a key column
// is missing, a column is mapped twice, a Child names no entity
// collection of its parent, or an entity collection at any depth is left
// unmapped (map it with a Child, or tag it `ddd:"-"`). The option
// `db:"id,generated"` on a key column leaves the key to the database (see
// the package doc).
func NewMapping[T any](root Table, children ...Child) (*Mapping[T], error) {
	rt := reflect.TypeFor[T]()
	fail := func(format string, args ...any) (*Mapping[T], error) {
		return nil, fmt.Errorf("sqlstore: %w %v: %w", ErrMapping, rt, fmt.Errorf(format, args...))
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

	tables := map[string]bool{tb.name: true}
	top, err := m.newChildren(st, &m.root, nil, colls, children, tables)
	if err != nil {
		return fail("%w", err)
	}
	m.top = top
	// Whatever is mapped or excluded with `db:"-"` is snapshotted: a type
	// that cannot be is refused here, not at the first save.
	if _, err := tracking.Copy(*new(T)); err != nil {
		return fail("%w: exclude the field with `ddd:\"-\"`", err)
	}
	return m, nil
}

// identityIsKey checks that the root's field tagged `ddd:"id"`, if any,
// is the key column: the identity that Find takes and the identity map
// holds is the one the key column stores.
func (m *Mapping[T]) identityIsKey() error {
	s, err := typeinfo.StructOf(m.root.typ)
	if err != nil || s.IDField < 0 {
		return nil // no tag: the ID method, which NewSupport checks
	}
	key := &m.root.cols[m.root.key]
	if len(key.index) != 1 || key.index[0] != s.IDField {
		return fmt.Errorf("%w: the identity, field %s tagged `ddd:\"id\"`, is not the key column %q (field %s)", repository.ErrUnsupported, s.Fields[s.IDField].Name, key.name, key.field)
	}
	return nil
}

// newChildren maps the entity collections colls of the struct type pt
// (the root's, or the element's of the child table parent) with specs, and
// checks that every one is mapped. The new tables are appended to
// m.children, each before its own children.
func (m *Mapping[T]) newChildren(pt reflect.Type, pTable *table, parent *child, colls []collField, specs []Child, tables map[string]bool) ([]*child, error) {
	used := make([]bool, len(colls))
	var out []*child
	prefix := ""
	if parent != nil {
		prefix = parent.path + "."
	}
	for _, spec := range specs {
		c, grand, err := newChild(pt, pTable, parent, colls, used, spec)
		if err != nil {
			return nil, fmt.Errorf("child %q: %w", prefix+spec.Field, err)
		}
		c.path = prefix + spec.Field
		if tables[c.name] {
			return nil, fmt.Errorf("child %q: table %q is mapped twice", c.path, c.name)
		}
		tables[c.name] = true
		c.index = len(m.children)
		m.children = append(m.children, c)
		out = append(out, c)
		kids, err := m.newChildren(c.typ, &c.table, c, grand, spec.Children, tables)
		if err != nil {
			return nil, err
		}
		c.kids = kids
		c.genBelow = c.generated
		for _, k := range kids {
			if k.spec.ParentKeyOnly {
				c.ownKeys = true
			}
			c.posBelow = c.posBelow || k.posBelow
			c.genBelow = c.genBelow || k.genBelow
		}
	}
	for i, cf := range colls {
		if !used[i] {
			if len(cf.index) > 1 {
				return nil, fmt.Errorf("field %s%s is a collection of entities inside a value object: not supported (tag it `ddd:\"-\"`)", prefix, cf.field)
			}
			return nil, fmt.Errorf("field %s%s is a collection of entities that no Child maps (map it, or tag it `ddd:\"-\"`)", prefix, cf.field)
		}
	}
	pTable.colls = out
	return out, nil
}

// newChild maps the collection of spec, a field of the struct type root
// (the parent's), whose table is rootTable and child table parent (nil
// for the root). It returns the entity collections of the element type.
func newChild(root reflect.Type, rootTable *table, parent *child, colls []collField, used []bool, spec Child) (*child, []collField, error) {
	if spec.Field == "" {
		return nil, nil, fmt.Errorf("empty Field")
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
			return nil, nil, fmt.Errorf("%v has no field %s", root, spec.Field)
		case f.Tag.Get("ddd") == "-":
			return nil, nil, fmt.Errorf("field %s is tagged `ddd:\"-\"`", spec.Field)
		default:
			return nil, nil, fmt.Errorf("field %s (%v) is not a slice or map of entities", spec.Field, f.Type)
		}
	}
	if used[at] {
		return nil, nil, fmt.Errorf("field %s is mapped twice", spec.Field)
	}
	used[at] = true
	cf := colls[at]

	if spec.Key == "" {
		spec.Key = "id"
	}
	if err := checkIdent("key column", spec.Key, columnRE); err != nil {
		return nil, nil, err
	}
	if spec.ParentKey == "" {
		return nil, nil, fmt.Errorf("empty ParentKey: name the column that refers to the root's %q", rootTable.cols[rootTable.key].name)
	}
	if err := checkIdent("parent key column", spec.ParentKey, columnRE); err != nil {
		return nil, nil, err
	}

	c := &child{spec: spec, parent: parent, fieldIdx: cf.index[0], offset: root.Field(cf.index[0]).Offset, collType: cf.typ, elem: cf.typ.Elem()}
	st := c.elem
	if st.Kind() == reflect.Pointer {
		c.ptr = true
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct {
		return nil, nil, fmt.Errorf("element type %v is not a struct or a pointer to one", c.elem)
	}
	ident := typeinfo.Of(cf.typ).Identity // an entity collection (see collect)
	c.ident = ident
	if cf.typ.Kind() == reflect.Map && cf.typ.Key() != ident.Type {
		return nil, nil, fmt.Errorf("map key type %v is not the identity type %v of %v", cf.typ.Key(), ident.Type, c.elem)
	}
	tb, grand, err := newTable(spec.Table, spec.Key, st)
	if err != nil {
		return nil, nil, err
	}
	if tb.generated && cf.typ.Kind() == reflect.Map {
		return nil, nil, fmt.Errorf("field %s is a map keyed by identity, and its elements' keys are generated, which changes them on insert: use a slice", spec.Field)
	}
	if s, _ := typeinfo.StructOf(st); s != nil && s.Version >= 0 {
		return nil, nil, fmt.Errorf("%v has a version field: only the root has one", st)
	}
	c.table = tb
	// The columns that identify the parent row: see Child.
	pkt := rootTable.cols[rootTable.key].typ
	var names []string
	switch {
	case parent == nil || spec.ParentKeyOnly:
		names, c.refTypes = []string{spec.ParentKey}, []reflect.Type{pkt}
	default:
		names = append(append(names, parent.refNames...), spec.ParentKey)
		c.refTypes = append(append([]reflect.Type{}, parent.refTypes...), pkt)
	}
	c.refNames = names
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			return nil, nil, fmt.Errorf("parent key column %q is used twice: the levels above name theirs %q", spec.ParentKey, names[:len(names)-1])
		}
		seen[n] = true
		if i := tb.column(n); i >= 0 {
			return nil, nil, fmt.Errorf("parent key column %q is the db tag of field %s of %v: sqlstore fills it from the parent's key; remove the tag", n, tb.cols[i].field, st)
		}
	}
	if spec.Position != "" {
		if err := checkIdent("position column", spec.Position, columnRE); err != nil {
			return nil, nil, err
		}
		if cf.typ.Kind() != reflect.Slice {
			return nil, nil, fmt.Errorf("position column %q: field %s is a map, which has no order: use a slice", spec.Position, spec.Field)
		}
		if seen[spec.Position] || tb.column(spec.Position) >= 0 {
			return nil, nil, fmt.Errorf("position column %q is a parent key column or the db tag of a field of %v", spec.Position, st)
		}
		c.posBelow = true
	}
	return c, grand, nil
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
