package provider

import (
	"context"
	"errors"
	"fmt"

	goversion "github.com/hashicorp/go-version"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

var (
	_ datasource.DataSource              = (*ReleaseDiffDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*ReleaseDiffDataSource)(nil)
)

// ReleaseDiffDataSource is data.immutable_release_diff: what changed
// between two published versions of a release.
type ReleaseDiffDataSource struct {
	data *providerData
}

// NewReleaseDiffDataSource returns the data source.
func NewReleaseDiffDataSource() datasource.DataSource { return &ReleaseDiffDataSource{} }

// Bounds of max_file_changes: the lines are in every plan and state that
// holds the data source.
const (
	defaultFileChanges = 100
	maxFileChanges     = 10000
)

type releaseDiffModel struct {
	ID               types.String `tfsdk:"id"`
	Name             types.String `tfsdk:"name"`
	From             types.String `tfsdk:"from"`
	To               types.String `tfsdk:"to"`
	MaxFileChanges   types.Int64  `tfsdk:"max_file_changes"`
	FromDigest       types.String `tfsdk:"from_digest"`
	ToDigest         types.String `tfsdk:"to_digest"`
	ArtifactsAdded   types.Map    `tfsdk:"artifacts_added"`
	ArtifactsRemoved types.Map    `tfsdk:"artifacts_removed"`
	ArtifactsChanged types.Map    `tfsdk:"artifacts_changed"`
	MetadataAdded    types.Map    `tfsdk:"metadata_added"`
	MetadataRemoved  types.Map    `tfsdk:"metadata_removed"`
	MetadataChanged  types.Map    `tfsdk:"metadata_changed"`
	ImagesAdded      types.Map    `tfsdk:"images_added"`
	ImagesRemoved    types.Map    `tfsdk:"images_removed"`
	ImagesChanged    types.Map    `tfsdk:"images_changed"`
}

var (
	valueChangeType = types.ObjectType{AttrTypes: map[string]attr.Type{"from": types.StringType, "to": types.StringType}}

	artifactChangeType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"from":          types.StringType,
		"to":            types.StringType,
		"files_added":   types.Int64Type,
		"files_removed": types.Int64Type,
		"files_changed": types.Int64Type,
		"file_changes":  types.ListType{ElemType: types.StringType},
	}}

	imageChangeType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"from":           types.StringType,
		"to":             types.StringType,
		"layers_added":   types.Int64Type,
		"layers_removed": types.Int64Type,
		"layer_changes":  types.ListType{ElemType: types.StringType},
		"layers_unknown": types.StringType,
	}}
)

func (d *ReleaseDiffDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_release_diff"
}

func (d *ReleaseDiffDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	stringMapOut := func(desc string) schema.MapAttribute {
		return schema.MapAttribute{MarkdownDescription: desc, ElementType: types.StringType, Computed: true}
	}
	digestOut := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Computed: true}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "What changed between two published versions of a release: artifacts added, removed and " +
			"changed; for each changed directory artifact the files added, removed and changed; images added, removed and " +
			"changed, and for each changed image built by `immutable_image` its layers added and removed; metadata keys " +
			"added, removed and changed. Works for any two stored versions, in either order (`from` is the older side of the " +
			"comparison). Each changed directory artifact costs two reads of its stored listing, however many files it " +
			"has; the file lines are bounded by `max_file_changes`, the counts are always complete.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{MarkdownDescription: "`name@from..to`.", Computed: true},
			"name": schema.StringAttribute{
				MarkdownDescription: "Release name.",
				Required:            true,
				Validators:          []validator.String{releaseNameValidator},
			},
			"from": schema.StringAttribute{
				MarkdownDescription: "The version to compare from, exact (`1.4.1`): what was there before.",
				Required:            true,
				Validators:          []validator.String{versionValidator},
			},
			"to": schema.StringAttribute{
				MarkdownDescription: "The version to compare to, exact (`1.4.2`). Unset: the latest stable version, as " +
					"`data.immutable_release` picks it; then this attribute holds the version found.",
				Optional:   true,
				Computed:   true,
				Validators: []validator.String{versionValidator},
			},
			"max_file_changes": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("At most this many lines in each changed artifact's `file_changes` "+
					"(default %d, at most %d), so that a large tree cannot flood the plan. The bound is per artifact: a release "+
					"of many changed directories holds up to this many lines for each. The counts are never bounded.",
					defaultFileChanges, maxFileChanges),
				Optional:   true,
				Validators: []validator.Int64{int64validator.Between(0, maxFileChanges)},
			},
			"from_digest":       digestOut("The release digest of `from`."),
			"to_digest":         digestOut("The release digest of `to`; equal to `from_digest` when nothing changed."),
			"artifacts_added":   stringMapOut("Artifacts only in `to`: name → digest."),
			"artifacts_removed": stringMapOut("Artifacts only in `from`: name → digest."),
			"artifacts_changed": schema.MapNestedAttribute{
				MarkdownDescription: "Artifacts in both with another digest, by name. The file attributes compare the two " +
					"stored listings when both digests are directory artifacts; they are null for a file or inline-content " +
					"artifact, whose change is its digests.",
				Computed: true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"from":          schema.StringAttribute{MarkdownDescription: "The digest in `from`.", Computed: true},
					"to":            schema.StringAttribute{MarkdownDescription: "The digest in `to`.", Computed: true},
					"files_added":   schema.Int64Attribute{MarkdownDescription: "How many files and symlinks are new.", Computed: true},
					"files_removed": schema.Int64Attribute{MarkdownDescription: "How many are gone.", Computed: true},
					"files_changed": schema.Int64Attribute{
						MarkdownDescription: "How many changed content or kind (a file that became executable, say).",
						Computed:            true,
					},
					"file_changes": schema.ListAttribute{
						MarkdownDescription: "The first `max_file_changes` changes in path order, one a line: `+ path` " +
							"(added), `- path` (removed), `~ path` (changed). Fewer than `files_added + files_removed + " +
							"files_changed` when the bound cut the list.",
						ElementType: types.StringType,
						Computed:    true,
					},
				}},
			},
			"images_added":   stringMapOut("Images only in `to`: name → reference."),
			"images_removed": stringMapOut("Images only in `from`: name → reference."),
			"images_changed": schema.MapNestedAttribute{
				MarkdownDescription: "Images in both with another reference, by name. When the store holds the record of " +
					"both images (each image `immutable_image` built on this store has one), their own layers are compared " +
					"by digest; otherwise the layer attributes are null and `layers_unknown` says why.",
				Computed: true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"from":           schema.StringAttribute{MarkdownDescription: "The reference in `from`.", Computed: true},
					"to":             schema.StringAttribute{MarkdownDescription: "The reference in `to`.", Computed: true},
					"layers_added":   schema.Int64Attribute{MarkdownDescription: "How many of `to`'s own layers `from` lacks.", Computed: true},
					"layers_removed": schema.Int64Attribute{MarkdownDescription: "How many of `from`'s own layers `to` lacks.", Computed: true},
					"layer_changes": schema.ListAttribute{
						MarkdownDescription: "One line per change: `~ base <from> -> <to>` when the images have other bases " +
							"(`scratch` for none), then `- <digest> <path>` for each layer removed and `+ <digest> <path>` for each " +
							"layer added, `<path>` being where the layer's tree lands in the image.",
						ElementType: types.StringType,
						Computed:    true,
					},
					"layers_unknown": schema.StringAttribute{
						MarkdownDescription: "Why the layers were not compared (an image built elsewhere has no record in the " +
							"store); null when they were.",
						Computed: true,
					},
				}},
			},
			"metadata_added":   stringMapOut("Metadata keys only in `to`, with their values."),
			"metadata_removed": stringMapOut("Metadata keys only in `from`, with their values there."),
			"metadata_changed": schema.MapNestedAttribute{
				MarkdownDescription: "Metadata keys in both with another value: key → `{ from, to }`.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"from": schema.StringAttribute{MarkdownDescription: "The value in `from`.", Computed: true},
					"to":   schema.StringAttribute{MarkdownDescription: "The value in `to`.", Computed: true},
				}},
			},
		},
	}
}

func (d *ReleaseDiffDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configureData(req.ProviderData, &resp.Diagnostics)
}

func (d *ReleaseDiffDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m releaseDiffModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || d.data == nil {
		return
	}
	st, name := d.data.store, m.Name.ValueString()
	// Every stable version: "to" defaults to the latest of them not
	// yanked, so the yanks are read only when "to" is not given.
	r, err := release.Select(ctx, st.Backend(), name, "", false)
	var list *release.ListError
	switch {
	case errors.As(err, &list):
		resp.Diagnostics.Append(storeReadError(st, list.Err))
		return
	case err != nil:
		resp.Diagnostics.Append(releaseError(st, name, err))
		return
	}
	all := r.All
	if len(all) == 0 {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Release not found",
			fmt.Sprintf("Release %q has no published versions in the store %s, so there is nothing to compare. Check "+
				"the name and the provider's `store`.", name, st))
		return
	}
	from := r.Find(m.From.ValueString())
	if from == nil {
		resp.Diagnostics.AddAttributeError(path.Root("from"), "Version not found",
			fmt.Sprintf("Release %q has no version %s in the store %s. Published versions, newest first: %s.",
				name, m.From.ValueString(), st, versions.Newest(all, 10)))
		return
	}
	var to *goversion.Version
	if m.To.IsNull() {
		if err := r.ReadYanks(ctx, st.Backend()); err != nil {
			resp.Diagnostics.Append(releaseError(st, name, err))
			return
		}
		to = r.Latest()
		picked := ""
		if to != nil {
			picked = to.Original()
		}
		// The yank entries that decided `to` are checked under a policy.
		if err := r.CheckYanks(ctx, st.Backend(), d.data.trust, picked); err != nil {
			resp.Diagnostics.Append(releaseError(st, name, err))
			return
		}
		if to == nil {
			resp.Diagnostics.AddAttributeError(path.Root("to"), "No stable version",
				fmt.Sprintf("Release %q has no stable version that is not yanked to compare to: set `to` to one of "+
					"them. Published versions, newest first: %s.", name, versions.Newest(all, 10)))
			return
		}
	} else if to = r.Find(m.To.ValueString()); to == nil {
		resp.Diagnostics.AddAttributeError(path.Root("to"), "Version not found",
			fmt.Sprintf("Release %q has no version %s in the store %s. Published versions, newest first: %s.",
				name, m.To.ValueString(), st, versions.Newest(all, 10)))
		return
	}

	older, diags := getRecord(ctx, st, d.data.trust, name, from.Original())
	resp.Diagnostics.Append(diags...)
	newer, diags := getRecord(ctx, st, d.data.trust, name, to.Original())
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	limit := int64(defaultFileChanges)
	if !m.MaxFileChanges.IsNull() {
		limit = m.MaxFileChanges.ValueInt64()
	}
	diff, err := release.Compare(ctx, older, newer, release.StoreListings(st), int(limit))
	if err != nil {
		resp.Diagnostics.Append(storeReadError(st, fmt.Errorf("comparing the listings of release %q: %w", name, err)))
		return
	}
	if err := diff.CompareLayers(ctx, release.StoreImageRecords(st)); err != nil {
		var corrupt *image.CorruptRecordError
		if errors.As(err, &corrupt) {
			resp.Diagnostics.AddError("Image record altered", fmt.Sprintf("In %s, comparing the images of release %q: %v. "+
				"Image records are written once by immutable_image: restore it from a backup, or delete it (and nothing "+
				"else): its image then shows as unknown here.", st, name, err))
			return
		}
		resp.Diagnostics.Append(storeReadError(st, fmt.Errorf("comparing the images of release %q: %w", name, err)))
		return
	}

	m.ID = types.StringValue(name + "@" + older.Version + ".." + newer.Version)
	m.From, m.To = types.StringValue(older.Version), types.StringValue(newer.Version)
	m.FromDigest, m.ToDigest = types.StringValue(older.Digest), types.StringValue(newer.Digest)
	m.ArtifactsAdded, m.ArtifactsRemoved = stringMap(diff.ArtifactsAdded), stringMap(diff.ArtifactsRemoved)
	m.MetadataAdded, m.MetadataRemoved = stringMap(diff.MetadataAdded), stringMap(diff.MetadataRemoved)

	changed := make(map[string]attr.Value, len(diff.ArtifactsChanged))
	for k, c := range diff.ArtifactsChanged {
		obj := map[string]attr.Value{
			"from": types.StringValue(c.From), "to": types.StringValue(c.To),
			"files_added": types.Int64Null(), "files_removed": types.Int64Null(), "files_changed": types.Int64Null(),
			"file_changes": types.ListNull(types.StringType),
		}
		if f := c.Files; f != nil {
			obj["files_added"] = types.Int64Value(int64(f.Added))
			obj["files_removed"] = types.Int64Value(int64(f.Removed))
			obj["files_changed"] = types.Int64Value(int64(f.Changed))
			lines, diags := types.ListValueFrom(ctx, types.StringType, f.Lines)
			resp.Diagnostics.Append(diags...)
			obj["file_changes"] = lines
		}
		v, diags := types.ObjectValue(artifactChangeType.AttrTypes, obj)
		resp.Diagnostics.Append(diags...)
		changed[k] = v
	}
	var diags2 diag.Diagnostics
	m.ArtifactsChanged, diags2 = types.MapValue(artifactChangeType, changed)
	resp.Diagnostics.Append(diags2...)

	meta := make(map[string]attr.Value, len(diff.MetadataChanged))
	for k, c := range diff.MetadataChanged {
		v, diags := types.ObjectValue(valueChangeType.AttrTypes, map[string]attr.Value{"from": types.StringValue(c.From), "to": types.StringValue(c.To)})
		resp.Diagnostics.Append(diags...)
		meta[k] = v
	}
	m.MetadataChanged, diags2 = types.MapValue(valueChangeType, meta)
	resp.Diagnostics.Append(diags2...)

	m.ImagesAdded, m.ImagesRemoved = stringMap(diff.ImagesAdded), stringMap(diff.ImagesRemoved)
	images := make(map[string]attr.Value, len(diff.ImagesChanged))
	for k, c := range diff.ImagesChanged {
		obj := map[string]attr.Value{
			"from": types.StringValue(c.From), "to": types.StringValue(c.To),
			"layers_added": types.Int64Null(), "layers_removed": types.Int64Null(),
			"layer_changes": types.ListNull(types.StringType), "layers_unknown": optionalString(c.Unknown),
		}
		if l := c.Layers; l != nil {
			obj["layers_added"], obj["layers_removed"] = types.Int64Value(int64(len(l.Added))), types.Int64Value(int64(len(l.Removed)))
			lines, diags := types.ListValueFrom(ctx, types.StringType, l.Lines())
			resp.Diagnostics.Append(diags...)
			obj["layer_changes"] = lines
		}
		v, diags := types.ObjectValue(imageChangeType.AttrTypes, obj)
		resp.Diagnostics.Append(diags...)
		images[k] = v
	}
	m.ImagesChanged, diags2 = types.MapValue(imageChangeType, images)
	resp.Diagnostics.Append(diags2...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// getRecord reads one version's record, which a listing has just shown,
// and checks it under trust.
func getRecord(ctx context.Context, st *store.Store, trust *release.Trust, name, version string) (*release.Record, diag.Diagnostics) {
	var diags diag.Diagnostics
	rec, err := trust.Get(ctx, st.Backend(), name, version)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("version %s vanished while it was read: %w", version, err)
		}
		diags.Append(releaseError(st, name, err))
	}
	return rec, diags
}
