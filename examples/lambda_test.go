package examples

// The HCL the docs show, checked through the real CLI. The Lambda examples
// (examples/lambda/*), the container examples (examples/container/*) and
// the guides' snippets deploy with aws_* and kubernetes_* resources, and
// those providers cannot be installed here (no registry access): the tests
// parse each file, take out the resources and data sources of those
// providers, their provider blocks and their required_providers entries,
// and stand in for every argument of such a block that reads one of our
// resources or data sources with an output of the same expression. What
// is left is ours: it
// is validated, its references are checked against our provider's schema,
// and the Lambda examples are applied, on a local store and on an S3 server,
// checking that each argument the function would get (filename and
// source_code_hash, s3_bucket and s3_key) names exactly the zip of the
// version deployed, through a release, a change and a rollback.

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// schemaRef is one of our attributes read by name: data.immutable_X.n.attr
// or immutable_X.n.attr (attr is "" for the whole object).
type schemaRef struct {
	where string // the argument or document reading it
	data  bool
	typ   string
	attr  string
}

func (r schemaRef) String() string {
	s := r.typ
	if r.data {
		s = "data." + s
	}
	if r.attr != "" {
		s += "." + r.attr
	}
	return s
}

// foreignProviders are the providers whose parts the tests take out: what
// deploys our artifacts and images, which cannot be installed offline.
var foreignProviders = []string{"aws", "kubernetes"}

// foreignFree is a configuration with its foreign providers' parts taken
// out.
type foreignFree struct {
	src []byte
	// standIns maps a foreign block's argument
	// ("aws_lambda_function.api.s3_key") to the output that carries its
	// value.
	standIns map[string]string
	// refs are our attributes the foreign blocks read.
	refs []schemaRef
}

// isForeignType reports whether a resource or data source type belongs
// to one of foreignProviders.
func isForeignType(name string) bool {
	for _, p := range foreignProviders {
		if strings.HasPrefix(name, p+"_") {
			return true
		}
	}
	return false
}

func isForeignProvider(name string) bool { return slices.Contains(foreignProviders, name) }

// classify says what a traversal refers to: one of our resources or data
// sources (with the attribute read), a foreign one, or neither.
func classify(tr hcl.Traversal) (ours *schemaRef, foreign bool) {
	step := func(i int) string {
		if i < len(tr) {
			if a, ok := tr[i].(hcl.TraverseAttr); ok {
				return a.Name
			}
		}
		return ""
	}
	typ, attrAt, data := tr.RootName(), 2, false
	if typ == "data" {
		typ, attrAt, data = step(1), 3, true
	}
	switch {
	case isForeignType(typ):
		return nil, true
	case strings.HasPrefix(typ, "immutable_"):
		return &schemaRef{data: data, typ: typ, attr: step(attrAt)}, false
	}
	return nil, false
}

// eachAttribute calls fn on every attribute of body and of its nested
// blocks, with its path below body ("s3_key", "environment.variables").
func eachAttribute(body *hclsyntax.Body, prefix string, fn func(path string, a *hclsyntax.Attribute)) {
	names := make([]string, 0, len(body.Attributes))
	for n := range body.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fn(prefix+n, body.Attributes[n])
	}
	for _, b := range body.Blocks {
		eachAttribute(b.Body, prefix+b.Type+".", fn)
	}
}

func parseHCL(t *testing.T, name string, src []byte) *hclsyntax.Body {
	t.Helper()
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", name, diags.Error())
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		t.Fatalf("%s: not native HCL syntax", name)
	}
	return body
}

// withoutForeign takes the foreign providers' parts out of a configuration
// file and stands in for the arguments of their blocks that read ours.
func withoutForeign(t *testing.T, name string, src []byte) foreignFree {
	t.Helper()
	out := foreignFree{standIns: map[string]string{}}
	var cuts []hcl.Range
	var outputs strings.Builder
	for _, b := range parseHCL(t, name, src).Blocks {
		switch {
		case b.Type == "terraform":
			for _, rp := range b.Body.Blocks {
				if rp.Type != "required_providers" {
					continue
				}
				for _, p := range foreignProviders {
					if a, ok := rp.Body.Attributes[p]; ok {
						cuts = append(cuts, a.SrcRange)
					}
				}
			}
		case b.Type == "provider" && len(b.Labels) == 1 && isForeignProvider(b.Labels[0]):
			cuts = append(cuts, b.Range())
		case (b.Type == "resource" || b.Type == "data") && len(b.Labels) == 2 && isForeignType(b.Labels[0]):
			cuts = append(cuts, b.Range())
			addr := b.Labels[0] + "." + b.Labels[1]
			if b.Type == "data" {
				addr = "data." + addr
			}
			eachAttribute(b.Body, "", func(path string, a *hclsyntax.Attribute) {
				if path == "depends_on" || path == "provider" {
					return
				}
				where := addr + "." + path
				var reads, foreignToo bool
				for _, tr := range a.Expr.Variables() {
					ref, foreign := classify(tr)
					foreignToo = foreignToo || foreign
					if ref != nil {
						reads = true
						ref.where = where
						out.refs = append(out.refs, *ref)
					}
				}
				if !reads || foreignToo {
					return // nothing of ours, or nothing an output could hold here
				}
				o := strings.NewReplacer(".", "__").Replace(where)
				r := a.Expr.Range()
				fmt.Fprintf(&outputs, "\n# Stands in for %s.\noutput %q {\n  value = %s\n}\n", where, o, src[r.Start.Byte:r.End.Byte])
				out.standIns[where] = o
			})
		}
	}
	sort.Slice(cuts, func(i, j int) bool { return cuts[i].Start.Byte < cuts[j].Start.Byte })
	var kept []byte
	at := 0
	for _, c := range cuts {
		kept = append(kept, src[at:c.Start.Byte]...)
		at = c.End.Byte
	}
	kept = append(kept, src[at:]...)
	out.src = append(kept, outputs.String()...)

	// What is left must stand on its own: it parses, and nothing in it
	// reads what was taken out.
	for _, b := range parseHCL(t, name+" (without foreign providers)", out.src).Blocks {
		eachAttribute(b.Body, b.Type+" "+strings.Join(b.Labels, ".")+": ", func(path string, a *hclsyntax.Attribute) {
			for _, tr := range a.Expr.Variables() {
				if _, foreign := classify(tr); foreign {
					t.Errorf("%s: %s reads %s, which is not ours: the test cannot keep it. Read %s attributes only in their own provider's blocks.",
						name, path, tr.RootName(), tr.RootName())
				}
			}
		})
	}
	return out
}

// schema is our provider's schema as the CLI reports it: type → attribute
// names (nested blocks included), for resources and for data sources.
type schema struct {
	resources, dataSources map[string]map[string]bool
}

// providerSchema reads the schema in dir, initialised with our provider.
func providerSchema(t *testing.T, dir, cfg string) schema {
	t.Helper()
	out := must(t, dir, cfg, "providers", "schema", "-json")
	type block struct {
		Block struct {
			Attributes map[string]json.RawMessage `json:"attributes"`
			BlockTypes map[string]json.RawMessage `json:"block_types"`
		} `json:"block"`
	}
	var doc struct {
		ProviderSchemas map[string]struct {
			Resources   map[string]block `json:"resource_schemas"`
			DataSources map[string]block `json:"data_source_schemas"`
		} `json:"provider_schemas"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &doc); err != nil {
		t.Fatalf("providers schema -json: %v\n%s", err, out)
	}
	names := func(m map[string]block) map[string]map[string]bool {
		r := map[string]map[string]bool{}
		for typ, b := range m {
			r[typ] = map[string]bool{}
			for a := range b.Block.Attributes {
				r[typ][a] = true
			}
			for a := range b.Block.BlockTypes {
				r[typ][a] = true
			}
		}
		return r
	}
	for addr, p := range doc.ProviderSchemas {
		if strings.HasSuffix(addr, "/immutable-infra/immutable") {
			return schema{resources: names(p.Resources), dataSources: names(p.DataSources)}
		}
	}
	t.Fatalf("providers schema -json has no immutable-infra/immutable:\n%s", out)
	return schema{}
}

// check reports every reference that names a type or an attribute our
// provider does not have.
func (s schema) check(t *testing.T, refs []schemaRef) {
	t.Helper()
	for _, r := range refs {
		types, kind := s.resources, "resource"
		if r.data {
			types, kind = s.dataSources, "data source"
		}
		attrs, ok := types[r.typ]
		switch {
		case !ok:
			t.Errorf("%s reads %s: the provider has no %s %s", r.where, r, kind, r.typ)
		case r.attr != "" && !attrs[r.attr]:
			have := make([]string, 0, len(attrs))
			for a := range attrs {
				have = append(have, a)
			}
			sort.Strings(have)
			t.Errorf("%s reads %s: the %s %s has no attribute %q (it has %s)", r.where, r, kind, r.typ, r.attr, strings.Join(have, ", "))
		}
	}
}

// prepareWithoutForeign copies the example directory ex to a new
// directory, takes the foreign providers' parts out of its main.tf, adds
// extra (test-only outputs),
// and initialises it with our provider, validates it and checks what the
// foreign blocks read against the schema. It returns the directory and the
// stand-ins.
func prepareWithoutForeign(t *testing.T, cfg, ex, extra string) (string, foreignFree) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), filepath.Base(ex))
	copyDir(t, ex, dir)
	src, err := os.ReadFile(filepath.Join(dir, "main.tf"))
	mustDo(t, err)
	free := withoutForeign(t, filepath.Join(ex, "main.tf"), src)
	if len(free.standIns) == 0 {
		t.Fatalf("%s: no argument of another provider's block reads our resources: nothing of the example is checked", ex)
	}
	mustDo(t, os.WriteFile(filepath.Join(dir, "main.tf"), free.src, 0o644))
	if extra != "" {
		mustDo(t, os.WriteFile(filepath.Join(dir, "test_outputs.tf"), []byte(extra), 0o644))
	}
	must(t, dir, cfg, "init", "-input=false")
	providerSchema(t, dir, cfg).check(t, free.refs)
	must(t, dir, cfg, "validate")
	return dir, free
}

// plannedOutputs returns the outputs of the saved plan p.tfplan whose
// values are known at plan.
func plannedOutputs(t *testing.T, dir, cfg string) map[string]string {
	t.Helper()
	out := must(t, dir, cfg, "show", "-json", "p.tfplan")
	var plan struct {
		PlannedValues struct {
			Outputs map[string]struct {
				Value any `json:"value"`
			} `json:"outputs"`
		} `json:"planned_values"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &plan); err != nil {
		t.Fatalf("show -json: %v\n%s", err, out)
	}
	known := map[string]string{}
	for name, o := range plan.PlannedValues.Outputs {
		if s, ok := o.Value.(string); ok {
			known[name] = s
		}
	}
	return known
}

// zipFile returns the content of name in the zip archive b.
func zipFile(t *testing.T, b []byte, name string) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a zip archive: %v", err)
	}
	var names []string
	for _, f := range zr.File {
		if f.Name != name {
			names = append(names, f.Name)
			continue
		}
		r, err := f.Open()
		mustDo(t, err)
		content, err := io.ReadAll(r)
		mustDo(t, err)
		mustDo(t, r.Close())
		return string(content)
	}
	t.Fatalf("the zip has no %s (it has %v)", name, names)
	return ""
}

// addProviderBlock adds the docs' provider block (examples/provider) to
// the configuration in dir, as tfplugindocs shows it beside each example.
func addProviderBlock(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("provider", "provider.tf"))
	mustDo(t, err)
	mustDo(t, os.WriteFile(filepath.Join(dir, "provider.tf"), b, 0o644))
}

// lambdaCode is the function's code the tests publish, version by version.
func lambdaCode(v int) string {
	return fmt.Sprintf("exports.handler = async () => ({ statusCode: 200, body: \"api %d\" })\n", v)
}

const roleVar = "lambda_role_arn=arn:aws:iam::123456789012:role/api"

// TestAccLambdaExamples runs the two Lambda patterns of the rollback guide
// (examples/lambda): without their aws_* parts, they validate, what the
// function reads exists in our schema, and applied they publish 1.0.0,
// then 1.0.1, then roll back to 1.0.0, with what the function would get
// checked against the bytes at each step.
func TestAccLambdaExamples(t *testing.T) {
	cli(t)
	cfg := mirror(t)

	// filename + source_code_hash from immutable_export (format = "zip"),
	// on the default local store.
	t.Run("filename", func(t *testing.T) {
		dir, free := prepareWithoutForeign(t, cfg, "lambda/filename",
			"output \"deployed_version\" {\n  value = data.immutable_release.api.resolved_version\n}\n")
		filenameOut, hashOut := free.standIns["aws_lambda_function.api.filename"], free.standIns["aws_lambda_function.api.source_code_hash"]
		if filenameOut == "" || hashOut == "" {
			t.Fatalf("the function's filename and source_code_hash do not read our resources: %v", free.standIns)
		}
		vars := []string{"-var", roleVar}
		apply := func(args ...string) {
			t.Helper()
			must(t, dir, cfg, append(append([]string{"apply", "-input=false", "-auto-approve"}, vars...), args...)...)
		}
		// deployed checks what the function would get: the file it names
		// holds the zip of code, and source_code_hash is that file's
		// base64 sha256. It returns the file's bytes.
		deployed := func(version string, code int) []byte {
			t.Helper()
			if v := output(t, dir, cfg, "deployed_version"); v != version {
				t.Fatalf("deployed %s, want %s", v, version)
			}
			b, err := os.ReadFile(filepath.Join(dir, output(t, dir, cfg, filenameOut)))
			mustDo(t, err)
			sum := sha256.Sum256(b)
			if got, want := output(t, dir, cfg, hashOut), base64.StdEncoding.EncodeToString(sum[:]); got != want {
				t.Fatalf("source_code_hash would be %s; the file's base64 sha256 is %s", got, want)
			}
			if got := zipFile(t, b, "index.js"); got != lambdaCode(code) {
				t.Fatalf("the zip holds index.js %q, want %q", got, lambdaCode(code))
			}
			return b
		}

		apply()
		v1 := deployed("1.0.0", 1)
		if out, code := run(t, dir, cfg, append([]string{"plan", "-input=false", "-detailed-exitcode"}, vars...)...); code != 0 {
			t.Fatalf("plan after apply is not empty (exit %d)\n%s", code, out)
		}
		sum1 := sha256.Sum256(v1)
		hash1 := base64.StdEncoding.EncodeToString(sum1[:])

		// A fresh runner, without the zip: the export is written again,
		// and source_code_hash, known at plan, stays what it was.
		mustDo(t, os.Remove(filepath.Join(dir, "build", "api.zip")))
		if got := planActions(t, dir, cfg, vars...)["immutable_export.api"]; got != "create" {
			t.Errorf("with the zip gone, the export planned %q, want create", got)
		}
		if got := plannedOutputs(t, dir, cfg)[hashOut]; got != hash1 {
			t.Errorf("with the zip gone, source_code_hash planned %q, want %s as before, known at plan", got, hash1)
		}
		must(t, dir, cfg, "apply", "-input=false", "p.tfplan")
		if again := deployed("1.0.0", 1); !bytes.Equal(again, v1) {
			t.Fatal("the zip written again differs from the first")
		}

		mustDo(t, os.WriteFile(filepath.Join(dir, "src", "index.js"), []byte(lambdaCode(2)), 0o644))
		apply()
		if v2 := deployed("1.0.1", 2); bytes.Equal(v1, v2) {
			t.Fatal("a change of code left the zip as it was")
		}

		// The rollback: only the export changes, and the function's new
		// source_code_hash, 1.0.0's, is known at plan.
		vars = append(vars, "-var", "api_version=1.0.0")
		actions := planActions(t, dir, cfg, vars...)
		for addr, want := range map[string]string{
			"immutable_artifact.api": "no-op",
			"immutable_release.api":  "no-op",
			"immutable_export.api":   "update",
		} {
			if got := actions[addr]; got != want {
				t.Errorf("rollback: %s planned %q, want %q (all: %v)", addr, got, want, actions)
			}
		}
		if got := plannedOutputs(t, dir, cfg)[hashOut]; got != hash1 {
			t.Errorf("rollback plan: source_code_hash %q, want 1.0.0's %s, known at plan", got, hash1)
		}
		must(t, dir, cfg, "apply", "-input=false", "p.tfplan")
		if back := deployed("1.0.0", 1); !bytes.Equal(back, v1) {
			t.Fatal("the rollback wrote a zip that differs from 1.0.0's")
		}
	})

	// s3_bucket + s3_key straight from an S3 store, with no copy.
	t.Run("s3", func(t *testing.T) {
		srv := testserver.StartS3(t)
		bucket := srv.NewBucket(t)
		client, err := s3store.New(context.Background(), bucket, "", srv.Settings())
		mustDo(t, err)
		dir, free := prepareWithoutForeign(t, cfg, "lambda/s3", `
output "deployed_version" {
  value = data.immutable_release.api.resolved_version
}

output "zip_sha256" {
  value = data.immutable_artifact.api.archives["zip"]
}

output "built_zip" {
  value = [immutable_artifact.api.archive_sha256, immutable_artifact.api.archive_s3_bucket, immutable_artifact.api.archive_s3_key]
}
`)
		bucketOut, keyOut := free.standIns["aws_lambda_function.api.s3_bucket"], free.standIns["aws_lambda_function.api.s3_key"]
		if bucketOut == "" || keyOut == "" {
			t.Fatalf("the function's s3_bucket and s3_key do not read our resources: %v", free.standIns)
		}
		vars := []string{"-var", roleVar, "-var", "store=s3://" + bucket + "/api", "-var", "region=" + srv.Region, "-var", "s3_endpoint=" + srv.Endpoint}
		apply := func(args ...string) {
			t.Helper()
			must(t, dir, cfg, append(append([]string{"apply", "-input=false", "-auto-approve"}, vars...), args...)...)
		}
		// deployed checks what the function would get: the object at
		// s3_bucket/s3_key is the zip of code, the archive the release's
		// artifact has. It returns the key.
		deployed := func(version string, code int) string {
			t.Helper()
			if v := output(t, dir, cfg, "deployed_version"); v != version {
				t.Fatalf("deployed %s, want %s", v, version)
			}
			b, key := output(t, dir, cfg, bucketOut), output(t, dir, cfg, keyOut)
			if b != bucket {
				t.Fatalf("s3_bucket would be %q, not the store's bucket %q", b, bucket)
			}
			obj, err := client.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("s3_key would be %q, which cannot be read from the bucket: %v", key, err)
			}
			content, err := io.ReadAll(obj.Body)
			mustDo(t, err)
			mustDo(t, obj.Body.Close())
			sum := sha256.Sum256(content)
			if got, want := hex.EncodeToString(sum[:]), output(t, dir, cfg, "zip_sha256"); got != want {
				t.Fatalf("the object at s3_key hashes to %s, the artifact's zip to %s", got, want)
			}
			if got := zipFile(t, content, "index.js"); got != lambdaCode(code) {
				t.Fatalf("the zip holds index.js %q, want %q", got, lambdaCode(code))
			}
			return key
		}

		apply()
		key1 := deployed("1.0.0", 1)
		// Deploying what this run built, without a release, names the
		// same object: the resource's archive_s3_bucket/archive_s3_key.
		built := must(t, dir, cfg, "output", "-json", "built_zip")
		if want := fmt.Sprintf("[%q,%q,%q]", output(t, dir, cfg, "zip_sha256"), bucket, key1); strings.TrimSpace(built) != want {
			t.Errorf("immutable_artifact.api's archive_sha256, archive_s3_bucket, archive_s3_key are %s, want %s", built, want)
		}
		if out, code := run(t, dir, cfg, append([]string{"plan", "-input=false", "-detailed-exitcode"}, vars...)...); code != 0 {
			t.Fatalf("plan after apply is not empty (exit %d)\n%s", code, out)
		}
		mustDo(t, os.WriteFile(filepath.Join(dir, "src", "index.js"), []byte(lambdaCode(2)), 0o644))
		apply()
		if key2 := deployed("1.0.1", 2); key2 == key1 {
			t.Fatalf("a change of code left s3_key as it was (%s): the function would not be updated", key1)
		}

		vars = append(vars, "-var", "api_version=1.0.0")
		actions := planActions(t, dir, cfg, vars...)
		for addr, want := range map[string]string{"immutable_artifact.api": "no-op", "immutable_release.api": "no-op"} {
			if got := actions[addr]; got != want {
				t.Errorf("rollback: %s planned %q, want %q (all: %v)", addr, got, want, actions)
			}
		}
		if got := plannedOutputs(t, dir, cfg)[keyOut]; got != key1 {
			t.Errorf("rollback plan: s3_key %q, want 1.0.0's %s, known at plan", got, key1)
		}
		must(t, dir, cfg, "apply", "-input=false", "p.tfplan")
		if back := deployed("1.0.0", 1); back != key1 {
			t.Fatalf("rolled back to %s, want %s", back, key1)
		}
	})
}

// fencedHCL returns the ```terraform (or hcl, tf) code blocks of a
// Markdown document, with the line each starts on.
func fencedHCL(doc string) (blocks []string, lines []int) {
	var cur *strings.Builder
	for i, line := range strings.Split(doc, "\n") {
		switch {
		case cur == nil && (line == "```terraform" || line == "```hcl" || line == "```tf"):
			cur = &strings.Builder{}
			lines = append(lines, i+1)
		case cur != nil && line == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks, lines
}

// proseRef finds references to our attributes in running text:
// `data.immutable_release.x.artifacts`, `immutable_export.x.base64sha256`.
var proseRef = regexp.MustCompile(`(data\.)?(immutable_[a-z0-9_]+)\.[A-Za-z0-9_-]+\.([a-z0-9_]+)`)

// TestAccDocSnippets: the HCL written into the templates themselves (not
// included from examples/, which other tests run) validates, without its
// aws_* parts, and every attribute of ours that a template names, in code
// or in text, exists in the schema.
func TestAccDocSnippets(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	templates, err := filepath.Glob("../templates/*/*.tmpl")
	mustDo(t, err)
	top, err := filepath.Glob("../templates/*.tmpl")
	mustDo(t, err)
	templates = append(templates, top...)
	if len(templates) == 0 {
		t.Fatal("no templates found")
	}

	schemaDir := filepath.Join(t.TempDir(), "schema")
	mustDo(t, os.MkdirAll(schemaDir, 0o755))
	addProviderBlock(t, schemaDir)
	must(t, schemaDir, cfg, "init", "-input=false")
	s := providerSchema(t, schemaDir, cfg)

	snippets := 0
	for _, tmpl := range templates {
		b, err := os.ReadFile(tmpl)
		mustDo(t, err)
		doc := string(b)
		var refs []schemaRef
		for _, m := range proseRef.FindAllStringSubmatch(doc, -1) {
			refs = append(refs, schemaRef{where: tmpl + ": " + m[0], data: m[1] != "", typ: m[2], attr: m[3]})
		}
		s.check(t, refs)

		blocks, lines := fencedHCL(doc)
		for i, block := range blocks {
			snippets++
			name := fmt.Sprintf("%s:%d", tmpl, lines[i])
			t.Run(strings.NewReplacer("/", "_", ".", "_", ":", "_").Replace(strings.TrimPrefix(name, "../")), func(t *testing.T) {
				free := withoutForeign(t, name, []byte(block))
				dir := filepath.Join(t.TempDir(), "snippet")
				mustDo(t, os.MkdirAll(dir, 0o755))
				mustDo(t, os.WriteFile(filepath.Join(dir, "main.tf"), free.src, 0o644))
				if !strings.Contains(block, "required_providers") {
					addProviderBlock(t, dir)
				}
				s.check(t, free.refs)
				must(t, dir, cfg, "init", "-input=false")
				must(t, dir, cfg, "validate")
			})
		}
	}
	if snippets == 0 {
		t.Fatal("no ```terraform blocks in the templates: the rollback guide's one-line rollback should be one")
	}
}

// TestAccEveryDocExampleValidates: every resource and data source example
// tfplugindocs puts on a page validates with the provider block added.
func TestAccEveryDocExampleValidates(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	dirs, err := filepath.Glob("resources/*")
	mustDo(t, err)
	ds, err := filepath.Glob("data-sources/*")
	mustDo(t, err)
	for _, ex := range append(dirs, ds...) {
		t.Run(ex, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ex")
			copyDir(t, ex, dir)
			addProviderBlock(t, dir)
			must(t, dir, cfg, "init", "-input=false")
			must(t, dir, cfg, "validate")
		})
	}
}

// TestAccExportExample applies examples/resources/immutable_export after
// publishing the release it pins (web 1.4.2, a site and an api bundle):
// the site is served from public/, the zip's base64 sha256 is the output,
// a second plan is empty, a file changed under public/ is drift the next
// apply writes again, and destroy removes what was written.
func TestAccExportExample(t *testing.T) {
	cli(t)
	cfg := mirror(t)
	dir := filepath.Join(t.TempDir(), "ex")
	copyDir(t, "resources/immutable_export", dir)
	addProviderBlock(t, dir)

	publish := filepath.Join(t.TempDir(), "publish")
	for p, content := range map[string]string{"site/index.html": "<h1>1.4.2</h1>\n", "api/index.js": lambdaCode(1)} {
		mustDo(t, os.MkdirAll(filepath.Join(publish, filepath.Dir(p)), 0o755))
		mustDo(t, os.WriteFile(filepath.Join(publish, p), []byte(content), 0o644))
	}
	mustDo(t, os.WriteFile(filepath.Join(publish, "main.tf"), []byte(fmt.Sprintf(`
terraform {
  required_providers {
    immutable = { source = "immutable-infra/immutable" }
  }
}
provider "immutable" {
  store = %q
}
resource "immutable_artifact" "site" {
  source = "site"
}
resource "immutable_artifact" "api" {
  source = "api"
}
resource "immutable_release" "web" {
  name      = "web"
  version   = "1.4.2"
  artifacts = { site = immutable_artifact.site.digest, api = immutable_artifact.api.digest }
}
`, "file://"+filepath.Join(dir, ".immutable"))), 0o644))
	must(t, publish, cfg, "init", "-input=false")
	must(t, publish, cfg, "apply", "-input=false", "-auto-approve")

	must(t, dir, cfg, "init", "-input=false")
	must(t, dir, cfg, "apply", "-input=false", "-auto-approve")
	index := filepath.Join(dir, "public", "index.html")
	if b, err := os.ReadFile(index); err != nil || string(b) != "<h1>1.4.2</h1>\n" {
		t.Fatalf("public/index.html: %q, %v", b, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "build", "api.zip"))
	mustDo(t, err)
	sum := sha256.Sum256(b)
	if got, want := output(t, dir, cfg, "api_source_code_hash"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Fatalf("api_source_code_hash %s, the zip's base64 sha256 %s", got, want)
	}
	if got := zipFile(t, b, "index.js"); got != lambdaCode(1) {
		t.Fatalf("the zip holds index.js %q", got)
	}
	if out, code := run(t, dir, cfg, "plan", "-input=false", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan after apply is not empty (exit %d)\n%s", code, out)
	}

	// Drift: refresh sees it, the plan updates the export, apply restores.
	mustDo(t, os.WriteFile(index, []byte("defaced\n"), 0o644))
	if got := planActions(t, dir, cfg)["immutable_export.site"]; got != "update" {
		t.Fatalf("a changed file under public/ planned %q, want update", got)
	}
	must(t, dir, cfg, "apply", "-input=false", "p.tfplan")
	if b, err := os.ReadFile(index); err != nil || string(b) != "<h1>1.4.2</h1>\n" {
		t.Fatalf("after the drift was applied, public/index.html: %q, %v", b, err)
	}

	// Destroy removes what the export wrote and keeps what it did not.
	extra := filepath.Join(dir, "public", "robots.txt")
	mustDo(t, os.WriteFile(extra, []byte("User-agent: *\n"), 0o644))
	must(t, dir, cfg, "destroy", "-input=false", "-auto-approve")
	if _, err := os.Stat(index); !os.IsNotExist(err) {
		t.Errorf("destroy left public/index.html (%v)", err)
	}
	if _, err := os.Stat(extra); err != nil {
		t.Errorf("destroy removed a file the export did not write: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "build", "api.zip")); !os.IsNotExist(err) {
		t.Errorf("destroy left build/api.zip (%v)", err)
	}
}
