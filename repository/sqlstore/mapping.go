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
	codec  codec  // how the value is stored
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
	valuerType        = reflect.TypeFor[driver.Valuer]()
	scannerType       = reflect.TypeFor[sql.Scanner]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
)

// isValueObject reports whether an untagged field of type t is flattened:
// a struct that the driver does not handle as a value itself.
func isValueObject(t reflect.Type) bool {
	if t.Kind() != reflect.Struct || t == typeinfo.TimeType() {
		return false
	}
	return !t.Implements(valuerType) && !reflect.PointerTo(t).Implements(valuerType) &&
		!reflect.PointerTo(t).Implements(scannerType)
}

// entityCollection reports whether t is a slice or map of entities.
func entityCollection(t reflect.Type) (bool, error) {
	if t.Kind() != reflect.Slice && t.Kind() != reflect.Map {
		return false, nil
	}
	_, ok, err := typeinfo.IdentityOf(t.Elem())
	return ok, err
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
		name, opt, _ := strings.Cut(tag, ",")
		name, opt = strings.TrimSpace(name), strings.TrimSpace(opt)
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
			cd, err := columnCodec(f.Type, opt)
			if err != nil {
				return fmt.Errorf("field %s: %w", goPath, err)
			}
			if f.Version && len(index) > 0 {
				return fmt.Errorf("field %s: a version field must be a field of the root itself", goPath)
			}
			*cols = append(*cols, column{name: name, quoted: quote(name), index: idx, offset: offset + f.Offset, typ: f.Type, field: goPath, codec: cd})
			continue
		}
		if isValueObject(f.Type) {
			n := len(*cols)
			if err := collect(f.Type, idx, offset+f.Offset, goPath+".", cols, colls); err != nil {
				return err
			}
			if len(*cols) == n {
				return fmt.Errorf("field %s: the value object %v maps to no column, so a change of it would be lost: tag its fields `db:\"column\"`, store it whole with `db:\"column,json\"`, or exclude it with `db:\"-\"`", goPath, f.Type)
			}
			continue
		}
		if f.Version {
			return fmt.Errorf("version field %s has no db tag", goPath)
		}
		return fmt.Errorf("field %s: it is not mapped, so a change of it would be lost: tag it `db:\"column\"` (`db:\"column,json\"` for a collection of values), or exclude it with `db:\"-\"`", goPath)
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
		return 0, fmt.Errorf("unknown db tag option %q (want json or array)", opt)
	}
	if t == typeinfo.TimeType() {
		return codecPlain, nil
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
		return 0, fmt.Errorf("%w: the struct %v cannot be a column: remove the db tag to map its fields as columns (a value object), store it with `db:\"column,json\"`, or implement driver.Valuer and sql.Scanner", repository.ErrUnsupported, t)
	}
	return 0, fmt.Errorf("%w: a %v cannot be a column (exclude it with `db:\"-\"`, and `ddd:\"-\"` if it cannot be copied)", repository.ErrUnsupported, t)
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

// tables returns the tables of m: the root's, then the children's.
func (m *Mapping[T]) tables() []*table {
	out := []*table{&m.root}
	for _, c := range m.children {
		out = append(out, &c.table)
	}
	return out
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
// its own fields are columns of the same table, recursively. The root's
// version field (tagged `ddd:"version"`), if any, must have a db tag.
//
// NewMapping is strict: it fails, with an error wrapping [ErrMapping] that
// names the field and the fix, for any field of the root, of a value
// object or of a child entity that is neither mapped nor excluded, for a
// value object that maps to no column, and for a column whose type the
// drivers cannot both write and read back. It also fails when a name is
// not a plain identifier (a table may be schema-qualified), a key column
// is missing, a column is mapped twice, a Child names no entity
// collection of the root, an entity collection of the root is left
// unmapped (map it, or tag it `ddd:"-"`), or an element type holds entity
// collections of its own: sqlstore maps one level of children.
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
	ident, _, err := typeinfo.IdentityOf(c.elem)
	if err != nil {
		return nil, err
	}
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
