// Package ddd holds the building blocks of a domain model that dddkit
// persists: entities, aggregates, and the struct tags that describe them.
//
// # Identity
//
// An entity is a value whose identity, not its attributes, tells it apart.
// dddkit learns an entity's identity in one of two ways:
//
//   - a method: the type (or a pointer to it) implements [Entity], that is it
//     has a method ID() returning a comparable value. This is the way for
//     models whose fields are unexported, which is normal in a domain model.
//   - a struct tag: a field tagged `ddd:"id"` is the identity. This suits
//     plain structs with exported fields, and is also the faster way, since
//     the identity is read at a fixed offset without a method call. The tag
//     works on unexported fields as well. When a type has both, the tag wins.
//
// For example:
//
//	type Order struct {
//		id      OrderID
//		items   []*OrderItem
//		version int64 `ddd:"version"`
//	}
//
//	func (o *Order) ID() OrderID { return o.id }
//
//	type OrderItem struct {
//		id       ItemID `ddd:"id"`
//		quantity int
//	}
//
// A collection (slice or map) whose elements are entities is matched by
// identity when two versions of an aggregate are compared; see package diff.
//
// An aggregate root's identity is learnt the same two ways. A root whose
// accessor has another name than ID, such as UUID() or Time(), tags the
// field that holds its identity `ddd:"id"`; a repository of it is then
// built as any other (package repository checks that the field's type is
// the repository's ID type):
//
//	type Ticket struct {
//		uuid  uuid.UUID `ddd:"id"`
//		title string
//	}
//
//	func (t *Ticket) UUID() uuid.UUID { return t.uuid }
//
// # Optimistic locking
//
// An aggregate root marks its optimistic-lock version with the tag
// `ddd:"version"` on an integer field (exported or not). Repositories check
// the version on every write that touches the aggregate and advance it by
// one; domain code never needs a setter for it. A root without such a field
// is saved without a version check.
//
// # Ignored fields
//
// A field tagged `ddd:"-"` is neither copied into snapshots nor compared.
// Use it for caches, loggers, domain events waiting to be published, and
// fields of kinds that cannot be compared (func, chan, unsafe.Pointer).
//
// Each field carries at most one of "id", "version" or "-"; any other value
// of the tag is an error reported when the type is first used.
package ddd

// Entity is implemented by a domain object with an identity. ID must return
// the same value for the life of the entity.
type Entity[ID comparable] interface {
	ID() ID
}

// Aggregate is implemented by an aggregate root: the entity through which
// a cluster of entities and value objects is loaded, changed and saved as a
// whole. Its optimistic-lock version, if it has one, is the integer field
// tagged `ddd:"version"`. A root that does not implement it has its
// identity in a field tagged `ddd:"id"` instead.
type Aggregate[ID comparable] interface {
	Entity[ID]
}

// TagName is the struct tag key dddkit reads: `ddd:"id"`, `ddd:"version"`
// and `ddd:"-"`.
const TagName = "ddd"
