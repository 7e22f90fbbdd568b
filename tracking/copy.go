package tracking

import "errors"

// Copy returns a deep copy of v. (placeholder, being implemented)
func Copy[T any](v T) (T, error) {
	var zero T
	return zero, errors.New("not implemented")
}
