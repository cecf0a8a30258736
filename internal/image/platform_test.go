package image

import (
	"strings"
	"testing"
)

func TestParsePlatform(t *testing.T) {
	for _, s := range []string{"linux/amd64", "linux/arm/v7", "linux/arm64/v8", "windows/amd64", "linux/386", "linux/s390x", "wasip1/wasm"} {
		p, err := ParsePlatform(s)
		if err != nil || p.String() != s {
			t.Errorf("ParsePlatform(%q) = %v, %v", s, p, err)
		}
	}
	if p, _ := ParsePlatform("linux/arm/v7"); p != (Platform{OS: "linux", Architecture: "arm", Variant: "v7"}) {
		t.Errorf("fields %+v", p)
	}
	for s, want := range map[string]string{
		"":               "two or three parts",
		"linux":          "two or three parts",
		"linux/arm/v7/x": "two or three parts",
		"Linux/amd64":    `"Linux" is not lower-case`,
		"linux//v7":      `"" is not lower-case`,
		"linux/amd64/":   `"" is not lower-case`,
		"linux/x86-64":   `"x86-64" is not`,
		" linux/amd64":   "is not",
		"linux/amd64\n":  "is not",
	} {
		_, err := ParsePlatform(s)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"linux/amd64"`) {
			t.Errorf("ParsePlatform(%q) = %v, want %q and an example", s, err, want)
		}
	}
}

func TestPlatformMatches(t *testing.T) {
	p := func(s string) Platform { q, _ := ParsePlatform(s); return q }
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/arm", "linux/arm/v7", false},
		{"linux/arm64/v9", "linux/arm64", false},
		{"linux/amd64", "windows/amd64", false},
	} {
		if got := p(tc.a).Matches(p(tc.b)); got != tc.want {
			t.Errorf("%s matches %s: %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
