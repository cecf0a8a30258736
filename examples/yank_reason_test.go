package examples

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAccPlantedYankReasonIsShownEscaped: one workspace publishes web
// 1.0.0; a yank entry whose reason holds a right-to-left override (which
// the provider refuses to write, but an older version accepted, or a hand
// edit makes) is put in the store by hand; another workspace pinning 1.0.0
// gets the "Version is yanked" warning with the reason escaped, never the
// raw override that would reorder the warning in its terminal.
func TestAccPlantedYankReasonIsShownEscaped(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	store := filepath.Join(t.TempDir(), "store")
	workspace := func(body string) string {
		dir := t.TempDir()
		mustDo(t, os.WriteFile(filepath.Join(dir, "main.tf"), []byte(fmt.Sprintf(`
terraform {
  required_providers {
    immutable = { source = "immutable-infra/immutable" }
  }
}
provider "immutable" {
  store = %q
}
%s`, "file://"+store, body)), 0o644))
		must(t, dir, cfg, "init", "-input=false")
		return dir
	}
	publisher := workspace(`
resource "immutable_artifact" "site" {
  content = "v1"
}
resource "immutable_release" "web" {
  name      = "web"
  version   = "1.0.0"
  artifacts = { site = immutable_artifact.site.digest }
}
`)
	must(t, publisher, cfg, "apply", "-input=false", "-auto-approve")

	// The entry as the provider would encode it (canonical JSON: the
	// override is written as its UTF-8 bytes, not escaped).
	const reason = "fixed in 1.0.1 \u202E(see INC-4711)"
	entry := `{"spec":"immutable-yank-v1","name":"web","version":"1.0.0","seq":1,"yanked":true,"reason":"` + reason + `","at":"2026-01-02T03:04:05Z"}` + "\n"
	key := filepath.Join(store, "releases", "web", "yanks", "1.0.0", "0000000001")
	mustDo(t, os.MkdirAll(filepath.Dir(key), 0o755))
	mustDo(t, os.WriteFile(key, []byte(entry), 0o444))

	deployer := workspace(`
data "immutable_release" "pinned" {
  name    = "web"
  version = "1.0.0"
}
`)
	out := must(t, deployer, cfg, "plan", "-input=false")
	words := strings.Join(strings.Fields(out), " ") // the CLI wraps long lines
	if !strings.Contains(words, "Warning: Version is yanked") || !strings.Contains(words, `was yanked on 2026-01-02T03:04:05Z: "fixed in 1.0.1 \u202E(see INC-4711)".`) {
		t.Fatalf("the warning does not show the reason escaped:\n%s", out)
	}
	if strings.ContainsRune(out, '\u202E') {
		t.Fatalf("a raw U+202E is printed in a message:\n%s", out)
	}
}
