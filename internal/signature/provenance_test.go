package signature

import (
	"strings"
	"testing"
)

// TestCheckURI: builder.id must be an absolute URI, as SLSA's TypeURI is.
func TestCheckURI(t *testing.T) {
	for _, ok := range []string{"https://immutable-infra.dev/provider", "https://ci.example.com/runners/7?pool=a", "urn:example:ci", "HTTPS://ci.example.com/", "http://ci.internal/linux", "spiffe://example.org/ci"} {
		if err := CheckURI(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for in, want := range map[string]string{
		"ci-runner":                  "no scheme",
		"/runners/7":                 "no scheme",
		"https:":                     "nothing after its scheme",
		"https://ci.example.com/a b": "white space",
		"https://ci.example.com/%zz": "not a URI",
		"":                           "no scheme",
		// Printable, bounded, and a scheme that names a builder, not one a
		// viewer acts on.
		"https://ci.example.com/\u202eexe.txt":                   "U+202E",
		"https://ci.example.com/\u200bci":                        "U+200B",
		"https://ci.example.com/\x1b[2Jci":                       "U+001B",
		"javascript:alert(1)":                                    `the scheme "javascript:": only http, https, urn and spiffe name a builder`,
		"data:text/html,<script>alert(1)</script>":               `the scheme "data:"`,
		"file:///etc/passwd":                                     `the scheme "file:"`,
		"https://ci.example.com/" + strings.Repeat("a", 100<<10): "bytes long; at most 1024 are allowed",
	} {
		if err := CheckURI(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", in, err, want)
		}
	}
	p := NewProvenance("https://example.test/build/v1", "ci", nil)
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "runDetails.builder.id") {
		t.Errorf("a relative builder.id validated: %v", err)
	}
}
