// Package redact hides the credentials of URLs and connection strings (the
// MongoDB URI, KV URLs, server URLs) before they reach a log, an error or
// the terminal.
//
// URL masks the password of the userinfo and the values of the query
// options that hold secrets (SecretOption), and keeps the rest of the text
// as written, so an operator still sees which hosts, database and options
// are in use. It reads the string itself rather than through net/url,
// which refuses valid MongoDB URIs (several IPv6 hosts, an escaped Unix
// socket path), and it never echoes a string it cannot read that could
// hold a credential.
package redact

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
)

// Mask replaces each hidden value, as in url.URL.Redacted.
const Mask = "xxxxx"

// Unparsable stands for a whole URL that could not be read: it may hold a
// credential anywhere, so none of it is shown.
const Unparsable = "<unparsable URL>"

// harmless are the option names (lower case) that contain a secret-looking
// word but hold no secret: the paths of MongoDB's TLS certificate and key
// files. The files' passphrases (tlsCertificateKeyFilePassword,
// sslClientCertificateKeyPassword) are secret.
var harmless = []string{"tlscertificatekeyfile", "sslclientcertificatekeyfile", "tlsprivatekeyfile"}

// secretNames are option names (lower case) that hold a secret whole:
// common short names of a password, and MongoDB's authMechanismProperties,
// which carries AWS_SESSION_TOKEN among harmless properties.
var secretNames = []string{"pass", "pwd", "pw", "authmechanismproperties"}

// secretWords mark an option name (lower case) as secret wherever they
// appear in it: password, passwd, sslPassword, api_key, access_token,
// client_secret, credentials...
var secretWords = []string{"password", "passwd", "secret", "token", "key", "credential"}

// SecretOption reports whether the query option name holds a secret, in
// any case: a name in secretNames, or one containing a word of secretWords
// ("password", "passwd", "secret", "token", "key", "credential"), except the
// MongoDB options naming certificate and key files (tlsCertificateKeyFile,
// sslClientCertificateKeyFile, tlsPrivateKeyFile), which are paths.
func SecretOption(name string) bool {
	n := strings.ToLower(name)
	if slices.Contains(harmless, n) {
		return false
	}
	if slices.Contains(secretNames, n) {
		return true
	}
	return slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(n, w) })
}

// parsed is a URL cut into its parts; secret holds the text of each hidden
// part as written.
type parsed struct {
	out    string
	secret []string
}

// parse reads raw as parseURL does; a string it cannot read that has no
// "@", "?" or "#" has no userinfo, query or fragment to hold a credential
// (an address such as 127.0.0.1:8080, a path), and is kept whole.
func parse(raw string) (parsed, bool) {
	p, ok := parseURL(raw)
	if !ok && !strings.ContainsAny(raw, "@?#") {
		return parsed{out: raw}, true
	}
	return p, ok
}

// parseURL reads raw: scheme ":" then either "//" [userinfo "@"] hosts [path]
// or an opaque part, then ["?" query] ["#" fragment]. The userinfo ends at
// the last "@" before the first "/" after "//", so a password holding "?",
// "#" or "@" is still taken whole (the MongoDB driver allows "?" and "#"
// there). The hosts must look like hosts: a comma-separated list of names,
// IP addresses or bracketed IPv6 addresses with optional numeric ports,
// percent-escapes allowed (a Unix socket path). Anything else is not a URL
// it can read: ok is false.
func parseURL(raw string) (p parsed, ok bool) {
	scheme, rest, found := strings.Cut(raw, ":")
	if !found || !validScheme(scheme) {
		return p, false
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteByte(':')
	hide := func(s string) {
		p.secret = append(p.secret, s)
		b.WriteString(Mask)
	}

	if after, isHier := strings.CutPrefix(rest, "//"); isHier {
		b.WriteString("//")
		rest = after
		end := strings.IndexByte(rest, '/')
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
			user, pass, hasPass := strings.Cut(rest[:at], ":")
			b.WriteString(user)
			if hasPass {
				b.WriteByte(':')
				hide(pass)
			}
			b.WriteByte('@')
			rest = rest[at+1:]
		}
		hostEnd := strings.IndexAny(rest, "/?#")
		if hostEnd < 0 {
			hostEnd = len(rest)
		}
		if !validHosts(rest[:hostEnd]) {
			return parsed{}, false
		}
		b.WriteString(rest[:hostEnd])
		rest = rest[hostEnd:]
	}

	rest, fragment, hasFragment := strings.Cut(rest, "#")
	path, query, hasQuery := strings.Cut(rest, "?")
	if at := strings.LastIndexByte(path, '@'); at >= 0 && !strings.HasPrefix(path, "/") {
		// An opaque part with an "@" ("user:pw@host:80" reads as scheme
		// "user"): what precedes it may be a password.
		hide(path[:at])
		path = path[at:]
	}
	b.WriteString(path)
	if hasQuery {
		b.WriteByte('?')
		writeQuery(&b, query, hide)
	}
	if hasFragment {
		b.WriteByte('#')
		if fragment != "" {
			hide(fragment)
		}
	}
	p.out = b.String()
	return p, true
}

// writeQuery copies query to b, the values of secret options hidden. Its
// pairs are split at "&" and ";", as the MongoDB driver does; a pair whose
// name does not unescape counts as secret.
func writeQuery(b *strings.Builder, query string, hide func(string)) {
	for query != "" {
		i := strings.IndexAny(query, "&;")
		pair, sep := query, ""
		if i >= 0 {
			pair, sep, query = query[:i], query[i:i+1], query[i+1:]
		} else {
			query = ""
		}
		name, value, hasValue := strings.Cut(pair, "=")
		b.WriteString(name)
		if hasValue {
			b.WriteByte('=')
			unescaped, err := url.QueryUnescape(name)
			if value != "" && (err != nil || SecretOption(unescaped)) {
				hide(value)
			} else {
				b.WriteString(value)
			}
		}
		b.WriteString(sep)
	}
}

func validScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validHosts reports whether s is a comma-separated list of hosts, each
// with an optional numeric port.
func validHosts(s string) bool {
	for h := range strings.SplitSeq(s, ",") {
		port := ""
		if strings.HasPrefix(h, "[") {
			end := strings.IndexByte(h, ']')
			if end < 0 {
				return false
			}
			for i := 1; i < end; i++ {
				if c := h[i]; !isAlpha(c) && !isDigit(c) && c != ':' && c != '.' && c != '%' {
					return false
				}
			}
			port = h[end+1:]
		} else {
			name := h
			if i := strings.IndexByte(h, ':'); i >= 0 {
				name, port = h[:i], h[i:]
			}
			for i := range len(name) {
				if c := name[i]; !isAlpha(c) && !isDigit(c) && !strings.ContainsRune("-._~%", rune(c)) {
					return false
				}
			}
		}
		if port != "" {
			if port[0] != ':' {
				return false
			}
			for i := 1; i < len(port); i++ {
				if !isDigit(port[i]) {
					return false
				}
			}
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// URL returns raw with the password of its userinfo, the values of its
// secret query options (SecretOption) and its fragment replaced by Mask.
// The user name, hosts, path and other options are kept as written. A
// string it cannot read as a URL comes back as Unparsable, unless it has
// no "@", "?" or "#" where a credential could be (then it is kept); an
// empty one stays empty.
//
//	mongodb://app:s3cret@db1,db2/?replicaSet=rs0&authMechanismProperties=AWS_SESSION_TOKEN:abc
//	mongodb://app:xxxxx@db1,db2/?replicaSet=rs0&authMechanismProperties=xxxxx
func URL(raw string) string {
	if raw == "" {
		return ""
	}
	p, ok := parse(raw)
	if !ok {
		return Unparsable
	}
	return p.out
}

// secrets returns the hidden parts of raw in every form a library may echo
// them in (as written, unescaped, escaped again), longest first, and
// whether raw could be read.
func secrets(raw string) ([]string, bool) {
	p, ok := parse(raw)
	if !ok {
		return nil, false
	}
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	addForms := func(s string) {
		add(s)
		for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
			if u, err := unescape(s); err == nil {
				add(u)
				add(url.PathEscape(u))
				add(url.QueryEscape(u))
			}
		}
	}
	for _, s := range p.secret {
		addForms(s)
		// A list of name:value properties (authMechanismProperties): the
		// values of the secret ones may be quoted alone.
		if u, err := url.QueryUnescape(s); err == nil {
			for prop := range strings.SplitSeq(u, ",") {
				if name, value, ok := strings.Cut(prop, ":"); ok && SecretOption(name) {
					addForms(value)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return out, true
}

// Scrub returns msg with every secret of the URLs raws (the parts URL
// hides, in any escaping) replaced by Mask, for the text of an error that
// may quote them. ok is false when a raw could not be read as a URL: then
// its secrets are unknown and msg should not be shown.
func Scrub(msg string, raws ...string) (_ string, ok bool) {
	for _, raw := range raws {
		if raw == "" {
			continue
		}
		secret, ok := secrets(raw)
		if !ok {
			return strings.ReplaceAll(msg, raw, Unparsable), false
		}
		for _, s := range secret {
			msg = strings.ReplaceAll(msg, s, Mask)
		}
	}
	return msg, true
}

// Error returns err with its text scrubbed of the secrets of raws (Scrub);
// errors.Is and errors.As still see err. When a raw cannot be read as a
// URL, the text says only that: whatever the error quoted of it stays
// hidden. Error(nil, ...) is nil.
func Error(err error, raws ...string) error {
	if err == nil {
		return nil
	}
	msg, ok := Scrub(err.Error(), raws...)
	if !ok {
		msg = "the URL cannot be parsed (not shown: it may hold credentials)"
	}
	return &scrubbed{err: err, msg: msg}
}

type scrubbed struct {
	err error
	msg string
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }
