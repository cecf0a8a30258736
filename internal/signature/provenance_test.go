package signature

import (
	"strings"
	"testing"
)

// TestCheckURI: builder.id must be an absolute URI, as SLSA's TypeURI is.
func TestCheckURI(t *testing.T) {
	for _, ok := range []string{"https://immutable-infra.dev/provider", "https://ci.example.com/runners/7?pool=a", "urn:example:ci", "spiffe://example.org/ci"} {
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
