package repository

import (
	"errors"
	"strings"
)

// Errors the store raises about the data of a write, usable with errors.Is.
// A store wraps them in a [*DataError], which names the table, the column
// and the constraint where the database reports them. A retry of the same
// write fails the same way, so [RetryPolicy] does not retry them.
var (
	// ErrUnique reports a violation of a unique key other than the
	// aggregate's identity (which is [ErrExists]): an e-mail column, a
	// natural key, a unique position among siblings.
	ErrUnique = errors.New("unique key violated")
	// ErrConstraint reports a violation of a CHECK, NOT NULL or foreign key
	// constraint.
	ErrConstraint = errors.New("constraint violated")
	// ErrInvalidValue reports a value that its column cannot hold: a number
	// out of the column type's range, a string longer than the column
	// allows or with a character the database refuses, a value of the
	// wrong type for a strictly typed column, an index entry too large.
	ErrInvalidValue = errors.New("value the column cannot hold")
)

// DataError is the error of a write that the database refused because of
// the data: errors.Is matches its Kind and the database driver's error (Err
// and its chain), and errors.As opens it to read where the database
// refused the data:
//
//	var de *repository.DataError
//	if errors.As(err, &de) && errors.Is(err, repository.ErrUnique) {
//		// 409: de.Table, de.Column, de.Constraint
//	}
//
// Table, Column and Constraint are empty where the database does not report
// them. Column is one column, or the columns of a key of several as the
// database lists them ("list_id, pos").
type DataError struct {
	// Kind is ErrUnique, ErrConstraint, ErrInvalidValue or ErrExists.
	Kind error
	// Table is the table of the refused row, as the database names it or
	// else as the failing statement does.
	Table string
	// Column is the column of the refused value or of the violated key.
	Column string
	// Constraint is the name of the violated constraint.
	Constraint string
	// Err is the database driver's error.
	Err error
}

// Error returns the kind, where the data was refused, and the driver's
// error.
func (e *DataError) Error() string {
	var b strings.Builder
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString("repository: data refused")
	}
	sep := " ("
	for _, f := range [...]struct{ name, value string }{{"table", e.Table}, {"column", e.Column}, {"constraint", e.Constraint}} {
		if f.value != "" {
			b.WriteString(sep + f.name + " " + f.value)
			sep = ", "
		}
	}
	if sep == ", " {
		b.WriteByte(')')
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Kind and Err, for errors.Is and errors.As.
func (e *DataError) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}
