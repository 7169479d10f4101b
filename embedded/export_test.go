package embedded

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
