package sqlstore

import (
	"context"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/internal/testdb"
)

// mysqlNeeded are the parameters MySQLDSN adds, as FormatDSN writes them.
const mysqlNeeded = "clientFoundRows=true&interpolateParams=true&multiStatements=true&parseTime=true&time_zone=%27%2B00%3A00%27"

func TestMySQLDSN(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"a DSN without parameters gets them all",
			"root@tcp(127.0.0.1:3306)/test", "root@tcp(127.0.0.1:3306)/test?" + mysqlNeeded},
		{"a DSN keeps its own parameters",
			"u:p@tcp(db:3306)/shop?timeout=5s&charset=utf8mb4", "u:p@tcp(db:3306)/shop?clientFoundRows=true&charset=utf8mb4&interpolateParams=true&multiStatements=true&parseTime=true&timeout=5s&time_zone=%27%2B00%3A00%27"},
		{"needed parameters already set are kept",
			"root@tcp(127.0.0.1:3306)/test?parseTime=1&clientFoundRows=true&loc=UTC&time_zone=%27%2B00%3A00%27", "root@tcp(127.0.0.1:3306)/test?" + mysqlNeeded},
		{"a time_zone of UTC by name is kept",
			"root@tcp(127.0.0.1:3306)/test?time_zone=%27UTC%27", "root@tcp(127.0.0.1:3306)/test?clientFoundRows=true&interpolateParams=true&multiStatements=true&parseTime=true&time_zone=%27UTC%27"},
		{"a URL keeps the commas of its charset list, which the driver does not unescape",
			"mysql://root@127.0.0.1/test?charset=utf8mb4,utf8", "root@tcp(127.0.0.1:3306)/test?clientFoundRows=true&charset=utf8mb4,utf8&interpolateParams=true&multiStatements=true&parseTime=true&time_zone=%27%2B00%3A00%27"},
		{"a URL becomes a DSN",
			"mysql://root@127.0.0.1:3306/test", "root@tcp(127.0.0.1:3306)/test?" + mysqlNeeded},
		{"a URL without a port is on 3306",
			"mysql://app:s%40cret@db.internal/shop?timeout=2s", "app:s@cret@tcp(db.internal:3306)/shop?" + mysqlNeeded[:len(mysqlNeeded)-len("&time_zone=%27%2B00%3A00%27")] + "&timeout=2s&time_zone=%27%2B00%3A00%27"},
		{"a mariadb:// URL too",
			"mariadb://root@localhost:3307/test", "root@tcp(localhost:3307)/test?" + mysqlNeeded},
		{"maxAllowedPacket=0, the server's, is kept",
			"root@tcp(127.0.0.1:3306)/test?maxAllowedPacket=0", "root@tcp(127.0.0.1:3306)/test?" + mysqlNeeded[:len(mysqlNeeded)-len("&time_zone=%27%2B00%3A00%27")] + "&maxAllowedPacket=0&time_zone=%27%2B00%3A00%27"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MySQLDSN(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			// The driver reads back what sqlstore needs.
			cfg, err := mysql.ParseDSN(got)
			require.NoError(t, err)
			assert.True(t, cfg.MultiStatements && cfg.InterpolateParams && cfg.ParseTime && cfg.ClientFoundRows)
			assert.Equal(t, "UTC", cfg.Loc.String())
		})
	}
}

func TestMySQLDSNRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"rows changed instead of matched", "root@tcp(127.0.0.1:3306)/test?clientFoundRows=false", "clientFoundRows=false: sqlstore needs clientFoundRows=true"},
		{"no multi-statements", "root@tcp(127.0.0.1:3306)/test?multiStatements=0", "multiStatements=0: sqlstore needs multiStatements=true"},
		{"prepared statements", "mysql://root@127.0.0.1/test?interpolateParams=false", "interpolateParams=false: sqlstore needs interpolateParams=true"},
		{"times as bytes", "root@tcp(127.0.0.1:3306)/test?parseTime=false", "parseTime=false"},
		{"a local time", "root@tcp(127.0.0.1:3306)/test?loc=Local", "loc=Local: sqlstore needs loc=UTC"},
		{"another session time zone", "root@tcp(127.0.0.1:3306)/test?time_zone=%27%2B02%3A00%27", "time_zone='+02:00'"},
		{"a charset the driver cannot escape", "root@tcp(127.0.0.1:3306)/test?charset=gbk", "gbk: interpolateParams cannot be used with unsafe charsets"},
		{"a collation of such a charset", "root@tcp(127.0.0.1:3306)/test?collation=sjis_japanese_ci", "sjis_japanese_ci: interpolateParams cannot be used"},
		{"an unsafe charset among fallbacks", "root@tcp(127.0.0.1:3306)/test?charset=utf8mb4,big5", "utf8mb4,big5: interpolateParams cannot be used"},
		{"a small packet limit", "root@tcp(127.0.0.1:3306)/test?maxAllowedPacket=1048576", "maxAllowedPacket=1048576"},
		{"not a DSN", "root@127.0.0.1:3306", "invalid DSN"},
		{"a bad boolean", "root@tcp(127.0.0.1:3306)/test?parseTime=yes", "invalid DSN"},
		{"a URL with a slash in the database", "mysql://root@127.0.0.1/a/b", "slash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MySQLDSN(tc.in)
			require.Error(t, err, got)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "sqlstore: MySQLDSN: ")
		})
	}
}

// mysqlDatabase creates a database of its own for t on the server of
// DDDKIT_TEST_MYSQL_DSN, dropped afterwards, and returns a handle on it
// opened with MySQLDSN; it skips t when the variable is unset.
func mysqlDatabase(t testing.TB) *sqlx.DB {
	t.Helper()
	dsn, _ := testdb.MySQLDatabase(t, "dddkit_core_", true)
	dsn, err := MySQLDSN(dsn)
	require.NoError(t, err)
	x, err := sqlx.Open("mysql", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	return x
}

// TestMySQLNewSQL checks that NewSQL takes the driver "mysql", and that a
// DB on it writes and reads.
func TestMySQLNewSQL(t *testing.T) {
	x := mysqlDatabase(t)
	db, err := NewSQL(x)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = x.Exec("CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
	require.NoError(t, err)
	n, err := db.Exec(ctx, "INSERT INTO notes (id, body) VALUES (?, ?), (?, ?)", 1, "it's", 2, `a \ b`)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
	var body string
	require.NoError(t, db.QueryRow(ctx, "SELECT body FROM notes WHERE id = ?", 2).Scan(&body))
	assert.Equal(t, `a \ b`, body)
}
