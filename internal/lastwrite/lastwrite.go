// Package lastwrite tells a transaction that an operation is the last one of
// its unit of work, so that the SQL layer can send the COMMIT with it.
//
// The repository's Update owns its unit of work: it loads, runs the
// caller's change, then saves, and nothing follows the save but the
// commit. It asks for the transaction with a context marked by [Own] and a
// token of its own, and saves with a context marked by [Last] with the same
// token. The SQL layer fuses the commit into the save only when the
// transaction was begun by the call marked with that token, never when it
// joined a transaction begun before, so a nested Update, or one run in a
// caller's unit of work, never commits early; and only for a store's whole
// save, not for other statements run with the same context.
//
// Update also loads the aggregate with a context marked by [ForWrite], so
// that the SQL layer can lock the root as it reads it.
package lastwrite

import "context"

// Token identifies one unit of work that owns its transaction.
type Token struct {
	// For is the transactor the unit of work is handed to: the SQL layer
	// sends the COMMIT with the last write only when it is that
	// transactor itself, not one that wraps it and may do more after the
	// unit of work's function returns.
	For any
}

type ownKey struct{}
type lastKey struct{}

// Own returns ctx marked as asking for a transaction owned by tok.
func Own(ctx context.Context, tok *Token) context.Context {
	return context.WithValue(ctx, ownKey{}, tok)
}

// Owner returns the token ctx was marked with by [Own], or nil.
func Owner(ctx context.Context) *Token {
	t, _ := ctx.Value(ownKey{}).(*Token)
	return t
}

// Last returns ctx marked as carrying the last operation of the unit of
// work owned by tok.
func Last(ctx context.Context, tok *Token) context.Context {
	return context.WithValue(ctx, lastKey{}, tok)
}

// IsLast reports whether ctx carries the last operation of the unit of
// work owned by tok, a non-nil token.
func IsLast(ctx context.Context, tok *Token) bool {
	t, _ := ctx.Value(lastKey{}).(*Token)
	return tok != nil && t == tok
}

type writeKey struct{}

// ForWrite returns ctx marked as carrying the load of an aggregate that
// its unit of work is about to change and save (the load of the
// repository's Update), so that the SQL layer can lock the aggregate's
// root as it reads it, as the save will.
func ForWrite(ctx context.Context) context.Context {
	return context.WithValue(ctx, writeKey{}, true)
}

// IsForWrite reports whether ctx was marked by [ForWrite].
func IsForWrite(ctx context.Context) bool {
	b, _ := ctx.Value(writeKey{}).(bool)
	return b
}
