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

func TestConfigPlatform(t *testing.T) {
	for config, want := range map[string]Platform{
		`{"os":"linux","architecture":"arm","variant":"v7","rootfs":{"type":"layers"}}`: {OS: "linux", Architecture: "arm", Variant: "v7"},
		`{"architecture":"amd64","os":"linux"}`:                                         {OS: "linux", Architecture: "amd64"},
		`{}`:                                                                            {},
	} {
		if got, err := ConfigPlatform([]byte(config)); err != nil || got != want {
			t.Errorf("ConfigPlatform(%s) = %+v, %v; want %+v", config, got, err, want)
		}
	}
	for _, config := range []string{`{"os":1}`, `[]`, `{"os":"linux"`} {
		if _, err := ConfigPlatform([]byte(config)); err == nil || !strings.Contains(err.Error(), "os, architecture and variant") {
			t.Errorf("ConfigPlatform(%s): %v, want an error naming what it reads", config, err)
		}
	}
}

func TestPickPlatform(t *testing.T) {
	p := func(s string) Platform { q, _ := ParsePlatform(s); return q }
	entry := func(s string, b byte) IndexEntry {
		e := IndexEntry{Descriptor: Descriptor{MediaType: MediaTypeManifest, Size: int64(b)}}
		e.Digest[0] = b
		if s != "" {
			e.Platform = p(s)
		}
		return e
	}
	idx := []IndexEntry{entry("linux/amd64", 1), entry("linux/arm64/v8", 2), entry("linux/arm64", 3), entry("linux/arm/v7", 4), entry("", 5)}
	for _, tc := range []struct {
		want string
		idx  []IndexEntry
		got  byte
	}{
		{"linux/amd64", idx, 1},
		{"linux/arm64/v8", idx, 2},
		{"linux/arm64", idx, 3}, // the exact spelling first
		{"linux/arm/v7", idx, 4},
		{"linux/arm64", idx[:2], 2},     // v8 left out on the wanted side
		{"linux/arm64/v8", idx[2:3], 3}, // and on the index's
		{"linux/arm64/v8", idx[1:3], 2}, // the exact one, whatever the order
		{"linux/arm64", []IndexEntry{idx[2], idx[1]}, 3},
	} {
		e, err := PickPlatform(tc.idx, p(tc.want))
		if err != nil || e.Digest[0] != tc.got || e.Size != int64(tc.got) {
			t.Errorf("PickPlatform(%s) = %+v, %v; want entry %d", tc.want, e, err, tc.got)
		}
	}
	for _, tc := range []struct {
		want string
		idx  []IndexEntry
		msg  []string
	}{
		{"linux/s390x", idx, []string{"no manifest for linux/s390x", "linux/amd64, linux/arm64/v8, linux/arm64, linux/arm/v7:", "pick one of those"}},
		{"linux/arm", idx, []string{"no manifest for linux/arm;", "with its variant"}},
		{"linux/arm/v6", idx, []string{"no manifest for linux/arm/v6;", "with its variant"}},
		{"linux/arm64/v9", idx, []string{"no manifest for linux/arm64/v9;", "with its variant"}},
		{"", idx, []string{"several platforms (linux/amd64, linux/arm64/v8, linux/arm64, linux/arm/v7)", "set `platform`"}},
		{"linux/amd64", idx[4:], []string{"name no platform", "by digest"}},
		{"linux/amd64", nil, []string{"name no platform"}},
	} {
		want := Platform{}
		if tc.want != "" {
			want = p(tc.want)
		}
		_, err := PickPlatform(tc.idx, want)
		for _, s := range tc.msg {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("PickPlatform(%q): %v, want an error saying %q", tc.want, err, s)
			}
		}
	}
}
