package provider

// The configuration side of immutable_build: its schema and validation,
// and resolving what a step declares into a actioncache.Spec (tools found on
// PATH and hashed, input_paths hashed as artifact sources).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"

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

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/artifact"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
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
					listvalidator.ValueStringsAre(stringCheck{"no NUL byte", "Invalid argument", actioncache.CheckNoNUL}),
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
					mapvalidator.KeysAre(stringCheck{"an input name", "Invalid input name", func(s string) error { return actioncache.CheckName("input", s) }}),
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
					mapvalidator.KeysAre(stringCheck{"an input name", "Invalid input name", func(s string) error { return actioncache.CheckName("input", s) }}),
				},
			},
			"environment": schema.MapAttribute{
				MarkdownDescription: "The only variables the command gets, besides `HOME` and `TMPDIR` (inside the working " +
					"directory) and `PATH` (the declared tools). Names and values join the key.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.Map{
					mapvalidator.KeysAre(stringCheck{"a variable name", "Invalid variable name", actioncache.CheckEnv}),
					mapvalidator.ValueStringsAre(stringCheck{"no NUL byte", "Invalid variable value", actioncache.CheckNoNUL}),
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
					mapvalidator.KeysAre(stringCheck{"a variable name", "Invalid variable name", actioncache.CheckEnv}),
					mapvalidator.ValueStringsAre(stringCheck{"a cache name", "Invalid cache name", func(s string) error { return actioncache.CheckName("cache", s) }}),
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
					listvalidator.ValueStringsAre(stringCheck{"a program name", "Invalid tool name", func(s string) error { return actioncache.CheckName("tool", s) }}),
				},
			},
			"output": schema.StringAttribute{
				MarkdownDescription: "Relative path, in the working directory, of the file or directory the command " +
					"produces: what is stored as the step's output.",
				Required:   true,
				Validators: []validator.String{stringCheck{"a relative path", "Invalid output path", actioncache.CheckRel}},
			},
			"archive": schema.StringAttribute{
				MarkdownDescription: "Also store a byte-reproducible archive of the output, `zip` or `tar.gz`, as " +
					"`immutable_artifact.archive` does. Not part of the key: adding or removing it changes the step in " +
					"place, archiving the output already stored.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.OneOf(archive.FormatNames()...)},
			},
			"timeout": schema.StringAttribute{
				MarkdownDescription: "How long the command may run (a Go duration: `90s`, `10m`); past it, its whole " +
					"process group is killed and nothing is recorded. Default `30m`. Not part of the key.",
				Optional:   true,
				Validators: []validator.String{stringCheck{"a duration", "Invalid timeout", actioncache.CheckTimeout}},
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
	isPath := strings.Contains(first.ValueString(), "/")
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
	case isPath:
		err := actioncache.CheckRel(prog)
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
	path string
	*artifact.Content
}

// spec reads what the step declares, resolves its tools on PATH and hashes
// its input_paths.
func (r *BuildResource) spec(ctx context.Context, m *buildModel) (*actioncache.Spec, map[string]actioncache.Tool, map[string]localInput, diag.Diagnostics) {
	var diags diag.Diagnostics
	s := &actioncache.Spec{Output: m.Output.ValueString(), Salt: m.Salt.ValueString()}
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
		locals[name], s.Inputs[name] = in, in.Sum
	}
	tools, err := actioncache.FindTools(ctx, toolNames, r.hashFile)
	if err != nil {
		at, name, summary := path.Root("tools"), "", "Cannot use the tool"
		var te *actioncache.ToolError
		if errors.As(err, &te) { // always: the tool at te.Index
			at, name, err = at.AtListIndex(te.Index), te.Name, te.Err
			var nf *actioncache.ToolNotFoundError
			if errors.As(err, &nf) {
				summary = toolNotFound
			}
		}
		diags.AddAttributeError(at, summary, fmt.Sprintf("Cannot use the tool %q: %v.", name, err))
		return nil, nil, nil, diags
	}
	s.Tools = map[string]digest.Sum{}
	for name, t := range tools {
		s.Tools[name] = t.Sum
	}
	return s, tools, locals, diags
}

// hashLocal hashes an input_paths entry as immutable_artifact hashes a
// source.
func (r *BuildResource) hashLocal(ctx context.Context, name, p string) (localInput, diag.Diagnostics) {
	var diags diag.Diagnostics
	at := path.Root("input_paths").AtMapKey(name)
	c, err := r.data.sources.Hash(ctx, artifact.Source{Path: p})
	if err != nil {
		diags.Append(sourceDiag(at, err))
		return localInput{path: p}, diags
	}
	if c.Tree != nil {
		// Placed in the working directory as an export writes a tree: a
		// link leaving it would be refused then, after the input was
		// stored; refused now.
		if err := artifact.CheckLinks(p, c.Tree); err != nil {
			diags.AddAttributeError(at, "Input holds a link that leaves it",
				fmt.Sprintf("In %q: %v. A build's inputs may only hold links to their own files. Point input_paths at a "+
					"directory without such a link, or use an immutable_artifact with excludes.", p, err))
			return localInput{path: p}, diags
		}
	}
	return localInput{path: p, Content: c}, diags
}

// storeLocals stores the input_paths of a step about to run, each checked
// against its digest as it is read (the key, checked just before, holds
// the digests the plan was made with).
func (r *BuildResource) storeLocals(ctx context.Context, locals map[string]localInput) diag.Diagnostics {
	var diags diag.Diagnostics
	for _, name := range sortedKeys(locals) {
		in := locals[name]
		if _, _, err := r.data.sources.Put(ctx, artifact.Source{Path: in.path}, &in.Sum); err != nil {
			diags.Append(sourceDiag(path.Root("input_paths").AtMapKey(name), err))
			return diags
		}
	}
	return diags
}

func (r *BuildResource) hashFile(ctx context.Context, p string) (digest.Sum, int64, error) {
	return statcache.HashFile(ctx, r.data.cache, p)
}
