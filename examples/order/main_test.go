package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRun runs the example on the embedded SQLite database and checks the
// summary of each step. It does not run on PostgreSQL: the command works in
// a fixed schema, which the contract tests of package infrastructure leave
// alone.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, ""))
	var summaries []string
	for line := range strings.Lines(out.String()) {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "-> "); ok {
			summaries = append(summaries, s)
		}
	}
	require.Equal(t, []string{
		"4 statements in 4 round trips; writes: INSERT orders, INSERT order_items",
		"8 statements in 8 round trips; writes: UPDATE orders (total, version), UPDATE order_items (quantity)",
		"9 statements in 9 round trips; writes: UPDATE orders (total, version), DELETE order_items, INSERT order_items",
		"0 statements in 0 round trips; nothing written",
		"8 statements in 8 round trips; writes: DELETE order_items, DELETE orders",
	}, summaries, out.String())

	// A second run gets a database of its own.
	out.Reset()
	require.NoError(t, run(context.Background(), &out, ""))
}

func TestRunRejectsUnknownURL(t *testing.T) {
	err := run(context.Background(), &bytes.Buffer{}, "mysql://localhost/x")
	require.ErrorContains(t, err, `unsupported URL scheme "mysql"`)
}
