package image

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ParsePlatform reads "os/arch" or "os/arch/variant": each part lower-case
// letters and digits, such as "linux/amd64" or "linux/arm/v7". Names are
// not checked against a list, so a new architecture needs no release.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, platformError(s, "it must have two or three parts separated by \"/\"")
	}
	for _, part := range parts {
		if !platformWord(part) {
			return Platform{}, platformError(s, fmt.Sprintf("%q is not lower-case letters and digits", part))
		}
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func platformError(s, why string) error {
	return fmt.Errorf("the platform %q is not os/arch or os/arch/variant: %s; write it as %q, %q or %q", s, why, "linux/amd64", "linux/arm64", "linux/arm/v7")
}

func platformWord(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// check reports whether p has the shape ParsePlatform accepts.
func (p Platform) check() error {
	_, err := ParsePlatform(p.String())
	return err
}

// Matches reports whether p and q name the same platform: the same
// strings, except that arm64's variant v8 is the default and may be left
// out (as containerd and the OCI image spec read it).
func (p Platform) Matches(q Platform) bool {
	return p.normal() == q.normal()
}

func (p Platform) normal() Platform {
	if p.Architecture == "arm64" && p.Variant == "v8" {
		p.Variant = ""
	}
	return p
}

// ConfigPlatform reads the platform an image config says it is for: its
// os, architecture and variant (empty where absent). It checks nothing
// else of the config.
func ConfigPlatform(config []byte) (Platform, error) {
	var c struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		return Platform{}, fmt.Errorf("its os, architecture and variant cannot be read: %v", err)
	}
	return Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant}, nil
}

// PickPlatform returns the entry of an index for platform p: the one
// spelled exactly p, else the one p Matches (arm64's variant v8 may be
// left out on either side). When there is none, the error lists the
// platforms the index has, to pick from.
func PickPlatform(entries []IndexEntry, p Platform) (IndexEntry, error) {
	var have []string
	for _, e := range entries {
		if e.Platform != (Platform{}) {
			have = append(have, e.Platform.String())
		}
	}
	switch {
	case len(have) == 0:
		return IndexEntry{}, fmt.Errorf("it is an index whose manifests name no platform: give one of its image manifests by digest instead")
	case p == (Platform{}):
		return IndexEntry{}, fmt.Errorf("it is an index of several platforms (%s): set `platform` to the one to use", strings.Join(have, ", "))
	}
	for _, exact := range []bool{true, false} {
		for _, e := range entries {
			if e.Platform == p || !exact && e.Platform.Matches(p) {
				return e, nil
			}
		}
	}
	what := "pick one of those"
	for _, e := range entries {
		if e.Platform.OS == p.OS && e.Platform.Architecture == p.Architecture {
			what = "give the platform with its variant as the index does"
		}
	}
	return IndexEntry{}, fmt.Errorf("it has no manifest for %s; it has %s: %s", p, strings.Join(have, ", "), what)
}
