package storeurl

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	wd, _ := filepath.Abs(".")
	for raw, want := range map[string]string{
		"file://.immutable":     "file://" + filepath.Join(wd, ".immutable"),
		"file:///var/lib/x":     "file:///var/lib/x",
		"file://localhost/tmp/": "file:///tmp",
	} {
		s, err := Open(raw)
		if err != nil || s.String() != want {
			t.Errorf("Open(%q) = %v, %v; want %s", raw, s, err, want)
		}
	}
	for raw, msg := range map[string]string{
		"ftp://host/x": `unknown scheme "ftp://"`,
		"/just/a/path": "not a store URL",
		"file://":      "names no directory",
	} {
		if _, err := Open(raw); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Open(%q) error = %v; want it to say %q", raw, err, msg)
		}
	}
}
