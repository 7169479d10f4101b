package embedded

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/memcell/memcell"
)

// FerretDB v1.24 evaluates every filter but exactly {_id: v} in Go after
// reading the whole collection, and the indexes it creates in SQLite are on
// expressions (_ferretdb_sjson->"user_id") its queries never use. A
// QueryIndex answers memcell's queries from SQLite itself instead: it keeps
// expression indexes of its own on the fields memcell selects and sorts by,
// and asks SQLite, on a read-only connection, for the ids of the matching
// documents (in order, limit and skip applied) or for their count. The
// documents themselves are still read through FerretDB, by _id (an index
// search, see IndexIDs), and every write still goes through FerretDB: the
// MongoDB wire stays the only writer and the source of truth.
//
// Its answers must be exactly MongoDB's. They are for documents whose
// filtered fields have the types memcell stores (an ObjectId _id; user_id,
// group_id and type strings or null; a date timestamp; deleted_at a date,
// null or absent; participants and keywords arrays of strings, null or
// absent). FerretDB records each document's field types next to its
// values ($s), and a partial index lists the documents of any other shape;
// while it is not empty the QueryIndex declines (ok false) and the caller
// asks the server. TestQueryIndexLayout fails if FerretDB's version or
// storage layout changes under it.

// Expressions on FerretDB's document column. ->> gives SQL values: strings
// unescaped, dates (milliseconds) as integers, JSON null and an absent
// field as NULL, which is what {deleted_at: null} selects on MongoDB.
const (
	userExpr      = `_ferretdb_sjson->>'$.user_id'`
	groupExpr     = `_ferretdb_sjson->>'$.group_id'`
	typeExpr      = `_ferretdb_sjson->>'$.type'`
	timestampExpr = `_ferretdb_sjson->>'$.timestamp'`
	deletedExpr   = `_ferretdb_sjson->>'$.deleted_at'`
	hexIDExpr     = `_ferretdb_sjson->>'$._id'`
)

// fieldType is the expression of the BSON type FerretDB recorded for a
// top-level field ("string", "date", "array", ...; NULL when absent).
func fieldType(field string) string {
	return `_ferretdb_sjson->>'$."$s".p.` + field + `.t'`
}

// onlyStrings is true when the array field's recorded item types are all
// "string" (or it has no items): FerretDB records them as a list of
// {"t":"string"}.
func onlyStrings(field string) string { return onlyOf(field, "string") }

// onlyOf is true when the array field's recorded item types are all typ
// (or it has no items).
func onlyOf(field, typ string) string {
	return `trim(replace(ifnull(_ferretdb_sjson->>'$."$s".p.` + field + `.i', '[]'), '{"t":"` + typ + `"}', ''), '[],') = ''`
}

// oddExpr is true for a document the index cannot answer for exactly as
// MongoDB would: a filtered or sorted field of another type than memcell
// stores.
var oddExpr = strings.Join([]string{
	fieldType("_id") + ` IS NOT 'objectId'`,
	`ifnull(` + fieldType("user_id") + `, 'null') NOT IN ('string', 'null')`,
	`ifnull(` + fieldType("group_id") + `, 'null') NOT IN ('string', 'null')`,
	`ifnull(` + fieldType("type") + `, 'null') NOT IN ('string', 'null')`,
	fieldType("timestamp") + ` IS NOT 'date'`,
	`ifnull(` + fieldType("deleted_at") + `, 'null') NOT IN ('date', 'null')`,
	`ifnull(` + fieldType("participants") + `, 'null') NOT IN ('array', 'null')`,
	`ifnull(` + fieldType("keywords") + `, 'null') NOT IN ('array', 'null')`,
	`NOT ` + onlyStrings("participants"),
	`NOT ` + onlyStrings("keywords"),
	`ifnull(` + fieldType(memcell.IntentField) + `, 'null') NOT IN ('array', 'null')`,
	`NOT ` + onlyOf(memcell.IntentField, "objectId"),
}, " OR ")

// intentsExpr is true for the documents that carry a mirror intent: a
// non-empty array of marks.
const intentsExpr = `json_array_length(_ferretdb_sjson, '$.` + memcell.IntentField + `') > 0`

// queryIndex is an index a QueryIndex keeps on its table: a name suffix
// and the definition (columns, then an optional partial-index condition).
type queryIndex struct{ suffix, def string }

// name is the index's name on table: the suffix and a hash of the
// definition, so that a changed definition makes a new index (and Ensure
// drops the old one) instead of leaving one SQLite cannot use for the
// queries written for the new.
func (ix queryIndex) name(table string) string {
	h := sha256.Sum256([]byte(ix.def))
	return table + ix.suffix + "_" + hex.EncodeToString(h[:4])
}

// queryIndexes are the indexes a QueryIndex keeps. The _id of each entry
// breaks ties in the order, as in Find's sort.
var queryIndexes = []queryIndex{
	{"_memcell_user", "(" + userExpr + ", " + deletedExpr + ", " + timestampExpr + ", " + hexIDExpr + ")"},
	{"_memcell_group", "(" + groupExpr + ", " + deletedExpr + ", " + timestampExpr + ", " + hexIDExpr + ")"},
	{"_memcell_timestamp", "(" + timestampExpr + ", " + hexIDExpr + ")"},
	{"_memcell_odd", "(" + idExpr + ") WHERE " + oddExpr},
	{"_memcell_intents", "(" + idExpr + ") WHERE " + intentsExpr},
}

// A QueryIndex answers the queries of one memcell collection of the
// embedded primary from SQLite (see the comment at the top of this file).
// It is safe for concurrent use. Server.QueryIndex makes one.
type QueryIndex struct {
	file, collection string

	once    sync.Once
	openErr error
	ro, rw  *sql.DB
	mu      sync.Mutex // serialises index creation
}

// QueryIndex returns the query index of the memcell collection of
// database. It opens its connections on first use and creates its indexes
// when they are missing (Ensure, or the first query). Close it before the
// server.
func (s *Server) QueryIndex(database, collection string) *QueryIndex {
	return &QueryIndex{file: filepath.Join(s.dir, database+".sqlite"), collection: collection}
}

func (x *QueryIndex) open() error {
	x.once.Do(func() {
		// The reader never writes; busy_timeout covers the moments a
		// checkpoint or an index build holds the file.
		x.ro, x.openErr = sql.Open("sqlite", "file:"+x.file+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
		if x.openErr != nil {
			return
		}
		x.rw, x.openErr = sql.Open("sqlite", "file:"+x.file+"?_pragma=busy_timeout(10000)")
		if x.openErr != nil {
			return
		}
		x.rw.SetMaxOpenConns(1)
	})
	return x.openErr
}

// Close closes the index's connections.
func (x *QueryIndex) Close() error {
	var errs []error
	for _, db := range []*sql.DB{x.ro, x.rw} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// Ensure creates the index's SQLite indexes when the collection exists and
// they are missing. It is idempotent; on a large existing collection the
// first call takes a while (about a second per 10,000 documents).
func (x *QueryIndex) Ensure(ctx context.Context) error {
	if err := x.open(); err != nil {
		return fmt.Errorf("embedded: query index: %w", err)
	}
	table, err := tableOf(ctx, x.rw, x.collection)
	if err != nil || table == "" {
		return err
	}
	return x.ensure(ctx, table)
}

func (x *QueryIndex) ensure(ctx context.Context, table string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	want := map[string]bool{table + idIndexSuffix: true}
	for _, ix := range queryIndexes {
		want[ix.name(table)] = true
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q %s`, ix.name(table), table, ix.def)
		if _, err := x.rw.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("embedded: query index on %s: %w", table, err)
		}
	}
	// Drop those of earlier definitions: they cost every write.
	rows, err := x.rw.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND name GLOB ?`, table, table+"_memcell_*")
	if err != nil {
		return fmt.Errorf("embedded: query index on %s: %w", table, err)
	}
	var stale []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("embedded: query index on %s: %w", table, err)
		}
		if !want[name] {
			stale = append(stale, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("embedded: query index on %s: %w", table, err)
	}
	for _, name := range stale {
		if _, err := x.rw.ExecContext(ctx, fmt.Sprintf(`DROP INDEX IF EXISTS %q`, name)); err != nil {
			return fmt.Errorf("embedded: drop the stale index %s: %w", name, err)
		}
	}
	return nil
}

// tableOf is the SQLite table of a collection, "" when it does not exist.
func tableOf(ctx context.Context, db interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, collection string) (string, error) {
	var table string
	err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT table_name FROM %q WHERE name = ?`, metadataTable), collection).Scan(&table)
	if errors.Is(err, sql.ErrNoRows) || err != nil && strings.Contains(err.Error(), "no such table") {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("embedded: query index: %w", err)
	}
	return table, nil
}

// readTx runs fn in one read transaction on the collection's table, after
// checking that the table exists, has the index's indexes (creating them
// first if not) and holds no document of a shape the index cannot answer
// for. ok is false when it cannot answer.
func (x *QueryIndex) readTx(ctx context.Context, fn func(tx *sql.Tx, table string) error) (ok bool, err error) {
	if err := x.open(); err != nil {
		return false, fmt.Errorf("embedded: query index: %w", err)
	}
	for attempt := 0; ; attempt++ {
		tx, err := x.ro.BeginTx(ctx, nil)
		if err != nil {
			return false, fmt.Errorf("embedded: query index: %w", err)
		}
		ok, missing, err := x.inTx(ctx, tx, fn)
		_ = tx.Rollback()
		if !missing || err != nil {
			return ok, err
		}
		if attempt > 0 {
			return false, errors.New("embedded: query index: the indexes vanished after being created")
		}
		if err := x.Ensure(ctx); err != nil {
			return false, err
		}
	}
}

func (x *QueryIndex) inTx(ctx context.Context, tx *sql.Tx, fn func(tx *sql.Tx, table string) error) (ok, missing bool, err error) {
	table, err := tableOf(ctx, tx, x.collection)
	if err != nil || table == "" {
		return false, false, err
	}
	names := []any{table}
	for _, ix := range queryIndexes {
		names = append(names, ix.name(table))
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND name IN (?`+
		strings.Repeat(", ?", len(queryIndexes)-1)+`)`, names...).Scan(&n); err != nil {
		return false, false, fmt.Errorf("embedded: query index: %w", err)
	}
	if n < len(queryIndexes) {
		return false, true, nil
	}
	var odd int
	err = tx.QueryRowContext(ctx, oddSQL(table)).Scan(&odd)
	switch {
	case err == nil:
		return false, false, nil // a document of another shape: ask the server
	case !errors.Is(err, sql.ErrNoRows):
		return false, false, fmt.Errorf("embedded: query index: %w", err)
	}
	if err := fn(tx, table); err != nil {
		return false, false, fmt.Errorf("embedded: query index: %w", err)
	}
	return true, false, nil
}

// where is the condition and arguments of the live documents q selects,
// for table.
func where(table string, q *memcell.Query) (string, []any) {
	conds := []string{deletedExpr + " IS NULL"}
	var args []any
	each := func(field string) string {
		return fmt.Sprintf(`FROM json_each(%q._ferretdb_sjson, '$.%s')`, table, field)
	}
	if q.UserID != nil {
		if q.IncludeParticipant {
			conds = append(conds, "("+userExpr+" = ? OR EXISTS (SELECT 1 "+each("participants")+" WHERE value = ?))")
			args = append(args, *q.UserID, *q.UserID)
		} else {
			conds = append(conds, userExpr+" = ?")
			args = append(args, *q.UserID)
		}
	}
	if q.GroupID != nil {
		conds = append(conds, groupExpr+" = ?")
		args = append(args, *q.GroupID)
	}
	if q.Type != nil {
		conds = append(conds, typeExpr+" = ?")
		args = append(args, string(*q.Type))
	}
	inList := func(field string, values []string, all bool) {
		if len(values) == 0 {
			return
		}
		if all {
			for _, v := range values {
				conds = append(conds, "EXISTS (SELECT 1 "+each(field)+" WHERE value = ?)")
				args = append(args, v)
			}
			return
		}
		conds = append(conds, "EXISTS (SELECT 1 "+each(field)+" WHERE value IN (?"+strings.Repeat(", ?", len(values)-1)+"))")
		for _, v := range values {
			args = append(args, v)
		}
	}
	inList("participants", q.Participants, q.ParticipantsAll)
	inList("keywords", q.Keywords, q.KeywordsAll)
	if q.Start != nil {
		conds = append(conds, timestampExpr+" >= ?")
		args = append(args, q.Start.UnixMilli())
	}
	if q.End != nil {
		conds = append(conds, timestampExpr+" < ?")
		args = append(args, q.End.UnixMilli())
	}
	return strings.Join(conds, " AND "), args
}

// findSQL is the query of Find: the ids and timestamps of the live
// documents q selects, in order, limit and skip applied.
func findSQL(table string, q *memcell.Query) (string, []any) {
	cond, args := where(table, q)
	dir := "DESC"
	if q.Ascending {
		dir = "ASC"
	}
	limit := q.Limit
	if limit == 0 {
		limit = memcell.MaxLimit
	}
	query := fmt.Sprintf(`SELECT %s, %s FROM %q WHERE %s ORDER BY %s %s, %s %s LIMIT ? OFFSET ?`,
		hexIDExpr, timestampExpr, table, cond, timestampExpr, dir, hexIDExpr, dir)
	return query, append(args, limit, q.Skip)
}

// countSQL is the query of Count.
func countSQL(table string, q *memcell.Query) (string, []any) {
	cond, args := where(table, q)
	return fmt.Sprintf(`SELECT count(*) FROM %q WHERE %s`, table, cond), args
}

// oddSQL finds a document of a shape the index cannot answer for, by the
// partial index that lists them.
func oddSQL(table string) string {
	return fmt.Sprintf(`SELECT 1 FROM %q WHERE %s LIMIT 1`, table, oddExpr)
}

// Find returns the ids of the live documents q selects, in Find's order
// (timestamp, then id; newest first unless q.Ascending), q's limit (0 means
// memcell.MaxLimit) and skip applied, with the timestamps they have. ok is
// false when the index cannot answer exactly: the caller must ask the
// server.
func (x *QueryIndex) Find(ctx context.Context, q memcell.Query) (ids []memcell.ID, timestamps []time.Time, ok bool, err error) {
	if err := q.Check(); err != nil {
		return nil, nil, false, err
	}
	ok, err = x.readTx(ctx, func(tx *sql.Tx, table string) error {
		ids, timestamps = ids[:0], timestamps[:0]
		query, args := findSQL(table, &q)
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var hex string
			var ms int64
			if err := rows.Scan(&hex, &ms); err != nil {
				return err
			}
			id, err := memcell.ParseID(hex)
			if err != nil {
				return fmt.Errorf("stored _id %q: %w", hex, err)
			}
			ids = append(ids, id)
			timestamps = append(timestamps, time.UnixMilli(ms).UTC())
		}
		return rows.Err()
	})
	if !ok {
		return nil, nil, ok, err
	}
	return ids, timestamps, true, nil
}

// Count counts the live documents q selects (limit and skip ignored); ok
// is false when the index cannot answer exactly.
func (x *QueryIndex) Count(ctx context.Context, q memcell.Query) (n int64, ok bool, err error) {
	q.Limit, q.Skip = 0, 0
	if err := q.Check(); err != nil {
		return 0, false, err
	}
	ok, err = x.readTx(ctx, func(tx *sql.Tx, table string) error {
		query, args := countSQL(table, &q)
		return tx.QueryRowContext(ctx, query, args...).Scan(&n)
	})
	return n, ok, err
}

// scopeSQL is the query of Scope.
func scopeSQL(table string, sc *memcell.Scope, deleted *bool) (string, []any) {
	var conds []string
	var args []any
	if sc.UserID != nil {
		conds = append(conds, userExpr+" = ?")
		args = append(args, *sc.UserID)
	}
	if deleted != nil {
		if *deleted {
			conds = append(conds, deletedExpr+" IS NOT NULL")
		} else {
			conds = append(conds, deletedExpr+" IS NULL")
		}
	}
	if sc.Start != nil {
		conds = append(conds, timestampExpr+" >= ?")
		args = append(args, sc.Start.UnixMilli())
	}
	if sc.End != nil {
		conds = append(conds, timestampExpr+" < ?")
		args = append(args, sc.End.UnixMilli())
	}
	return fmt.Sprintf(`SELECT %s FROM %q WHERE %s`, hexIDExpr, table, strings.Join(conds, " AND ")), args
}

// Scope returns the ids of the documents in sc, in no particular order:
// every one, or with deleted set the soft-deleted ones (*deleted) or the
// live ones. ok is false when the index cannot answer exactly.
func (x *QueryIndex) Scope(ctx context.Context, sc memcell.Scope, deleted *bool) (ids []memcell.ID, ok bool, err error) {
	if err := sc.Check(); err != nil {
		return nil, false, err
	}
	return x.ids(ctx, func(table string) (string, []any) { return scopeSQL(table, &sc, deleted) })
}

// ids runs the query that build makes for the collection's table, whose
// one column is a document's _id in hex, and returns the ids. ok is false
// when the index cannot answer exactly.
func (x *QueryIndex) ids(ctx context.Context, build func(table string) (string, []any)) (ids []memcell.ID, ok bool, err error) {
	ok, err = x.readTx(ctx, func(tx *sql.Tx, table string) error {
		ids = ids[:0]
		query, args := build(table)
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var hex string
			if err := rows.Scan(&hex); err != nil {
				return err
			}
			id, err := memcell.ParseID(hex)
			if err != nil {
				return fmt.Errorf("stored _id %q: %w", hex, err)
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if !ok {
		return nil, ok, err
	}
	return ids, true, nil
}

// intentsSQL is the query of Intents.
func intentsSQL(table string) string {
	return fmt.Sprintf(`SELECT %s FROM %q WHERE %s AND EXISTS (SELECT 1 FROM json_each(%q._ferretdb_sjson, '$.%s') WHERE value < ?)`,
		hexIDExpr, table, intentsExpr, table, memcell.IntentField)
}

// Intents returns the ids of the documents that carry a mirror intent
// whose mark is before the mark before (ObjectIds, compared as MongoDB
// does: a mark's hex form sorts as its bytes). ok is false when the index
// cannot answer exactly.
func (x *QueryIndex) Intents(ctx context.Context, before memcell.ID) (ids []memcell.ID, ok bool, err error) {
	return x.ids(ctx, func(table string) (string, []any) { return intentsSQL(table), []any{before.String()} })
}
