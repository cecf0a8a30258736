package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
)

var (
	_ datasource.DataSource              = (*ReleasesDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*ReleasesDataSource)(nil)
)

// ReleasesDataSource is data.immutable_releases: the versions of a release.
type ReleasesDataSource struct {
	data *providerData
}

// NewReleasesDataSource returns the data source.
func NewReleasesDataSource() datasource.DataSource { return &ReleasesDataSource{} }

type releasesDataModel struct {
	ID                 types.String `tfsdk:"id"`
	Name               types.String `tfsdk:"name"`
	Constraint         types.String `tfsdk:"constraint"`
	IncludePrereleases types.Bool   `tfsdk:"include_prereleases"`
	Versions           types.List   `tfsdk:"versions"`
	Latest             types.String `tfsdk:"latest"`
}

var releaseVersionType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"version":          types.StringType,
	"digest":           types.StringType,
	"published_at":     types.StringType,
	"previous_version": types.StringType,
	"yanked":           types.BoolType,
	"yank_reason":      types.StringType,
}}

func (d *ReleasesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_releases"
}

func (d *ReleasesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Lists the published versions of a release in semver order, optionally filtered by a constraint.",
		Attributes: map[string]schema.Attribute{
			"id":   schema.StringAttribute{MarkdownDescription: "The release name.", Computed: true},
			"name": schema.StringAttribute{MarkdownDescription: "Release name.", Required: true, Validators: []validator.String{releaseNameValidator}},
			"constraint": schema.StringAttribute{
				MarkdownDescription: "Keep only versions matching this constraint (`~> 1.4`, `>= 1.0, < 2.0`) or exact version.",
				Optional:            true,
				Validators:          []validator.String{constraintValidator},
			},
			"include_prereleases": includePrereleasesAttribute(),
			"versions": schema.ListAttribute{
				MarkdownDescription: "The matching versions, oldest first: `version`, `digest`, `published_at`, `previous_version`, " +
					"`yanked` and `yank_reason` (yanked versions are listed, flagged). Under the provider's `trust` policy every " +
					"version listed and every yank entry flagging one is checked (one list and one read of signatures per " +
					"record, 8 at a time): one that no trusted key signed is an error at plan naming it; narrow `constraint` " +
					"to leave out versions published before signing.",
				ElementType: releaseVersionType,
				Computed:    true,
			},
			"latest": schema.StringAttribute{MarkdownDescription: "The highest matching version that is not yanked; null when none. Under the provider's `trust` policy it " +
				"is checked, and so are the yank entries that skip the versions above it: an untrusted one is an error at plan, " +
				"not skipped.", Computed: true},
		},
	}
}

func (d *ReleasesDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configureData(req.ProviderData, &resp.Diagnostics)
}

func (d *ReleasesDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m releasesDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || d.data == nil {
		return
	}
	st, name := d.data.store, m.Name.ValueString()
	r, diags := resolveVersions(ctx, st, name, m.Constraint.ValueString(), m.IncludePrereleases.ValueBool())
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	// Every version listed, and every yank entry flagging one, is checked
	// under a trust policy: the list is values a plan can use.
	recs, err := r.Records(ctx, st.Backend(), d.data.trust)
	if err != nil {
		resp.Diagnostics.Append(releaseError(st, name, err))
		return
	}
	elems := make([]attr.Value, 0, len(recs))
	for _, rec := range recs {
		elems = append(elems, types.ObjectValueMust(releaseVersionType.AttrTypes, map[string]attr.Value{
			"version":          types.StringValue(rec.Version),
			"digest":           types.StringValue(rec.Digest),
			"published_at":     types.StringValue(rec.PublishedAt),
			"previous_version": optionalString(rec.PreviousVersion),
			"yanked":           types.BoolValue(yanked(r, rec.Version)),
			"yank_reason":      yankReason(r, rec.Version),
		}))
	}
	list, diags := types.ListValue(releaseVersionType, elems)
	resp.Diagnostics.Append(diags...)
	m.ID = types.StringValue(name)
	m.Versions = list
	m.Latest = types.StringNull()
	if latest := r.Latest(); latest != nil {
		m.Latest = types.StringValue(latest.Original())
	} else if len(r.Matched) > 0 {
		resp.Diagnostics.AddAttributeWarning(path.Root("constraint"), "Every matching version is yanked",
			fmt.Sprintf("Every published version of %q that matches is yanked; `latest` is null.", name))
	} else if !m.Constraint.IsNull() && len(r.All) > 0 {
		resp.Diagnostics.AddAttributeWarning(path.Root("constraint"), "No version matches",
			fmt.Sprintf("No published version of %q matches %q; `versions` is empty and `latest` null.", name, m.Constraint.ValueString()))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func yanked(r *release.Resolved, v string) bool {
	_, y := r.Yanked(v)
	return y
}

func yankReason(r *release.Resolved, v string) types.String {
	if y, ok := r.Yanked(v); ok {
		return types.StringValue(y.Reason)
	}
	return types.StringNull()
}
