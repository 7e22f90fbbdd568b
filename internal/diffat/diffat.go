// Package diffat compares two values whose type is known only at run time
// by the rules of package diff, for the packages of this module that read
// values by reflection, without making that comparison public API.
package diffat

import (
	"reflect"
	"unsafe"
)

// Compare returns the differences, a diff.Result, between the values of
// type t at old and cur, as diff.Compare does for two pointers to them.
// Package diff sets it when it is initialised, so that a package that
// imports diff can call it.
var Compare func(t reflect.Type, old, cur unsafe.Pointer) (any, error)
