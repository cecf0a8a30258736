package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

var (
	_ resource.Resource                = (*ReleaseResource)(nil)
	_ resource.ResourceWithConfigure   = (*ReleaseResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*ReleaseResource)(nil)
	_ resource.ResourceWithImportState = (*ReleaseResource)(nil)
)

// ReleaseResource is immutable_release.
type ReleaseResource struct {
	data *providerData
}

// NewReleaseResource returns the resource.
func NewReleaseResource() resource.Resource { return &ReleaseResource{} }

type releaseModel struct {
	ID              types.String `tfsdk:"id"`
	Name            types.String `tfsdk:"name"`
	Artifacts       types.Map    `tfsdk:"artifacts"`
	Images          types.Map    `tfsdk:"images"`
	Metadata        types.Map    `tfsdk:"metadata"`
	Version         types.String `tfsdk:"version"`
	VersionBump     types.String `tfsdk:"version_bump"`
	Digest          types.String `tfsdk:"digest"`
	PreviousVersion types.String `tfsdk:"previous_version"`
	PublishedAt     types.String `tfsdk:"published_at"`
	ArtifactChanges types.List   `tfsdk:"artifact_changes"`
}

func (r *ReleaseResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_release"
}

func releaseSchema() schema.Schema {
	return schema.Schema{
		MarkdownDescription: "A named, versioned, **write-once** record of artifact digests, container image digests and " +
			"configuration. Any change to `name`, `artifacts`, `images` or `metadata` publishes a new version; a published version is never overwritten. " +
			"Content equal to an already published version adopts that version instead (after a `git revert`, say). " +
			"Destroying a release only removes it from state: published versions stay. See the " +
			"[releases and rollback guide](../guides/releases-and-rollback.md).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{MarkdownDescription: "`name@version`.", Computed: true},
			"name": schema.StringAttribute{
				MarkdownDescription: "Release name: lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit.",
				Required:            true,
				Validators:          []validator.String{releaseNameValidator},
			},
			"artifacts": schema.MapAttribute{
				MarkdownDescription: "The artifacts the release is made of: name → digest (`sha256:<hex>`), typically " +
					"`immutable_artifact.x.digest`. Each must be in the store when the release is published. Names may not hold " +
					"control, line-separating or invisible formatting characters.",
				ElementType: types.StringType,
				Required:    true,
				Validators:  []validator.Map{mapvalidator.KeysAre(artifactNameValidator), mapvalidator.ValueStringsAre(digestValidator)},
			},
			"images": schema.MapAttribute{
				MarkdownDescription: "Container images the release deploys: name → an image reference pinned by digest, " +
					"`registry/repository@sha256:<64 hex>`, typically `immutable_image.x.ref` (or `data.immutable_image.x.ref` " +
					"for an image built elsewhere). A tag is refused: it can be moved, and a release names one image for good. " +
					"Part of the digest: another image publishes a new version, and pinning an older version gives back its " +
					"images (`data.immutable_release.x.images[\"api\"]`), so rolling a service back is one in-place change of " +
					"its image reference. Publishing contacts no registry. Names follow the rules of artifact names.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.Map{mapvalidator.KeysAre(imageNameValidator), mapvalidator.ValueStringsAre(imageRefValidator)},
			},
			"metadata": schema.MapAttribute{
				MarkdownDescription: "Configuration and facts tied to the release (environment settings, git sha, …). Part of " +
					"the digest: a change publishes a new version. Do not put `timestamp()` or `plantimestamp()` here: " +
					"every plan would publish a new version. The whole record (artifacts and metadata) is at most " +
					fmt.Sprintf("%d MiB; a larger one is refused at plan. ", release.MaxRecordSize>>20) +
					"Keys are shown in plans and other workspaces: they may not hold control, line-separating or invisible " +
					"formatting characters (bidirectional controls such as U+202E, zero-width spaces).",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.Map{mapvalidator.KeysAre(metadataKeyValidator)},
			},
			"version": schema.StringAttribute{
				MarkdownDescription: "The version to publish, `MAJOR.MINOR.PATCH[-PRERELEASE]`. Unset: the next version " +
					"after the highest published one (by `version_bump`), `1.0.0` for the first, or the version already " +
					"published with the same content. An explicit version must not be published with other content; " +
					"backports (a lower version not yet taken) are fine. " +
					fmt.Sprintf("At most %d characters, each number at most %d.", versions.MaxLength, int64(versions.MaxNumber)),
				Optional:   true,
				Computed:   true,
				Validators: []validator.String{versionValidator},
			},
			"version_bump": schema.StringAttribute{
				MarkdownDescription: "Which part to raise when `version` is unset: `patch` (default), `minor` or `major`. " +
					"Changing it alone publishes nothing.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString("patch"),
				Validators: []validator.String{stringvalidator.OneOf(versions.Bumps...)},
			},
			"digest": schema.StringAttribute{
				MarkdownDescription: "Digest of the release content: name, artifacts, images and metadata in the canonical encoding " +
					"of the [digest spec](../guides/digest-spec.md). Independent of version and time. Known at plan.",
				Computed: true,
			},
			"previous_version": schema.StringAttribute{
				MarkdownDescription: "The highest version published below this one when it was planned; null for the first.",
				Computed:            true,
			},
			"published_at": schema.StringAttribute{
				MarkdownDescription: "When the version was published (RFC 3339, UTC). Unknown until apply for a new version.",
				Computed:            true,
			},
			"artifact_changes": schema.ListAttribute{
				MarkdownDescription: "What this version changes in `artifacts` against `previous_version` as published in " +
					"the store, one line per artifact in name order, with its digests: `+ name sha256:…` (added), `- name sha256:…` " +
					"(removed), `~ name sha256:old -> sha256:new` (another digest). Known at plan, so `tofu plan` names the artifacts a new version ships; null for the first " +
					"version. For the files changed in a directory artifact, see `data.immutable_release_diff`.",
				ElementType: types.StringType,
				Computed:    true,
			},
		},
	}
}

func (r *ReleaseResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = releaseSchema()
}

func (r *ReleaseResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configureData(req.ProviderData, &resp.Diagnostics)
}

// content reads the release content from a model whose inputs are known.
func (m *releaseModel) content(ctx context.Context) (release.Content, diag.Diagnostics) {
	c := release.Content{Name: m.Name.ValueString(), Artifacts: map[string]string{}, Metadata: map[string]string{}}
	diags := m.Artifacts.ElementsAs(ctx, &c.Artifacts, false)
	if !m.Metadata.IsNull() {
		diags.Append(m.Metadata.ElementsAs(ctx, &c.Metadata, false)...)
	}
	if !m.Images.IsNull() {
		diags.Append(m.Images.ElementsAs(ctx, &c.Images, false)...)
	}
	return c, diags
}

func mapUnknown(m types.Map) bool {
	if m.IsUnknown() {
		return true
	}
	for _, v := range m.Elements() {
		if v.IsUnknown() {
			return true
		}
	}
	return false
}

func (m *releaseModel) setPlanned(c release.Content, p *release.Plan) {
	m.Digest = types.StringValue(c.Digest().String())
	m.Version = types.StringValue(p.Version)
	m.ID = types.StringValue(c.Name + "@" + p.Version)
	m.PreviousVersion = optionalString(p.PreviousVersion)
	m.PublishedAt = types.StringUnknown()
	if p.Adopted != nil {
		m.PublishedAt = types.StringValue(p.Adopted.PublishedAt)
	}
}

func optionalString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

func (r *ReleaseResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan releaseModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	var configVersion types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("version"), &configVersion)...)
	var prior *releaseModel
	if !req.State.Raw.IsNull() {
		prior = &releaseModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, prior)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}

	if plan.Name.IsUnknown() || mapUnknown(plan.Artifacts) || mapUnknown(plan.Images) || mapUnknown(plan.Metadata) || configVersion.IsUnknown() || r.data == nil {
		plan.Digest, plan.ID = types.StringUnknown(), types.StringUnknown()
		plan.PreviousVersion, plan.PublishedAt = types.StringUnknown(), types.StringUnknown()
		plan.ArtifactChanges = types.ListUnknown(types.StringType)
		if configVersion.IsNull() || configVersion.IsUnknown() {
			plan.Version = types.StringUnknown()
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}

	c, diags := plan.content(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	d := c.Digest().String()

	// Unchanged content (and no new explicit version): keep everything from
	// state without consulting the store, so the plan is empty, also with
	// -refresh=false.
	if prior != nil && prior.Digest.ValueString() == d && (configVersion.IsNull() || configVersion.Equal(prior.Version)) {
		plan.Digest, plan.Version, plan.ID = prior.Digest, prior.Version, prior.ID
		plan.PreviousVersion, plan.PublishedAt = prior.PreviousVersion, prior.PublishedAt
		plan.ArtifactChanges = prior.ArtifactChanges
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}

	// A new version is planned from the highest version the state saw at
	// refresh, not from the store alone: core plans again at apply, from
	// the same prior state, and a version published by another apply in
	// between must fail that plan here rather than plan another version
	// (which core would reject as an inconsistent final plan). A release is
	// therefore updated in place, never replaced: a replacement's final
	// plan has no prior state (its destroy half runs first).
	seen := ""
	if prior != nil && prior.Name.Equal(plan.Name) {
		seen = priorReleaseSeen(ctx, req.Private, c.Name)
	}
	p, err := release.PlanVersionSince(ctx, r.data.store.Backend(), c, configVersion.ValueString(), plan.VersionBump.ValueString(), seen)
	var moved *release.VersionsMovedError
	if errors.As(err, &moved) {
		resp.Diagnostics.Append(movedError(r.data.store, moved))
		return
	}
	if err != nil {
		resp.Diagnostics.Append(releaseError(r.data.store, c.Name, err))
		return
	}
	if p.Adopted == nil && r.data.writesRefused() {
		resp.Diagnostics.Append(unsignedWriteError("release version"))
		return
	}
	plan.setPlanned(c, p)
	plan.ArtifactChanges, diags = r.artifactChanges(ctx, c, p.PreviousVersion)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// movedError is the diagnostic of a plan made from a state that saw
// another highest version of the release than the store has now.
func movedError(st *store.Store, e *release.VersionsMovedError) diag.Diagnostic {
	if e.Deleted {
		return diag.NewAttributeErrorDiagnostic(path.Root("version"), "Release versions deleted since the plan",
			fmt.Sprintf("In %s: %v, so the version this plan chose may be another now. Nothing was written. Plan "+
				"again: the next plan reads the store as it is.", st, e))
	}
	return diag.NewAttributeErrorDiagnostic(path.Root("version"), "Version published by another apply",
		fmt.Sprintf("In %s: %v: another apply published since this plan was made (or since the state was last "+
			"refreshed), so the version this plan chose may be taken. Versions are immutable, so nothing was written. "+
			"Plan again (with refresh: a plan with -refresh=false builds on the versions the state saw last): the next "+
			"plan picks the next free version, or adopts a version with the same content.", st, e))
}

func (r *ReleaseResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	ctx, told := watchGCWaits(ctx) // why a publish waited for a collection
	defer told(&resp.Diagnostics)
	var plan releaseModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.publishPlanned(ctx, req.Config, &plan, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	resp.Diagnostics.Append(r.noteSeen(ctx, resp.Private, plan.Name.ValueString())...)
}

// noteSeen records in private state the highest version of the release in
// the store, which the next plan builds on (privateReleaseSeen). A store
// that cannot be listed leaves it unset: the next plan then reads the store
// alone, as before the key existed.
func (r *ReleaseResource) noteSeen(ctx context.Context, p privateSetter, name string) diag.Diagnostics {
	if r.data == nil {
		return nil
	}
	if highest, err := release.Highest(ctx, r.data.store.Backend(), name); err == nil && highest != "" {
		return setReleaseSeen(ctx, p, name, highest)
	}
	return nil
}

// publishPlanned publishes (or adopts) the version planned in plan, filling
// in what the plan left unknown.
func (r *ReleaseResource) publishPlanned(ctx context.Context, config tfsdk.Config, plan *releaseModel, diagnostics *diag.Diagnostics) {
	if r.data == nil {
		diagnostics.AddError("Provider not configured", "The provider was not configured before apply. This is a bug in the provider.")
		return
	}
	var configVersion types.String
	diagnostics.Append(config.GetAttribute(ctx, path.Root("version"), &configVersion)...)
	c, diags := plan.content(ctx)
	diagnostics.Append(diags...)
	if diagnostics.HasError() {
		return
	}
	st := r.data.store
	explicit := !configVersion.IsNull()

	if plan.Version.IsUnknown() { // inputs were unknown at plan
		p, err := release.PlanVersion(ctx, st.Backend(), c, configVersion.ValueString(), plan.VersionBump.ValueString())
		if err != nil {
			diagnostics.Append(releaseError(st, c.Name, err))
			return
		}
		plan.setPlanned(c, p)
		plan.ArtifactChanges, diags = r.artifactChanges(ctx, c, p.PreviousVersion)
		diagnostics.Append(diags...)
		if diagnostics.HasError() {
			return
		}
	}

	// Every artifact must be stored: checked by Publish (under a lease, so
	// that a garbage collection running now does not delete one between
	// the check and the record that names it), not at plan, because in the
	// first plan the artifacts may not have been applied yet.
	rec, err := release.Publish(ctx, st, &release.Record{
		Name: c.Name, Version: plan.Version.ValueString(), Artifacts: c.Artifacts, Images: c.Images, Metadata: c.Metadata,
		PreviousVersion: plan.PreviousVersion.ValueString(),
	}, time.Now(), release.BeforeWrite(r.data.hooks.beforePublish), release.SignWith(r.data.signer))
	var (
		interrupted *release.InterruptedError
		conflict    *release.ConflictError
		missing     *release.ArtifactMissingError
		badSum      *release.ArtifactDigestError
		invalid     *release.InvalidError
		step        *release.StepError
	)
	var unsigned *release.SignatureError
	switch {
	case err == nil:
	case errors.As(err, &unsigned):
		diagnostics.Append(signatureError(unsigned))
		return
	case errors.As(err, &interrupted):
		diagnostics.AddError("Publish interrupted", interrupted.Error())
		return
	case errors.As(err, new(*release.ForeignRecordError)):
		diagnostics.Append(releaseError(st, c.Name, err))
		return
	case errors.As(err, &invalid):
		at := map[release.Input]path.Path{
			release.InputRelease: path.Root("name"), release.InputVersion: path.Root("version"),
			release.InputArtifact: path.Root("artifacts").AtMapKey(invalid.Key), release.InputMetadata: path.Root("metadata").AtMapKey(invalid.Key),
			release.InputImageName: path.Root("images").AtMapKey(invalid.Key), release.InputImage: path.Root("images").AtMapKey(invalid.Key),
		}[invalid.Input]
		diagnostics.Append(invalidInput(invalid, at))
		return
	case errors.As(err, &badSum):
		diagnostics.AddAttributeError(path.Root("artifacts").AtMapKey(badSum.Artifact), "Invalid digest", badSum.Err.Error())
		return
	case errors.As(err, &missing):
		diagnostics.AddAttributeError(path.Root("artifacts").AtMapKey(missing.Artifact), "Artifact not in the store",
			fmt.Sprintf("Artifact %q (%s) is not in the store %s, so release %q cannot be published: it would point at "+
				"content nobody can fetch. Create it with an immutable_artifact on this store (and reference its digest so "+
				"Terraform applies it first), or fix the digest. Nothing was published.", missing.Artifact, missing.Digest, st, c.Name))
		return
	case errors.As(err, &conflict) && !explicit:
		diagnostics.AddAttributeError(path.Root("version"), "Version published by another apply",
			fmt.Sprintf("Version %s of release %q was published by another apply since this plan, with digest %s (this "+
				"plan has %s). Versions are immutable, so nothing was written. Plan again: the next plan picks the next "+
				"free version, or adopts %s if the content is the same.", conflict.Existing.Version, c.Name,
				conflict.Existing.Digest, plan.Digest.ValueString(), conflict.Existing.Version))
		return
	case errors.As(err, new(*release.CollectedError)) && !explicit:
		diagnostics.AddAttributeError(path.Root("version"), "Version deleted since the plan",
			fmt.Sprintf("The plan used version %s of release %q, which a garbage collection of the store %s deleted since "+
				"(a collected version is never published again). Nothing was written. Plan again: the next plan picks the "+
				"next free version.", plan.Version.ValueString(), c.Name, st))
		return
	case errors.As(err, &conflict), errors.As(err, new(*release.TooLargeError)), errors.As(err, new(*release.CollectedError)):
		diagnostics.Append(releaseError(st, c.Name, err))
		return
	case errors.As(err, &step) && step.Step == release.StepHold:
		diagnostics.Append(storeWriteError(step.Err))
		return
	case errors.As(err, &step) && step.Step == release.StepCheck:
		diagnostics.Append(storeReadError(st, step.Err))
		return
	default:
		if errors.As(err, &step) {
			err = step.Err
		}
		diagnostics.Append(storeWriteError(fmt.Errorf("publishing %s@%s: %w", c.Name, plan.Version.ValueString(), err)))
		return
	}
	plan.PublishedAt = types.StringValue(rec.PublishedAt)
}

func (r *ReleaseResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m releaseModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || r.data == nil {
		return
	}
	name, version := m.Name.ValueString(), m.Version.ValueString()
	rec, err := release.Get(ctx, r.data.store.Backend(), name, version)
	if errors.Is(err, store.ErrNotFound) {
		var np *release.NotPublishedError
		if err := release.NotPublished(ctx, r.data.store.Backend(), name, version); errors.As(err, &np) && np.Collected {
			resp.Diagnostics.AddWarning("Release version deleted by retention",
				fmt.Sprintf("%v (in %s): the store's retention policy did not keep it. This resource will publish its "+
					"content again under a new version. To keep the version a workspace runs, point a channel at it "+
					"(immutable_channel) or widen the policy (--keep-last, --keep-within).", err, r.data.store))
		}
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(releaseError(r.data.store, name, err))
		return
	}
	if !m.Digest.IsNull() && m.Digest.ValueString() != rec.Digest {
		resp.Diagnostics.AddAttributeError(path.Root("digest"), "Release record does not match state",
			fmt.Sprintf("The record %s in %s holds digest %s, but this resource was published with %s. Published versions "+
				"never change, so the record was altered or replaced outside Terraform: restore it from a backup.",
				release.VersionKey(name, version), r.data.store, rec.Digest, m.Digest.ValueString()))
		return
	}
	// The state's digest is a stronger check than a signature: it is what
	// this resource published, and the record's content must hash to it.
	// What the digest does not cover (published_at, previous_version), and
	// a record adopted by import (no digest in state), is taken from the
	// store only when the trust policy passes it.
	if m.Digest.IsNull() || !m.PublishedAt.Equal(types.StringValue(rec.PublishedAt)) || !m.PreviousVersion.Equal(optionalString(rec.PreviousVersion)) {
		if err := r.data.trust.CheckRecord(ctx, r.data.store.Backend(), rec); err != nil {
			resp.Diagnostics.Append(releaseError(r.data.store, name, err))
			return
		}
	}
	m.Digest = types.StringValue(rec.Digest)
	m.ID = types.StringValue(name + "@" + version)
	m.PublishedAt = types.StringValue(rec.PublishedAt)
	m.PreviousVersion = optionalString(rec.PreviousVersion)
	if m.ArtifactChanges.IsNull() && rec.PreviousVersion != "" { // imported, or published by an older provider
		changes, diags := r.artifactChanges(ctx, rec.Content(), rec.PreviousVersion)
		resp.Diagnostics.Append(diags...)
		if resp.Diagnostics.HasError() {
			return
		}
		m.ArtifactChanges = changes
	}
	m.Artifacts = stringMap(rec.Artifacts)
	if len(rec.Metadata) > 0 || !m.Metadata.IsNull() {
		m.Metadata = stringMap(rec.Metadata)
	}
	if len(rec.Images) > 0 || !m.Images.IsNull() {
		m.Images = stringMap(rec.Images)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	resp.Diagnostics.Append(r.noteSeen(ctx, resp.Private, name)...)
}

// artifactChanges compares the artifacts of c with those of the published
// record of previous ("" for none: null). It reads one record and depends
// on nothing else, so the two plans of an apply agree. A previous record that
// is gone or altered gives null and a warning, the same in both plans; a
// store that cannot be read is an error.
func (r *ReleaseResource) artifactChanges(ctx context.Context, c release.Content, previous string) (types.List, diag.Diagnostics) {
	var diags diag.Diagnostics
	none := types.ListNull(types.StringType)
	if previous == "" {
		return none, diags
	}
	st := r.data.store
	rec, err := release.Get(ctx, st.Backend(), c.Name, previous)
	var tampered *release.TamperedError
	var oversize *release.OversizeRecordError
	var untrusted *release.UntrustedRecordError
	if err == nil {
		err = r.data.trust.CheckRecord(ctx, st.Backend(), rec)
	}
	switch {
	case errors.As(err, &untrusted):
		// Only artifact_changes rests on it: publishing after an untrusted
		// version stays possible, without showing that record's artifacts.
		diags.AddAttributeWarning(path.Root("artifact_changes"), "Previous version not compared",
			fmt.Sprintf("The trust policy refuses the record of version %s of release %q: %v. `artifact_changes` is null "+
				"rather than show that record's artifacts; publishing does not depend on it.", previous, c.Name, untrusted))
		return none, diags
	case errors.Is(err, store.ErrNotFound), errors.As(err, &tampered), errors.As(err, &oversize):
		diags.AddAttributeWarning(path.Root("artifact_changes"), "Previous version not compared",
			fmt.Sprintf("Version %s of release %q could not be read from %s (%v), so `artifact_changes` is null. "+
				"Publishing does not depend on it; but a record that changes between this plan and the apply (it should "+
				"never: records are written once) makes Terraform reject the apply's plan as inconsistent. Restore it "+
				"from a backup.", previous, c.Name, st, err))
		return none, diags
	case err != nil:
		diags.Append(releaseError(st, c.Name, err))
		return none, diags
	}
	lines := release.ArtifactChanges(rec.Artifacts, c.Artifacts)
	if lines == nil {
		lines = []string{}
	}
	v, d := types.ListValueFrom(ctx, types.StringType, lines)
	diags.Append(d...)
	return v, diags
}

func stringMap(in map[string]string) types.Map {
	elems := make(map[string]attr.Value, len(in))
	for k, v := range in {
		elems[k] = types.StringValue(v)
	}
	return types.MapValueMust(types.StringType, elems)
}

func (r *ReleaseResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	// A release is updated in place when its content or version changes
	// (see ModifyPlan): that publishes the new version, as Create does.
	// version_bump alone affects future versions, never this one.
	var plan, prior releaseModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.Version.IsUnknown() || !plan.Version.Equal(prior.Version) || !plan.Digest.Equal(prior.Digest) || !plan.Name.Equal(prior.Name) {
		r.publishPlanned(ctx, req.Config, &plan, &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	resp.Diagnostics.Append(r.noteSeen(ctx, resp.Private, plan.Name.ValueString())...)
}

func (r *ReleaseResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {
	// Published versions are immutable: destroying forgets the release.
}

func (r *ReleaseResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	i := strings.LastIndex(req.ID, "@")
	if i < 0 {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("Import a release as name@version, e.g. `terraform import immutable_release.web web@1.4.2`; got %q.", req.ID))
		return
	}
	name, version := req.ID[:i], req.ID[i+1:]
	if err := release.CheckName(name); err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	if _, err := versions.Parse(version); err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("version"), version)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	// Not part of a record: the schema's default, so a configuration that
	// leaves it unset plans nothing after the import.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("version_bump"), "patch")...)
}

// releaseError turns an error of the release package into a diagnostic.
func releaseError(st *store.Store, name string, err error) diag.Diagnostic {
	var conflict *release.ConflictError
	var tampered *release.TamperedError
	var tooLarge *release.TooLargeError
	var oversize *release.OversizeRecordError
	var yankedContent *release.YankedContentError
	var untrusted *release.UntrustedRecordError
	var channelPolicy *release.ChannelPolicyError
	switch {
	case errors.As(err, &untrusted):
		return untrustedError(untrusted)
	case errors.As(err, new(*release.MoveRecordError)):
		return diag.NewErrorDiagnostic("Channel move approved another record", fmt.Sprintf("In %s: %s.", st, upperFirst(err.Error())))
	case errors.As(err, new(*release.ForeignRecordError)):
		return diag.NewErrorDiagnostic("Record written by someone else", fmt.Sprintf("In %s: %v.", st, err))
	case errors.As(err, &channelPolicy):
		return channelPolicyError(channelPolicy)
	case errors.As(err, &tooLarge):
		todo := "Keep large values out of `metadata`: store them as an immutable_artifact and put its digest in `artifacts`."
		switch tooLarge.Attribute() {
		case "artifacts":
			todo = "Split the release into several releases, or group files into fewer directory artifacts."
		case "images":
			todo = "Split the release into several releases."
		}
		return diag.NewAttributeErrorDiagnostic(path.Root(tooLarge.Attribute()), "Release too large",
			fmt.Sprintf("%v. Nothing was written. %s", err, todo))
	case errors.As(err, &oversize):
		return diag.NewErrorDiagnostic("Release record too large to read",
			fmt.Sprintf("In %s: %v. Publish its content again, with less metadata, under a new version.", st, err))
	case errors.As(err, &conflict):
		return diag.NewAttributeErrorDiagnostic(path.Root("version"), "Version already published",
			fmt.Sprintf("%v; versions are immutable and this configuration has other content, so nothing was written. "+
				"Choose another `version`, or remove `version` to publish the next free one.", conflict))
	case errors.As(err, new(*release.CollectedError)):
		return diag.NewAttributeErrorDiagnostic(path.Root("version"), "Version deleted by retention",
			fmt.Sprintf("%v. Nothing was written.", err))
	case errors.As(err, &yankedContent):
		return diag.NewAttributeErrorDiagnostic(path.Root("artifacts"), "Content of a yanked version",
			fmt.Sprintf("Nothing was written: %v.", err))
	case errors.As(err, &tampered) && tampered.Family() == store.FamilyYank:
		return diag.NewErrorDiagnostic("Yank entry altered", fmt.Sprintf("In %s: %v. Yank entries are written once by the provider: "+
			"restore it from a backup, or delete it (and nothing else) if it was written by hand.", st, err))
	case errors.As(err, &tampered) && tampered.Family() == store.FamilyMove:
		return diag.NewErrorDiagnostic("Channel entry altered", fmt.Sprintf("In %s: %v. Channel moves are written once by the "+
			"provider: restore it from a backup, or delete it (and nothing else) if it was written by hand.", st, err))
	case errors.As(err, &tampered):
		return diag.NewErrorDiagnostic("Release record altered", fmt.Sprintf("In %s: %v. Restore it from a backup.", st, err))
	}
	return storeReadError(st, fmt.Errorf("release %q: %w", name, err))
}
