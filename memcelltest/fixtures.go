package memcelltest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/memcell/memcell"
)

// Epoch is the base of fixture timestamps.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// Users and Groups are the small pools fixtures draw from, so that queries
// and bulk operations find several documents.
var (
	Users    = []string{"alice", "bob", "carol", "dave"}
	Groups   = []string{"g-travel", "g-work"}
	Keywords = []string{"kyoto", "budget", "deadline", "music", "health", "🧠"}
)

// NewMemCell returns a valid MemCell drawn from r: a user or a group, a
// timestamp within 30 days of Epoch (with sub-millisecond digits, to check
// normalisation), one or two conversation segments, participants, keywords,
// free-form fields with numbers and nesting, and extra fields. Its encoding
// is about size bytes (at least ~700).
func NewMemCell(r *rand.Rand, size int) *memcell.MemCell {
	user := Users[r.IntN(len(Users))]
	m := &memcell.MemCell{
		Timestamp: Epoch.Add(time.Duration(r.Int64N(int64(30 * 24 * time.Hour)))),
		Summary:   ptr(fmt.Sprintf("%s talked about %s", user, Keywords[r.IntN(len(Keywords))])),
		Type:      ptr(memcell.Conversation),
		Subject:   ptr("subject " + Keywords[r.IntN(len(Keywords))]),
		Episode:   ptr("episode text"),
		OriginalData: []memcell.RawData{{
			DataType: memcell.Conversation,
			Messages: []memcell.Message{
				{Content: "hello from " + user, Files: []string{"a.txt"}, Extend: map[string]string{"lang": "en"}},
				{Content: "réponse ✓"},
			},
			Meta: map[string]string{"channel": "chat"},
		}},
		Participants:      []string{user, Users[r.IntN(len(Users))]},
		Keywords:          []string{Keywords[r.IntN(len(Keywords))], Keywords[r.IntN(len(Keywords))]},
		LinkedEntities:    []string{},
		ForesightMemories: []any{map[string]any{"content": "follow up", "score": 0.5}},
		EventLog:          map[string]any{"atomic_fact": []any{"fact one", "fact two"}, "n": int64(r.IntN(100))},
		Extend:            map[string]any{"embedding": []any{r.Float64(), -1.25, int64(3)}},
		Extra:             map[string]any{"tenant_id": "t-1", "session_id": fmt.Sprintf("s-%d", r.IntN(1000))},
	}
	if r.IntN(4) == 0 {
		m.UserID = nil
		m.GroupID = ptr(Groups[r.IntN(len(Groups))])
	} else {
		m.UserID = &user
		if r.IntN(2) == 0 {
			m.GroupID = ptr(Groups[r.IntN(len(Groups))])
		}
	}
	if enc, err := memcell.Encode(m); err == nil && len(enc) < size {
		m.Episode = ptr(strings.Repeat("x", size-len(enc)))
	}
	return m
}
