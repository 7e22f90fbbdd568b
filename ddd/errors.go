package ddd

import "errors"

// The errors of a model that cannot be compared, copied or stored as it
// is. Package diff, package tracking, package repository and the stores
// wrap them (diff.ErrUnsupported is ErrUnsupported, and so on), so that one
// errors.Is works whichever layer found the problem.
var (
	// ErrUnsupported reports a type or value that cannot be tracked: a func,
	// chan or unsafe.Pointer field not tagged `ddd:"-"`, a malformed ddd tag,
	// an identity of interface type, a nil aggregate, or a value nested
	// deeper than the depth limit.
	ErrUnsupported = errors.New("unsupported type")
	// ErrCycle reports a pointer cycle: a value that contains itself.
	ErrCycle = errors.New("pointer cycle")
	// ErrDuplicateID reports two elements with the same identity in one
	// entity collection.
	ErrDuplicateID = errors.New("duplicate identity in entity collection")
	// ErrNilEntity reports a nil pointer stored in an entity collection.
	ErrNilEntity = errors.New("nil element in entity collection")
)
