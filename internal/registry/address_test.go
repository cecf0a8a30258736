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
