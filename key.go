package memcell

import "encoding/hex"

// DefaultKeyPrefix is put before the event id to make a KV key:
// memcell:<event_id>.
const DefaultKeyPrefix = "memcell:"

// Keys is the one codec between event ids and the KV keys of their mirror
// copies: the prefix followed by the id's 24 lowercase hex digits. Every
// path that writes, reads or scans copies (the mirror, the reconcile jobs,
// the readiness check, the tools) goes through it, so they cannot disagree
// on the format. The zero value has the empty prefix.
type Keys struct {
	Prefix string
}

// DefaultKeys is the codec with DefaultKeyPrefix.
var DefaultKeys = Keys{Prefix: DefaultKeyPrefix}

// KeysWithPrefix returns the codec of prefix, or DefaultKeys when prefix is
// nil: the convention of the options structs, where nil means the default
// and "" is a valid prefix.
func KeysWithPrefix(prefix *string) Keys {
	if prefix == nil {
		return DefaultKeys
	}
	return Keys{Prefix: *prefix}
}

// Key returns the KV key of id.
func (k Keys) Key(id ID) string {
	b := make([]byte, 0, len(k.Prefix)+2*len(id))
	b = append(b, k.Prefix...)
	return string(hex.AppendEncode(b, id[:]))
}

// ID returns the event id of a KV key, and false when the key is not one
// Key makes: a different prefix, or anything but 24 lowercase hex digits
// after it.
func (k Keys) ID(key string) (ID, bool) {
	var id ID
	if len(key) != len(k.Prefix)+2*len(id) || key[:len(k.Prefix)] != k.Prefix {
		return id, false
	}
	s := key[len(k.Prefix):]
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ID{}, false
		}
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, false
	}
	return id, true
}
