package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/build"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/export"
	"github.com/immutable-infra/terraform-provider-immutable/internal/fsguard"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

var (
	_ resource.Resource                   = (*BuildResource)(nil)
	_ resource.ResourceWithConfigure      = (*BuildResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*BuildResource)(nil)
	_ resource.ResourceWithImportState    = (*BuildResource)(nil)
	_ resource.ResourceWithValidateConfig = (*BuildResource)(nil)
)

// Build cache modes (the provider's build_cache setting).
const (
	CacheReadWrite = "read-write"
	CacheReadOnly  = "read-only"
	CacheOff       = "off"
)

// toolNotFound is the summary of a declared tool missing from PATH.
const toolNotFound = "Tool not found"

// onlyGone reports whether diags has errors, all of a tool or an input
// path that does not exist (any other error stays an error).
func onlyGone(diags diag.Diagnostics) bool {
	if !diags.HasError() {
		return false
	}
	for _, d := range diags.Errors() {
		if d.Summary() != toolNotFound && d.Summary() != "Source not found" {
			return false
		}
	}
	return true
}

// privateUnresolvable marks the plan of a step one of whose tools or
// input_paths is gone.
const privateUnresolvable = "unresolvable"

// defaultTimeout bounds a build that sets no timeout.
const defaultTimeout = 30 * time.Minute

// BuildResource is immutable_build.
type BuildResource struct {
	data *providerData
}

// NewBuildResource returns the resource.
func NewBuildResource() resource.Resource { return &BuildResource{} }

type buildModel struct {
	ID                types.String `tfsdk:"id"`
	Command           types.List   `tfsdk:"command"`
	Inputs            types.Map    `tfsdk:"inputs"`
	InputPaths        types.Map    `tfsdk:"input_paths"`
	Environment       types.Map    `tfsdk:"environment"`
	Caches            types.Map    `tfsdk:"caches"`
	Tools             types.List   `tfsdk:"tools"`
	Output            types.String `tfsdk:"output"`
	Archive           types.String `tfsdk:"archive"`
	Timeout           types.String `tfsdk:"timeout"`
	Salt              types.String `tfsdk:"salt"`
	CheckReproducible types.Bool   `tfsdk:"check_reproducible"`
	Key               types.String `tfsdk:"key"`
	KeyParts          types.Map    `tfsdk:"key_parts"`
	CacheHit          types.Bool   `tfsdk:"cache_hit"`
	Digest            types.String `tfsdk:"digest"`
	FileCount         types.Int64  `tfsdk:"file_count"`
	Size              types.Int64  `tfsdk:"size"`
	Files             types.Map    `tfsdk:"files"`
	LogDigest         types.String `tfsdk:"log_digest"`
	ArchiveSHA256     types.String `tfsdk:"archive_sha256"`
	ArchiveB64SHA256  types.String `tfsdk:"archive_base64sha256"`
	Path              types.String `tfsdk:"path"`
	S3Bucket          types.String `tfsdk:"s3_bucket"`
	S3Key             types.String `tfsdk:"s3_key"`
	S3URL             types.String `tfsdk:"s3_url"`
	ArchivePath       types.String `tfsdk:"archive_path"`
	ArchiveS3Bucket   types.String `tfsdk:"archive_s3_bucket"`
	ArchiveS3Key      types.String `tfsdk:"archive_s3_key"`
	ArchiveS3URL      types.String `tfsdk:"archive_s3_url"`
}

func (r *BuildResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_build"
}

func buildSchema() schema.Schema {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Computed: true}
	}
	art := artifactSchema().Attributes
	desc := func(name string) string {
		return strings.Replace(art[name].GetMarkdownDescription(), "for a file or inline content", "for a file output", 1)
	}
	return schema.Schema{
		MarkdownDescription: "A build step whose inputs are declared, run once per distinct set of inputs: its output is " +
			"stored as an artifact, and an action record in the store maps the step's **key** (a digest of its command, " +
			"environment, tools' binaries, input digests, output path and platform) to that output. When the key is " +
			"recorded already — built before here, in CI, or by a teammate on the same store — the output's `digest`, " +
			"`files` and archive hashes are known at plan and nothing runs. See the [build guide](../guides/builds.md).",
		Attributes: map[string]schema.Attribute{
			"id": computed("The step's key, as `key`."),
			"command": schema.ListAttribute{
				MarkdownDescription: "The program and its arguments (no shell: write `[\"sh\", \"-c\", \"...\"]` for one). " +
					"The program is a name listed in `tools`, or a relative path to a file of an input (`\"src/build.sh\"`). " +
					"It runs in a fresh working directory holding only the inputs (read-only), `.build/home` (HOME) and " +
					"`.build/tmp` (TMPDIR).",
				ElementType: types.StringType,
				Required:    true,
				Validators: []validator.List{
					listvalidator.SizeAtLeast(1),
					listvalidator.ValueStringsAre(stringCheck{"no NUL byte", "Invalid argument", build.CheckNoNUL}),
				},
			},
			"inputs": schema.MapAttribute{
				MarkdownDescription: "Artifacts placed in the working directory, each under its name: a map of name to " +
					"digest (`immutable_artifact.src.digest`, another build's `digest`). A directory artifact becomes a " +
					"directory, a file artifact a file. Each is read from the store and verified, and made read-only; a " +
					"command that changes one anyway fails.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.Map{
					mapvalidator.ValueStringsAre(digestValidator),
					mapvalidator.KeysAre(stringCheck{"an input name", "Invalid input name", func(s string) error { return build.CheckName("input", s) }}),
				},
			},
			"input_paths": schema.MapAttribute{
				MarkdownDescription: "Local files and directories placed in the working directory like `inputs`: a map of " +
					"name to path, each hashed at plan as `immutable_artifact` hashes a `source` (its digest joins the key as " +
					"`input/NAME`) and stored on apply when the step runs. A shorthand for an `immutable_artifact` per path; " +
					"use one (with `excludes`) to leave files out. A relative path resolves against the directory Terraform " +
					"runs in: write `\"${path.module}/src\"`.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.Map{
					mapvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1)),
					mapvalidator.KeysAre(stringCheck{"an input name", "Invalid input name", func(s string) error { return build.CheckName("input", s) }}),
				},
			},
			"environment": schema.MapAttribute{
				MarkdownDescription: "The only variables the command gets, besides `HOME` and `TMPDIR` (inside the working " +
					"directory) and `PATH` (the declared tools). Names and values join the key.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.Map{
					mapvalidator.KeysAre(stringCheck{"a variable name", "Invalid variable name", build.CheckEnv}),
					mapvalidator.ValueStringsAre(stringCheck{"no NUL byte", "Invalid variable value", build.CheckNoNUL}),
				},
			},
			"caches": schema.MapAttribute{
				MarkdownDescription: "Persistent cache directories kept between runs on this machine, outside the key: a " +
					"map of variable name to cache name (`{ GOCACHE = \"go-build\" }`). The variable is set to the directory " +
					"`<user cache dir>/terraform-provider-immutable/build-caches/<name>`, shared by every step naming it. Only " +
					"for tools whose own caches are keyed by content and safe to share — Go's build cache, ccache, sccache: " +
					"they make a run faster and never change what it produces. Anything else belongs in `inputs`.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.Map{
					mapvalidator.KeysAre(stringCheck{"a variable name", "Invalid variable name", build.CheckEnv}),
					mapvalidator.ValueStringsAre(stringCheck{"a cache name", "Invalid cache name", func(s string) error { return build.CheckName("cache", s) }}),
				},
			},
			"tools": schema.ListAttribute{
				MarkdownDescription: "Programs the command may run, by name, found on the `PATH` Terraform runs with, at " +
					"plan. The content digest of each binary joins the key, not its path: another `go` is another key; the " +
					"same `go` on another machine is the same key. Inside the build, `PATH` holds only these (on Unix), " +
					"so an undeclared program is not found.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.List{
					listvalidator.UniqueValues(),
					listvalidator.ValueStringsAre(stringCheck{"a program name", "Invalid tool name", func(s string) error { return build.CheckName("tool", s) }}),
				},
			},
			"output": schema.StringAttribute{
				MarkdownDescription: "Relative path, in the working directory, of the file or directory the command " +
					"produces: what is stored as the step's output.",
				Required:   true,
				Validators: []validator.String{stringCheck{"a relative path", "Invalid output path", build.CheckRel}},
			},
			"archive": schema.StringAttribute{
				MarkdownDescription: "Also store a byte-reproducible archive of the output, `zip` or `tar.gz`, as " +
					"`immutable_artifact.archive` does. Not part of the key.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.OneOf(archive.Formats...)},
			},
			"timeout": schema.StringAttribute{
				MarkdownDescription: "How long the command may run (a Go duration: `90s`, `10m`); past it, its whole " +
					"process group is killed and nothing is recorded. Default `30m`. Not part of the key.",
				Optional:   true,
				Validators: []validator.String{stringCheck{"a duration", "Invalid timeout", checkTimeout}},
			},
			"salt": schema.StringAttribute{
				MarkdownDescription: "Any string, part of the key: change it to build again on purpose.",
				Optional:            true,
			},
			"check_reproducible": schema.BoolAttribute{
				MarkdownDescription: "Run the command even when its key is recorded, and fail if the output differs from " +
					"the recorded one (as Nix's `--check`). Takes effect whenever the step is created or replaced. Default `false`.",
				Optional: true,
			},
			"key": computed("The step's key, `sha256:<hex>`: the digest of the canonical encoding of `key_parts` " +
				"([spec](../guides/digest-spec.md#build-keys)). Known at plan when every input digest is."),
			"key_parts": schema.MapAttribute{
				MarkdownDescription: "What the key is made of, component → digest: `command`, `output`, `platform`, " +
					"`salt`, `env/NAME`, `tool/NAME` (the binary's digest) and `input/NAME` (the artifact's digest). A " +
					"rebuild's plan shows which of them changed.",
				ElementType: types.StringType,
				Computed:    true,
			},
			"cache_hit": schema.BoolAttribute{
				MarkdownDescription: "`true` when the key was recorded at plan: nothing runs at apply (unless " +
					"`check_reproducible`). Unknown at plan when the step will run.",
				Computed: true,
			},
			"digest": computed("The output's content digest, as `immutable_artifact.digest` (a directory's listing, a " +
				"file's sha256). Known at plan on a cache hit."),
			"file_count":           schema.Int64Attribute{MarkdownDescription: "Number of files and symlinks in the output (1 for a file).", Computed: true},
			"size":                 schema.Int64Attribute{MarkdownDescription: "Total size of the output in bytes.", Computed: true},
			"files":                schema.MapAttribute{MarkdownDescription: art["files"].GetMarkdownDescription(), ElementType: types.StringType, Computed: true},
			"log_digest":           computed("Digest of the command's output (stdout and stderr), stored as a blob: export it with `immutable_export` to read it."),
			"archive_sha256":       computed("Hex sha256 of the archive's bytes. Known at plan on a cache hit whose archive is stored."),
			"archive_base64sha256": computed("Base64 sha256 of the archive's bytes, what `source_code_hash` of `aws_lambda_function` wants."),
			"path":                 computed(desc("path")),
			"s3_bucket":            computed(desc("s3_bucket")),
			"s3_key":               computed(desc("s3_key")),
			"s3_url":               computed(desc("s3_url")),
			"archive_path":         computed(art["archive_path"].GetMarkdownDescription()),
			"archive_s3_bucket":    computed(art["archive_s3_bucket"].GetMarkdownDescription()),
			"archive_s3_key":       computed(art["archive_s3_key"].GetMarkdownDescription()),
			"archive_s3_url":       computed(art["archive_s3_url"].GetMarkdownDescription()),
		},
	}
}

// buildCacheDir holds the caches of the caches attribute: beside the stat
// cache (IMMUTABLE_CACHE_DIR when set, else the user cache directory).
func buildCacheDir() (string, error) {
	if dir := os.Getenv(statcache.EnvDir); dir != "" {
		return filepath.Join(dir, "build-caches"), nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "terraform-provider-immutable", "build-caches"), nil
}

func checkTimeout(s string) error {
	d, err := time.ParseDuration(s)
	if err == nil && d <= 0 {
		err = errors.New("must be positive")
	}
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 90s or 10m: %v", s, err)
	}
	return nil
}

func (r *BuildResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = buildSchema()
}

func (r *BuildResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configureData(req.ProviderData, &resp.Diagnostics)
}

// ValidateConfig checks what can be checked without the world: the program
// is a declared tool or a path into an input, and the output is not one.
func (r *BuildResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m buildModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.Command.IsUnknown() || m.Command.IsNull() || len(m.Command.Elements()) == 0 {
		return
	}
	for name := range m.InputPaths.Elements() {
		if _, both := m.Inputs.Elements()[name]; both {
			resp.Diagnostics.AddAttributeError(path.Root("input_paths").AtMapKey(name), "Input named twice",
				fmt.Sprintf("%q is in both inputs and input_paths; each input needs its own name in the working directory.", name))
		}
	}
	first, ok := m.Command.Elements()[0].(types.String)
	if !ok || first.IsUnknown() || m.Tools.IsUnknown() || m.Inputs.IsUnknown() || m.InputPaths.IsUnknown() {
		return
	}
	prog := strings.TrimPrefix(first.ValueString(), "./")
	tools := map[string]bool{}
	for _, t := range m.Tools.Elements() {
		if t.IsUnknown() {
			return // a variable, during validate: checked at plan
		}
		if s, ok := t.(types.String); ok {
			tools[s.ValueString()] = true
		}
	}
	inputs := map[string]attr.Value{}
	maps.Copy(inputs, m.Inputs.Elements())
	maps.Copy(inputs, m.InputPaths.Elements())
	p := path.Root("command").AtListIndex(0)
	switch {
	case strings.Contains(prog, "/"):
		err := build.CheckRel(prog)
		top, _, _ := strings.Cut(prog, "/")
		if _, isInput := inputs[top]; err == nil && !isInput {
			err = fmt.Errorf("%q is not inside an input: the working directory holds only the inputs (%s)", prog, strings.Join(sortedKeys(inputs), ", "))
		}
		if err != nil {
			resp.Diagnostics.AddAttributeError(p, "Program not in the working directory",
				fmt.Sprintf("command[0] is a path, so it must be a file of an input, relative to the working directory: %v.", err))
		}
	case !tools[prog]:
		resp.Diagnostics.AddAttributeError(p, "Program not declared in tools",
			fmt.Sprintf("command[0] is %q, which is not listed in `tools`. Add it to tools (its binary's digest then joins the key, "+
				"so another version of it is another build), or run a file of an input by a relative path (\"src/build.sh\").", prog))
	}
	for name := range m.Caches.Elements() {
		if _, both := m.Environment.Elements()[name]; both {
			resp.Diagnostics.AddAttributeError(path.Root("caches").AtMapKey(name), "Variable set twice",
				fmt.Sprintf("%s is in both environment and caches. A cache variable is set to its directory by the provider: remove it from one of them.", name))
		}
	}
	if m.Output.IsUnknown() || m.Output.IsNull() {
		return
	}
	top, _, _ := strings.Cut(m.Output.ValueString(), "/")
	if _, isInput := inputs[top]; isInput {
		resp.Diagnostics.AddAttributeError(path.Root("output"), "Output inside an input",
			fmt.Sprintf("output %q is inside the input %q, which the command may only read. Write the output to a path of its own (\"out\", \"dist/app.zip\").", m.Output.ValueString(), top))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (m *buildModel) anyUnknown() bool {
	for _, v := range []attr.Value{m.Command, m.Inputs, m.InputPaths, m.Environment, m.Tools, m.Output, m.Salt, m.Archive} {
		if v.IsUnknown() {
			return true
		}
	}
	for _, c := range []interface{ Elements() []attr.Value }{m.Command, m.Tools} {
		for _, e := range c.Elements() {
			if e.IsUnknown() {
				return true
			}
		}
	}
	for _, c := range []types.Map{m.Inputs, m.InputPaths, m.Environment} {
		for _, e := range c.Elements() {
			if e.IsUnknown() {
				return true
			}
		}
	}
	return false
}

// localInput is an input_paths entry, hashed.
type localInput struct {
	path     string
	sum      digest.Sum
	manifest *digest.Manifest // a directory's; nil for a file
}

// spec reads what the step declares, resolves its tools on PATH and hashes
// its input_paths.
func (r *BuildResource) spec(ctx context.Context, m *buildModel) (*build.Spec, map[string]build.Tool, map[string]localInput, diag.Diagnostics) {
	var diags diag.Diagnostics
	s := &build.Spec{Output: m.Output.ValueString(), Salt: m.Salt.ValueString()}
	diags.Append(m.Command.ElementsAs(ctx, &s.Command, false)...)
	if !m.Environment.IsNull() {
		diags.Append(m.Environment.ElementsAs(ctx, &s.Environment, false)...)
	}
	var inputs map[string]string
	if !m.Inputs.IsNull() {
		diags.Append(m.Inputs.ElementsAs(ctx, &inputs, false)...)
	}
	var toolNames []string
	if !m.Tools.IsNull() {
		diags.Append(m.Tools.ElementsAs(ctx, &toolNames, false)...)
	}
	var paths map[string]string
	if !m.InputPaths.IsNull() {
		diags.Append(m.InputPaths.ElementsAs(ctx, &paths, false)...)
	}
	if diags.HasError() {
		return nil, nil, nil, diags
	}
	s.Inputs = map[string]digest.Sum{}
	for name, v := range inputs {
		sum, err := digest.Parse(v)
		if err != nil {
			diags.AddAttributeError(path.Root("inputs").AtMapKey(name), "Invalid digest", err.Error())
			return nil, nil, nil, diags
		}
		s.Inputs[name] = sum
	}
	locals := map[string]localInput{}
	for _, name := range sortedKeys(paths) {
		in, d := r.hashLocal(ctx, name, paths[name])
		if diags.Append(d...); diags.HasError() {
			return nil, nil, nil, diags
		}
		locals[name], s.Inputs[name] = in, in.sum
	}
	tools := map[string]build.Tool{}
	s.Tools = map[string]digest.Sum{}
	for i, name := range toolNames {
		t, err := build.FindTool(ctx, name, r.hashFile)
		if err != nil {
			summary := "Cannot use the tool"
			var nf *build.ToolNotFoundError
			if errors.As(err, &nf) {
				summary = toolNotFound
			}
			diags.AddAttributeError(path.Root("tools").AtListIndex(i), summary, fmt.Sprintf("Cannot use the tool %q: %v.", name, err))
			return nil, nil, nil, diags
		}
		tools[name], s.Tools[name] = t, t.Sum
	}
	return s, tools, locals, diags
}

// hashLocal hashes an input_paths entry as immutable_artifact hashes a
// source.
func (r *BuildResource) hashLocal(ctx context.Context, name, p string) (localInput, diag.Diagnostics) {
	var diags diag.Diagnostics
	at := path.Root("input_paths").AtMapKey(name)
	in := localInput{path: p}
	fi, err := os.Stat(p)
	if err != nil {
		diags.Append(sourceError(at, p, err))
		return in, diags
	}
	switch {
	case fi.IsDir():
		if root := localRoot(r.data.store); root != "" {
			if rel, inside, err := fsguard.Rel(root, p); err == nil && inside {
				diags.AddAttributeError(at, "The store is inside the input",
					fmt.Sprintf("The store %s is inside %q (at %q): every apply would change the input. Use an immutable_artifact "+
						"with excludes = [%q] for it, or move the store. Nothing was written.", r.data.store, p, rel, rel))
				return in, diags
			}
		}
		if r.data.memo != nil {
			in.manifest, err = r.data.memo.Tree(ctx, p, digest.Options{})
		} else {
			in.manifest, err = statcache.HashTree(ctx, r.data.cache, p, digest.Options{})
		}
		if err == nil {
			if n := in.manifest.EncodedSize(); n > store.MaxListing {
				diags.AddAttributeError(at, "Input too large for one artifact",
					fmt.Sprintf("In %q: %v. Nothing was written.", p, &store.ListingTooLargeError{Size: n}))
				return in, diags
			}
			in.sum = in.manifest.Digest()
		}
	case fi.Mode().IsRegular():
		in.sum, _, err = statcache.HashFile(ctx, r.data.cache, p)
	default:
		diags.AddAttributeError(at, "Input is not a file or a directory",
			fmt.Sprintf("%q is %s. Point it at a regular file or a directory.", p, digest.TypeName(fi.Mode().Type())))
		return in, diags
	}
	if err != nil {
		diags.Append(contentError(at, p, err))
	}
	return in, diags
}

// storeLocals stores the input_paths of a step about to run, each checked
// against its digest as it is read (the key, checked just before, holds
// the digests the plan was made with).
func (r *BuildResource) storeLocals(ctx context.Context, locals map[string]localInput) diag.Diagnostics {
	var diags diag.Diagnostics
	st := r.data.store
	for _, name := range sortedKeys(locals) {
		in := locals[name]
		var err error
		if in.manifest != nil {
			_, err = st.Publish(ctx, in.path, in.manifest)
		} else {
			var sum digest.Sum
			if sum, _, err = st.PutFile(ctx, in.path); err == nil && sum != in.sum {
				err = fmt.Errorf("it hashes to %s now, not %s: it changed while being stored", sum, in.sum)
			}
		}
		if err != nil {
			diags.Append(contentError(path.Root("input_paths").AtMapKey(name), in.path, err))
			return diags
		}
	}
	return diags
}

func (r *BuildResource) hashFile(ctx context.Context, p string) (digest.Sum, int64, error) {
	return statcache.HashFile(ctx, r.data.cache, p)
}

func (m *buildModel) setUnknownOutputs() {
	m.CacheHit = types.BoolUnknown()
	m.Digest = types.StringUnknown()
	m.FileCount = types.Int64Unknown()
	m.Size = types.Int64Unknown()
	m.Files = types.MapUnknown(types.StringType)
	m.LogDigest = types.StringUnknown()
	if m.Archive.IsNull() {
		m.ArchiveSHA256, m.ArchiveB64SHA256 = types.StringNull(), types.StringNull()
	} else {
		m.ArchiveSHA256, m.ArchiveB64SHA256 = types.StringUnknown(), types.StringUnknown()
	}
}

// setRecord fills the outputs from a record (and a tree's listing).
func (m *buildModel) setRecord(rec *build.Record, man *digest.Manifest) {
	m.Digest = types.StringValue(rec.Output.String())
	m.FileCount = types.Int64Value(rec.Files)
	m.Size = types.Int64Value(rec.Size)
	m.LogDigest = types.StringValue(rec.Log.String())
	m.Files = (&computed{manifest: man}).filesValue()
}

// listing is what the output's archive holds.
func (m *buildModel) listing(rec *build.Record, man *digest.Manifest) *digest.Manifest {
	if man != nil {
		return man
	}
	return rec.FileListing(m.Output.ValueString())
}

// setLocations derives where the output and its archive live, as the
// artifact does.
func (m *buildModel) setLocations(st *store.Store) {
	a := artifactModel{Digest: m.Digest, Files: m.Files, FileCount: m.FileCount, ArchiveSHA256: m.ArchiveSHA256}
	a.setLocations(st)
	m.Path, m.S3Bucket, m.S3Key, m.S3URL = a.Path, a.S3Bucket, a.S3Key, a.S3URL
	m.ArchivePath, m.ArchiveS3Bucket, m.ArchiveS3Key, m.ArchiveS3URL = a.ArchivePath, a.ArchiveS3Bucket, a.ArchiveS3Key, a.ArchiveS3URL
}

func (m *buildModel) setArchive(sum *digest.Sum) {
	a := artifactModel{Archive: m.Archive}
	a.setArchive(sum)
	m.ArchiveSHA256, m.ArchiveB64SHA256 = a.ArchiveSHA256, a.ArchiveBase64SHA25
}

func (r *BuildResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy: stored outputs and records stay
	}
	if runtime.GOOS == "windows" {
		resp.Diagnostics.AddError("immutable_build needs Unix",
			"immutable_build runs steps on Linux, macOS and the BSDs: on Windows it cannot yet give a step its own process group, "+
				"nor a PATH of only the declared tools. Build in CI or WSL; the outputs are shared through the store.")
		return
	}
	var plan buildModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var prior *buildModel
	if !req.State.Raw.IsNull() {
		prior = &buildModel{}
		if resp.Diagnostics.Append(req.State.Get(ctx, prior)...); resp.Diagnostics.HasError() {
			return
		}
	}
	if plan.anyUnknown() || r.data == nil {
		// An input made in this apply: the key is known then.
		plan.ID, plan.Key, plan.KeyParts = types.StringUnknown(), types.StringUnknown(), types.MapUnknown(types.StringType)
		plan.setUnknownOutputs()
		if prior != nil {
			resp.RequiresReplace.Append(path.Root("key"))
		}
		plan.setLocations(r.storeOrNil())
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	spec, _, _, diags := r.spec(ctx, &plan)
	// Core plans the create half of a replacement in a second call, with no
	// prior state but with the first call's private data: the mark says
	// this is the replacement of a step whose tool is gone.
	replacingGone := prior == nil && len(privateValue(ctx, req.Private, privateUnresolvable)) > 0
	if prior != nil && !onlyGone(diags) {
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateUnresolvable, nil)...) // back, or never gone
	}
	if onlyGone(diags) && (prior != nil || replacingGone) {
		// `terraform destroy` plans normally first: a tool uninstalled or an
		// input path deleted since the step was built must not make it
		// impossible to destroy. Warn, and plan a replacement that fails at
		// apply if it is still missing.
		if prior != nil {
			for _, d := range diags {
				detail := d.Detail() + " This plan replaces the step; applying it before it is back fails. (This is expected when destroying.)"
				if dp, ok := d.(diag.DiagnosticWithPath); ok {
					resp.Diagnostics.AddAttributeWarning(dp.Path(), d.Summary(), detail)
				} else {
					resp.Diagnostics.AddWarning(d.Summary(), detail)
				}
			}
			resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateUnresolvable, []byte(`true`))...)
		}
		plan.ID, plan.Key, plan.KeyParts = types.StringUnknown(), types.StringUnknown(), types.MapUnknown(types.StringType)
		plan.setUnknownOutputs()
		if prior != nil {
			resp.RequiresReplace.Append(path.Root("key"))
		}
		plan.setLocations(r.storeOrNil())
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	parts := spec.Parts()
	key := build.KeyOf(parts)
	plan.ID, plan.Key = types.StringValue(key.String()), types.StringValue(key.String())
	pv := make(map[string]attr.Value, len(parts))
	for k, v := range parts {
		pv[k] = types.StringValue(v.String())
	}
	plan.KeyParts = types.MapValueMust(types.StringType, pv)

	if prior != nil && prior.Key.ValueString() == key.String() && prior.Archive.Equal(plan.Archive) {
		// The same step: what it built stays (timeout, caches and
		// check_reproducible change in place).
		plan.CacheHit, plan.Digest, plan.FileCount, plan.Size, plan.Files, plan.LogDigest = prior.CacheHit, prior.Digest, prior.FileCount, prior.Size, prior.Files, prior.LogDigest
		plan.ArchiveSHA256, plan.ArchiveB64SHA256 = prior.ArchiveSHA256, prior.ArchiveB64SHA256
		if r.data.buildCache != CacheOff && !prior.CacheHit.ValueBool() {
			// Built here: if the store records another output for the key
			// (a read-only laptop's build, then CI's), everyone must use the
			// recorded one.
			resp.Diagnostics.Append(r.convergeOnRecord(ctx, &plan, prior, key, resp)...)
			if resp.Diagnostics.HasError() {
				return
			}
		}
		plan.setLocations(r.storeOrNil())
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	if prior != nil {
		if prior.Key.ValueString() != key.String() {
			resp.RequiresReplace.Append(path.Root("key"))
		}
		if !prior.Archive.Equal(plan.Archive) {
			resp.RequiresReplace.Append(path.Root("archive"))
		}
	}
	plan.setUnknownOutputs()
	if r.data.buildCache != CacheOff {
		rec, man, err := build.Lookup(ctx, r.data.store, key)
		switch {
		case err == nil:
			if resp.Diagnostics.Append(r.setHit(ctx, &plan, rec, man)...); resp.Diagnostics.HasError() {
				return
			}
		case errors.Is(err, store.ErrNotFound):
		default:
			resp.Diagnostics.Append(buildStoreError(r.data.store, err))
			return
		}
	}
	plan.setLocations(r.storeOrNil())
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// setHit plans the recorded output of a step: every value known.
func (r *BuildResource) setHit(ctx context.Context, plan *buildModel, rec *build.Record, man *digest.Manifest) diag.Diagnostics {
	var diags diag.Diagnostics
	plan.CacheHit = types.BoolValue(true)
	plan.setRecord(rec, man)
	plan.setArchive(nil)
	if plan.Archive.IsNull() {
		return diags
	}
	ref, err := r.data.archives().Lookup(ctx, plan.Archive.ValueString(), plan.listing(rec, man))
	switch {
	case err == nil:
		plan.setArchive(&ref)
	case !errors.Is(err, store.ErrNotFound):
		diags.Append(archiveError(r.data.store, "archive_sha256", "read the stored archive", err))
	}
	return diags
}

// convergeOnRecord plans the replacement of a step built here by the
// output recorded for its key, when that is another one.
func (r *BuildResource) convergeOnRecord(ctx context.Context, plan, prior *buildModel, key digest.Sum, resp *resource.ModifyPlanResponse) diag.Diagnostics {
	var diags diag.Diagnostics
	rec, man, err := build.Lookup(ctx, r.data.store, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return diags
	case err != nil:
		diags.Append(buildStoreError(r.data.store, err))
		return diags
	case rec.Output.String() == prior.Digest.ValueString():
		return diags
	}
	diags.AddAttributeWarning(path.Root("digest"), "Build is not reproducible",
		fmt.Sprintf("This step was built here as %s, but the store records %s for its key %s (built elsewhere, or first). "+
			"This plan replaces it with the recorded output, so everyone uses one; nothing runs.", prior.Digest.ValueString(), rec.Output, key))
	diags.Append(r.setHit(ctx, plan, rec, man)...)
	resp.RequiresReplace.Append(path.Root("digest"))
	return diags
}

func buildStoreError(st *store.Store, err error) diag.Diagnostic {
	var corrupt *build.CorruptError
	var missing *build.MissingOutputError
	if errors.As(err, &corrupt) || errors.As(err, &missing) {
		return diag.NewAttributeErrorDiagnostic(path.Root("key"), "Build record cannot be trusted", err.Error()+".")
	}
	return storeReadError(st, err)
}

func (r *BuildResource) storeOrNil() *store.Store {
	if r.data == nil {
		return nil
	}
	return r.data.store
}

func (r *BuildResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan buildModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if r.data == nil {
		resp.Diagnostics.AddError("Provider not configured", "The provider was not configured before apply. This is a bug in the provider.")
		return
	}
	resp.Diagnostics.Append(r.build(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	plan.setLocations(r.storeOrNil())
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// build makes the planned step's output available: the recorded one on a
// hit, else by running it. m is the plan, and becomes the state.
func (r *BuildResource) build(ctx context.Context, m *buildModel) diag.Diagnostics {
	var diags diag.Diagnostics
	st := r.data.store
	spec, tools, locals, d := r.spec(ctx, m)
	if diags.Append(d...); diags.HasError() {
		return diags
	}
	key := spec.Key()
	if !m.Key.IsUnknown() && m.Key.ValueString() != key.String() {
		diags.AddAttributeError(path.Root("key"), "Build changed since plan",
			fmt.Sprintf("The plan was made for the key %s, but the step's inputs and tools now give %s (a tool's binary "+
				"changed, say): %s. Nothing was run; plan again.", m.Key.ValueString(), key, changedParts(m.KeyParts, spec.Parts())))
		return diags
	}
	job := build.Job{
		Spec: *spec, Tools: tools, Timeout: defaultTimeout, Hash: r.hashFile,
		Line: func(l string) { tflog.Info(ctx, "build output: "+l, map[string]any{"key": key.String()}) },
	}
	if !m.Timeout.IsNull() {
		job.Timeout, _ = time.ParseDuration(m.Timeout.ValueString()) // validated
	}
	if len(m.Caches.Elements()) > 0 {
		var caches map[string]string
		if diags.Append(m.Caches.ElementsAs(ctx, &caches, false)...); diags.HasError() {
			return diags
		}
		base, err := buildCacheDir()
		if err != nil {
			diags.AddAttributeError(path.Root("caches"), "No cache directory", fmt.Sprintf("caches needs a user cache directory: %v. Set %s.", err, statcache.EnvDir))
			return diags
		}
		job.Caches = map[string]string{}
		for v, name := range caches {
			job.Caches[v] = filepath.Join(base, name)
		}
	}

	var rec *build.Record
	var man *digest.Manifest
	if !m.Digest.IsUnknown() {
		// A hit at plan: the record is read again, and must still say it.
		var err error
		if rec, man, err = build.Lookup(ctx, st, key); err != nil {
			diags.Append(buildStoreError(st, err))
			return diags
		}
		if rec.Output.String() != m.Digest.ValueString() {
			diags.AddAttributeError(path.Root("digest"), "Build record changed since plan",
				fmt.Sprintf("The plan used the recorded output %s, but the record of %s now names %s. Plan again.", m.Digest.ValueString(), key, rec.Output))
			return diags
		}
		// The plan checked the record's form and that its output is there;
		// before the state claims the output, every byte of it is checked.
		if err := build.VerifyOutput(ctx, st, rec, man); err != nil {
			diags.Append(buildStoreError(st, err))
			return diags
		}
		if m.CheckReproducible.ValueBool() {
			if diags.Append(r.storeLocals(ctx, locals)...); diags.HasError() {
				return diags
			}
			res, d := r.run(ctx, job, m)
			if diags.Append(d...); diags.HasError() {
				return diags
			}
			if res.Record.Output != rec.Output || res.Record.Type != rec.Type {
				diags.AddAttributeError(path.Root("check_reproducible"), "Build is not reproducible",
					fmt.Sprintf("Running the step again produced %s, but its key %s is recorded with %s%s. Make the build "+
						"deterministic (fixed timestamps, sorted file lists, no absolute paths: -trimpath, SOURCE_DATE_EPOCH), "+
						"or set check_reproducible = false. The recorded output is kept.", res.Record.Output, key, rec.Output, outputDiff(man, res.Manifest)))
				return diags
			}
		}
		m.CacheHit = types.BoolValue(true)
	} else {
		if diags.Append(r.storeLocals(ctx, locals)...); diags.HasError() {
			return diags
		}
		res, d := r.run(ctx, job, m)
		if diags.Append(d...); diags.HasError() {
			return diags
		}
		rec, man = &res.Record, res.Manifest
		if r.data.buildCache == CacheReadWrite {
			if err := recordHook.run(ctx); err != nil {
				diags.AddError("Test hook failed", err.Error())
				return diags
			}
			got, gotMan, err := build.Put(ctx, st, rec)
			if err != nil {
				diags.Append(buildStoreError(st, err))
				return diags
			}
			same := got.Output == rec.Output && got.Type == rec.Type
			if !same && m.CheckReproducible.ValueBool() {
				diags.AddAttributeError(path.Root("check_reproducible"), "Build is not reproducible",
					fmt.Sprintf("This run produced %s, but another run recorded %s for the same key %s first%s. The recorded "+
						"output is kept. Make the build deterministic, or set check_reproducible = false.", rec.Output, got.Output, key, outputDiff(gotMan, man)))
				return diags
			}
			if !same {
				diags.AddAttributeWarning(path.Root("digest"), "Build is not reproducible",
					fmt.Sprintf("This run produced %s, but another run recorded %s for the same key %s first%s. The recorded "+
						"output is used, so everyone gets the same one. Make the build deterministic, and set "+
						"check_reproducible = true to make this an error.", rec.Output, got.Output, key, outputDiff(gotMan, man)))
			}
			if gotMan == nil && got.Type == build.TypeTree {
				gotMan = man // our own record, just written: the listing we stored
			}
			// The record as stored: its log (and, when the outputs differ, its
			// output) is the one everybody gets.
			rec, man = got, gotMan
		}
		m.CacheHit = types.BoolValue(false)
	}
	m.setRecord(rec, man)
	if m.Archive.IsNull() {
		return diags
	}
	format, listing := m.Archive.ValueString(), m.listing(rec, man)
	refs := r.data.archives()
	sum, err := refs.Ensure(ctx, format, listing, export.StoreOpener(st)) // a stored one is verified first
	if err == nil && man == nil {
		_, err = st.PutTree(ctx, listing) // a file's one-entry listing, as the artifact stores it
	}
	if err != nil {
		diags.Append(archiveError(st, "archive", "store the archive", err))
		return diags
	}
	if !m.ArchiveSHA256.IsUnknown() && m.ArchiveSHA256.ValueString() != sum.Hex() {
		diags.AddAttributeError(path.Root("archive_sha256"), "Archive differs from plan",
			fmt.Sprintf("The plan expected archive sha256 %s, the store holds %s. Run plan again.", m.ArchiveSHA256.ValueString(), sum.Hex()))
		return diags
	}
	m.setArchive(&sum)
	return diags
}

// run runs the step, turning its errors into diagnostics.
func (r *BuildResource) run(ctx context.Context, job build.Job, m *buildModel) (*build.Result, diag.Diagnostics) {
	var diags diag.Diagnostics
	tflog.Info(ctx, "running a build step", map[string]any{"key": m.Key.ValueString(), "command": job.Spec.Command})
	res, err := build.Run(ctx, r.data.store, job)
	if err == nil {
		return res, diags
	}
	var exit *build.ExitError
	var timeout *build.TimeoutError
	var out *build.OutputError
	var tool *build.ToolChangedError
	var input *build.InputChangedError
	var placing *build.InputError
	switch {
	case errors.As(err, &exit):
		diags.AddAttributeError(path.Root("command"), "Build failed", err.Error()+"\nThe whole output is in the provider log (TF_LOG=INFO).")
	case errors.As(err, &timeout):
		diags.AddAttributeError(path.Root("timeout"), "Build timed out", err.Error()+"\nRaise timeout if the step needs longer.")
	case errors.As(err, &out):
		diags.AddAttributeError(path.Root("output"), "Build output unusable", err.Error())
	case errors.As(err, &tool):
		diags.AddAttributeError(path.Root("tools"), "Tool changed since plan", err.Error()+".")
	case errors.As(err, &input):
		at := path.Root("inputs").AtMapKey(input.Input)
		if _, local := m.InputPaths.Elements()[input.Input]; local {
			at = path.Root("input_paths").AtMapKey(input.Input)
		}
		diags.AddAttributeError(at, "Build changed its input", err.Error())
	case errors.As(err, &placing):
		at := path.Root("inputs").AtMapKey(placing.Name)
		if _, local := m.InputPaths.Elements()[placing.Name]; local {
			at = path.Root("input_paths").AtMapKey(placing.Name)
		}
		if errors.Is(err, store.ErrNotFound) {
			diags.AddAttributeError(at, "Input not in the store",
				fmt.Sprintf("%v. An input must be an artifact stored in %s: the digest of an immutable_artifact or immutable_build of this configuration, or of a release.", err, r.data.store))
		} else {
			diags.Append(exportError(r.data.store, err))
		}
	case ctx.Err() != nil:
		diags.AddError("Build interrupted", "The build was cancelled; its process group was killed and nothing was recorded.")
	case hasHint(err):
		diags.Append(storeWriteError(err))
	default:
		diags.AddAttributeError(path.Root("command"), "Cannot run the build", fmt.Sprintf("%v. Nothing was recorded.", err))
	}
	return nil, diags
}

// changedParts names the key's components that differ from the plan's.
func changedParts(planned types.Map, now map[string]digest.Sum) string {
	var changed []string
	old := planned.Elements()
	for k, v := range now {
		if s, ok := old[k].(types.String); !ok || s.ValueString() != v.String() {
			changed = append(changed, k)
		}
	}
	for k := range old {
		if _, ok := now[k]; !ok {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	return "changed: " + strings.Join(changed, ", ")
}

// outputDiff names the files in which two outputs differ, when both are
// trees.
func outputDiff(a, b *digest.Manifest) string {
	if a == nil || b == nil {
		return ""
	}
	lines, total := digest.Diff(a, b, changesShown)
	if total == 0 {
		return ""
	}
	for i, l := range lines {
		lines[i] = l[:2] + printable(l[2:])
	}
	what := "paths differ"
	if total == 1 {
		what = "path differs"
	}
	return fmt.Sprintf(" (%d %s: %s)", total, what, strings.Join(lines, ", "))
}

func (r *BuildResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	// Only timeout, caches or check_reproducible changed: nothing to build.
	var plan buildModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *BuildResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m buildModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || r.data == nil || m.Digest.IsNull() || m.Digest.IsUnknown() {
		return
	}
	st := r.data.store
	sum, kind, diags := lookupArtifact(ctx, st, m.Digest.ValueString())
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	if kind == store.Missing {
		// The output is gone from the store: forget the step, so that the
		// next plan finds its record (or builds it again).
		resp.State.RemoveResource(ctx)
		return
	}
	if r.data.verifyOnRefresh {
		if err := st.Verify(ctx, sum); err != nil {
			resp.Diagnostics.Append(corruptError(st, sum, err))
			return
		}
	}
	m.setLocations(st)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *BuildResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {
	// The output and the action record are shared by every configuration
	// that builds the same key: destroying only forgets the step.
}

// ImportState refuses, saying why it is never needed.
func (r *BuildResource) ImportState(_ context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.AddError("immutable_build needs no import",
		fmt.Sprintf("A build step is found by its key, not imported: plan with the step in the configuration, and when its "+
			"key is recorded in the store (built in CI, or by anyone on the same store) the plan shows cache_hit = true and "+
			"every output known, and apply runs nothing. (Ignored ID: %q.)", req.ID))
}
