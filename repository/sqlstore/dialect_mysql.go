package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dddkit/dddkit/repository"
)

var (
	// mysqlDialect is MySQL through go-sql-driver/mysql, the driver
	// "mysql", with the DSN options of [MySQLDSN], and MariaDB until its
	// probe has found it is one (see mysqlProbe). Its transactions run at
	// READ COMMITTED, not InnoDB's default REPEATABLE READ: each statement
	// reads the latest committed rows, and a load in a unit of work locks
	// the roots it reads, as on PostgreSQL. The statements of an operation
	// go in one multi-statement round trip, with the BEGIN of a
	// transaction and its COMMIT where they belong to the operation.
	mysqlDialect = &dialect{
		name: "mysql", title: "MySQL", quoteChar: '`', maxParams: 65535,
		lockSuffix: " FOR UPDATE", shareSuffix: " LOCK IN SHARE MODE", writeSuffix: " FOR UPDATE",
		lockBeforeDelete: true, stmtSnapshot: true,
		offsetAll: " LIMIT 18446744073709551615", // MySQL's own advice for an OFFSET alone
		snapshot:  &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
		foldASCII: mysqlFoldASCII, exactText: " COLLATE utf8mb4_bin", likeEscape: '!', padSpace: true,
		lockReadsLatest: true,
		schema:          mysqlCatalog{},
		multi:           true, begin: mysqlBegin, aborts: mysqlAborts, rolledBack: mysqlRolledBack,
		textArgs: true, backslashEscapes: true, hashComments: true,
	}
	// mariadbDialect is MariaDB 10.5 and later, as its probe finds it:
	// MySQL's dialect with INSERT ... RETURNING.
	mariadbDialect *dialect
)

func init() {
	mysqlDialect.probe = mysqlProbe // which refers to both dialects
	d := *mysqlDialect
	d.name, d.title, d.returning = "mariadb", "MariaDB", true
	mariadbDialect = &d
}

// mysqlFoldASCII lowers the 26 ASCII letters alone: LOWER() folds every
// letter the column's collation knows. REPLACE matches case-sensitively
// whatever the collation.
var mysqlFoldASCII = func() string {
	s := "%s"
	for c := 'A'; c <= 'Z'; c++ {
		s = "REPLACE(" + s + ", '" + string(c) + "', '" + strings.ToLower(string(c)) + "')"
	}
	return s
}()

// Control statements of MySQL, reported to the observer like the others.
const (
	sqlSetIsolation       = "SET TRANSACTION ISOLATION LEVEL "
	sqlStartTransaction   = "START TRANSACTION"
	sqlStartReadOnly      = "START TRANSACTION READ ONLY"
	sqlStartSnapshot      = "START TRANSACTION WITH CONSISTENT SNAPSHOT"
	sqlStartSnapshotRead  = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
	mysqlDefaultIsolation = sql.LevelReadCommitted
)

// mysqlBegin returns the statements that begin a transaction of o on
// MySQL: its isolation level, READ COMMITTED unless o asks for another,
// set for this transaction alone, then START TRANSACTION. At REPEATABLE
// READ the snapshot is taken at the START, not at the first read.
func mysqlBegin(o TxOptions) []string {
	level := o.Isolation
	if level == sql.LevelDefault {
		level = mysqlDefaultIsolation
	}
	start := sqlStartTransaction
	switch {
	case level == sql.LevelRepeatableRead && o.ReadOnly:
		start = sqlStartSnapshotRead
	case level == sql.LevelRepeatableRead:
		start = sqlStartSnapshot
	case o.ReadOnly:
		start = sqlStartReadOnly
	}
	return []string{sqlSetIsolation + pgLevels[level], start}
}

// MySQL and MariaDB error numbers that sqlstore maps to the sentinels of
// package repository, or that decide the outcome of a write.
const (
	myDupEntry           = 1062
	myLockWaitTimeout    = 1205
	myDeadlock           = 1213
	myRecordChanged      = 1020 // MariaDB 11.6+ with innodb_snapshot_isolation
	myServerShutdown     = 1053
	myAbortedConnection  = 1152
	myNetReadError       = 1158
	myNetReadInterrupted = 1159
	myNetWriteError      = 1160
	myNetWriteTimeout    = 1161
	myQueryInterrupted   = 1317
	myConnectionKilled   = 1927 // MariaDB
	mySessionKilled      = 3169 // MySQL
	myClientInactive     = 4031 // MySQL 8.0.24+
)

// myConstraint are the errors of a NOT NULL, foreign key or CHECK
// constraint.
var myConstraint = map[uint16]bool{
	1048: true, // ER_BAD_NULL_ERROR: Column 'c' cannot be null
	1364: true, // ER_NO_DEFAULT_FOR_FIELD: Field 'c' doesn't have a default value
	1216: true, // ER_NO_REFERENCED_ROW
	1217: true, // ER_ROW_IS_REFERENCED
	1451: true, // ER_ROW_IS_REFERENCED_2: a row referred to
	1452: true, // ER_NO_REFERENCED_ROW_2: a reference to no row
	3819: true, // ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
	4025: true, // ER_CONSTRAINT_FAILED (MariaDB)
}

// myInvalidValue are the errors of a value that its column cannot hold,
// in a strict sql_mode.
var myInvalidValue = map[uint16]bool{
	1264: true, // ER_WARN_DATA_OUT_OF_RANGE
	1265: true, // WARN_DATA_TRUNCATED
	1292: true, // ER_TRUNCATED_WRONG_VALUE: an incorrect datetime
	1366: true, // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: an incorrect integer, a string not in the charset
	1367: true, // ER_ILLEGAL_VALUE_FOR_TYPE
	1406: true, // ER_DATA_TOO_LONG
	1411: true, // ER_WRONG_VALUE_FOR_TYPE
	1690: true, // ER_DATA_OUT_OF_RANGE
	3140: true, // ER_INVALID_JSON_TEXT (MySQL)
}

// myFatal are the errors with which the server ends the session, or
// reports a statement cut short: given for a COMMIT, they do not say
// whether it took effect.
var myFatal = map[uint16]bool{
	myServerShutdown: true, myAbortedConnection: true, myNetReadError: true, myNetReadInterrupted: true,
	myNetWriteError: true, myNetWriteTimeout: true, myQueryInterrupted: true, myConnectionKilled: true,
	mySessionKilled: true, myClientInactive: true,
}

// mysqlAborts reports a deadlock (the server rolled the transaction back),
// a lock wait timeout (it rolled back the statement alone, and holds the
// earlier ones) and a write conflict under snapshot isolation: the unit
// of work is then rolled back whole, and refuses further statements.
func mysqlAborts(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case myDeadlock, myLockWaitTimeout, myRecordChanged:
		return true
	}
	return myFatal[me.Number]
}

// mysqlRolledBack reports whether err, met in a transaction, says that the
// server rolled the whole transaction back, or that the state of its
// session is unknown: a deadlock, a write conflict under snapshot
// isolation, a lock wait timeout when the server rolls back on one
// (innodb_rollback_on_timeout), an error that ends the session, or an
// answer that never came. The statements sent after it run outside any
// transaction.
func mysqlRolledBack(err error, srv *server) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return !failed(err, false)
	}
	switch me.Number {
	case myDeadlock, myRecordChanged:
		return true
	case myLockWaitTimeout:
		return srv == nil || srv.rollbackOnTimeout
	}
	return myFatal[me.Number]
}

var (
	// myKeyRE reads the key of a duplicate entry: "Duplicate entry '1-a'
	// for key 'order_id'" (MariaDB), "... for key 'order_items.order_id'"
	// (MySQL 8).
	myKeyRE = regexp.MustCompile(`for key '(?:[^'.]*\.)?([^']*)'$`)
	// myColumnRE reads the column of a value or NOT NULL error: "Column
	// 'sku' cannot be null", "Data too long for column 'sku' at row 1",
	// "Incorrect integer value: 'x' for column `db`.`t`.`c` at row 1".
	myColumnRE = regexp.MustCompile("(?:[Cc]olumn|Field) (?:'([^']+)'|(?:`[^`]*`\\.)*`([^`]+)`)")
	// myConstraintRE reads the name of a constraint: "CONSTRAINT
	// `fk_name` FOREIGN KEY", "CONSTRAINT `t.c` failed", "Check
	// constraint 'name' is violated".
	myConstraintRE = regexp.MustCompile("(?:CONSTRAINT `([^`]+)`|[Cc]onstraint '([^']+)')")
	// myFKColumnsRE reads the columns of a foreign key: "FOREIGN KEY
	// (`a`, `b`) REFERENCES".
	myFKColumnsRE = regexp.MustCompile(`FOREIGN KEY \(([^)]*)\)`)
)

// mysqlClassify classifies me, the error of MySQL in err, raised by
// statement s on table (both may be unknown).
func mysqlClassify(s *stmt, me *mysql.MySQLError, table string, err error) error {
	n := me.Number
	switch {
	case n == myDeadlock || n == myLockWaitTimeout || n == myRecordChanged:
		return fmt.Errorf("%w: %w", repository.ErrConflict, err)
	case n == myDupEntry:
		// The message names the key, not its columns: the primary key of
		// a root's INSERT is the root's key.
		var key, cols string
		if m := myKeyRE.FindStringSubmatch(me.Message); m != nil {
			key = m[1]
		}
		kind := repository.ErrUnique
		if key == "PRIMARY" && s != nil && s.rootKey != "" {
			kind, cols = repository.ErrExists, s.rootKey
		}
		return dataError(kind, table, cols, key, err)
	case myConstraint[n]:
		var col, name string
		if m := myColumnRE.FindStringSubmatch(me.Message); m != nil {
			col = m[1] + m[2]
		}
		if m := myConstraintRE.FindStringSubmatch(me.Message); m != nil {
			name = m[1] + m[2]
		}
		if m := myFKColumnsRE.FindStringSubmatch(me.Message); m != nil && col == "" {
			col = strings.ReplaceAll(m[1], "`", "")
		}
		return dataError(repository.ErrConstraint, table, col, name, err)
	case myInvalidValue[n] || strings.HasPrefix(string(me.SQLState[:]), "22"):
		var col string
		if m := myColumnRE.FindStringSubmatch(me.Message); m != nil {
			col = m[1] + m[2]
		}
		return dataError(repository.ErrInvalidValue, table, col, "", err)
	}
	return err
}

// mysqlFailed reports whether me, the answer of the server to a statement
// of a write (atCommit: to its COMMIT, once every statement had
// succeeded), says that nothing of it was written: the server refused the
// statement and ran none after it, so that the transaction is rolled back.
// An error that ends the session, given for the COMMIT, says nothing of
// it.
func mysqlFailed(me *mysql.MySQLError, atCommit bool) bool {
	return !atCommit || !myFatal[me.Number]
}

// mysqlProbe is the first use of a DB on MySQL or MariaDB: one round trip
// that checks the settings of the DSN that sqlstore needs ([MySQLDSN]) and
// reads what it needs to know of the server.
func mysqlProbe(ctx context.Context, db *DB) (*server, error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, mysqlProbeSQL, 1, "two")
	if err != nil {
		return nil, mysqlProbeError(err)
	}
	defer rows.Close()
	var (
		one               int64
		two               string
		version, mode     string
		zone              string
		packet            int64
		autocommit        int64
		rollbackOnTimeout int64
		stamp             any
		matched           int64
		csClient, csConn  string
	)
	steps := []func() error{
		func() error { return rows.Scan(&one) },
		func() error { return rows.Scan(&two) },
		func() error {
			return rows.Scan(&version, &mode, &zone, &packet, &autocommit, &stamp, &rollbackOnTimeout, &csClient, &csConn)
		},
		func() error { return rows.Scan(&matched) },
	}
	tempTable := true
	for i, step := range steps {
		if i > 0 && !rows.NextResultSet() {
			err := rows.Err()
			var me *mysql.MySQLError
			if i == len(steps)-1 && errors.As(err, &me) && (me.Number == 1044 || me.Number == 1142 || me.Number == 1227 || me.Number == 1046) {
				// No privilege to create a temporary table, or no
				// database to create it in (a DSN that names none): the
				// check of clientFoundRows is skipped.
				tempTable = false
				break
			}
			return nil, mysqlProbeError(orNoMarker(err))
		}
		if !rows.Next() {
			return nil, mysqlProbeError(orNoMarker(rows.Err()))
		}
		if err := step(); err != nil {
			return nil, mysqlProbeError(err)
		}
	}
	if one != 1 || two != "two" {
		return nil, mysqlProbeError(fmt.Errorf("the session sent back %d and %q for 1 and \"two\"", one, two))
	}
	var problems []string
	if _, ok := stamp.(time.Time); !ok {
		problems = append(problems, "parseTime=true: a DATETIME reads as text, not as a time.Time")
	}
	if !strings.Contains(mode, "STRICT_TRANS_TABLES") && !strings.Contains(mode, "STRICT_ALL_TABLES") {
		problems = append(problems, fmt.Sprintf("a strict sql_mode (STRICT_TRANS_TABLES): the session's sql_mode is %q, where the server cuts a value too long for its column, or out of its range, without an error", mode))
	}
	if !utcZone(zone) {
		problems = append(problems, fmt.Sprintf("time_zone='+00:00': the session's time zone is %q", zone))
	}
	if autocommit != 1 {
		problems = append(problems, "autocommit=1: the session begins a transaction with every statement")
	}
	for _, cs := range []struct{ name, value string }{{"character_set_client", csClient}, {"character_set_connection", csConn}} {
		if mysqlUnsafeCharset(cs.value) {
			problems = append(problems, fmt.Sprintf("a charset in which the driver can escape the values it interpolates (utf8mb4): the session's %s is %s, in which a character's second byte may be a backslash or a quote", cs.name, cs.value))
		}
	}
	if tempTable && matched != 1 {
		problems = append(problems, "clientFoundRows=true: an UPDATE reports the rows it changed, not those it matched")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("sqlstore: the MySQL session lacks %s: open the database with the DSN of sqlstore.MySQLDSN", strings.Join(problems, "; and "))
	}
	srv := &server{d: mysqlDialect, maxPacket: int(min(packet, mysqlDriverPacket)) - mysqlPacketSlack,
		rollbackOnTimeout: rollbackOnTimeout != 0}
	if mariadbReturning(version) && !db.mysqlPath {
		srv.d = mariadbDialect
	}
	return srv, nil
}

// mysqlPacketSlack is kept free of a packet's bytes for the command and
// its header.
const mysqlPacketSlack = 1024

// mysqlProbeSQL checks, in one round trip, that the session takes several
// statements in one query with their arguments in the text (two SELECTs of
// one argument each), reads the settings that matter, and checks that an
// UPDATE that writes equal values reports the row it matched, on a
// temporary table.
const mysqlProbeSQL = "SELECT ?; SELECT ?; " +
	"SELECT VERSION(), @@sql_mode, @@time_zone, @@max_allowed_packet, @@autocommit, " +
	"CAST('2000-01-02 03:04:05' AS DATETIME), @@innodb_rollback_on_timeout, " +
	"@@character_set_client, @@character_set_connection; " +
	"DROP TEMPORARY TABLE IF EXISTS dddkit_probe; CREATE TEMPORARY TABLE dddkit_probe (a INT); " +
	"INSERT INTO dddkit_probe VALUES (1); UPDATE dddkit_probe SET a = 1; SELECT ROW_COUNT(); " +
	"DROP TEMPORARY TABLE dddkit_probe"

// mysqlUnsafeCharset reports whether cs, a charset of the session, is one
// in which a byte of a multibyte character may be an ASCII byte (a
// backslash or a quote), so that escaping byte by byte, as the driver does
// when it interpolates values, is unsound.
func mysqlUnsafeCharset(cs string) bool {
	switch strings.ToLower(cs) {
	case "big5", "cp932", "gb2312", "gbk", "gb18030", "sjis":
		return true
	}
	return false
}

// mysqlProbeError is the error of a probe that failed with err: one that
// names the DSN to use when the server refused it.
func mysqlProbeError(err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1064 {
		return fmt.Errorf("sqlstore: the MySQL session refuses several statements in one query with their arguments in its text (multiStatements=true and interpolateParams=true): open the database with the DSN of sqlstore.MySQLDSN: %w", err)
	}
	return fmt.Errorf("sqlstore: reading the settings of the MySQL session: %w", err)
}

// mariadbReturning reports whether version, that of VERSION(), is MariaDB
// 10.5 or later, which has INSERT ... RETURNING.
func mariadbReturning(version string) bool {
	if !strings.Contains(version, "MariaDB") {
		return false
	}
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (major > 10 || major == 10 && minor >= 5)
}
