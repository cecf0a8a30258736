package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// Functions run on an unconfigured provider: the error configs have no
// provider block and no store.
const functionsHeader = ""

func TestAccFunctions(t *testing.T) {
	t.Parallel()
	requireAcc(t)
	e := &env{t: t, dir: filepath.Join(t.TempDir(), "src")}
	e.write(siteFiles)
	e.write(map[string]string{"app.js.map": "{}"})
	file := filepath.Join(e.dir, "index.html")
	withoutMaps, _ := digest.HashTree(t.Context(), e.dir, digest.Options{Excludes: []string{"**/*.map"}})
	config := functionsHeader + fmt.Sprintf(`
locals {
  dir  = %q
  file = %q
}
resource "immutable_artifact" "site" {
  source   = local.dir
  excludes = ["**/*.map"]
}
output "dir"          { value = provider::immutable::digest(local.dir, "**/*.map") }
output "same"         { value = provider::immutable::digest(local.dir, "**/*.map") == immutable_artifact.site.digest }
output "all"          { value = provider::immutable::digest(local.dir) }
output "file"         { value = provider::immutable::digest(local.file) }
output "filesha256"   { value = "sha256:${filesha256(local.file)}" }
output "files"        { value = provider::immutable::file_digests(local.dir, "**/*.map", ".git") }
output "one_file"     { value = provider::immutable::file_digests(local.file) }
`, e.dir, file)
	e.store = filepath.Join(t.TempDir(), "store")
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config: config + e.providerBlock(),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownOutputValue("dir", knownvalue.StringExact(withoutMaps.Digest().String())),
				statecheck.ExpectKnownOutputValue("same", knownvalue.Bool(true)),
				statecheck.ExpectKnownOutputValue("all", knownvalue.StringExact(digestOf(t, e.dir))),
				statecheck.ExpectKnownOutputValue("file", knownvalue.StringExact(digest.Bytes([]byte("<h1>v1</h1>\n")).String())),
				statecheck.ExpectKnownOutputValue("filesha256", knownvalue.StringExact(digest.Bytes([]byte("<h1>v1</h1>\n")).String())),
				statecheck.ExpectKnownOutputValue("files", knownvalue.MapExact(map[string]knownvalue.Check{
					"index.html":    knownvalue.StringExact("file " + digest.Bytes([]byte("<h1>v1</h1>\n")).String()),
					"css/site.css":  knownvalue.StringExact("file " + digest.Bytes([]byte("body{}\n")).String()),
					"bin/deploy.sh": knownvalue.StringExact("exec " + digest.Bytes([]byte("#!/bin/sh\n")).String()),
				})),
				statecheck.ExpectKnownOutputValue("one_file", knownvalue.MapExact(map[string]knownvalue.Check{
					"index.html": knownvalue.StringExact("file " + digest.Bytes([]byte("<h1>v1</h1>\n")).String()),
				})),
			},
		}},
	})
}

func TestAccFunctions_errors(t *testing.T) {
	t.Parallel()
	requireAcc(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	must(t, os.WriteFile(file, []byte("x"), 0o644))
	for name, c := range map[string]struct{ call, err string }{
		"missing path":       {fmt.Sprintf("digest(%q)", filepath.Join(dir, "nope")), `(?s)Invalid function argument.*does not exist.*path\.module`},
		"invalid glob":       {fmt.Sprintf("digest(%q, \"ok\", \"[bad\")", dir), `(?s)Invalid function argument.*Invalid exclude glob.*not\s+a\s+valid\s+glob`},
		"excludes on a file": {fmt.Sprintf("file_digests(%q, \"*.map\")", file), `(?s)Invalid function argument.*is a file; excludes only apply`},
	} {
		t.Run(name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6,
				Steps: []resource.TestStep{{
					Config:      functionsHeader + "output \"x\" { value = provider::immutable::" + c.call + " }\n",
					ExpectError: regexp.MustCompile(c.err),
				}},
			})
		})
	}
}

// TestHashPathArgumentErrors: each refusal names its argument, in a
// message without the final period Terraform adds itself ("Invalid value
// for "path" parameter: ...."), and a file's listing is its one entry.
func TestHashPathArgumentErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "handler.py")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		path     string
		excludes []string
		arg      int64
	}{
		"missing":         {filepath.Join(dir, "nope"), nil, 0},
		"named pipe":      {fifo, nil, 0},
		"excludes a file": {file, []string{"*.map"}, 1},
		"invalid glob":    {dir, []string{"ok", "[bad"}, 2},
	} {
		_, _, ferr := hashPath(ctx, c.path, c.excludes)
		switch {
		case ferr == nil:
			t.Errorf("%s: no error", name)
		case ferr.FunctionArgument == nil || *ferr.FunctionArgument != c.arg:
			t.Errorf("%s: argument %v, want %d", name, ferr.FunctionArgument, c.arg)
		case strings.HasSuffix(ferr.Text, "."):
			t.Errorf("%s: %q ends with a period; Terraform adds one", name, ferr.Text)
		}
	}
	m, sum, ferr := hashPath(ctx, file, nil)
	if ferr != nil || len(m.Entries) != 1 || m.Entries[0].Path != "handler.py" || m.Entries[0].SHA256 != sum {
		t.Fatalf("a file: %v %v", m, ferr)
	}
}
