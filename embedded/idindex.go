package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // the SQLite driver FerretDB itself uses
)

// FerretDB v1.24 (SQLite) keeps each collection in a table whose documents
// are JSON in the column _ferretdb_sjson, and pushes a filter that is
// exactly {_id: v} down to SQLite as the condition _ferretdb_sjson->'$._id'
// = ?. The unique index it makes for _id is on another expression
// (_ferretdb_sjson->"_id"), which SQLite cannot use for that condition, so
// every lookup, update and delete by _id read the whole table. IndexIDs adds
// an index on exactly the pushed-down expression, turning them into index
// searches. FerretDB v1 is frozen at its last release; TestIDIndexUsed fails
// if its layout changes.

// idExpr is the expression FerretDB pushes {_id: v} down as.
const idExpr = `_ferretdb_sjson->'$._id'`

// idIndexSuffix ends the name of the _id index IndexIDs makes.
const idIndexSuffix = "_memcell_id"

// metadataTable lists a database's collections and their tables.
const metadataTable = "_ferretdb_collections"

// IndexIDs makes sure that every collection table of the databases (all
// of the server's when none are named) has an index on the expression
// FerretDB looks documents up by _id with. It is idempotent and cheap when
// the indexes exist; call it after the collections are created (a
// collection made later gets its index at the next call).
func (s *Server) IndexIDs(ctx context.Context, databases ...string) error {
	files, err := filepath.Glob(filepath.Join(s.dir, "*.sqlite"))
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	if len(databases) > 0 {
		files = files[:0]
		for _, d := range databases {
			files = append(files, filepath.Join(s.dir, d+".sqlite"))
		}
	}
	for _, f := range files {
		if err := indexIDs(ctx, f); err != nil {
			return fmt.Errorf("embedded: index _id in %s: %w", filepath.Base(f), err)
		}
	}
	return nil
}

func indexIDs(ctx context.Context, file string) error {
	if _, err := os.Stat(file); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT table_name FROM %q", metadataTable))
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		name := strings.ReplaceAll(t, `"`, ``) + idIndexSuffix
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`, name, t, idExpr)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
