package actioncache

import (
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

func TestKeyIsAPureFunctionOfTheDeclaration(t *testing.T) {
	a := digest.Bytes([]byte("a"))
	base := Spec{
		Command: []string{"sh", "-c", "x"}, Environment: map[string]string{"A": "1"},
		Tools: map[string]digest.Sum{"sh": digest.Bytes([]byte("sh"))}, Inputs: map[string]digest.Sum{"src": a},
		Output: "out", Platform: "linux/amd64",
	}
	// The encoding is specified (docs/guides/digest-spec.md): this value
	// only changes with KeyVersion.
	const golden = "sha256:002aa7d0c195f159c23e9e9c5c7e197e27687112e84a46cae46dd7b67666940c"
	if got := base.Key().String(); got != golden {
		t.Logf("key of the reference spec: %s (update the golden value and the spec guide together)", got)
		t.Fail()
	}
	again := base
	again.Environment = map[string]string{"A": "1"} // another map, the same declaration
	if again.Key() != base.Key() {
		t.Fatal("the same declaration gives another key")
	}
	variants := map[string]func(s *Spec){
		"argv split differently": func(s *Spec) { s.Command = []string{"sh", "-c x"} },
		"environment value":      func(s *Spec) { s.Environment = map[string]string{"A": "2"} },
		"environment name":       func(s *Spec) { s.Environment = map[string]string{"B": "1"} },
		"tool content":           func(s *Spec) { s.Tools = map[string]digest.Sum{"sh": digest.Bytes([]byte("dash"))} },
		"input renamed":          func(s *Spec) { s.Inputs = map[string]digest.Sum{"src2": a} },
		"input content":          func(s *Spec) { s.Inputs = map[string]digest.Sum{"src": digest.Bytes([]byte("b"))} },
		"output":                 func(s *Spec) { s.Output = "out2" },
		"platform":               func(s *Spec) { s.Platform = "darwin/arm64" },
		"salt":                   func(s *Spec) { s.Salt = "1" },
	}
	seen := map[digest.Sum]string{base.Key(): "base"}
	for name, change := range variants {
		s := base
		change(&s)
		k := s.Key()
		if other, dup := seen[k]; dup {
			t.Errorf("%s gives the same key as %s", name, other)
		}
		seen[k] = name
	}
	parts := base.Parts()
	if parts["input/src"] != a {
		t.Errorf("an input's part is not the artifact's own digest: %s", parts["input/src"])
	}
	if KeyOf(parts) != base.Key() {
		t.Error("the key is not the key of its parts")
	}
}

func TestChecks(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "/abs", "a/../b", "a//b", "./a", ".build", ".build/x", `a\b`, "o\x00"} {
		if CheckRel(bad) == nil {
			t.Errorf("CheckRel(%q) passed", bad)
		}
	}
	for _, good := range []string{"out", "dist/app.zip", ".out", "a.build"} {
		if err := CheckRel(good); err != nil {
			t.Errorf("CheckRel(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"", ".hidden", "-x", "a/b", "a b", "..", "é"} {
		if CheckName("input", bad) == nil {
			t.Errorf("CheckName(%q) passed", bad)
		}
	}
	for _, bad := range []string{"HOME", "PATH", "TMPDIR", "1A", "A-B", ""} {
		if CheckEnv(bad) == nil {
			t.Errorf("CheckEnv(%q) passed", bad)
		}
	}
}
