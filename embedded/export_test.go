package embedded

import (
	"os"
	"sync"
)

// The SQL the query index runs, for the tests of its query plans.
var (
	FindSQL    = findSQL
	CountSQL   = countSQL
	OddSQL     = oddSQL
	ScopeSQL   = scopeSQL
	IntentsSQL = intentsSQL
)

// IndexName is the name of the query index with the suffix on table.
func IndexName(table, suffix string) string {
	for _, ix := range queryIndexes {
		if ix.suffix == suffix {
			return ix.name(table)
		}
	}
	return ""
}

// CountSyncs counts the syncs of the write-ahead logs by file name until
// the returned restore is called; syncs reads the count of one file.
func CountSyncs() (syncs func(name string) int, restore func()) {
	var mu sync.Mutex
	n := map[string]int{}
	old := syncFile
	syncFile = func(f *os.File) error {
		mu.Lock()
		n[f.Name()]++
		mu.Unlock()
		return old(f)
	}
	return func(name string) int {
			mu.Lock()
			defer mu.Unlock()
			return n[name]
		}, func() {
			syncFile = old
		}
}

// SQLiteURL is FerretDB's SQLite URL for a data directory.
var SQLiteURL = sqliteURL
