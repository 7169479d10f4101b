package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// checkDuplicateKeys refuses a well-formed JSON body with a key twice in one
// object, at any depth: encoding/json keeps the last of them, so what one
// reader of the body takes for the value another would not, and the body
// means two things. The error names the object's path and the key.
//
// encoding/json has no option to refuse duplicates. encoding/json/v2,
// which refuses them by default, needs GOEXPERIMENT=jsonv2 in Go 1.26, and
// its stand-alone module (github.com/go-json-experiment/json) has no
// release yet; one pass over json.Decoder's tokens does this one check.
// The body has passed memcell.ValidJSON, so it nests at most 10,000 levels
// (encoding/json's own bound), which bounds the recursion.
func checkDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // no float parsing: the numbers are not looked at
	return dupValue(dec, nil)
}

// dupValue reads one value from dec; path is where it stands.
func dupValue(dec *json.Decoder, path []string) error {
	tok, err := dec.Token()
	if err != nil {
		return badJSON(err)
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]struct{}{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return badJSON(err)
			}
			k, _ := kt.(string) // a key is always a string
			if _, dup := seen[k]; dup {
				return fieldError(strings.Join(path, "."), fmt.Sprintf("duplicate key %q", k))
			}
			seen[k] = struct{}{}
			if err := dupValue(dec, append(path, k)); err != nil {
				return err
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := dupValue(dec, append(path, strconv.Itoa(i))); err != nil {
				return err
			}
		}
	default:
		return nil // a scalar
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return badJSON(err)
	}
	return nil
}

// badJSON reports a body the token reader could not read: it passed
// memcell.ValidJSON, so this does not happen.
func badJSON(err error) error {
	return &apiError{http.StatusBadRequest, codeMalformedJSON, "malformed JSON: " + err.Error()}
}
