package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/memcell/memcell"
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
//
// With arrays set, the same pass refuses an array its function finds over
// its bound (memcell.ArrayBoundError for a MemCell), and stops reading an
// array at its MaxArrayItems-th element: the rest is only counted, so a
// body of 150,000 numbers is refused before any of it is decoded.
func checkDuplicateKeys(body []byte, arrays arrayBound) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // no float parsing: the numbers are not looked at
	return (&tokenPass{dec: dec, body: body, arrays: arrays}).value(nil)
}

// arrayBound returns the error for an array of n elements at path, or
// nil when it is within its bound.
type arrayBound func(path []string, n int) error

// tokenPass is one read of a body's tokens.
type tokenPass struct {
	dec    *json.Decoder
	body   []byte
	arrays arrayBound // nil: arrays are not bounded here
}

// value reads one value; path is where it stands.
func (p *tokenPass) value(path []string) error {
	dec := p.dec
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
			if err := p.value(append(path, k)); err != nil {
				return err
			}
		}
	case json.Delim('['):
		n := 0
		for ; dec.More(); n++ {
			if p.arrays != nil && n == memcell.MaxArrayItems {
				// Over every bound: count the rest without reading it.
				return p.arrays(path, n+countElements(p.body[dec.InputOffset():]))
			}
			if err := p.value(append(path, strconv.Itoa(n))); err != nil {
				return err
			}
		}
		if p.arrays != nil {
			if err := p.arrays(path, n); err != nil {
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

// countElements counts the elements left in an array of valid JSON, rest
// starting after one of its elements: one per comma at the array's own
// level before its closing bracket.
func countElements(rest []byte) int {
	n, depth, inString := 0, 0, false
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case inString:
			switch c {
			case '\\':
				i++ // the escaped byte
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			if depth == 0 {
				return n
			}
			depth--
		case c == ',' && depth == 0:
			n++
		}
	}
	return n
}

// badJSON reports a body the token reader could not read: it passed
// memcell.ValidJSON, so this does not happen.
func badJSON(err error) error {
	return &apiError{http.StatusBadRequest, codeMalformedJSON, "malformed JSON: " + err.Error()}
}
