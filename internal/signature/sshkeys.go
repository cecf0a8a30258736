package signature

// SSH keys: an OpenSSH private key signs as its PKCS#8 form does, and SSH
// public key lines (.pub, authorized_keys, allowed_signers) are trusted as
// their PEM form is. Only the key is taken from SSH: signatures stay DSSE
// over the raw key (not the SSHSIG format), and a key's ID stays the
// SHA-256 of its PKIX DER, the same for both forms of one key.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

// SSHNamespace is the allowed_signers namespace of this provider's
// signatures: a line of an allowed_signers file with a namespaces="…"
// option is trusted only if its list allows this namespace (ssh-keygen(1)
// patterns: * and ? wildcards, ! to exclude), so a Git signers file, whose
// lines say namespaces="git", does not make every developer's Git-signing
// key a release signer. A line without the option is trusted: give
// release signers a file of their own.
const SSHNamespace = "immutable-infra.dev"

const (
	sshSupported = "ssh-ed25519 or ecdsa-sha2-nistp256"
	errNoKey     = "no PEM block or SSH public key found: give public keys as PEM (-----BEGIN PUBLIC KEY-----) or as " +
		"SSH public key lines (`ssh-ed25519 AAAA… comment`, as in a .pub file, authorized_keys or an allowed_signers file)"
)

// loadSSHSigner reads an unencrypted OpenSSH private key, ssh-ed25519 or
// ecdsa-sha2-nistp256.
func loadSSHSigner(pemBytes []byte) (*Signer, error) {
	raw, err := ssh.ParseRawPrivateKey(pemBytes)
	if missing := (*ssh.PassphraseMissingError)(nil); errors.As(err, &missing) {
		return nil, errors.New("the OpenSSH private key is encrypted (it has a passphrase): decrypt a copy with " +
			"`ssh-keygen -p -N \"\" -f KEY` and protect the file or variable instead, or give a PKCS#8 PEM key")
	}
	if err != nil {
		return nil, fmt.Errorf("reading the OpenSSH private key: %w (supported: %s)", err, sshSupported)
	}
	switch k := raw.(type) {
	case *ed25519.PrivateKey:
		return signerOf(*k)
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA curve %s is not supported: use %s (`ssh-keygen -t ed25519`)", k.Curve.Params().Name, sshSupported)
		}
		return signerOf(k)
	case *rsa.PrivateKey:
		return nil, fmt.Errorf("ssh-rsa keys are not supported: use %s (`ssh-keygen -t ed25519`)", sshSupported)
	}
	return nil, fmt.Errorf("OpenSSH private key of type %T is not supported: use %s", raw, sshSupported)
}

// parseSSHPublicKeys reads SSH public keys, one a line, in any of these
// forms (blank lines and lines starting with # are skipped):
//
//	ssh-ed25519 AAAA… comment                        (.pub, authorized_keys)
//	options ssh-ed25519 AAAA… comment                (authorized_keys)
//	principals [options] ssh-ed25519 AAAA… [comment] (allowed_signers)
//
// Options are ignored, but for those that would make the key mean more or
// less than "this key signs": cert-authority (a CA's key, which signs
// certificates, not records), valid-after, valid-before and expiry-time
// (validity windows, which are not enforced here: remove the line to
// revoke a key), and namespaces, whose list must allow SSHNamespace (a key
// allowed to sign for Git only does not sign releases). Those lines are
// refused, and so are certificates and key types other than ssh-ed25519
// and ecdsa-sha2-nistp256.
// A key's Name is its line's principals, else its comment.
func parseSSHPublicKeys(in []byte) ([]*Verifier, error) {
	var out []*Verifier
	seen := map[string]bool{}
	firstJunk := 0
	for n, line := range strings.Split(string(in), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		v, err := parseSSHLine(line)
		if errors.Is(err, errNotKeyLine) {
			if firstJunk == 0 {
				firstJunk = n + 1
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		if !seen[v.id] {
			seen[v.id] = true
			out = append(out, v)
		}
	}
	switch {
	case len(out) == 0:
		return nil, errors.New(errNoKey)
	case firstJunk > 0:
		return nil, fmt.Errorf("line %d is not an SSH public key line: write `[principals] [options] ssh-ed25519 AAAA… [comment]`, "+
			"or start it with # to make it a comment", firstJunk)
	}
	return out, nil
}

var errNotKeyLine = errors.New("not an SSH public key line")

// keyOptions are the option names of authorized_keys (sshd(8)) and
// allowed_signers (ssh-keygen(1)) lines, to tell a line's leading options
// from allowed_signers' principals.
var keyOptions = map[string]bool{
	"agent-forwarding": true, "cert-authority": true, "command": true, "environment": true, "expiry-time": true,
	"from": true, "no-agent-forwarding": true, "no-port-forwarding": true, "no-pty": true, "no-user-rc": true,
	"no-x11-forwarding": true, "permitlisten": true, "permitopen": true, "port-forwarding": true, "principals": true,
	"pty": true, "no-touch-required": true, "verify-required": true, "restrict": true, "tunnel": true, "user-rc": true,
	"x11-forwarding": true, "namespaces": true, "valid-after": true, "valid-before": true,
}

// parseSSHLine reads one SSH public key line; errNotKeyLine when the line
// names no key type at all.
func parseSSHLine(line string) (*Verifier, error) {
	fields := splitFields(line)
	at := -1
	for i := 0; i+1 < len(fields) && at < 0; i++ {
		if blobType(fields[i+1].text) == fields[i].text {
			at = i
		}
	}
	if at < 0 {
		for i, f := range fields {
			if looksLikeKeyType(f.text) {
				at = i
				break
			}
		}
	}
	if at < 0 {
		return nil, errNotKeyLine
	}
	namespaces, hasNamespaces := "", false
	for _, f := range fields[:at] {
		for _, opt := range splitOptions(f.text) {
			name, value, _ := strings.Cut(opt, "=")
			name = strings.ToLower(name)
			switch name {
			case "namespaces":
				if hasNamespaces { // as ssh-keygen -Y verify refuses it
					return nil, errors.New("it has more than one namespaces option (OpenSSH refuses a line with multiple " +
						"namespaces clauses): give one namespaces=\"…\" listing every namespace the key may sign for")
				}
				namespaces, hasNamespaces = strings.Trim(value, `"`), true
			case "cert-authority":
				return nil, errors.New("a cert-authority key is a CA's key, which signs SSH certificates, not records: " +
					"trust the signing keys themselves")
			case "valid-after", "valid-before", "expiry-time":
				return nil, fmt.Errorf("the option %s sets a validity window, which is not enforced here: remove the option "+
					"(and remove the line to revoke the key)", name)
			}
		}
	}
	if hasNamespaces && !namespaceAllowed(namespaces, SSHNamespace) {
		return nil, fmt.Errorf("its namespaces=%q option does not allow the namespace %s, so the key may sign other things "+
			"(Git commits, files) but not releases: add %s to its namespaces if this key signs releases, or, better, trust a "+
			"signers file of its own holding only keys used to sign releases", namespaces, SSHNamespace, SSHNamespace)
	}
	key, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(line[fields[at].start:]))
	if err != nil {
		return nil, fmt.Errorf("reading the %s key: %w", fields[at].text, err)
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return nil, fmt.Errorf("%s is an SSH certificate, which is not supported: trust the key itself (%s)", key.Type(), sshSupported)
	}
	if t := key.Type(); t != ssh.KeyAlgoED25519 && t != ssh.KeyAlgoECDSA256 {
		return nil, fmt.Errorf("%s keys are not supported: use %s", t, sshSupported)
	}
	ck, ok := key.(ssh.CryptoPublicKey)
	if !ok {
		return nil, fmt.Errorf("%s key has no standard public key form", key.Type())
	}
	v, err := newVerifier(ck.CryptoPublicKey())
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(comment)
	if at > 0 {
		first, _, _ := strings.Cut(strings.ToLower(splitOptions(fields[0].text)[0]), "=")
		if !keyOptions[first] {
			name = fields[0].text // allowed_signers' principals
		}
	}
	v.name = keyLabel(name)
	return v, nil
}

// maxKeyLabel bounds a key's name as messages show it, in characters.
const maxKeyLabel = 80

// keyLabel is s, an SSH line's principals or comment (written by whoever
// wrote the file), to show as a key's name: cut at maxKeyLabel characters
// (then "…"), and each character usertext refuses (a control character
// such as ESC or BEL, a line separator, a bidi control, an invisible
// character) written as an escape, so that printing it cannot act on a
// terminal or make a message read otherwise.
func keyLabel(s string) string {
	cut := ""
	if utf8.RuneCountInString(s) > maxKeyLabel {
		s, cut = string([]rune(s)[:maxKeyLabel]), "…"
	}
	return usertext.Escape(s) + cut
}

// namespaceAllowed reports whether list, an allowed_signers namespaces
// value (comma-separated patterns with * and ?, a leading ! excluding),
// allows ns: a pattern matches it and no excluding pattern does, as
// OpenSSH's match_pattern_list decides.
func namespaceAllowed(list, ns string) bool {
	ok := false
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if neg, found := strings.CutPrefix(p, "!"); found {
			if wildcardMatch(neg, ns) {
				return false
			}
			continue
		}
		if wildcardMatch(p, ns) {
			ok = true
		}
	}
	return ok
}

// wildcardMatch matches s against pattern, where * is any run of
// characters and ? any one character (OpenSSH's match_pattern).
func wildcardMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if wildcardMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && wildcardMatch(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && wildcardMatch(pattern[1:], s[1:])
}

type field struct {
	text  string
	start int
}

// splitFields splits a line at spaces and tabs outside double quotes (a
// backslash escapes a quote), as sshd reads options.
func splitFields(line string) []field {
	var out []field
	start, quoted := -1, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case !quoted && (c == ' ' || c == '\t'):
			if start >= 0 {
				out = append(out, field{line[start:i], start})
				start = -1
			}
			continue
		case c == '"' && (i == 0 || line[i-1] != '\\'):
			quoted = !quoted
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, field{line[start:], start})
	}
	return out
}

// splitOptions splits a field at commas outside double quotes.
func splitOptions(f string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(f); i++ {
		switch c := f[i]; {
		case c == '"' && (i == 0 || f[i-1] != '\\'):
			quoted = !quoted
		case c == ',' && !quoted:
			out = append(out, f[start:i])
			start = i + 1
		}
	}
	return append(out, f[start:])
}

// blobType is the key type an SSH public key blob (base64) names first,
// or "".
func blobType(b64 string) string {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) < 4 {
		return ""
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return ""
	}
	return string(b[4 : 4+n])
}

// looksLikeKeyType tells whether f is spelled like an SSH key type.
func looksLikeKeyType(f string) bool {
	return strings.HasPrefix(f, "ssh-") || strings.HasPrefix(f, "ecdsa-sha2-") || strings.HasPrefix(f, "sk-")
}

// sshLineOutsidePEM is the number of the first line outside PEM blocks
// that holds an SSH public key, or 0.
func sshLineOutsidePEM(in []byte) int {
	inside := false
	for n, line := range bytes.Split(in, []byte("\n")) {
		line = bytes.TrimSpace(line)
		switch {
		case bytes.HasPrefix(line, []byte("-----BEGIN ")):
			inside = true
		case bytes.HasPrefix(line, []byte("-----END ")):
			inside = false
		case !inside && len(line) > 0 && line[0] != '#':
			fields := splitFields(string(line))
			for i := 0; i+1 < len(fields); i++ {
				if t := blobType(fields[i+1].text); t != "" && t == fields[i].text {
					return n + 1
				}
			}
		}
	}
	return 0
}
