package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// pipeline is the graph of issue 11 on real commands: Config A, B and C
// are artifacts; Proc A builds from A and B; Image A (tar) and Image B
// (go build, zipped) from Proc A's output; Proc B from C; Image C from
// Proc B. Every command appends its name to a counter file outside its
// working directory.
type pipeline struct {
	e       *env
	counter string
}

var pipelineSteps = []string{"proc_a", "image_a", "image_b", "proc_b", "image_c"}

func newPipeline(t *testing.T, e *env) *pipeline {
	t.Helper()
	e.write(map[string]string{
		"config-a.txt":  "alpha\n",
		"config-b.txt":  "bravo\n",
		"config-c.txt":  "charlie\ndelta\n",
		"app/go.mod":    "module app\n\ngo 1.22\n",
		"app/main.go":   "package main\n\nimport (\n\t_ \"embed\"\n\t\"fmt\"\n)\n\n//go:embed combined.txt\nvar combined string\n\nfunc main() { fmt.Print(combined) }\n",
		"app/README.md": "a tiny program that prints Proc A's output\n",
	})
	return &pipeline{e: e, counter: filepath.Join(t.TempDir(), "runs")}
}

// config is the pipeline, with extra HCL appended and the provider
// settings given.
func (p *pipeline) config(extra string, settings ...string) string {
	step := func(name, script string, tools []string, inputs map[string]string, output, more string) string {
		var in []string
		for _, k := range sortedKeys(inputs) {
			in = append(in, fmt.Sprintf("%q = %s", k, inputs[k]))
		}
		q := make([]string, len(tools))
		for i, t := range tools {
			q[i] = fmt.Sprintf("%q", t)
		}
		return fmt.Sprintf(`
resource "immutable_build" %q {
  command     = ["sh", "-c", %q]
  tools       = [%s]
  inputs      = { %s }
  environment = { COUNTER = %q, GOTOOLCHAIN = "local", CGO_ENABLED = "0" }
  output      = %q
  %s
}
`, name, "echo "+name+" >> \"$COUNTER\" && "+script, strings.Join(q, ", "), strings.Join(in, ", "), p.counter, output, more)
	}
	tarc := "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "
	return p.e.providerBlock(settings...) + fmt.Sprintf(`
resource "immutable_artifact" "config_a" { source = %q }
resource "immutable_artifact" "config_b" { source = %q }
resource "immutable_artifact" "config_c" { source = %q }
resource "immutable_artifact" "app" { source = %q }
`, filepath.Join(p.e.dir, "config-a.txt"), filepath.Join(p.e.dir, "config-b.txt"), filepath.Join(p.e.dir, "config-c.txt"), filepath.Join(p.e.dir, "app")) +
		step("proc_a", "mkdir out && cat a b > out/combined.txt && tr a-z A-Z < a > out/upper.txt", []string{"sh", "mkdir", "cat", "tr"},
			map[string]string{"a": "immutable_artifact.config_a.digest", "b": "immutable_artifact.config_b.digest"}, "out", "") +
		step("image_a", tarc+"image-a.tar -C proc .", []string{"sh", "tar"},
			map[string]string{"proc": "immutable_build.proc_a.digest"}, "image-a.tar", "") +
		step("image_b", "cp -R app w && chmod -R u+w w && cp proc/combined.txt w/ && cd w && go build -trimpath -buildvcs=false -o ../bootstrap . && cd .. && mkdir bundle && mv bootstrap bundle/",
			[]string{"sh", "cp", "chmod", "go", "mkdir", "mv"},
			map[string]string{"proc": "immutable_build.proc_a.digest", "app": "immutable_artifact.app.digest"}, "bundle", `archive = "zip"
  caches  = { GOCACHE = "go-build" }`) +
		step("proc_b", "sort c > sorted.txt", []string{"sh", "sort"},
			map[string]string{"c": "immutable_artifact.config_c.digest"}, "sorted.txt", "") +
		step("image_c", tarc+"image-c.tar proc", []string{"sh", "tar"},
			map[string]string{"proc": "immutable_build.proc_b.digest"}, "image-c.tar", "") +
		extra
}

// runs returns how many times each step ran so far.
func (p *pipeline) runs(t *testing.T) map[string]int {
	t.Helper()
	b, err := os.ReadFile(p.counter)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, l := range strings.Fields(string(b)) {
		n[l]++
	}
	return n
}

// ran checks that exactly the named steps ran since the last check.
func (p *pipeline) ran(t *testing.T, before *map[string]int, want ...string) resource.TestCheckFunc {
	return func(*terraformState) error {
		now := p.runs(t)
		var got []string
		for _, s := range pipelineSteps {
			for range now[s] - (*before)[s] {
				got = append(got, s)
			}
		}
		*before = now
		if !slices.Equal(got, want) {
			return fmt.Errorf("steps run: %v, want %v", got, want)
		}
		return nil
	}
}

const pipelineRelease = `
resource "immutable_release" "images" {
  name = "images"
  artifacts = {
    image_a = immutable_build.image_a.digest
    image_b = immutable_build.image_b.digest
    image_c = immutable_build.image_c.digest
  }
  version_bump = "patch"
}
`

func buildAddr(name string) string { return "immutable_build." + name }

// TestAccBuild_pipeline: the graph builds once; an unchanged plan runs
// nothing; a change to Config A rebuilds exactly Proc A and Images A and
// B; reverting it runs nothing (every output known at plan, and the
// release rolls back to 1.0.0); a second working directory with fresh
// state on the same store plans every output known and runs nothing.
func TestAccBuild_pipeline(t *testing.T) {
	forEveryStore(t, func(t *testing.T, e *env) {
		p := newPipeline(t, e)
		before := map[string]int{}
		cfg := p.config(pipelineRelease)
		configA := filepath.Join(e.dir, "config-a.txt")
		var first map[string]string
		digests := func(s *terraformState) map[string]string {
			d := map[string]string{}
			for _, n := range pipelineSteps {
				d[n] = s.RootModule().Resources[buildAddr(n)].Primary.Attributes["digest"]
			}
			return d
		}
		hit := func(names ...string) []plancheck.PlanCheck {
			var c []plancheck.PlanCheck
			for _, n := range names {
				c = append(c,
					plancheck.ExpectKnownValue(buildAddr(n), tfjsonpath.New("cache_hit"), knownvalue.Bool(true)),
					plancheck.ExpectKnownValue(buildAddr(n), tfjsonpath.New("digest"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:`))))
			}
			return c
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{
				{
					Config: cfg,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(buildAddr("proc_a"), plancheck.ResourceActionCreate),
						plancheck.ExpectUnknownValue(buildAddr("proc_a"), tfjsonpath.New("digest")),
						plancheck.ExpectUnknownValue(buildAddr("proc_a"), tfjsonpath.New("cache_hit")),
						// Known at plan: the inputs are artifacts, hashed at plan.
						plancheck.ExpectKnownValue(buildAddr("proc_a"), tfjsonpath.New("key"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:`))),
						plancheck.ExpectKnownValue(buildAddr("proc_a"), tfjsonpath.New("key_parts").AtMapKey("input/a"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:`))),
						plancheck.ExpectUnknownValue(buildAddr("image_a"), tfjsonpath.New("key")),
					}},
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("immutable_release.images", tfjsonpath.New("version"), knownvalue.StringExact("1.0.0")),
						statecheck.ExpectKnownValue(buildAddr("image_b"), tfjsonpath.New("cache_hit"), knownvalue.Bool(false)),
						statecheck.ExpectKnownValue(buildAddr("image_b"), tfjsonpath.New("files").AtMapKey("bootstrap"), knownvalue.StringRegexp(regexp.MustCompile(`^exec sha256:`))),
					},
					Check: resource.ComposeTestCheckFunc(p.ran(t, &before, pipelineSteps...), func(s *terraformState) error {
						first = digests(s)
						return nil
					}),
				},
				{
					Config:             cfg,
					ConfigPlanChecks:   resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
					Check:              p.ran(t, &before),
					ExpectNonEmptyPlan: false,
				},
				{
					PreConfig: func() { must(t, os.WriteFile(configA, []byte("alpha, changed\n"), 0o644)) },
					Config:    cfg,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(buildAddr("proc_a"), plancheck.ResourceActionReplace),
						plancheck.ExpectResourceAction(buildAddr("image_a"), plancheck.ResourceActionReplace),
						plancheck.ExpectResourceAction(buildAddr("image_b"), plancheck.ResourceActionReplace),
						plancheck.ExpectResourceAction(buildAddr("proc_b"), plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction(buildAddr("image_c"), plancheck.ResourceActionNoop),
						plancheck.ExpectUnknownValue(buildAddr("proc_a"), tfjsonpath.New("digest")),
					}},
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("immutable_release.images", tfjsonpath.New("version"), knownvalue.StringExact("1.0.1")),
					},
					Check: p.ran(t, &before, "proc_a", "image_a", "image_b"),
				},
				{
					// Reverted: every step is a hit, known at plan, and the
					// release is 1.0.0's content again.
					PreConfig: func() { must(t, os.WriteFile(configA, []byte("alpha\n"), 0o644)) },
					Config:    cfg,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: append([]plancheck.PlanCheck{
						plancheck.ExpectResourceAction(buildAddr("proc_a"), plancheck.ResourceActionReplace),
						plancheck.ExpectResourceAction(buildAddr("image_b"), plancheck.ResourceActionReplace),
						plancheck.ExpectKnownValue(buildAddr("image_b"), tfjsonpath.New("archive_base64sha256"), knownvalue.StringRegexp(regexp.MustCompile(`=$`))),
						plancheck.ExpectKnownValue("immutable_release.images", tfjsonpath.New("artifacts").AtMapKey("image_b"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:`))),
					}, hit("proc_a", "image_a", "image_b")...)},
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("immutable_release.images", tfjsonpath.New("version"), knownvalue.StringExact("1.0.0")),
					},
					Check: resource.ComposeTestCheckFunc(p.ran(t, &before), func(s *terraformState) error {
						if got := digests(s); !maps.Equal(got, first) {
							return fmt.Errorf("reverted outputs %v, first build %v", got, first)
						}
						return nil
					}),
				},
			},
		})

		// Another working directory (a teammate, a fresh CI runner): no
		// state, the same store.
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config: p.config(`
data "immutable_release" "pinned" {
  name    = "images"
  version = "1.0.0"
}
output "same_as_release" {
  value = data.immutable_release.pinned.artifacts["image_b"] == immutable_build.image_b.digest
}
`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: append([]plancheck.PlanCheck{
					plancheck.ExpectResourceAction(buildAddr("image_b"), plancheck.ResourceActionCreate),
					plancheck.ExpectKnownValue(buildAddr("image_b"), tfjsonpath.New("archive_base64sha256"), knownvalue.StringRegexp(regexp.MustCompile(`=$`))),
					plancheck.ExpectKnownOutputValue("same_as_release", knownvalue.Bool(true)),
				}, hit(pipelineSteps...)...)},
				Check: resource.ComposeTestCheckFunc(p.ran(t, &before), func(s *terraformState) error {
					if got := digests(s); !maps.Equal(got, first) {
						return fmt.Errorf("second workdir's outputs %v, first %v", got, first)
					}
					return nil
				}),
			}},
		})
	})
}

// actionKeys lists the action records in the env's store.
func (e *env) actionKeys() []string {
	keys, err := e.backend().Backend().List(context.Background(), "actions/")
	must(e.t, err)
	return keys
}

// TestAccBuild_failuresRecordNothing: a failing command and a timeout are
// errors showing the last lines of output, and leave no action record.
func TestAccBuild_failuresRecordNothing(t *testing.T) {
	e := newEnv(t)
	one := func(script, more string) string {
		return e.providerBlock() + fmt.Sprintf(`
resource "immutable_build" "b" {
  command = ["sh", "-c", %q]
  tools   = ["sh", "sleep"]
  output  = "out"
  %s
}
`, script, more)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      one("echo compiling; echo 'error: missing semicolon' >&2; exit 3", ""),
				ExpectError: regexp.MustCompile(`(?s)Build failed.*exit status 3.*error: missing semicolon`),
			},
			{
				// Colors, a window title and a screen clear are dropped;
				// a byte that is not UTF-8 and a right-to-left override
				// are shown escaped, never raw, in the error.
				Config:      one(`printf '\033[1;31merror:\033[0m bad \033]0;pwned\007\377 x\342\200\256y\033[2J\n'; exit 3`, ""),
				ExpectError: regexp.MustCompile(`(?s)Build failed.*exit status 3.*\serror:\s+bad\s+\\xFF\s+x\\u202Ey\s`),
			},
			{
				Config:      one("echo waiting; sleep 300", `timeout = "1s"`),
				ExpectError: regexp.MustCompile(`(?s)Build timed out.*within 1s.*process group was killed.*waiting`),
			},
			{
				Config:      one("echo done", ""),
				ExpectError: regexp.MustCompile(`(?s)Build output unusable.*"out" does not exist`),
			},
			{
				Config: e.providerBlock() + `
resource "immutable_build" "b" {
  command = ["make"]
  output  = "out"
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Program not declared in tools.*"make"`),
			},
			{
				Config: e.providerBlock() + `
resource "immutable_build" "b" {
  command     = ["sh", "-c", "true"]
  tools       = ["sh"]
  caches      = { C = "x" }
  environment = { C = "y" }
  output      = "out"
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Variable set twice.*C is in both environment and caches`),
			},
			{
				Config: e.providerBlock() + `
resource "immutable_build" "b" {
  command     = ["sh", "-c", "true"]
  tools       = ["sh"]
  environment = { PATH = "/usr/bin" }
  output      = "out"
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)PATH is set by the provider`),
			},
			{
				Config: e.providerBlock() + `
resource "immutable_build" "b" {
  command = ["sh", "-c", "true"]
  tools   = ["sh", "no-such-tool-anywhere"]
  output  = "../out"
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)output.*clean relative path`),
			},
			{
				Config: e.providerBlock() + `
resource "immutable_build" "b" {
  command = ["sh", "-c", "true"]
  tools   = ["sh", "no-such-tool-anywhere"]
  output  = "out"
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Tool not found.*"no-such-tool-anywhere"\s+was\s+not\s+found\s+on\s+PATH`),
			},
		},
	})
	if keys := e.actionKeys(); len(keys) != 0 {
		t.Fatalf("failed builds recorded %v", keys)
	}
}

// TestAccBuild_checkReproducible: a step whose output differs from run to
// run is recorded once; with check_reproducible a later create on a hit
// runs it again and fails, naming both outputs, and keeps the record.
func TestAccBuild_checkReproducible(t *testing.T) {
	e := newEnv(t)
	cfg := func(check bool) string {
		return e.providerBlock() + fmt.Sprintf(`
resource "immutable_build" "b" {
  command            = ["sh", "-c", "date +%%N > out"]
  tools              = ["sh", "date"]
  output             = "out"
  check_reproducible = %v
}
`, check)
	}
	var recorded string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config: cfg(false),
			Check: func(s *terraformState) error {
				recorded = s.RootModule().Resources["immutable_build.b"].Primary.Attributes["digest"]
				return nil
			},
		}},
	})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config:      cfg(true),
			ExpectError: regexp.MustCompile(`(?s)Build is not reproducible.*recorded with\s+` + regexp.QuoteMeta(recorded)),
		}},
	})
	if n := len(e.actionKeys()); n != 1 {
		t.Fatalf("%d records, want the first one kept", n)
	}
}

// TestAccBuild_cacheModes: read-only builds a miss without recording it
// and uses what others recorded; off neither looks up nor records.
func TestAccBuild_cacheModes(t *testing.T) {
	e := newEnv(t)
	counter := filepath.Join(t.TempDir(), "runs")
	cfg := func(mode actioncache.Mode) string {
		return e.providerBlock(fmt.Sprintf("build_cache = %q", mode)) + fmt.Sprintf(`
resource "immutable_build" "b" {
  command     = ["sh", "-c", "echo run >> \"$COUNTER\"; echo built > out"]
  tools       = ["sh"]
  environment = { COUNTER = %q }
  output      = "out"
}
`, counter)
	}
	runs := func() int {
		b, _ := os.ReadFile(counter)
		return strings.Count(string(b), "run\n")
	}
	expectRuns := func(n int) resource.TestCheckFunc {
		return func(*terraformState) error {
			if got := runs(); got != n {
				return fmt.Errorf("ran %d times, want %d", got, n)
			}
			return nil
		}
	}
	fresh := func(mode actioncache.Mode, known bool, wantRuns int, wantRecords int) {
		t.Helper()
		check := plancheck.ExpectUnknownValue("immutable_build.b", tfjsonpath.New("digest"))
		if known {
			check = plancheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("digest"), knownvalue.StringExact(digestOfBytes("built\n")))
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: protoV6,
			Steps: []resource.TestStep{{
				Config:           cfg(mode),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{check}},
				Check: resource.ComposeTestCheckFunc(expectRuns(wantRuns), func(*terraformState) error {
					if n := len(e.actionKeys()); n != wantRecords {
						return fmt.Errorf("%d records, want %d", n, wantRecords)
					}
					return nil
				}),
			}},
		})
	}
	fresh(CacheReadOnly, false, 1, 0)  // a laptop: builds, records nothing
	fresh(CacheReadWrite, false, 2, 1) // CI: builds, records
	fresh(CacheReadOnly, true, 2, 1)   // a laptop again: CI's record, nothing runs
	fresh(CacheOff, false, 3, 1)       // off: runs, whatever is recorded
}

// TestAccBuild_cacheModeFromEnvironment: without build_cache the mode is
// IMMUTABLE_BUILD_CACHE's, and a value that is no mode is an error naming
// the variable, before anything runs.
func TestAccBuild_cacheModeFromEnvironment(t *testing.T) {
	e := newEnv(t)
	counter := filepath.Join(t.TempDir(), "runs")
	cfg := e.providerBlock() + fmt.Sprintf(`
resource "immutable_build" "b" {
  command     = ["sh", "-c", "echo run >> \"$COUNTER\"; echo built > out"]
  tools       = ["sh"]
  environment = { COUNTER = %q }
  output      = "out"
}
`, counter)
	runs := func() int {
		b, _ := os.ReadFile(counter)
		return strings.Count(string(b), "run\n")
	}
	t.Setenv(EnvBuildCache, "readonly")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config:      cfg,
			ExpectError: regexp.MustCompile(`(?s)Invalid build cache mode.*` + strings.ReplaceAll(regexp.QuoteMeta(EnvBuildCache+` is "readonly"; it must be read-write, read-only or off.`), " ", `\s+`)),
		}},
	})
	if n := runs(); n != 0 {
		t.Fatalf("ran %d times with an invalid mode", n)
	}
	t.Setenv(EnvBuildCache, string(actioncache.ReadOnly))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config:           cfg,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("immutable_build.b", plancheck.ResourceActionCreate)}},
			Check: func(*terraformState) error {
				if got, n := runs(), len(e.actionKeys()); got != 1 || n != 0 {
					return fmt.Errorf("read-only from the environment: ran %d times, %d records; want 1 and none", got, n)
				}
				return nil
			},
		}},
	})
	t.Setenv(EnvBuildCache, "")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config:           cfg,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("immutable_build.b", plancheck.ResourceActionCreate)}},
			Check: func(*terraformState) error {
				if got, n := runs(), len(e.actionKeys()); got != 2 || n != 1 {
					return fmt.Errorf("unset (read-write): ran %d times, %d records; want 2 and 1", got, n)
				}
				return nil
			},
		}},
	})
}

// TestAccBuild_caches: a cache directory named in caches persists between
// runs of different steps, and is not part of the key.
func TestAccBuild_caches(t *testing.T) {
	e := newEnv(t)
	cfg := func(salt, cache string) string {
		return e.providerBlock() + fmt.Sprintf(`
resource "immutable_build" "b" {
  command = ["sh", "-c", "echo x >> \"$C/seen\" && cat \"$C/seen\" > out"]
  tools   = ["sh", "cat"]
  caches  = { C = %q }
  salt    = %q
  output  = "out"
}
`, cache, salt)
	}
	var key string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: cfg("1", "acc-caches"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("digest"), knownvalue.StringExact(digestOfBytes("x\n"))),
				},
			},
			{
				Config: cfg("2", "acc-caches"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("digest"), knownvalue.StringExact(digestOfBytes("x\nx\n"))),
				},
				Check: func(s *terraformState) error {
					key = s.RootModule().Resources["immutable_build.b"].Primary.Attributes["key"]
					return nil
				},
			},
			{
				// Another cache name: the same key, updated in place, nothing runs.
				Config: cfg("2", "acc-caches-other"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_build.b", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("digest"), knownvalue.StringExact(digestOfBytes("x\nx\n"))),
				},
				Check: func(s *terraformState) error {
					if got := s.RootModule().Resources["immutable_build.b"].Primary.Attributes["key"]; got != key {
						return fmt.Errorf("key %s, was %s", got, key)
					}
					return nil
				},
			},
		},
	})
}

func digestOfBytes(s string) string { return digest.Bytes([]byte(s)).String() }

// TestAccBuild_destroyAfterTheToolIsGone: a step can be destroyed after
// one of its tools was uninstalled; planning it otherwise says what is
// missing.
func TestAccBuild_destroyAfterTheToolIsGone(t *testing.T) {
	e := newEnv(t)
	bin := t.TempDir()
	tool := filepath.Join(bin, "mytool")
	must(t, os.WriteFile(tool, []byte("#!/bin/sh\necho made > out\n"), 0o755))
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cfg := e.providerBlock() + `
resource "immutable_build" "b" {
  command = ["mytool"]
  tools   = ["mytool", "sh"]
  output  = "out"
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: cfg},
			{
				PreConfig:          func() { must(t, os.Remove(tool)) },
				Config:             cfg,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true, // replaced, with a warning: the tool is gone
			},
			{
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)Tool not found.*"mytool"\s+was\s+not\s+found`),
			},
			{Config: cfg, Destroy: true},
		},
	})
}

// TestAccBuild_anotherRunRecordedFirst: when another run records the key
// with a different output while this one builds (a concurrent CI job), the
// recorded output is kept and used, so everyone agrees on one.
func TestAccBuild_anotherRunRecordedFirst(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := []byte("theirs\n")
	// Runs after the step, before its record: another run records first.
	// It uses e, which the second half points at its own store.
	recordFirst := hooks{beforeRecord: func(context.Context) error {
		st := e.backend()
		key := anotherRunKey // planned: the test's plan check read it
		theirs, log := digest.Bytes(other), digest.Bytes([]byte("their log\n"))
		for sum, b := range map[digest.Sum][]byte{theirs: other, log: []byte("their log\n")} {
			if _, err := st.PutBlob(ctx, sum, bytes.NewReader(b)); err != nil {
				return err
			}
		}
		_, _, err := actioncache.Put(ctx, st, &actioncache.Record{Key: key, Output: theirs, Type: actioncache.TypeFile, Size: int64(len(other)), Files: 1, Log: log})
		return err
	}}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6With(recordFirst),
		Steps: []resource.TestStep{{
			Config: e.providerBlock() + `
resource "immutable_build" "b" {
  command = ["sh", "-c", "echo mine > out"]
  tools   = ["sh"]
  output  = "out"
}
`,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{keyOf("immutable_build.b")}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("digest"), knownvalue.StringExact(digest.Bytes(other).String())),
			},
		}},
	})
	// With check_reproducible, the same race is an error.
	e2 := newEnv(t)
	e = e2
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6With(recordFirst),
		Steps: []resource.TestStep{{
			Config: e2.providerBlock() + `
resource "immutable_build" "b" {
  command            = ["sh", "-c", "echo mine > out"]
  tools              = ["sh"]
  output             = "out"
  check_reproducible = true
}
`,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{keyOf("immutable_build.b")}},
			ExpectError:      regexp.MustCompile(`(?s)Build is not reproducible.*another run recorded`),
		}},
	})
}

// TestAccBuild_hitIsVerified: a hit whose output was damaged in the store
// (the record and listing intact) fails the apply naming the record,
// instead of putting an output the store cannot give back into state.
func TestAccBuild_hitIsVerified(t *testing.T) {
	e := newEnv(t)
	cfg := e.providerBlock() + `
resource "immutable_build" "b" {
  command = ["sh", "-c", "echo good > out"]
  tools   = ["sh"]
  output  = "out"
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps:                    []resource.TestStep{{Config: cfg}},
	})
	e.tamper(store.BlobKey(digest.Bytes([]byte("good\n"))), []byte("evil\n"))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config:      cfg,
			ExpectError: regexp.MustCompile(`(?s)Build record cannot be trusted.*does\s+not\s+verify.*delete\s+that\s+object`),
		}},
	})
}

// anotherRunKey is the key keyOf saw planned.
var anotherRunKey digest.Sum

type keyCheck struct{ addr string }

func keyOf(addr string) plancheck.PlanCheck { return keyCheck{addr} }

func (k keyCheck) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address != k.addr {
			continue
		}
		after, _ := rc.Change.After.(map[string]any)
		s, _ := after["key"].(string)
		sum, err := digest.Parse(s)
		if err != nil {
			resp.Error = fmt.Errorf("%s: key %q not known at plan: %v", k.addr, s, err)
			return
		}
		anotherRunKey = sum
		return
	}
	resp.Error = fmt.Errorf("%s not in the plan", k.addr)
}

// TestAccBuild_inputPaths: local paths hashed at plan as artifacts are,
// stored when the step runs; a changed file replaces the step; a deleted
// one still lets it be destroyed.
func TestAccBuild_inputPaths(t *testing.T) {
	e := newEnv(t)
	e.write(map[string]string{"src/a.txt": "A\n", "c.txt": "C\n"})
	src, cfgFile := filepath.Join(e.dir, "src"), filepath.Join(e.dir, "c.txt")
	cfg := e.providerBlock() + fmt.Sprintf(`
resource "immutable_build" "b" {
  command     = ["sh", "-c", "cat src/a.txt c.txt > out"]
  tools       = ["sh", "cat"]
  input_paths = { src = %q, "c.txt" = %q }
  output      = "out"
}
`, src, cfgFile)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("key_parts").AtMapKey("input/src"), knownvalue.StringExact(digestOf(t, src))),
					plancheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("key_parts").AtMapKey("input/c.txt"), knownvalue.StringExact(digestOfBytes("C\n"))),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("digest"), knownvalue.StringExact(digestOfBytes("A\nC\n"))),
				},
			},
			{Config: cfg, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
			{
				PreConfig: func() { e.write(map[string]string{"src/a.txt": "A2\n"}) },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_build.b", plancheck.ResourceActionReplace),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("digest"), knownvalue.StringExact(digestOfBytes("A2\nC\n"))),
				},
			},
			{
				PreConfig:          func() { must(t, os.RemoveAll(src)) },
				Config:             cfg,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true, // replaced, with a warning: src is gone
			},
			{Config: cfg, Destroy: true},
		},
	})
}

// TestAccBuild_readOnlyConvergesOnTheRecord: a read-only laptop's own
// build of a step is replaced (nothing runs) by the output CI records for
// the key later, so everyone ends on one output.
func TestAccBuild_readOnlyConvergesOnTheRecord(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := e.providerBlock(`build_cache = "read-only"`) + `
resource "immutable_build" "b" {
  command = ["sh", "-c", "echo laptop > out"]
  tools   = ["sh"]
  output  = "out"
}
`
	ci := []byte("ci\n")
	var key string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				Check: func(s *terraformState) error {
					key = s.RootModule().Resources["immutable_build.b"].Primary.Attributes["key"]
					return nil
				},
			},
			{Config: cfg, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
			{
				PreConfig: func() {
					// CI records the step, with another output.
					st := e.backend()
					sum, err := digest.Parse(key)
					must(t, err)
					for _, b := range [][]byte{ci, []byte("ci log\n")} {
						_, err := st.PutBlob(ctx, digest.Bytes(b), bytes.NewReader(b))
						must(t, err)
					}
					_, _, err = actioncache.Put(ctx, st, &actioncache.Record{Key: sum, Output: digest.Bytes(ci), Type: actioncache.TypeFile, Size: int64(len(ci)), Files: 1, Log: digest.Bytes([]byte("ci log\n"))})
					must(t, err)
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_build.b", plancheck.ResourceActionReplace),
					plancheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("digest"), knownvalue.StringExact(digest.Bytes(ci).String())),
					plancheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("cache_hit"), knownvalue.Bool(true)),
				}},
			},
			{Config: cfg, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
		},
	})
}

// TestAccBuild_archiveRefIsVerified: an archive reference pointing at
// something else than the archive of the output's listing is refused, not
// put into state as archive_sha256.
func TestAccBuild_archiveRefIsVerified(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	st := e.backend()
	// The output's listing: one file "out" holding "x\n".
	listing := digest.FileListing("out", 0o644, digest.Bytes([]byte("x\n")), 2)
	bogus := []byte("not a zip")
	_, err := st.PutBlob(ctx, digest.Bytes(bogus), bytes.NewReader(bogus))
	must(t, err)
	// Written as a hand edit would (PutArchiveRef needs the listing stored).
	must(t, st.Backend().Create(ctx, store.ArchiveKey(archive.Version("zip"), listing.Digest()), strings.NewReader(digest.Bytes(bogus).String()+"\n")))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config: e.providerBlock() + `
resource "immutable_build" "b" {
  command = ["sh", "-c", "echo x > out"]
  tools   = ["sh"]
  output  = "out"
  archive = "zip"
}
`,
			ExpectError: regexp.MustCompile(`(?s)Stored archive does not match its reference.*fails verification`),
		}},
	})
	if got, err := st.GetArchiveRef(ctx, archive.Version("zip"), listing.Digest()); err != nil || got != digest.Bytes(bogus) {
		t.Fatalf("the reference was changed: %v %v", got, err)
	}
}

// TestAccBuild_outputGoneFromTheStore: refresh forgets a step whose output
// was deleted from the store; the next plan names the record that now
// promises a missing output instead of trusting it.
func TestAccBuild_outputGoneFromTheStore(t *testing.T) {
	e := newEnv(t)
	cfg := e.providerBlock() + `
resource "immutable_build" "b" {
  command = ["sh", "-c", "mkdir out && echo x > out/x"]
  tools   = ["sh", "mkdir"]
  output  = "out"
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{Config: cfg},
			{
				PreConfig:   func() { e.deleteKeys("trees/") },
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)Build record cannot be trusted.*output listing.*not in the store`),
			},
		},
	})
}

// TestAccBuild_archiveChangesInPlace: archive is not part of the key, so
// adding it to a built step makes the archive of the output already
// stored (nothing runs, the digest stays, even for a step built here that
// no record names), and removing it keeps the output too.
func TestAccBuild_archiveChangesInPlace(t *testing.T) {
	e := newEnv(t)
	counter := filepath.Join(t.TempDir(), "runs")
	cfg := func(archive string) string {
		return e.providerBlock(`build_cache = "read-only"`) + fmt.Sprintf(`
resource "immutable_build" "b" {
  command     = ["sh", "-c", "echo run >> \"$COUNTER\"; mkdir out; date +%%N > out/stamp; printf '#!/bin/sh\\n' > out/run.sh; chmod 755 out/run.sh"]
  tools       = ["sh", "mkdir", "date", "chmod"]
  environment = { COUNTER = %q }
  output      = "out"
  %s
}
`, counter, archive)
	}
	runs := func(want int) resource.TestCheckFunc {
		return func(*terraformState) error {
			b, _ := os.ReadFile(counter)
			if got := strings.Count(string(b), "run\n"); got != want {
				return fmt.Errorf("ran %d times, want %d", got, want)
			}
			return nil
		}
	}
	var first string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config: cfg(""),
				Check: resource.ComposeTestCheckFunc(runs(1), func(s *terraformState) error {
					first = s.RootModule().Resources["immutable_build.b"].Primary.Attributes["digest"]
					return nil
				}),
			},
			{
				Config: cfg(`archive = "zip"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_build.b", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("archive_sha256"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{64}$`))),
					statecheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("archive_path"), knownvalue.StringRegexp(regexp.MustCompile(`^/`))),
				},
				Check: resource.ComposeTestCheckFunc(runs(1), func(s *terraformState) error {
					if got := s.RootModule().Resources["immutable_build.b"].Primary.Attributes["digest"]; got != first {
						return fmt.Errorf("digest %s, was %s", got, first)
					}
					return nil
				}),
			},
			{Config: cfg(`archive = "zip"`), ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
			{
				Config: cfg(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_build.b", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("archive_sha256"), knownvalue.Null()),
					statecheck.ExpectKnownValue("immutable_build.b", tfjsonpath.New("digest"), knownvalue.NotNull()),
				},
				Check: runs(1),
			},
		},
	})
}

// TestAccBuild_runAFileInput: a step's executable file output, as another
// step's input, runs as ./name.
func TestAccBuild_runAFileInput(t *testing.T) {
	e := newEnv(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{{
			Config: e.providerBlock() + `
resource "immutable_build" "script" {
  command = ["sh", "-c", "printf '#!/bin/sh\\necho ran > out\\n' > t.sh && chmod 755 t.sh"]
  tools   = ["sh", "chmod"]
  output  = "t.sh"
}
resource "immutable_build" "run" {
  command = ["./t.sh"]
  tools   = ["sh"]
  inputs  = { "t.sh" = immutable_build.script.digest }
  output  = "out"
}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("immutable_build.run", tfjsonpath.New("digest"), knownvalue.StringExact(digestOfBytes("ran\n"))),
			},
		}},
	})
}

// TestAccBuild_signed: with signing_key, the build record a run writes is
// signed with a SLSA provenance about the record and its output, which
// verifies with the key, and which cosign (a verifier written apart from
// this provider) accepts against the output file as the blob.
func TestAccBuild_signed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keyFile, signer := writeSigningKey(t, t.TempDir())
	cfg := e.providerBlock(fmt.Sprintf("signing_key = %q", keyFile)) + `
resource "immutable_build" "b" {
  command = ["sh", "-c", "echo signed > out"]
  tools   = ["sh"]
  output  = "out"
}
`
	check := func(s *terraformState) error {
		st := e.backend()
		key, err := digest.Parse(s.RootModule().Resources["immutable_build.b"].Primary.Attributes["key"])
		if err != nil {
			return err
		}
		rk := store.ActionKey(key)
		raw := e.read(rk)
		rec, err := actioncache.ParseRecord(raw, key, rk)
		if err != nil {
			return err
		}
		sum := digest.Bytes(raw)
		envs, err := signature.ReadSignatures(ctx, st.Backend(), rk, sum)
		if err != nil || len(envs) != 1 {
			return fmt.Errorf("%s: %d signatures (%v), want 1", rk, len(envs), err)
		}
		stmt, err := signature.VerifyRecord(envs[0], []*signature.Verifier{signer.Public()}, rk, sum, signature.ProvenancePredicateType)
		if err != nil {
			return err
		}
		if _, err := stmt.Provenance(); err != nil {
			return err
		}
		if subs := stmt.Subjects(); len(subs) != 2 || subs[1].Name != "out" || subs[1].Digest != rec.Output {
			return fmt.Errorf("subjects %v, want the record and out %s", subs, rec.Output)
		}

		cosign := os.Getenv("COSIGN_PATH")
		if cosign == "" {
			if os.Getenv("CI") != "" {
				return fmt.Errorf("CI: set COSIGN_PATH (scripts/cosign.sh builds cosign)")
			}
			t.Log("COSIGN_PATH unset: cosign's check skipped (scripts/cosign.sh builds cosign)")
			return nil
		}
		dir := t.TempDir()
		envJSON, err := json.Marshal(envs[0])
		if err != nil {
			return err
		}
		envPath, pubPath, blobPath, otherPath := filepath.Join(dir, "envelope.json"), filepath.Join(dir, "pub.pem"), filepath.Join(dir, "out"), filepath.Join(dir, "other")
		for p, b := range map[string][]byte{envPath: envJSON, pubPath: signer.Public().PEM(), blobPath: e.read(store.BlobKey(rec.Output)), otherPath: []byte("not signed\n")} {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				return err
			}
		}
		verify := func(blob string) (string, error) {
			cmd := exec.Command(cosign, "verify-blob-attestation", "--key", pubPath, "--signature", envPath,
				"--type", signature.ProvenancePredicateType, "--insecure-ignore-tlog=true", blob)
			cmd.Env = append(os.Environ(), "HOME="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf")) // no network, nothing written outside dir
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := verify(blobPath); err != nil || !strings.Contains(out, "Verified OK") {
			return fmt.Errorf("cosign refused the build's provenance: %v\n%s", err, out)
		}
		if out, err := verify(otherPath); err == nil {
			return fmt.Errorf("cosign accepted the build's provenance for another file:\n%s", out)
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps:                    []resource.TestStep{{Config: cfg, Check: check}},
	})
}

// TestAccBuild_builderID: builder_id is the builder.id of a signed build's
// provenance, before IMMUTABLE_BUILDER_ID, which is used when it is unset;
// changing it plans no change and records nothing new (it is not in the
// record or its key), and another builder's workspace hits the record;
// a relative one is an error naming builder_id.
func TestAccBuild_builderID(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keyFile, signer := writeSigningKey(t, t.TempDir())
	const a, b, fromEnv = "https://ci.example.com/runners/a", "urn:example:runner-b", "https://ci.example.com/from-env"
	t.Setenv(EnvBuilderID, fromEnv)
	build := func(name, text string) string {
		return fmt.Sprintf("resource \"immutable_build\" %q {\n  command = [\"sh\", \"-c\", \"echo %s > out\"]\n  tools   = [\"sh\"]\n  output  = \"out\"\n}\n", name, text)
	}
	cfg := func(builderID string, builds ...string) string {
		extra := fmt.Sprintf("signing_key = %q", keyFile)
		if builderID != "" {
			extra += fmt.Sprintf("\n  builder_id = %q", builderID)
		}
		return e.providerBlock(extra) + strings.Join(builds, "")
	}
	// builder checks the builder.id of the only signature of res's record.
	builder := func(res, want string) resource.TestCheckFunc {
		return func(s *terraformState) error {
			key, err := digest.Parse(s.RootModule().Resources[res].Primary.Attributes["key"])
			if err != nil {
				return err
			}
			rk := store.ActionKey(key)
			sum := digest.Bytes(e.read(rk))
			envs, err := signature.ReadSignatures(ctx, e.backend().Backend(), rk, sum)
			if err != nil || len(envs) != 1 {
				return fmt.Errorf("%s: %d signatures (%v), want 1", rk, len(envs), err)
			}
			stmt, err := signature.VerifyRecord(envs[0], []*signature.Verifier{signer.Public()}, rk, sum, signature.ProvenancePredicateType)
			if err != nil {
				return err
			}
			p, err := stmt.Provenance()
			if err != nil {
				return err
			}
			if got := p.RunDetails.Builder.ID; got != want {
				return fmt.Errorf("%s: builder.id %q, want %q", res, got, want)
			}
			return nil
		}
	}
	records := func(want int) resource.TestCheckFunc {
		return func(*terraformState) error {
			if keys := e.actionKeys(); len(keys) != want {
				return fmt.Errorf("action records %v, want %d", keys, want)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6,
		Steps: []resource.TestStep{
			{
				Config:      cfg("ci-runner-a", build("a", "one")),
				ExpectError: regexp.MustCompile(`(?s)Invalid builder ID.*builder_id.*"ci-runner-a" is not an absolute URI`),
			},
			{Config: cfg(a, build("a", "one")), Check: resource.ComposeTestCheckFunc(builder("immutable_build.a", a), records(1))},
			{
				Config:           cfg(b, build("a", "one")),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            resource.ComposeTestCheckFunc(builder("immutable_build.a", a), records(1)),
			},
			{
				Config: cfg("", build("a", "one"), build("c", "two")),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_build.a", plancheck.ResourceActionNoop),
				}},
				Check: resource.ComposeTestCheckFunc(builder("immutable_build.c", fromEnv), records(2)),
			},
			// Another builder, a new workspace for a: a cache hit on the
			// record builder a signed, known at plan.
			{Config: cfg(b, build("c", "two"))},
			{
				Config: cfg(b, build("a", "one"), build("c", "two")),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("immutable_build.a", plancheck.ResourceActionCreate),
					plancheck.ExpectKnownValue("immutable_build.a", tfjsonpath.New("digest"), knownvalue.NotNull()),
				}},
				Check: resource.ComposeTestCheckFunc(builder("immutable_build.a", a), records(2)),
			},
		},
	})
}
