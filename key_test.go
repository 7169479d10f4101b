package memcell_test

import (
	"strings"
	"testing"

	"github.com/memcell/memcell"
)

func TestKeys(t *testing.T) {
	id := memcell.NewID()
	for _, k := range []memcell.Keys{memcell.DefaultKeys, {Prefix: ""}, {Prefix: "app/"}} {
		key := k.Key(id)
		if key != k.Prefix+id.String() {
			t.Errorf("Key = %q, want %q", key, k.Prefix+id.String())
		}
		for key, ok := range map[string]bool{
			key:                                     true,
			k.Prefix + strings.ToUpper(id.String()): false,
			k.Prefix + id.String()[1:]:              false,
			k.Prefix + id.String() + "0":            false,
			k.Prefix:                                false,
			k.Prefix + "zz" + id.String()[2:]:       false,
			"other:" + id.String():                  false,
			k.Prefix + "+" + id.String()[1:]:        false,
		} {
			got, gotOK := k.ID(key)
			if gotOK != ok || (ok && got != id) {
				t.Errorf("prefix %q: ID(%q) = %v, %v; want ok %v", k.Prefix, key, got, gotOK, ok)
			}
		}
	}
	empty := ""
	if got := memcell.KeysWithPrefix(nil); got != memcell.DefaultKeys {
		t.Errorf("KeysWithPrefix(nil) = %+v, want the default", got)
	}
	if got := memcell.KeysWithPrefix(&empty); got.Prefix != "" {
		t.Errorf("KeysWithPrefix(\"\") = %+v, want the empty prefix", got)
	}
}
