package registry

import (
	"strings"
	"testing"
)

func TestCheckTag(t *testing.T) {
	for tag, ok := range map[string]bool{
		"prod": true, "v1.2.3": true, "_x": true, "A-b_c.9": true, strings.Repeat("a", 128): true,
		"": false, "-prod": false, ".prod": false, "a:b": false, "a/b": false, "a@b": false, strings.Repeat("a", 129): false, "prød": false,
	} {
		if err := CheckTag(tag); (err == nil) != ok {
			t.Errorf("CheckTag(%q) = %v, want ok %v", tag, err, ok)
		}
	}
}

func TestCheckRepository(t *testing.T) {
	for _, repo := range []string{"127.0.0.1:5000/api", "ghcr.io/acme/my-api", "ghcr.io/a/b/c", "r.io/a.b", "r.io/a_b", "r.io/a__b", "r.io/a---b", "docker.io/library/alpine", "docker.io/acme/api", "index.docker.io/acme/api"} {
		if err := CheckRepository(repo); err != nil {
			t.Errorf("CheckRepository(%q) = %v, want nil", repo, err)
		}
	}
	// The distribution spec's grammar refuses each of these: a registry
	// answers a push with an error, so the plan must.
	for _, repo := range []string{"r.io/a//b", "r.io/a..b", "r.io/-a", "r.io/a_", "r.io/a/", "r.io/a___b", "r.io/a/.b", "r.io/App", "r.io/a:v1", "r.io/a@sha256:x", "api"} {
		if err := CheckRepository(repo); err == nil {
			t.Errorf("CheckRepository(%q) = nil, want an error", repo)
		}
	}
}

// TestChecksEscapeWhatTheyQuote: a repository, a reference or a registry
// address holding a character that does not show as itself — in the
// path or in the host, which go-containerregistry lets through — is
// refused, with a message that shows it escaped, also in the part
// go-containerregistry wrote (it quotes the input as it is).
func TestChecksEscapeWhatTheyQuote(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, c := range []string{"\u200b", "\u202e", "\x1b[31m", "\u0430" /* Cyrillic a */} {
		for what, err := range map[string]error{
			"CheckRepository (path)": CheckRepository("registry.example/we" + c + "b"),
			"CheckRepository (host)": CheckRepository("regi" + c + "stry.example/web"),
			"CheckDigestRef (path)":  CheckDigestRef("registry.example/we" + c + "b@sha256:" + h),
			"CheckDigestRef (host)":  CheckDigestRef("regi" + c + "stry.example/web@sha256:" + h),
			"CheckAddress":           CheckAddress("regi" + c + "stry.example"),
			"CheckAddress (port)":    CheckAddress("127.0.0.1:50" + c + "00"),
		} {
			if err == nil {
				t.Errorf("%s: %q was accepted", what, c)
			} else if c != "\u0430" && strings.Contains(err.Error(), c) { // a Cyrillic a shows as itself
				t.Errorf("%s: the message holds %q unescaped: %q", what, c, err)
			}
		}
	}
	for _, ok := range []string{"localhost:5000", "[::1]:5000", "my-registry.example.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "Registry.Example"} {
		if err := CheckAddress(ok); err != nil {
			t.Errorf("CheckAddress(%q) = %v, want nil", ok, err)
		}
	}
}
