package storeurl

import (
	"context"
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
		"s3://bucket":           "s3://bucket",
		"s3://bucket/a/b/":      "s3://bucket/a/b",
	} {
		s, err := Open(context.Background(), raw, Options{})
		if err != nil || s.String() != want {
			t.Errorf("Open(%q) = %v, %v; want %s", raw, s, err, want)
		}
	}
	for raw, msg := range map[string]string{
		"ftp://host/x": `unknown scheme "ftp://"`,
		"/just/a/path": "not a store URL",
		"file://":      "names no directory",
		"s3://":        "names no bucket",
		"s3://b/../x":  "unclean prefix",
	} {
		if _, err := Open(context.Background(), raw, Options{}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Open(%q) error = %v; want it to say %q", raw, err, msg)
		}
	}
}
