package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

var (
	_ datasource.DataSource              = (*ReleaseDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*ReleaseDataSource)(nil)
)

// ReleaseDataSource is data.immutable_release: one published version.
type ReleaseDataSource struct {
	data *providerData
}

// NewReleaseDataSource returns the data source.
func NewReleaseDataSource() datasource.DataSource { return &ReleaseDataSource{} }

type releaseDataModel struct {
	ID                 types.String `tfsdk:"id"`
	Name               types.String `tfsdk:"name"`
	Version            types.String `tfsdk:"version"`
	IncludePrereleases types.Bool   `tfsdk:"include_prereleases"`
	ResolvedVersion    types.String `tfsdk:"resolved_version"`
	Digest             types.String `tfsdk:"digest"`
	Artifacts          types.Map    `tfsdk:"artifacts"`
	Images             types.Map    `tfsdk:"images"`
	Metadata           types.Map    `tfsdk:"metadata"`
	PublishedAt        types.String `tfsdk:"published_at"`
	PreviousVersion    types.String `tfsdk:"previous_version"`
	Yanked             types.Bool   `tfsdk:"yanked"`
	YankReason         types.String `tfsdk:"yank_reason"`
}

func (d *ReleaseDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_release"
}

func includePrereleasesAttribute() schema.BoolAttribute {
	return schema.BoolAttribute{
		MarkdownDescription: "Let pre-releases (`2.0.0-rc.1`) match. Without it they match only when asked for by " +
			"exact version or by a constraint that names a pre-release. Default `false`.",
		Optional: true,
	}
}

func (d *ReleaseDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Computed: true}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Looks up one published version of a release: exact, by constraint, or the latest. Pinning " +
			"`version` here is how you roll back: the artifacts of the old version are already stored, nothing is rebuilt. " +
			"A data source is read once, during plan, so the version it picks is the one applied.",
		Attributes: map[string]schema.Attribute{
			"id":   computed("`name@resolved_version`."),
			"name": schema.StringAttribute{MarkdownDescription: "Release name.", Required: true, Validators: []validator.String{releaseNameValidator}},
			"version": schema.StringAttribute{
				MarkdownDescription: "Which version: exact (`1.4.2`), a constraint (`~> 1.4`, `>= 1.0, < 2.0`, as in " +
					"Terraform's own version constraints), or unset for the latest. The highest match that is not yanked " +
					"wins; an exact version resolves even when yanked, with a warning.",
				Optional:   true,
				Validators: []validator.String{constraintValidator},
			},
			"include_prereleases": includePrereleasesAttribute(),
			"resolved_version":    computed("The version found."),
			"digest":              computed("The release digest."),
			"artifacts":           schema.MapAttribute{MarkdownDescription: "Artifact name → digest.", ElementType: types.StringType, Computed: true},
			"images": schema.MapAttribute{
				MarkdownDescription: "Image name → `registry/repository@sha256:…`, pinned by digest: what to give a " +
					"`kubernetes_deployment`'s container `image`, an `aws_ecs_task_definition` or an `aws_lambda_function`'s " +
					"`image_uri`. Pinning `version` to an older one changes these references in place; nothing is built or pushed. " +
					"Empty for a release without images.",
				ElementType: types.StringType,
				Computed:    true,
			},
			"metadata":         schema.MapAttribute{MarkdownDescription: "The release metadata.", ElementType: types.StringType, Computed: true},
			"published_at":     computed("When the version was published (RFC 3339, UTC)."),
			"previous_version": computed("The highest version below it when it was published; null for the first."),
			"yanked":           schema.BoolAttribute{MarkdownDescription: "Whether the version is yanked (only an exact `version` resolves to one).", Computed: true},
			"yank_reason":      computed("Why it was yanked; null when it is not."),
		},
	}
}

func (d *ReleaseDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configureData(req.ProviderData, &resp.Diagnostics)
}

// resolveVersions reads the versions of a release that a selector picks
// (release.Resolve), as diagnostics.
func resolveVersions(ctx context.Context, st *store.Store, name, selector string, includePre bool) (*release.Resolved, diag.Diagnostics) {
	var diags diag.Diagnostics
	r, err := release.Resolve(ctx, st.Backend(), name, selector, includePre)
	var list *release.ListError
	var constraint *release.ConstraintError
	switch {
	case errors.As(err, &list):
		diags.Append(storeReadError(st, list.Err))
	case errors.As(err, &constraint):
		diags.AddAttributeError(path.Root("version"), "Invalid version constraint", constraint.Err.Error())
	case err != nil:
		diags.Append(releaseError(st, name, err))
	}
	return r, diags
}

func (d *ReleaseDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m releaseDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || d.data == nil {
		return
	}
	st, name := d.data.store, m.Name.ValueString()
	r, diags := resolveVersions(ctx, st, name, m.Version.ValueString(), m.IncludePrereleases.ValueBool())
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	v, err := r.Pick(ctx, st.Backend())
	// Under a trust policy, the yank entries that decided the pick (or
	// that no version was left) are checked: an untrusted one is refused,
	// not ignored.
	if terr := r.CheckYanks(ctx, st.Backend(), d.data.trust, v); terr != nil {
		resp.Diagnostics.Append(releaseError(st, name, terr))
		return
	}
	var none *release.NoVersionsError
	var noMatch *release.NoMatchError
	switch {
	case errors.As(err, &none):
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Release not found",
			fmt.Sprintf("Release %q has no published versions in the store %s, so there is no version to look up. "+
				"Check the name and the provider's `store`; if the release is published in this same configuration, "+
				"reference the immutable_release resource's attributes instead, or use data.immutable_releases, whose "+
				"`latest` is null until a version is published.", name, st))
		return
	case errors.As(err, &noMatch):
		what := "no stable version"
		if !m.Version.IsNull() {
			what = fmt.Sprintf("no version matching %q", m.Version.ValueString())
		}
		if noMatch.Skipped > 0 {
			what += fmt.Sprintf(" that is not yanked (%d matching yanked)", noMatch.Skipped)
		}
		if noMatch.Collected != "" {
			what += fmt.Sprintf(": %s was published and later deleted by the store's retention (garbage collection); pin a kept version", noMatch.Collected)
		}
		resp.Diagnostics.AddAttributeError(path.Root("version"), "No matching version",
			fmt.Sprintf("Release %q has %s. Published versions, newest first: %s.", name, what, versions.Newest(noMatch.All, 10)))
		return
	case err != nil:
		resp.Diagnostics.Append(releaseError(st, name, err))
		return
	}
	rec, err := d.data.trust.Get(ctx, st.Backend(), name, v)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("version %s vanished while it was read: %w", v, err)
		}
		resp.Diagnostics.Append(releaseError(st, name, err))
		return
	}
	m.ID = types.StringValue(name + "@" + v)
	m.ResolvedVersion = types.StringValue(v)
	m.Digest = types.StringValue(rec.Digest)
	m.Artifacts = stringMap(rec.Artifacts)
	m.Images = stringMap(rec.Images)
	m.Metadata = stringMap(rec.Metadata)
	m.PublishedAt = types.StringValue(rec.PublishedAt)
	m.PreviousVersion = optionalString(rec.PreviousVersion)
	m.Yanked, m.YankReason = types.BoolValue(false), types.StringNull()
	if y, yanked := r.Yanked(v); yanked {
		m.Yanked, m.YankReason = types.BoolValue(true), types.StringValue(y.Reason)
		resp.Diagnostics.AddAttributeWarning(path.Root("version"), "Version is yanked",
			fmt.Sprintf("%s@%s was yanked on %s: %s. It resolves because it is pinned exactly; a constraint or the latest "+
				"skips it. Pin another version unless you mean to deploy this one.", name, v, y.At, usertext.Show(y.Reason)))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
