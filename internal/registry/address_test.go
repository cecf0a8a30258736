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
