package repository_test

import (
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/repository"
)

// A service answers a refusal of the data without importing a driver.
func ExampleDataError() {
	// As a store returns it: the driver's error inside.
	driver := errors.New(`duplicate key value violates unique constraint "users_email_key"`)
	err := fmt.Errorf("sqlstore: insert users: %w", &repository.DataError{
		Kind: repository.ErrUnique, Table: "users", Column: "email", Constraint: "users_email_key", Err: driver,
	})

	var de *repository.DataError
	switch {
	case errors.As(err, &de) && errors.Is(err, repository.ErrUnique):
		fmt.Printf("409: %s.%s is taken\n", de.Table, de.Column)
	case errors.Is(err, repository.ErrConstraint), errors.Is(err, repository.ErrInvalidValue):
		fmt.Println("422")
	}
	fmt.Println(errors.Is(err, driver))
	fmt.Println(err)
	// Output:
	// 409: users.email is taken
	// true
	// sqlstore: insert users: unique key violated (table users, column email, constraint users_email_key): duplicate key value violates unique constraint "users_email_key"
}
