package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/artifact"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
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
	CacheReadWrite = actioncache.ReadWrite
	CacheReadOnly  = actioncache.ReadOnly
	CacheOff       = actioncache.Off
)

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
	ID                  types.String `tfsdk:"id"`
	Command             types.List   `tfsdk:"command"`
	Inputs              types.Map    `tfsdk:"inputs"`
	InputPaths          types.Map    `tfsdk:"input_paths"`
	Environment         types.Map    `tfsdk:"environment"`
	Caches              types.Map    `tfsdk:"caches"`
	Tools               types.List   `tfsdk:"tools"`
	Output              types.String `tfsdk:"output"`
	Archive             types.String `tfsdk:"archive"`
	Timeout             types.String `tfsdk:"timeout"`
	Salt                types.String `tfsdk:"salt"`
	CheckReproducible   types.Bool   `tfsdk:"check_reproducible"`
	Key                 types.String `tfsdk:"key"`
	KeyParts            types.Map    `tfsdk:"key_parts"`
	CacheHit            types.Bool   `tfsdk:"cache_hit"`
	Digest              types.String `tfsdk:"digest"`
	FileCount           types.Int64  `tfsdk:"file_count"`
	Size                types.Int64  `tfsdk:"size"`
	Files               types.Map    `tfsdk:"files"`
	LogDigest           types.String `tfsdk:"log_digest"`
	ArchiveSHA256       types.String `tfsdk:"archive_sha256"`
	ArchiveBase64SHA256 types.String `tfsdk:"archive_base64sha256"`
	Path                types.String `tfsdk:"path"`
	S3Bucket            types.String `tfsdk:"s3_bucket"`
	S3Key               types.String `tfsdk:"s3_key"`
	S3URL               types.String `tfsdk:"s3_url"`
	ArchivePath         types.String `tfsdk:"archive_path"`
	ArchiveS3Bucket     types.String `tfsdk:"archive_s3_bucket"`
	ArchiveS3Key        types.String `tfsdk:"archive_s3_key"`
	ArchiveS3URL        types.String `tfsdk:"archive_s3_url"`
}

func (r *BuildResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_build"
}

func (r *BuildResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = buildSchema()
}

func (r *BuildResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configureData(req.ProviderData, &resp.Diagnostics)
}

func (m *buildModel) setUnknownOutputs() {
	m.CacheHit = types.BoolUnknown()
	m.Digest = types.StringUnknown()
	m.FileCount = types.Int64Unknown()
	m.Size = types.Int64Unknown()
	m.Files = types.MapUnknown(types.StringType)
	m.LogDigest = types.StringUnknown()
	if m.Archive.IsNull() {
		m.ArchiveSHA256, m.ArchiveBase64SHA256 = types.StringNull(), types.StringNull()
	} else {
		m.ArchiveSHA256, m.ArchiveBase64SHA256 = types.StringUnknown(), types.StringUnknown()
	}
}

// setRecord fills the outputs from a record (and a tree's listing).
func (m *buildModel) setRecord(rec *actioncache.Record, man *digest.Listing) {
	m.Digest = types.StringValue(rec.Output.String())
	m.FileCount = types.Int64Value(rec.Files)
	m.Size = types.Int64Value(rec.Size)
	m.LogDigest = types.StringValue(rec.Log.String())
	m.Files = filesValue(man)
}

// setLocations derives where the output and its archive live, as the
// artifact does.
func (m *buildModel) setLocations(st *store.Store) {
	a := artifactModel{Digest: m.Digest, Files: m.Files, FileCount: m.FileCount, ArchiveSHA256: m.ArchiveSHA256}
	a.setLocations(st)
	m.Path, m.S3Bucket, m.S3Key, m.S3URL = a.Path, a.S3Bucket, a.S3Key, a.S3URL
	m.ArchivePath, m.ArchiveS3Bucket, m.ArchiveS3Key, m.ArchiveS3URL = a.ArchivePath, a.ArchiveS3Bucket, a.ArchiveS3Key, a.ArchiveS3URL
}

// format is the archive format asked for (validated by the schema).
func (m *buildModel) format() archive.Format { return archive.Format(m.Archive.ValueString()) }

func (m *buildModel) setArchive(sum *digest.Sum) {
	a := artifactModel{Archive: m.Archive}
	a.setArchive(sum)
	m.ArchiveSHA256, m.ArchiveBase64SHA256 = a.ArchiveSHA256, a.ArchiveBase64SHA256
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
	key := actioncache.KeyOf(parts)
	plan.ID, plan.Key = types.StringValue(key.String()), types.StringValue(key.String())
	pv := make(map[string]attr.Value, len(parts))
	for k, v := range parts {
		pv[k] = types.StringValue(v.String())
	}
	plan.KeyParts = types.MapValueMust(types.StringType, pv)

	if prior != nil && prior.Key.ValueString() == key.String() {
		// The same step: what it built stays (timeout, caches, archive and
		// check_reproducible change in place).
		plan.CacheHit, plan.Digest, plan.FileCount, plan.Size, plan.Files, plan.LogDigest = prior.CacheHit, prior.Digest, prior.FileCount, prior.Size, prior.Files, prior.LogDigest
		plan.ArchiveSHA256, plan.ArchiveBase64SHA256 = prior.ArchiveSHA256, prior.ArchiveBase64SHA256
		if !prior.Archive.Equal(plan.Archive) {
			// Not part of the key: the archive of the output already built.
			plan.setArchive(nil)
			if !plan.Archive.IsNull() {
				listing, err := r.outputListing(ctx, &plan, outputType(ctx, req.Private))
				if err == nil {
					var ref digest.Sum
					if ref, err = r.data.archives().Lookup(ctx, plan.format(), listing); err == nil {
						plan.setArchive(&ref)
					}
				}
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					resp.Diagnostics.Append(archiveError(r.data.store, "archive_sha256", "read the stored archive", err))
					return
				}
			}
		}
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
	}
	plan.setUnknownOutputs()
	if r.data.buildCache != CacheOff {
		rec, man, err := r.lookup(ctx, key)
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
	if plan.Digest.IsUnknown() && r.data.buildCache == CacheReadWrite && r.data.writesRefused() {
		resp.Diagnostics.Append(unsignedBuildWarning()) // the step runs: its record is not written
	}
	plan.setLocations(r.storeOrNil())
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// setHit plans the recorded output of a step: every value known.
func (r *BuildResource) setHit(ctx context.Context, plan *buildModel, rec *actioncache.Record, man *digest.Listing) diag.Diagnostics {
	var diags diag.Diagnostics
	plan.CacheHit = types.BoolValue(true)
	plan.setRecord(rec, man)
	plan.setArchive(nil)
	if plan.Archive.IsNull() {
		return diags
	}
	listing, err := rec.ArchiveListing(ctx, r.data.store, plan.Output.ValueString(), man)
	var ref digest.Sum
	if err == nil {
		ref, err = r.data.archives().Lookup(ctx, plan.format(), listing)
	}
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
	rec, man, err := r.lookup(ctx, key)
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
			"This plan replaces it with the recorded output, so everyone uses one; nothing runs (unless check_reproducible, "+
			"which runs the step and fails on the difference).", prior.Digest.ValueString(), rec.Output, key))
	diags.Append(r.setHit(ctx, plan, rec, man)...)
	resp.RequiresReplace.Append(path.Root("digest"))
	return diags
}

// lookup reads the record of key (actioncache.Lookup) and checks it
// under the trust policy: a record without a trusted key's valid signature
// is no cache hit but an error (*release.UntrustedRecordError) — it
// cannot be built over either, records being written once.
func (r *BuildResource) lookup(ctx context.Context, key digest.Sum) (*actioncache.Record, *digest.Listing, error) {
	rec, man, err := actioncache.Lookup(ctx, r.data.store, key)
	if err != nil {
		return nil, nil, err
	}
	if err := r.verifyRecord(ctx, rec); err != nil {
		return nil, nil, err
	}
	return rec, man, nil
}

// verifyRecord checks a build record read from the store under the trust
// policy (the record is stored in canonical form: its bytes are its
// encoding).
func (r *BuildResource) verifyRecord(ctx context.Context, rec *actioncache.Record) error {
	return r.data.trust.CheckAction(ctx, r.data.store.Backend(), rec.Key, digest.Bytes(rec.Encode()))
}

func buildStoreError(st *store.Store, err error) diag.Diagnostic {
	var untrusted *release.UntrustedRecordError
	if errors.As(err, &untrusted) {
		return diag.NewAttributeErrorDiagnostic(path.Root("key"), "Untrusted record", upperFirst(untrusted.Error())+".")
	}
	if actioncache.Untrusted(err) {
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
	ctx, told := watchGCWaits(ctx) // why a publish waited for a collection
	defer told(&resp.Diagnostics)
	var plan buildModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if r.data == nil {
		resp.Diagnostics.AddError("Provider not configured", "The provider was not configured before apply. This is a bug in the provider.")
		return
	}
	typ, diags := r.build(ctx, &plan)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	b, _ := json.Marshal(typ) // a string always encodes
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateOutputType, b)...)
	plan.setLocations(r.storeOrNil())
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// privateOutputType keeps the output's type (tree, file or exec): what a
// file's archive holds depends on it, and the digest does not tell.
const privateOutputType = "output_type"

// outputType is the output type kept in private state ("" if none).
func outputType(ctx context.Context, p privateGetter) actioncache.OutputType {
	var s actioncache.OutputType
	if b := privateValue(ctx, p, privateOutputType); len(b) == 0 || json.Unmarshal(b, &s) != nil {
		return ""
	}
	return s
}

// outputListing is what the archive of the built output holds.
func (r *BuildResource) outputListing(ctx context.Context, m *buildModel, typ actioncache.OutputType) (*digest.Listing, error) {
	sum, err := digest.Parse(m.Digest.ValueString())
	if err != nil {
		return nil, err
	}
	if typ == "" && !m.Files.IsNull() { // state from before the type was kept: files are a tree's
		typ = actioncache.TypeTree
	}
	rec := actioncache.Record{Output: sum, Type: typ, Size: m.Size.ValueInt64()}
	return rec.ArchiveListing(ctx, r.data.store, m.Output.ValueString(), nil)
}

// ensureArchive stores (once) and records the archive of listing.
func (r *BuildResource) ensureArchive(ctx context.Context, m *buildModel, listing *digest.Listing, isFile bool) diag.Diagnostics {
	var diags diag.Diagnostics
	var want *digest.Sum
	if !m.ArchiveSHA256.IsUnknown() {
		want = planned(m.ArchiveSHA256, digest.ParseHex)
		if want == nil { // null: no archive expected, so any differs
			want = &digest.Sum{}
		}
	}
	sum, err := r.data.sources.EnsureArchive(ctx, m.format(), listing, isFile, want)
	var changed *artifact.ArchiveChangedError
	switch {
	case errors.As(err, &changed):
		diags.AddAttributeError(path.Root("archive_sha256"), "Archive differs from plan",
			fmt.Sprintf("The plan expected archive sha256 %s, the store holds %s. Run plan again.", m.ArchiveSHA256.ValueString(), sum.Hex()))
		return diags
	case err != nil:
		diags.Append(archiveError(r.data.store, "archive", "store the archive", err))
		return diags
	}
	m.setArchive(&sum)
	return diags
}

// build makes the planned step's output available: the recorded one on a
// hit, else by running it. m is the plan, and becomes the state.
func (r *BuildResource) build(ctx context.Context, m *buildModel) (actioncache.OutputType, diag.Diagnostics) {
	var diags diag.Diagnostics
	st := r.data.store
	spec, tools, locals, d := r.spec(ctx, m)
	if diags.Append(d...); diags.HasError() {
		return "", diags
	}
	key := spec.Key()
	if !m.Key.IsUnknown() && m.Key.ValueString() != key.String() {
		diags.AddAttributeError(path.Root("key"), "Build changed since plan",
			fmt.Sprintf("The plan was made for the key %s, but the step's inputs and tools now give %s (a tool's binary "+
				"changed, say): %s. Nothing was run; plan again.", m.Key.ValueString(), key, changedParts(m.KeyParts, spec.Parts())))
		return "", diags
	}
	job := actioncache.Job{
		Spec: *spec, Tools: tools, Timeout: defaultTimeout, Hash: r.hashFile,
		Output: logBuildOutput(ctx, key.String()), Failed: logFailedOutput(ctx, key.String()),
	}
	if !m.Timeout.IsNull() {
		job.Timeout, _ = time.ParseDuration(m.Timeout.ValueString()) // validated
	}
	if len(m.Caches.Elements()) > 0 {
		var caches map[string]string
		if diags.Append(m.Caches.ElementsAs(ctx, &caches, false)...); diags.HasError() {
			return "", diags
		}
		dirs, err := actioncache.CacheDirs(caches)
		if err != nil {
			diags.AddAttributeError(path.Root("caches"), "No cache directory", fmt.Sprintf("caches needs a user cache directory: %v. Set %s.", err, statcache.EnvDir))
			return "", diags
		}
		job.Caches = dirs
	}

	step := actioncache.Step{
		Job: job, Check: m.CheckReproducible.ValueBool(), Mode: r.data.buildCacheMode(),
		Prepare: func(ctx context.Context) error {
			tflog.Info(ctx, "running a build step", map[string]any{"key": key.String(), "command": job.Spec.Command})
			if d := r.storeLocals(ctx, locals); d.HasError() {
				return &localError{d}
			}
			return nil
		},
		BeforeRecord: r.data.hooks.beforeRecord,
		Signer:       r.data.signer,
		BuilderID:    r.data.builderID,
		Verify:       r.verifyRecord,
	}
	if !m.Digest.IsUnknown() {
		planned, err := digest.Parse(m.Digest.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root("digest"), "Invalid digest", err.Error())
			return "", diags
		}
		step.Planned = &planned
	}
	done, err := actioncache.Realize(ctx, st, step)
	if err != nil {
		diags.Append(r.buildError(err, m)...)
		return "", diags
	}
	if done.Differs != nil {
		diags.AddAttributeWarning(path.Root("digest"), "Build is not reproducible",
			fmt.Sprintf("%s. The recorded output is used, so everyone gets the same one. Make the build deterministic, and set "+
				"check_reproducible = true to make this an error.", upperFirst(done.Differs.Error())))
	}
	rec, man := done.Record, done.Listing
	m.CacheHit = types.BoolValue(done.Hit)
	m.setRecord(rec, man)
	if m.Archive.IsNull() {
		return rec.Type, diags
	}
	listing, err := rec.ArchiveListing(ctx, st, m.Output.ValueString(), man)
	if err != nil {
		diags.Append(archiveError(st, "archive", "read the output's listing", err))
		return rec.Type, diags
	}
	diags.Append(r.ensureArchive(ctx, m, listing, man == nil)...)
	return rec.Type, diags
}

// buildError turns what stopped a step into a diagnostic on the
// attribute to change.
func (r *BuildResource) buildError(err error, m *buildModel) diag.Diagnostics {
	var diags diag.Diagnostics
	var exit *actioncache.ExitError
	var timeout *actioncache.TimeoutError
	var out *actioncache.OutputError
	var tool *actioncache.ToolChangedError
	var input *actioncache.InputChangedError
	var placing *actioncache.InputError
	var differs *actioncache.NotReproducibleError
	var changed *actioncache.RecordChangedError
	var local *localError
	var unsigned *actioncache.SignatureError
	inputAt := func(name string) path.Path {
		if _, isLocal := m.InputPaths.Elements()[name]; isLocal {
			return path.Root("input_paths").AtMapKey(name)
		}
		return path.Root("inputs").AtMapKey(name)
	}
	switch {
	case errors.As(err, &local):
		diags.Append(local.diags...)
	case errors.As(err, &unsigned):
		diags.AddAttributeError(path.Root("key"), "Build record written but not signed",
			fmt.Sprintf("%s. The record stands (records are written once), unsigned: the next plan uses it as a cache hit, "+
				"unless the provider's trust requires signatures, which refuses it. To have it signed, delete that record (and nothing else) from the store and apply again, "+
				"which runs the step again and signs its record. If a signature already there is not this key's valid one, "+
				"move it out of the store first.", upperFirst(err.Error())))
	case errors.As(err, &differs):
		diags.AddAttributeError(path.Root("check_reproducible"), "Build is not reproducible",
			fmt.Sprintf("%s. The recorded output is kept. Make the build deterministic (fixed timestamps, sorted file lists, "+
				"no absolute paths: -trimpath, SOURCE_DATE_EPOCH), or set check_reproducible = false.", upperFirst(differs.Error())))
	case errors.As(err, &changed):
		diags.AddAttributeError(path.Root("digest"), "Build record changed since plan", upperFirst(err.Error())+".")
	case errors.As(err, &exit):
		diags.AddAttributeError(path.Root("command"), "Build failed", err.Error()+fmt.Sprintf("\nThe whole output (or its last %d MiB) is in the provider log at TF_LOG=INFO.", actioncache.FailedOutput>>20))
	case errors.As(err, &timeout):
		diags.AddAttributeError(path.Root("timeout"), "Build timed out", err.Error()+"\nRaise timeout if the step needs longer.")
	case errors.As(err, &out):
		diags.AddAttributeError(path.Root("output"), "Build output unusable", err.Error())
	case errors.As(err, &tool):
		diags.AddAttributeError(path.Root("tools"), "Tool changed since plan", err.Error()+".")
	case errors.As(err, &input):
		diags.AddAttributeError(inputAt(input.Input), "Build changed its input", err.Error())
	case errors.As(err, &placing) && errors.Is(err, store.ErrNotFound):
		diags.AddAttributeError(inputAt(placing.Name), "Input not in the store",
			fmt.Sprintf("%v. An input must be an artifact stored in %s: the digest of an immutable_artifact or immutable_build of this configuration, or of a release.", err, r.data.store))
	case errors.As(err, &placing):
		diags.Append(exportError(r.data.store, err))
	case actioncache.Untrusted(err) || errors.As(err, new(*release.UntrustedRecordError)):
		diags.Append(buildStoreError(r.data.store, err))
	case errors.As(err, new(*actioncache.MissingOutputError)): // Unrecorded: collected while the step ran
		diags.AddError("Build output deleted while it ran", upperFirst(err.Error())+".")
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		diags.AddError("Build interrupted", "The build was cancelled; its process group was killed and nothing was recorded.")
	case hasHint(err):
		diags.Append(storeWriteError(err))
	default:
		diags.AddAttributeError(path.Root("command"), "Cannot run the build", fmt.Sprintf("%v. Nothing was recorded.", err))
	}
	return diags
}

// localError carries the diagnostics of storing input_paths through
// Realize's Prepare.
type localError struct{ diags diag.Diagnostics }

func (e *localError) Error() string { return "storing input_paths failed" }

// upperFirst starts a sentence with a capital. Only for messages that
// begin with the provider's own words: a user's name (release "web") must
// keep its case, so such messages are printed as they are. A message
// that begins with a store key or a path (its first word holds a "/":
// releases/web/versions/1.0.2) keeps it as it is: a key is a name.
func upperFirst(s string) string {
	first, _, _ := strings.Cut(s, " ")
	if s == "" || strings.Contains(first, "/") {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// changedParts names the key's components that differ from the plan's.
func changedParts(planned types.Map, now map[string]digest.Sum) string {
	old := make(map[string]string, len(planned.Elements()))
	for k, v := range planned.Elements() {
		s, _ := v.(types.String) // a map of strings; anything else differs
		old[k] = s.ValueString()
	}
	return "changed: " + strings.Join(actioncache.ChangedParts(old, now), ", ")
}

func (r *BuildResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	// Only timeout, caches, archive or check_reproducible changed: nothing
	// to build; an archive added is made from the output already stored.
	var plan buildModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.Archive.IsNull() && r.data != nil {
		typ := outputType(ctx, req.Private)
		listing, err := r.outputListing(ctx, &plan, typ)
		if err != nil {
			resp.Diagnostics.Append(archiveError(r.data.store, "archive", "read the output's listing", err))
			return
		}
		if resp.Diagnostics.Append(r.ensureArchive(ctx, &plan, listing, typ != actioncache.TypeTree && plan.Files.IsNull())...); resp.Diagnostics.HasError() {
			return
		}
	}
	plan.setLocations(r.storeOrNil())
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
