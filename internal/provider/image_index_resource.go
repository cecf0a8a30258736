package provider

import (
	"context"
	"fmt"
	"sort"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/registry"
)

var (
	_ resource.Resource               = (*ImageIndexResource)(nil)
	_ resource.ResourceWithConfigure  = (*ImageIndexResource)(nil)
	_ resource.ResourceWithModifyPlan = (*ImageIndexResource)(nil)
)

// ImageIndexResource is immutable_image_index.
type ImageIndexResource struct {
	data *providerData
}

// NewImageIndexResource returns the resource.
func NewImageIndexResource() resource.Resource { return &ImageIndexResource{} }

type imageIndexModel struct {
	ID         types.String `tfsdk:"id"`
	Repository types.String `tfsdk:"repository"`
	Images     types.List   `tfsdk:"images"`
	Tags       types.Set    `tfsdk:"tags"`
	Digest     types.String `tfsdk:"digest"`
	Ref        types.String `tfsdk:"ref"`
	Manifests  types.Map    `tfsdk:"manifests"`
}

func (r *ImageIndexResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_image_index"
}

func (r *ImageIndexResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A multi-platform image: an OCI image index of `immutable_image`s of one repository, one per " +
			"platform. Its `digest` is known at plan whenever theirs are; apply pushes the index by digest (the images are " +
			"pushed by their own resources) and then points `tags` at it. Clients pull the manifest of their platform.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The index's `ref`."},
			"repository": schema.StringAttribute{
				MarkdownDescription: "Where the index is pushed: the repository of every image in `images`.",
				Required:            true,
			},
			"images": schema.ListAttribute{
				MarkdownDescription: "The platform images, as `immutable_image.NAME.ref`: one per platform, all in `repository`.",
				ElementType:         types.StringType,
				Required:            true,
			},
			"tags": schema.SetAttribute{
				MarkdownDescription: "Tags of `repository` pointed at the index after it is pushed; changing them updates in place.",
				ElementType:         types.StringType,
				Optional:            true,
			},
			"digest": schema.StringAttribute{Computed: true, MarkdownDescription: "The index's digest, known at plan with its images'."},
			"ref":    schema.StringAttribute{Computed: true, MarkdownDescription: "`repository@digest` of the index: what a multi-platform deployment pulls."},
			"manifests": schema.MapAttribute{
				MarkdownDescription: "Each platform (`linux/amd64`, …) to its image's `ref`.",
				ElementType:         types.StringType,
				Computed:            true,
			},
		},
	}
}

func (r *ImageIndexResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configureData(req.ProviderData, &resp.Diagnostics)
}

// entry finds the descriptor and platform of the image ref: planned in
// this operation, else read from the registry.
func (r *ImageIndexResource) entry(ctx context.Context, at path.Path, repo, ref string) (image.IndexEntry, diag.Diagnostics) {
	var diags diag.Diagnostics
	imgRepo, _, err := registry.SplitDigestRef(ref)
	if err != nil {
		diags.AddAttributeError(at, "Invalid image reference", err.Error()+". Pass an immutable_image's `ref`.")
		return image.IndexEntry{}, diags
	}
	if imgRepo != repo {
		diags.AddAttributeError(at, "Image in another repository",
			fmt.Sprintf("%s is in %s, not %s: an index names manifests of its own repository. Set the image's repository to %s.", ref, imgRepo, repo, repo))
		return image.IndexEntry{}, diags
	}
	e, err := r.data.images.Entry(ctx, ref)
	if err == nil {
		return e, diags
	}
	diags.AddAttributeError(at, "Cannot read the image", registryMessage(err))
	return image.IndexEntry{}, diags
}

func (r *ImageIndexResource) assemble(ctx context.Context, m *imageIndexModel) (*image.Index, bool, diag.Diagnostics) {
	var diags diag.Diagnostics
	if m.Repository.IsUnknown() || m.Images.IsUnknown() {
		return nil, false, diags
	}
	repo := m.Repository.ValueString()
	if err := registry.CheckRepository(repo); err != nil {
		diags.AddAttributeError(path.Root("repository"), "Invalid repository", err.Error())
		return nil, true, diags
	}
	var refs []types.String
	if diags.Append(m.Images.ElementsAs(ctx, &refs, false)...); diags.HasError() {
		return nil, true, diags
	}
	if len(refs) == 0 {
		diags.AddAttributeError(path.Root("images"), "No images", "An index needs at least one image.")
		return nil, true, diags
	}
	for _, ref := range refs {
		if ref.IsUnknown() {
			return nil, false, diags
		}
	}
	entries := make([]image.IndexEntry, 0, len(refs))
	for i, ref := range refs {
		e, d := r.entry(ctx, path.Root("images").AtListIndex(i), repo, ref.ValueString())
		if diags.Append(d...); diags.HasError() {
			return nil, true, diags
		}
		entries = append(entries, e)
	}
	idx, err := image.AssembleIndex(entries)
	if err != nil {
		diags.AddAttributeError(path.Root("images"), "Cannot make the index", err.Error())
		return nil, true, diags
	}
	return idx, true, diags
}

func (r *ImageIndexResource) setOutputs(m *imageIndexModel, idx *image.Index) {
	repo := m.Repository.ValueString()
	ref := repo + "@" + idx.Digest.String()
	manifests := map[string]attr.Value{}
	for _, e := range idx.Manifests {
		manifests[e.Platform.String()] = types.StringValue(repo + "@" + e.Digest.String())
	}
	m.ID, m.Ref, m.Digest = types.StringValue(ref), types.StringValue(ref), types.StringValue(idx.Digest.String())
	m.Manifests = types.MapValueMust(types.StringType, manifests)
}

func (r *ImageIndexResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil {
		return
	}
	var plan imageIndexModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...); resp.Diagnostics.HasError() {
		return
	}
	if !plan.Tags.IsUnknown() {
		var tags []types.String
		resp.Diagnostics.Append(plan.Tags.ElementsAs(ctx, &tags, false)...)
		for _, t := range tags {
			if t.IsUnknown() {
				continue
			}
			if err := registry.CheckTag(t.ValueString()); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("tags"), "Invalid tag", err.Error())
			}
		}
		if resp.Diagnostics.HasError() {
			return
		}
	}
	var prior *imageIndexModel
	if !req.State.Raw.IsNull() {
		prior = &imageIndexModel{}
		if resp.Diagnostics.Append(req.State.Get(ctx, prior)...); resp.Diagnostics.HasError() {
			return
		}
	}
	if prior != nil && prior.Repository.Equal(plan.Repository) && prior.Images.Equal(plan.Images) {
		plan.ID, plan.Ref, plan.Digest, plan.Manifests = prior.ID, prior.Ref, prior.Digest, prior.Manifests
	} else {
		idx, known, diags := r.assemble(ctx, &plan)
		if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
			return
		}
		if known {
			r.setOutputs(&plan, idx)
		} else {
			plan.ID, plan.Ref, plan.Digest, plan.Manifests = types.StringUnknown(), types.StringUnknown(), types.StringUnknown(), types.MapUnknown(types.StringType)
		}
	}
	if prior != nil && (!plan.Digest.Equal(prior.Digest) || !plan.Repository.Equal(prior.Repository)) {
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("images"), path.Root("repository"))
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *ImageIndexResource) apply(ctx context.Context, m *imageIndexModel, pushIndex bool) diag.Diagnostics {
	idx, known, diags := r.assemble(ctx, m)
	if diags.HasError() {
		return diags
	}
	if !known {
		diags.AddError("Index inputs unknown at apply", "An image of the index is still unknown at apply. This is a bug in the provider.")
		return diags
	}
	if !m.Digest.IsUnknown() && m.Digest.ValueString() != idx.Digest.String() {
		diags.AddAttributeError(path.Root("images"), "Index changed since plan",
			fmt.Sprintf("The plan was made for %s, but the images now give %s. Nothing was pushed. Run plan again.", m.Digest.ValueString(), idx.Digest))
		return diags
	}
	c, err := r.data.registries.get(ctx)
	if err != nil {
		diags.AddError("Cannot set up the registry client", err.Error())
		return diags
	}
	repo := m.Repository.ValueString()
	if pushIndex {
		if err := c.PushIndex(ctx, repo, idx); err != nil {
			diags.AddError("Cannot push the index", registryMessage(err)+" Nothing was recorded in state.")
			return diags
		}
	}
	var tags []string
	diags.Append(m.Tags.ElementsAs(ctx, &tags, false)...)
	sort.Strings(tags)
	for _, t := range tags {
		if err := registry.CheckTag(t); err != nil {
			diags.AddAttributeError(path.Root("tags"), "Invalid tag", err.Error())
			return diags
		}
		if err := c.Tag(ctx, repo, t, image.Descriptor{MediaType: idx.MediaType, Digest: idx.Digest, Size: int64(len(idx.Manifest))}, idx.Manifest); err != nil {
			diags.AddAttributeError(path.Root("tags"), "Cannot tag the index", registryMessage(err))
			return diags
		}
	}
	r.setOutputs(m, idx)
	return diags
}

func (r *ImageIndexResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	ctx, told := watchGCWaits(ctx) // why a publish waited for a collection
	defer told(&resp.Diagnostics)
	var m imageIndexModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	if resp.Diagnostics.Append(r.apply(ctx, &m, true)...); resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *ImageIndexResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m imageIndexModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	if resp.Diagnostics.Append(r.apply(ctx, &m, false)...); resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// Read keeps the state: an index is identified by its digest.
func (r *ImageIndexResource) Read(context.Context, resource.ReadRequest, *resource.ReadResponse) {}

// Delete forgets the index; nothing is deleted from the registry.
func (r *ImageIndexResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {
}
