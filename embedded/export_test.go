package embedded

// The SQL the query index runs, for the tests of its query plans.
var (
	FindSQL    = findSQL
	CountSQL   = countSQL
	OddSQL     = oddSQL
	ScopeSQL   = scopeSQL
	IntentsSQL = intentsSQL
)
