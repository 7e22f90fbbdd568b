package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/internal/lastwrite"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
)

// txKey is the context key of a DB's transaction: each DB has its own.
type txKey struct{ db *DB }

// txState is a transaction of [DB.InTx], carried in the context. It is
// begun lazily, by the first operation run in it: on pgx, BEGIN is then the
// first statement of that operation's batch and costs no round trip of its
// own; a unit of work that sends nothing costs nothing.
type txState struct {
	db   *DB
	ctx  context.Context // InTx's context, which the transaction lives in
	opts TxOptions       // of InTxWith; zero for InTx

	mu   sync.Mutex // serializes the statements of the transaction
	done bool
	pgx  pgx.Tx
	// held is the pool's connection that pgx runs on, held from the
	// first statement to the end of the transaction; cancelled says that
	// a cancel request was sent for it, and that it must be closed, not
	// reused.
	held      *pgxpool.Conn
	cancelled bool
	sql       *sqlTx
	// restore is set when an operation failed after its SAVEPOINT: the
	// transaction must be rolled back to the savepoint before anything else
	// is sent, or is dropped by a ROLLBACK. Doing that lazily saves a round
	// trip on the usual path, a failed save followed by a rollback. The
	// ROLLBACK TO SAVEPOINT goes alone: PostgreSQL refuses to even prepare
	// most other statements in an aborted transaction, and pgx prepares
	// the statements of a batch before running any.
	restore bool

	// owner is the token of the unit of work that began the transaction,
	// an Update's or InTx's own: the save marked last with it carries the
	// COMMIT (see package lastwrite, and CommitWith).
	owner *lastwrite.Token
	// committed: the COMMIT went with the last save, and succeeded.
	committed bool
	// caller: the transaction is the caller's (see [DB.JoinPGX]): it is
	// never begun, committed nor rolled back here.
	caller bool
	// guessed: the isolation level of the caller's transaction is not
	// known (MySQL): it is taken for READ COMMITTED, and loads lock the
	// children they read as well as the roots.
	guessed bool
	// doomed, when set, is why the transaction can only roll back: the
	// server rolled it back, or rolled back a failed statement alone
	// while it holds the earlier ones, or the state of its connection is
	// unknown. Every operation and the COMMIT then fail with it, and end
	// rolls back.
	doomed error
	// partial, when set, is the error of a save without a savepoint (the
	// last of the unit of work) that failed after some of its statements
	// had run: they cannot be undone alone, so the COMMIT fails with it,
	// and end rolls back. Loads may still run.
	partial error
	// staged is set while a stage of the last save of the unit of work
	// runs before its final one: without a savepoint too, so that its
	// failure, once sent, leaves the unit of work partial.
	staged bool
}

// doomedErr is the error of an operation in a doomed transaction.
func (t *txState) doomedErr() error {
	return fmt.Errorf("the transaction can only roll back, after: %w", t.doomed)
}

// commitRefused is the error that refuses the COMMIT of t, or nil.
func (t *txState) commitRefused() error {
	switch {
	case t.doomed != nil:
		return t.doomedErr()
	case t.partial != nil:
		return fmt.Errorf("a save failed after some of its statements ran, without a savepoint to undo them: %w", t.partial)
	}
	return nil
}

// ErrTxRolledBack is returned by an operation run in a caller's
// transaction ([DB.JoinSQL], [DB.InSQLTx]) after which the server rolled
// that transaction back whole, on its own: on MySQL and MariaDB, a
// deadlock (error 1213), a write conflict under snapshot isolation
// (1020), a lock wait timeout (1205) when the server has
// innodb_rollback_on_timeout, or an error that ends the session. What
// was written in the transaction, by the DB's saves and by the caller's
// statements, is gone, and the statements sent on it next run outside
// any transaction, each committed on its own. The caller must roll the
// transaction back and run the unit of work again: the error also
// matches [repository.ErrConflict] when a conflict caused it. The unit of
// work refuses its further operations with it, [Joined.Committed] drops
// the snapshots staged in it as [Joined.RolledBack] does, and
// [DB.InSQLTx] rolls back and returns it, even when its function
// returned nil.
var ErrTxRolledBack = errors.New("the server rolled back the caller's transaction, which must be rolled back")

// ErrTxDone is returned by an operation run with the context of a unit of
// work of [DB.InTx] that has already ended (committed or rolled back): the
// context was kept past the end of the function InTx ran.
var ErrTxDone = errors.New("the transaction of this context is already committed or rolled back")

func (db *DB) txFrom(ctx context.Context) *txState {
	t, _ := ctx.Value(txKey{db}).(*txState)
	return t
}

// InTx runs fn in a unit of work: a transaction, and a new tracking scope
// ([tracking.WithScope]), both carried by the context fn is given. When fn
// returns nil the transaction commits, and the scope commits only after the
// transaction did: snapshots advance only past what the database holds.
// When fn returns an error or panics, or the commit fails, the transaction
// rolls back and so does the scope, so that a retry sends the same changes
// again. A panic is re-raised after the rollback. The error of a failed
// commit or rollback is returned, joined to fn's (errors.Join); the
// rollback that follows a panic is only reported to the observer.
//
// A call whose ctx already carries an unfinished transaction of db joins
// it: fn runs in the outer transaction and scope, which the outermost call
// ends. The transaction begins with the first statement sent in it; on
// SQLite it begins with BEGIN IMMEDIATE, which takes the database's write
// lock at once, so that concurrent units of work that read and then write
// wait for each other under busy_timeout instead of failing with
// SQLITE_BUSY (a wait that times out fails with an error matching
// [repository.ErrConflict]).
//
// When ctx is done by the time fn returns nil, nothing is committed: the
// transaction rolls back and the error wraps the context's error. A COMMIT
// that is sent is not abandoned when ctx is done meanwhile: on pgx the
// server is asked to cancel it and its answer awaited, on database/sql it
// runs with a context that ends later, for at most the wait of
// [WithCancelWait] in both cases (see [NewPGX] and [NewSQL]). So InTx
// returns nil only when the transaction committed, an error that does not
// match [repository.ErrOutcomeUnknown] only when it did not, and an error
// that matches it when the answer to the COMMIT was lost (the connection
// broke, or the wait expired). A serialization failure at COMMIT matches
// [repository.ErrConflict].
//
// InTx implements [repository.Transactor]. It is [DB.InTxWith] with the
// zero TxOptions.
func (db *DB) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return db.inTx(ctx, nil, fn)
}

// InTxWith is [DB.InTx] with the transaction begun with opts: its
// isolation level and whether it is read-only (see [TxOptions] for what
// each backend does with them). Options a backend cannot honour are an
// error, returned before fn runs.
//
// A call whose ctx already carries an unfinished transaction of db joins
// it, as InTx does, if that transaction satisfies opts: it must not be
// read-only when opts is not, and, on PostgreSQL, its isolation level must
// be at least that of opts (the zero level asks for nothing, and the
// outer transaction's zero level is taken as READ COMMITTED, the server's
// default); on SQLite, whose transactions are all serializable, any level
// is satisfied. Otherwise InTxWith returns an error without running fn. A
// nested plain InTx joins any outer transaction.
func (db *DB) InTxWith(ctx context.Context, opts TxOptions, fn func(ctx context.Context) error) error {
	return db.inTx(ctx, &opts, fn)
}

func (db *DB) inTx(ctx context.Context, opts *TxOptions, fn func(ctx context.Context) error) error {
	if err := db.check(); err != nil {
		return fmt.Errorf("sqlstore: transaction: %w", err)
	}
	if fn == nil {
		return errors.New("sqlstore: transaction: nil function")
	}
	if opts == nil {
		if o, ok := ctx.Value(txOptionsKey{}).(TxOptions); ok {
			opts = &o
		}
	}
	var o TxOptions
	if opts != nil {
		o = *opts
		if err := o.validate(db.dialect); err != nil {
			return err
		}
	}
	if t := db.txFrom(ctx); t != nil && t.finished() && t.caller {
		// The caller's transaction has ended: a new one would run
		// outside it, committed on its own.
		return fmt.Errorf("sqlstore: transaction: %w", ErrTxDone)
	}
	if t := db.txFrom(ctx); t != nil && !t.finished() {
		if opts != nil {
			if err := t.opts.satisfies(o, db.dialect); err != nil {
				return err
			}
		}
		// fn runs inside the outer unit of work: its saves are never
		// the last of the transaction (see CommitWith).
		return fn(context.WithValue(ctx, frameKey{db}, (*lastwrite.Token)(nil)))
	}
	t := &txState{db: db, ctx: ctx, opts: o.effective(db.dialect)}
	var frame *lastwrite.Token
	switch tok := lastwrite.Owner(ctx); {
	case tok == nil:
		// The caller's own unit of work: fn may mark its last save
		// with CommitWith.
		t.owner = &lastwrite.Token{For: db}
		frame = t.owner
	case tok.For == any(db):
		// An Update handed its unit of work to this DB itself, not to a
		// transactor that wraps it and may do more after fn returns.
		t.owner = tok
	}
	sc := tracking.NewScope()
	inner := tracking.WithScope(context.WithValue(context.WithValue(ctx, txKey{db}, t), frameKey{db}, frame), sc)

	returned := false
	defer func() {
		if returned {
			return
		}
		// fn panicked (or called runtime.Goexit): roll back, then go on.
		p := recover()
		_ = t.end(ctx, false) // its error reaches the observer
		sc.Rollback()
		if p != nil {
			panic(p)
		}
	}()
	err := fn(inner)
	returned = true

	if err != nil {
		if t.wasCommitted() {
			// fn failed after its last save had committed: the changes
			// are in the database, so the snapshots advance with them,
			// and the error says that a retry must not apply them again.
			_ = t.end(ctx, true) // releases the connection; nothing is sent
			sc.Commit()
			return fmt.Errorf("sqlstore: %w: the transaction committed with its last save, then: %w", repository.ErrOutcomeUnknown, err)
		}
		rerr := t.end(ctx, false)
		sc.Rollback()
		if rerr != nil {
			return errors.Join(err, fmt.Errorf("sqlstore: rollback: %w", rerr))
		}
		return err
	}
	if cerr := t.end(ctx, true); cerr != nil {
		sc.Rollback()
		return fmt.Errorf("sqlstore: commit: %w", cerr)
	}
	sc.Commit()
	return nil
}

// frameKey is the context key of the token that the function run by
// the InTx that began a transaction of a DB may mark its last save with:
// nil in a function that runs inside another unit of work.
type frameKey struct{ db *DB }

// CommitWith returns ctx marked so that the save of an aggregate made
// with it is the last operation of the unit of work of ctx: it is sent
// without a savepoint, and on pgx with the COMMIT in the same round trip
// as the save's statements. It is what
// [repository.AggregateRepositorySupport.Update] does for its own save;
// CommitWith does it for a function given to [DB.InTx] or [DB.InTxWith]:
//
//	err := db.InTx(ctx, func(ctx context.Context) error {
//		o, err := orders.FindForUpdate(ctx, id)
//		if err != nil {
//			return err
//		}
//		o.Ship()
//		return orders.Save(db.CommitWith(ctx), o)
//	})
//
// costs two round trips on pgx, the load and the save with its COMMIT,
// where the save followed by InTx's own COMMIT costs three.
//
// On pgx the save reports the outcome of the transaction: nil only when
// it committed, an error matching [repository.ErrOutcomeUnknown] when the
// answer to the COMMIT was lost. After it, the unit of work is over: an
// operation run in it fails with [ErrTxDone], and when the function then
// returns an error, InTx returns an error matching
// [repository.ErrOutcomeUnknown] that says the transaction committed. So
// it is on MySQL and MariaDB, whose COMMIT goes in the save's round trip.
// On database/sql elsewhere, whose transactions commit through their own
// call, the COMMIT is sent when the function returns, and InTx reports its
// outcome, as it does after any save; statements sent after the save still
// run in the transaction.
//
// The mark takes effect only in the function run by the InTx that began
// the transaction: in a unit of work joined by a nested InTx, in an
// Update's function, in a caller's transaction joined with [DB.JoinPGX]
// or [DB.JoinSQL], or outside a transaction, CommitWith returns ctx
// unchanged and the save runs as any other. Only the save of a store
// carries the COMMIT: loads and statements of your own sent with the
// marked context run as usual, before it. A save that writes nothing (an
// unchanged aggregate) commits nothing, and InTx commits when the
// function returns.
func (db *DB) CommitWith(ctx context.Context) context.Context {
	if db == nil {
		return ctx
	}
	t := db.txFrom(ctx)
	tok, _ := ctx.Value(frameKey{db}).(*lastwrite.Token)
	if t == nil || tok == nil || t.owner != tok {
		return ctx
	}
	return lastwrite.Last(ctx, tok)
}

// snapshotted reports whether every statement of t reads one snapshot:
// on PostgreSQL, at REPEATABLE READ and above (a read-only transaction
// runs at least at that level); on SQLite, always. The options of a
// caller's transaction joined are those the server reports at the join.
func (t *txState) snapshotted() bool {
	return !t.db.dialect.stmtSnapshot || pgRank(t.opts.Isolation) >= 2
}

func (t *txState) finished() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}

func (t *txState) wasCommitted() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.committed
}

// end commits or rolls back the transaction, if it was begun. It does not
// commit when ctx is done.
func (t *txState) end(ctx context.Context, commit bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil
	}
	t.done = true
	defer t.release()
	if t.pgx == nil && t.sql == nil {
		return nil // never begun: nothing to end
	}
	if t.committed {
		if t.sql != nil {
			t.sql.close() // gives its connection back
		}
		return nil // committed with the last save
	}
	var errs []error
	if commit {
		if err := t.commitRefused(); err != nil {
			commit = false
			errs = append(errs, fmt.Errorf("not committed: %w", err))
		}
	}
	if t.sql != nil && t.sql.multi {
		return errors.Join(append(errs, t.multiEnd(ctx, commit))...)
	}
	if commit {
		if err := ctx.Err(); err != nil {
			commit = false
			errs = append(errs, fmt.Errorf("not committed: %w", err))
		}
	}
	if commit && t.restore {
		if rerr := t.restoreSavepoint(ctx); rerr != nil {
			commit = false
			errs = append(errs, rerr)
		}
	}
	db := t.db
	if t.sql != nil {
		if commit {
			return db.sqlCommit(ctx, t.sql)
		}
		return errors.Join(append(errs, db.sqlEnd(ctx, t.sql, false))...)
	}
	trip, start := db.nextTrip(), time.Now()
	var err error
	if commit {
		pc := t.pgx.Conn().PgConn()
		if pc.IsClosed() {
			// The connection broke before: the server rolled back.
			err = fmt.Errorf("%w: %w", errConnLost, pgconn.ErrConnClosed)
			db.report(ctx, sqlCommit, nil, trip, err, time.Since(start))
			return err
		}
		var w watch
		w, err = db.guard(ctx, pc, t.pgx.Commit)
		t.cancelled = t.cancelled || w == cancelled || w == cut
		err = classify(nil, err)
		db.report(ctx, sqlCommit, nil, trip, err, time.Since(start))
		return db.outcome(ctx, w, err, true)
	}
	// The ROLLBACK runs even when ctx is done, so that the connection is
	// left clean; it takes no lock and is bounded all the same.
	rctx, stop := context.WithTimeout(context.WithoutCancel(ctx), db.cancelWait())
	err = t.pgx.Rollback(rctx)
	stop()
	db.report(ctx, sqlRollback, nil, trip, err, time.Since(start))
	return errors.Join(append(errs, err)...)
}

// release gives back the pool's connection the transaction held.
func (t *txState) release() {
	if t.held != nil {
		t.db.release(t.held, t.cancelled)
		t.held = nil
	}
}

// restoreSavepoint rolls the transaction back to the savepoint of the
// failed operation. The savepoint itself is left: the caller releases it
// or ends the transaction.
func (t *txState) restoreSavepoint(ctx context.Context) error {
	if t.doomed != nil {
		return t.doomedErr() // no savepoint is left
	}
	var err error
	if t.pgx != nil {
		_, err = t.pgxBatch(ctx, t.pgx, t.pgx.Conn().PgConn(), nil, controls(sqlRollbackTo))
	} else {
		_, err = t.db.sqlTrip(ctx, t.sql.on(), nil, nil, []string{sqlRollbackTo})
	}
	if err == nil {
		t.restore = false
	}
	return err
}

// controls returns control statements as stmts.
func controls(sqls ...string) []stmt {
	out := make([]stmt, len(sqls))
	for i, s := range sqls {
		out[i] = stmt{sql: s}
	}
	return out
}

// run executes stmts in the transaction, beginning it if need be. When
// atomic, they are enclosed in SAVEPOINT dddkit_save ... RELEASE SAVEPOINT
// dddkit_save, and a failure marks the savepoint for a rollback.
func (t *txState) run(ctx context.Context, stmts []stmt, atomic bool) error {
	return t.runSave(ctx, stmts, atomic, false)
}

// runSave is run; mayCommit says that stmts are a whole save of a store,
// which may carry the COMMIT when it is the last operation of an Update
// that began t (see runLocked).
func (t *txState) runSave(ctx context.Context, stmts []stmt, atomic, mayCommit bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done || t.committed {
		return ErrTxDone
	}
	return t.runLocked(ctx, stmts, atomic, mayCommit)
}

// open begins the transaction if it was not begun, and rolls back to the
// savepoint of a failed operation if one is pending, so that statements
// sent on it directly run in a sound transaction.
func (t *txState) open(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done || t.committed {
		return ErrTxDone
	}
	if t.doomed != nil {
		return t.doomedErr()
	}
	if (t.pgx != nil || t.sql != nil && t.sql.begin == nil) && !t.restore {
		return nil
	}
	return t.runLocked(ctx, nil, false, false)
}

// runLocked is run, with t.mu held and t not done.
//
// The last save of an Update that began the transaction (see package
// lastwrite) needs no savepoint: if it fails, the transaction rolls back
// whole, as nothing is sent after it. On pgx it carries the COMMIT too, in
// the same batch, which saves the commit's round trip.
func (t *txState) runLocked(ctx context.Context, stmts []stmt, atomic, mayCommit bool) error {
	if err := ctx.Err(); err != nil {
		return err // nothing sent
	}
	if t.doomed != nil {
		return t.doomedErr()
	}
	srv, err := t.db.ready(ctx)
	if err != nil {
		return err
	}
	last := atomic && mayCommit && lastwrite.IsLast(ctx, t.owner)
	var pre, post []string
	folded := false
	if t.restore {
		if t.sql != nil && t.sql.multi {
			// One round trip: the rollback to the savepoint goes first.
			pre, folded = append(pre, sqlRollbackTo), true
		} else if err := t.restoreSavepoint(ctx); err != nil {
			return err
		}
		pre = append(pre, sqlReleaseSavepoint)
	}
	if atomic && !last {
		pre = append(pre, sqlSavepoint)
		post = []string{sqlReleaseSavepoint}
	}

	var n int
	db := t.db
	if db.pgx != nil {
		if last {
			return t.pgxLast(ctx, pre, stmts)
		}
		if t.pgx == nil {
			return t.pgxBegin(ctx, pre, post, stmts, atomic)
		}
		n, err = t.pgxBatch(ctx, t.pgx, t.pgx.Conn().PgConn(), &batchCtl{pre: pre, post: post}, stmts)
	} else {
		if t.sql == nil {
			tx, err := db.sqlBeginWrite(ctx, t.ctx, true, t.opts)
			if err != nil {
				return err
			}
			t.sql = tx
		}
		if t.sql.multi {
			return t.multiRun(ctx, pre, post, stmts, atomic, last, folded)
		}
		n, err = db.sqlTrip(ctx, t.sql.on(), pre, stmts, post)
		if err != nil && t.caller && db.dialect.rolledBack != nil && db.dialect.rolledBack(err, srv) {
			// The server rolled back the caller's transaction, its
			// savepoint with it: what was saved in it is gone, and
			// what the caller sends next runs outside it.
			err = fmt.Errorf("%w: %w", ErrTxRolledBack, err)
			t.doomed = err
			return err
		}
		if err != nil && (last || t.staged) {
			// The save ran without a savepoint: what ran of it stays in
			// the transaction, which must not commit.
			t.partial = err
		}
	}
	t.failedAfter(ctx, err, atomic && !last, n, len(pre))
	return err
}

// failedAfter marks the savepoint for a rollback when an atomic operation
// failed after it was set: n statements of the operation's, pre of them
// before it, succeeded. In the caller's transaction the rollback to the
// savepoint is sent at once, since the caller may go on with statements of
// its own, or commit.
func (t *txState) failedAfter(ctx context.Context, err error, atomic bool, n, pre int) {
	if err != nil && atomic && n > pre-1 {
		t.restore = true
		if t.caller {
			_ = t.restoreSavepoint(ctx) // on failure, restore stays set, and the next operation tries again
		}
	}
}

// runStages runs a write of several round trips, all or nothing: first,
// then the statements that later(k) returns for k = 1 ... n-1, each built
// once the one before has run (it needs the keys that it generated). In a
// unit of work it runs in its transaction; otherwise in a transaction of
// its own, whose COMMIT goes with the last stage.
func (db *DB) runStages(ctx context.Context, first []stmt, n int, later func(k int) []stmt) error {
	if t := db.txFrom(ctx); t != nil {
		return t.runStages(ctx, first, n, later)
	}
	tok := &lastwrite.Token{For: db}
	return db.inTx(lastwrite.Own(ctx, tok), nil, func(ctx context.Context) error {
		return db.txFrom(ctx).runStages(lastwrite.Last(ctx, tok), first, n, later)
	})
}

// runStages is [DB.runStages] in t. The stages of the last write of a
// unit of work that began t run without a savepoint, the COMMIT with the
// last one; others are enclosed in one savepoint, from the first stage to
// the last.
func (t *txState) runStages(ctx context.Context, first []stmt, n int, later func(k int) []stmt) error {
	last := lastwrite.IsLast(ctx, t.owner)
	for k := range n {
		stmts := first
		if k > 0 {
			stmts = later(k)
		}
		if last {
			if err := t.runStage(ctx, stmts, k, n); err != nil {
				return err
			}
			continue
		}
		if k == 0 {
			// The savepoint goes alone, so that a failure of the first
			// stage is known to come after it.
			if err := t.run(ctx, controls(sqlSavepoint), false); err != nil {
				return err
			}
		}
		if k == n-1 {
			stmts = append(stmts, controls(sqlReleaseSavepoint)...)
		}
		if err := t.run(ctx, stmts, false); err != nil {
			t.mu.Lock()
			t.restore = true
			if t.caller {
				_ = t.restoreSavepoint(ctx) // on failure, restore stays set, and the next operation tries again
			}
			t.mu.Unlock()
			return err
		}
	}
	return nil
}

// runStage runs stage k of n of the last save of the unit of work that
// began t, without a savepoint, the COMMIT with the final stage. When it
// fails, the unit of work is partial (its COMMIT is refused) unless nothing
// of the save ran: the stages before k ran, and stage k was sent.
func (t *txState) runStage(ctx context.Context, stmts []stmt, k, n int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done || t.committed {
		return ErrTxDone
	}
	final := k == n-1
	t.staged = !final
	err := t.runLocked(ctx, stmts, final, final)
	t.staged = false
	if err != nil && k > 0 && t.doomed == nil && t.partial == nil && !t.committed {
		t.partial = err
	}
	return err
}
