package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
)

var (
	_ datasource.DataSource              = (*ImageDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*ImageDataSource)(nil)
)

// ImageDataSource is data.immutable_image.
type ImageDataSource struct {
	data *providerData
}

// NewImageDataSource returns the data source.
func NewImageDataSource() datasource.DataSource { return &ImageDataSource{} }

type imageDataModel struct {
	Name      types.String `tfsdk:"name"`
	Platform  types.String `tfsdk:"platform"`
	Digest    types.String `tfsdk:"digest"`
	Ref       types.String `tfsdk:"ref"`
	MediaType types.String `tfsdk:"media_type"`
	Index     types.String `tfsdk:"index_ref"`
	Platforms types.Map    `tfsdk:"platforms"`
}

func (d *ImageDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_image"
}

func (d *ImageDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Resolves an image reference — usually a tag, as in `gcr.io/distroless/static:nonroot` — to the " +
			"digest the registry serves now, at plan. Pass its `ref` as an `immutable_image`'s `base`: the base is then pinned " +
			"by digest in the plan and the state, and a base bump is a visible digest change. One request (two when `platform` " +
			"is set) per plan.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				MarkdownDescription: "An image reference: `registry/repository:tag` or `registry/repository@sha256:…`.",
				Required:            true,
			},
			"platform": schema.StringAttribute{
				MarkdownDescription: "When `name` is an index (a multi-platform image), the platform to take, as " +
					"`linux/amd64`: `ref` and `digest` are then that platform's manifest. Without it they are the index's. " +
					"When `name` is one image, its config must be for this platform: an image of another platform is an error.",
				Optional: true,
			},
			"digest": schema.StringAttribute{
				MarkdownDescription: "The digest `name` resolves to (the platform manifest's with `platform`).",
				Computed:            true,
			},
			"ref": schema.StringAttribute{
				MarkdownDescription: "`registry/repository@digest`: pass it as `base`, or deploy it.",
				Computed:            true,
			},
			"media_type": schema.StringAttribute{
				MarkdownDescription: "The media type of what `ref` names: an image manifest or an index.",
				Computed:            true,
			},
			"index_ref": schema.StringAttribute{
				MarkdownDescription: "`registry/repository@digest` of the index `name` resolves to, when it is one; else null.",
				Computed:            true,
			},
			"platforms": schema.MapAttribute{
				MarkdownDescription: "For an index: each platform (`linux/amd64`, `linux/arm64/v8`, …) to its manifest's `ref`.",
				ElementType:         types.StringType,
				Computed:            true,
			},
		},
	}
}

func (d *ImageDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configureData(req.ProviderData, &resp.Diagnostics)
}

func (d *ImageDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m imageDataModel
	if resp.Diagnostics.Append(req.Config.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	var want *image.Platform
	if !m.Platform.IsNull() {
		p, err := image.ParsePlatform(m.Platform.ValueString())
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("platform"), "Invalid platform", err.Error())
			return
		}
		want = &p
	}
	c, err := d.data.registries.get(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Cannot set up the registry client", err.Error())
		return
	}
	res, err := c.Resolve(ctx, m.Name.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot resolve the image", registryMessage(err))
		return
	}
	platforms := map[string]attr.Value{}
	for _, e := range res.Platforms {
		platforms[e.Platform.String()] = types.StringValue(res.Repository + "@" + e.Digest.String())
	}
	m.Platforms = types.MapValueMust(types.StringType, platforms)
	m.Index = types.StringNull()
	m.Digest, m.MediaType = types.StringValue(res.Digest.String()), types.StringValue(res.MediaType)
	if len(res.Platforms) > 0 {
		m.Index = types.StringValue(res.Repository + "@" + res.Digest.String())
		if want != nil {
			e, err := image.PickPlatform(res.Platforms, *want)
			if err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("platform"), "Platform not in the index",
					fmt.Sprintf("%s: %v.", m.Name.ValueString(), err))
				return
			}
			m.Digest, m.MediaType = types.StringValue(e.Digest.String()), types.StringValue(e.MediaType)
		}
	}
	if want != nil && res.Platforms == nil {
		// One image, not an index: it is the platform asked for, or an
		// error; an image of another platform deployed where that one
		// runs fails only when it starts.
		got, err := c.Platform(ctx, res)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("platform"), "Cannot read the image's platform", registryMessage(err))
			return
		}
		if !got.Matches(*want) {
			resp.Diagnostics.AddAttributeError(path.Root("platform"), "Platform not in the image",
				fmt.Sprintf("%s is an image for %s, not %s (one image, not an index of several platforms). Give the image "+
					"built for %s, or set platform to %s.", m.Name.ValueString(), got, want, want, got))
			return
		}
	}
	m.Ref = types.StringValue(res.Repository + "@" + m.Digest.ValueString())
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
