package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image/publish"
	"github.com/immutable-infra/terraform-provider-immutable/internal/registry"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

var (
	_ resource.Resource                = (*ImageResource)(nil)
	_ resource.ResourceWithConfigure   = (*ImageResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*ImageResource)(nil)
	_ resource.ResourceWithImportState = (*ImageResource)(nil)
)

// ImageResource is immutable_image.
type ImageResource struct {
	data *providerData
}

// NewImageResource returns the resource.
func NewImageResource() resource.Resource { return &ImageResource{} }

// defaultCreated is the creation time of an image that sets none.
const defaultCreated = "1970-01-01T00:00:00Z"

// defaultPlatform is the platform of an image from scratch that sets none.
const defaultPlatform = publish.DefaultPlatform

type imageModel struct {
	ID          types.String `tfsdk:"id"`
	Repository  types.String `tfsdk:"repository"`
	Base        types.String `tfsdk:"base"`
	Platform    types.String `tfsdk:"platform"`
	Created     types.String `tfsdk:"created"`
	Compression types.String `tfsdk:"compression"`
	Layers      types.List   `tfsdk:"layers"`
	Config      types.Object `tfsdk:"config"`
	Tags        types.Set    `tfsdk:"tags"`

	Digest       types.String `tfsdk:"digest"`
	Ref          types.String `tfsdk:"ref"`
	ConfigDigest types.String `tfsdk:"config_digest"`
	MediaType    types.String `tfsdk:"media_type"`
	Size         types.Int64  `tfsdk:"size"`
	Descriptors  types.List   `tfsdk:"layer_descriptors"`
}

type imageLayerModel struct {
	Digest   types.String `tfsdk:"digest"`
	Path     types.String `tfsdk:"path"`
	UID      types.Int64  `tfsdk:"uid"`
	GID      types.Int64  `tfsdk:"gid"`
	FileMode types.String `tfsdk:"file_mode"`
	DirMode  types.String `tfsdk:"dir_mode"`
}

type imageConfigModel struct {
	Entrypoint   types.List   `tfsdk:"entrypoint"`
	Cmd          types.List   `tfsdk:"cmd"`
	Env          types.Map    `tfsdk:"env"`
	WorkingDir   types.String `tfsdk:"working_dir"`
	User         types.String `tfsdk:"user"`
	ExposedPorts types.Set    `tfsdk:"exposed_ports"`
	Labels       types.Map    `tfsdk:"labels"`
}

var descriptorAttrTypes = map[string]attr.Type{
	"digest": types.StringType, "diff_id": types.StringType, "size": types.Int64Type, "media_type": types.StringType,
}

var descriptorType = types.ObjectType{AttrTypes: descriptorAttrTypes}

func (r *ImageResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_image"
}

func (r *ImageResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = imageSchema()
}

func imageSchema() schema.Schema {
	mode := stringvalidator.RegexMatches(modePattern, "must be an octal permission such as \"0644\" or \"0755\"")
	return schema.Schema{
		MarkdownDescription: "An OCI image made of stored trees — artifacts' and builds' digests — on a base pinned by digest " +
			"or from scratch. Every layer is a deterministic encoding of its tree (`immutable-layer-v1`, in the digest spec " +
			"guide), so the image's `digest` is known at plan whenever its layers' trees are: a change of any file shows as a " +
			"new digest and a replacement in the plan. Apply pushes by digest — only the blobs the registry lacks, then the " +
			"config, then the manifest — and then points `tags` at it. Nothing is pushed at plan; nothing is ever deleted " +
			"from the registry: destroying the resource forgets the image. Refresh asks the registry nothing (a plan of an " +
			"unchanged image makes no registry request); if a registry lost the image, `terraform apply -replace` pushes " +
			"it again. It checks the store still holds the image's record, and records it again if a collector took it.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The image's `ref`.",
				Computed:            true,
			},
			"repository": schema.StringAttribute{
				MarkdownDescription: "Where the image is pushed: `registry/repository` without a tag or digest, as in " +
					"`ghcr.io/acme/api` or `127.0.0.1:5000/api`. Changing it replaces the image (it is pushed there).",
				Required: true,
			},
			"base": schema.StringAttribute{
				MarkdownDescription: "The image to build on, pinned by digest: `registry/repository@sha256:…` — an image " +
					"manifest, or an index of which `platform` is taken. A tag is refused: resolve it with " +
					"`data.immutable_image` and pass its `ref`, so a base bump is a visible digest change. Omit it for an " +
					"image from scratch. The base's manifest and config are read once per plan.",
				Optional: true,
			},
			"platform": schema.StringAttribute{
				MarkdownDescription: "`os/architecture[/variant]`, as in `linux/amd64` or `linux/arm64/v8`. Defaults to the " +
					"base's platform, else `" + defaultPlatform + "`.",
				Optional: true,
				Computed: true,
			},
			"created": schema.StringAttribute{
				MarkdownDescription: "The creation time recorded in the image config and history, RFC 3339 (`2026-01-01T00:00:00Z`). " +
					"Never the clock: the same inputs give the same digest. Default `" + defaultCreated + "`.",
				Optional: true,
				Computed: true,
			},
			"compression": schema.StringAttribute{
				MarkdownDescription: "How the layers are compressed: `gzip` (default; what every registry and runtime takes) " +
					"or `none` (uncompressed tar: the digest equals the diff_id, reproducible by any tar writer).",
				Optional:   true,
				Computed:   true,
				Validators: []validator.String{stringvalidator.OneOf(string(image.Gzip), string(image.Uncompressed))},
			},
			"layers": schema.ListNestedAttribute{
				MarkdownDescription: "The image's own layers, in order, on top of the base's.",
				Required:            true,
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"digest": schema.StringAttribute{
							MarkdownDescription: "A stored tree or file: an `immutable_artifact`'s `digest` or an `immutable_build`'s `digest`.",
							Required:            true,
							Validators:          []validator.String{namedCheck{stringCheck{desc: "must be a digest", summary: "Invalid layer digest", check: digestCheck}}},
						},
						"path": schema.StringAttribute{
							MarkdownDescription: "Where it lands in the image: the directory a tree's files go under (`/app`), " +
								"or a file's own path (`/usr/local/bin/server`). Absolute, no `.` or `..`.",
							Required:   true,
							Validators: []validator.String{namedCheck{stringCheck{desc: "must be an absolute clean path", summary: "Invalid layer path", check: image.CheckPath}}},
						},
						"uid": schema.Int64Attribute{
							MarkdownDescription: "Owner of every file and directory of the layer. Default `0`.",
							Optional:            true,
						},
						"gid": schema.Int64Attribute{
							MarkdownDescription: "Group of every file and directory of the layer. Default `0`.",
							Optional:            true,
						},
						"file_mode": schema.StringAttribute{
							MarkdownDescription: "Permission of every regular file, as `\"0755\"`. By default a tree's files are " +
								"`0644`, or `0755` when executable (the exec bit the digest records); a single file is `0644`: " +
								"set `\"0755\"` for a program.",
							Optional:   true,
							Validators: []validator.String{mode},
						},
						"dir_mode": schema.StringAttribute{
							MarkdownDescription: "Permission of every directory. Default `\"0755\"`.",
							Optional:            true,
							Validators:          []validator.String{mode},
						},
					},
				},
			},
			"config": schema.SingleNestedAttribute{
				MarkdownDescription: "What runs: set fields replace the base's, `env` and `labels` are merged over the base's.",
				Optional:            true,
				Attributes: map[string]schema.Attribute{
					"entrypoint":    schema.ListAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "The program and its first arguments."},
					"cmd":           schema.ListAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "Default arguments (or the command, without an entrypoint)."},
					"env":           schema.MapAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "Environment variables, recorded sorted by name."},
					"working_dir":   schema.StringAttribute{Optional: true, MarkdownDescription: "The working directory."},
					"user":          schema.StringAttribute{Optional: true, MarkdownDescription: "`uid[:gid]` or a user name of the image."},
					"exposed_ports": schema.SetAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "`port/tcp` or `port/udp`."},
					"labels":        schema.MapAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "Labels of the image config."},
				},
			},
			"tags": schema.SetAttribute{
				MarkdownDescription: "Tags of `repository` pointed at the image after it is pushed. Tags are pointers, not " +
					"identity: changing them updates in place, and a plan that moves a tag from another image says from " +
					"which. Registries with immutable tags (ECR `IMMUTABLE`, Harbor rules) need none: deploy by `ref`.",
				ElementType: types.StringType,
				Optional:    true,
			},
			"digest": schema.StringAttribute{
				MarkdownDescription: "The manifest's digest, known at plan whenever the layers' trees are.",
				Computed:            true,
			},
			"ref": schema.StringAttribute{
				MarkdownDescription: "`repository@digest`: what a Kubernetes deployment, an ECS task definition or a Lambda " +
					"function pulls. Known at plan with `digest`.",
				Computed: true,
			},
			"config_digest": schema.StringAttribute{
				MarkdownDescription: "The image config's digest (the image ID `docker images --digests` shows).",
				Computed:            true,
			},
			"media_type": schema.StringAttribute{
				MarkdownDescription: "The manifest's media type: OCI's, or Docker's when the base has a Docker manifest.",
				Computed:            true,
			},
			"size": schema.Int64Attribute{
				MarkdownDescription: "Bytes of the manifest, the config and every layer (compressed), the base's included.",
				Computed:            true,
			},
			"layer_descriptors": schema.ListNestedAttribute{
				MarkdownDescription: "Every layer of the image, the base's first: its `digest` (of the compressed blob), " +
					"`diff_id` (of the tar), `size` and `media_type`.",
				Computed: true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"digest":     schema.StringAttribute{Computed: true, MarkdownDescription: "Digest of the layer blob."},
					"diff_id":    schema.StringAttribute{Computed: true, MarkdownDescription: "Digest of the uncompressed tar."},
					"size":       schema.Int64Attribute{Computed: true, MarkdownDescription: "Size of the layer blob."},
					"media_type": schema.StringAttribute{Computed: true, MarkdownDescription: "Media type of the layer blob."},
				}},
			},
		},
	}
}

func (r *ImageResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configureData(req.ProviderData, &resp.Diagnostics)
}

// plan plans the image of in (remembered as planned in this operation),
// taking unchanged layers from prior.
func (r *ImageResource) plan(ctx context.Context, in imageInputs, prior *imageModel) (*image.Built, diag.Diagnostics) {
	req := in.req
	req.Known = knownLayers(ctx, prior)
	built, err := r.data.images.Plan(ctx, req)
	return built, r.imageDiags(err)
}

// setOutputs fills m's computed values from b. A platform m has already
// (the configuration's) stays as written: it may name the image's
// platform another way (arm64's variant v8 may be left out, or given
// where the base's config leaves it out), and core refuses a planned
// value that is not the configuration's.
func setOutputs(m *imageModel, repository string, b *image.Built) diag.Diagnostics {
	var diags diag.Diagnostics
	descs := make([]attr.Value, len(b.Image.Layers))
	for i, l := range b.Image.Layers {
		v, d := types.ObjectValue(descriptorAttrTypes, map[string]attr.Value{
			"digest": types.StringValue(l.Digest.String()), "diff_id": types.StringValue(b.DiffIDs[i].String()),
			"size": types.Int64Value(l.Size), "media_type": types.StringValue(l.MediaType),
		})
		diags.Append(d...)
		descs[i] = v
	}
	list, d := types.ListValue(descriptorType, descs)
	diags.Append(d...)
	ref := repository + "@" + b.Digest.String()
	m.ID, m.Ref, m.Digest = types.StringValue(ref), types.StringValue(ref), types.StringValue(b.Digest.String())
	m.ConfigDigest, m.MediaType = types.StringValue(b.ConfigDigest.String()), types.StringValue(b.MediaType)
	m.Size, m.Descriptors = types.Int64Value(b.Size), list
	if m.Platform.IsNull() || m.Platform.IsUnknown() {
		// Computed from the base; a configured platform stays as written
		// ("linux/arm64" on a base of linux/arm64/v8, say).
		m.Platform = types.StringValue(b.Platform.String())
	}
	return diags
}

func setUnknownOutputs(m *imageModel) {
	m.ID, m.Ref, m.Digest, m.ConfigDigest, m.MediaType = types.StringUnknown(), types.StringUnknown(), types.StringUnknown(), types.StringUnknown(), types.StringUnknown()
	m.Size, m.Descriptors = types.Int64Unknown(), types.ListUnknown(descriptorType)
	if m.Platform.IsNull() {
		m.Platform = types.StringUnknown()
	}
}

// sameInputs reports whether a and b build the same image (tags aside).
func sameInputs(a, b *imageModel) bool {
	return a.Repository.Equal(b.Repository) && a.Base.Equal(b.Base) && a.Created.Equal(b.Created) &&
		a.Compression.Equal(b.Compression) && a.Layers.Equal(b.Layers) && a.Config.Equal(b.Config) &&
		(a.Platform.Equal(b.Platform) || a.Platform.IsUnknown() || a.Platform.IsNull())
}

func (r *ImageResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil {
		return
	}
	var plan, config imageModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var prior *imageModel
	if !req.State.Raw.IsNull() {
		prior = &imageModel{}
		if resp.Diagnostics.Append(req.State.Get(ctx, prior)...); resp.Diagnostics.HasError() {
			return
		}
	}
	if config.Created.IsNull() {
		plan.Created = types.StringValue(defaultCreated)
	}
	if config.Compression.IsNull() {
		plan.Compression = types.StringValue(string(image.Gzip))
	}
	if config.Platform.IsNull() {
		plan.Platform = types.StringUnknown()
		if prior != nil {
			plan.Platform = prior.Platform
		}
	}
	inputs := plan
	inputs.Platform = config.Platform // computed from the base when not set
	in, known, diags := readInputs(ctx, &inputs)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	switch {
	case !known:
		setUnknownOutputs(&plan)
	case prior != nil && !prior.Digest.IsNull() && sameInputs(&plan, prior) && !prior.Layers.IsNull() && !prior.Descriptors.IsNull():
		// Unchanged: the state's outputs stand, with no request and no encoding.
		plan.ID, plan.Ref, plan.Digest, plan.ConfigDigest, plan.MediaType = prior.ID, prior.Ref, prior.Digest, prior.ConfigDigest, prior.MediaType
		plan.Size, plan.Descriptors, plan.Platform = prior.Size, prior.Descriptors, prior.Platform
	default:
		built, d := r.plan(ctx, in, prior)
		if resp.Diagnostics.Append(d...); resp.Diagnostics.HasError() {
			return
		}
		plan.Platform = config.Platform // the base's, unless set
		if resp.Diagnostics.Append(setOutputs(&plan, in.repository, built)...); resp.Diagnostics.HasError() {
			return
		}
	}
	if prior != nil {
		if !plan.Digest.Equal(prior.Digest) {
			resp.RequiresReplace = append(resp.RequiresReplace, path.Root("digest"))
		}
		if !plan.Repository.Equal(prior.Repository) {
			resp.RequiresReplace = append(resp.RequiresReplace, path.Root("repository"))
		}
	}
	if known && in.tagsKnown && len(in.tags) > 0 {
		resp.Diagnostics.Append(r.warnMovedTags(ctx, in, &plan, prior)...)
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// warnMovedTags says, for each tag this plan starts pointing at the
// image, which image the registry has it point at now (one request per
// such tag; tags the state already points here cost none).
func (r *ImageResource) warnMovedTags(ctx context.Context, in imageInputs, plan, prior *imageModel) diag.Diagnostics {
	var diags diag.Diagnostics
	if plan.Digest.IsUnknown() {
		return diags
	}
	had := map[string]bool{}
	if prior != nil && prior.Digest.Equal(plan.Digest) && prior.Repository.Equal(plan.Repository) {
		var tags []string
		prior.Tags.ElementsAs(ctx, &tags, false)
		for _, t := range tags {
			had[t] = true
		}
	}
	var moved []string
	for _, t := range in.tags {
		if had[t] {
			continue
		}
		c, err := r.data.images.Client(ctx)
		if diags.Append(r.imageDiags(err)...); diags.HasError() {
			return diags
		}
		now, ok, err := c.TagTarget(ctx, in.repository, t)
		if err != nil {
			diags.AddAttributeWarning(path.Root("tags"), "Cannot read a tag", registryMessage(err)+" The plan cannot say where the tag points now.")
			continue
		}
		if ok && now.String() != plan.Digest.ValueString() {
			moved = append(moved, fmt.Sprintf("%s:%s: %s -> %s", in.repository, t, now, plan.Digest.ValueString()))
		}
	}
	if len(moved) > 0 {
		diags.AddAttributeWarning(path.Root("tags"), "Apply moves tags",
			"These tags point at another image now; apply points them at this one:\n  "+strings.Join(moved, "\n  ")+
				"\nTags are pointers: whatever pulls by tag follows. Deploy by `ref` to pin.")
	}
	return diags
}

// built returns the image planned for m in this operation, assembling it
// again if this process did not plan it.
func (r *ImageResource) built(ctx context.Context, m *imageModel) (*image.Built, diag.Diagnostics) {
	planned, _ := digest.Parse(m.Digest.ValueString()) // zero while unknown
	if b, ok := r.data.images.Planned(planned); ok {
		return b, nil
	}
	in, known, diags := readInputs(ctx, m)
	if diags.HasError() {
		return nil, diags
	}
	if !known {
		diags.AddError("Image inputs unknown at apply", "An input of the image is still unknown at apply. This is a bug in the provider.")
		return nil, diags
	}
	built, err := r.data.images.Built(ctx, planned, in.req)
	diags.Append(r.imageDiags(err)...)
	return built, diags
}

// push records and pushes the image of m and points its tags at it.
func (r *ImageResource) push(ctx context.Context, m *imageModel) diag.Diagnostics {
	built, diags := r.built(ctx, m)
	if diags.HasError() {
		return diags
	}
	repo := m.Repository.ValueString()
	var tags []string
	if diags.Append(m.Tags.ElementsAs(ctx, &tags, false)...); diags.HasError() {
		return diags
	}
	pushed, err := r.data.images.Push(ctx, repo, built, tags, publish.BeforePush(r.data.hooks.beforePush))
	if pushed.RecordKept != "" {
		// The same image, recorded as made of other (equivalent) inputs by
		// another configuration: the record stands, the image is the same.
		tflog.Debug(ctx, "image record kept as another configuration wrote it", map[string]any{"key": pushed.RecordKept})
	}
	var tagErr *publish.TagError
	if err == nil || errors.As(err, &tagErr) {
		tflog.Info(ctx, "image pushed", map[string]any{"ref": repo + "@" + built.Digest.String(),
			"uploaded": pushed.Stats.Uploaded, "mounted": pushed.Stats.Mounted, "existing": pushed.Stats.Existing})
	}
	if diags.Append(r.imageDiags(err)...); diags.HasError() {
		return diags
	}
	diags.Append(setOutputs(m, repo, built)...)
	return diags
}

// retag points m's tags at its image, already pushed and recorded; m's
// outputs stay as planned.
func (r *ImageResource) retag(ctx context.Context, m *imageModel) diag.Diagnostics {
	var tags []string
	diags := m.Tags.ElementsAs(ctx, &tags, false)
	diags.Append(r.imageDiags(r.data.images.Retag(ctx, m.Repository.ValueString(), m.Ref.ValueString(), tags))...)
	return diags
}

// imageDiags is the diagnostic of an error of package publish, on the
// attribute it concerns (none for nil). Terraform shows no path of an
// attribute nested in a list: the messages name it.
func (r *ImageResource) imageDiags(err error) diag.Diagnostics {
	var diags diag.Diagnostics
	var (
		client      *publish.ClientError
		base        *publish.BaseError
		layer       *image.LayerError
		changed     *publish.ChangedError
		missing     *publish.TreeMissingError
		record      *publish.RecordError
		interrupted *publish.InterruptedError
		stale       *publish.LayerChangedError
		push        *publish.PushError
		resolve     *publish.ResolveError
		tag         *publish.TagError
	)
	layers := path.Root("layers")
	switch {
	case err == nil:
	case errors.As(err, &client):
		diags.AddError("Cannot set up the registry client", err.Error())
	case errors.As(err, &base):
		diags.AddAttributeError(path.Root("base"), "Cannot read the base image", registryMessage(err))
	case errors.As(err, &layer):
		at := layers.AtListIndex(layer.Index)
		switch {
		case layer.NotStored():
			diags.AddAttributeError(at.AtName("digest"), "Layer content not stored",
				fmt.Sprintf("%s: %s is in neither the store %s nor a source hashed in this plan. Publish it first with an "+
					"immutable_artifact or immutable_build and pass that resource's digest, so Terraform orders them. (%v)",
					at.AtName("digest"), layer.Spec.Tree, r.data.store, layer.Err))
		case errors.Is(layer.Err, image.ErrFileAtRoot):
			diags.AddAttributeError(at.AtName("path"), "Invalid layer path",
				fmt.Sprintf("%s: %v. %s is a single file, not a tree: give the path the file takes in the image.",
					at.AtName("path"), layer.Err, at.AtName("digest")))
		default:
			diags.AddAttributeError(at.AtName("digest"), "Cannot encode the layer", at.AtName("digest").String()+": "+layer.Error())
		}
	case errors.As(err, &changed):
		diags.AddAttributeError(path.Root("digest"), "Image changed since plan",
			fmt.Sprintf("The plan was made for %s, but the inputs now give %s: a layer's content changed between plan and "+
				"apply. Nothing was pushed. Run plan again and review the new digest.", changed.Planned, changed.Built))
	case errors.As(err, &missing):
		diags.AddAttributeError(layers.AtListIndex(missing.Layer).AtName("digest"), "Layer content not stored",
			err.Error()+fmt.Sprintf(" in %s (a garbage collection may have deleted it since plan). Nothing was pushed. Apply "+
				"the artifact or build that makes it again, then this image.", r.data.store))
	case errors.As(err, &record):
		diags.AddError("Cannot record the image in the store", fmt.Sprintf("%v. Nothing was pushed.", err))
	case errors.As(err, &interrupted):
		diags.AddError("Cannot push the image", err.Error())
	case errors.As(err, &stale):
		at := layers.AtListIndex(stale.Layer)
		diags.AddAttributeError(at, "Layer changed since plan",
			fmt.Sprintf("%s no longer gives the content planned for it: %v. A file on disk changed between plan and apply, "+
				"or the store holds a damaged blob. The image's manifest was not pushed and nothing was recorded in state: "+
				"run plan again and review the new digest.", at, stale.Err))
	case errors.As(err, &push):
		diags.AddError("Cannot push the image", registryMessage(err)+" Nothing was recorded in state: the next apply pushes what is missing.")
	case errors.As(err, &resolve):
		diags.AddAttributeError(path.Root("tags"), "Cannot read the image to tag it",
			registryMessage(err)+" If the registry lost the image, replace it: terraform apply -replace=ADDRESS pushes it again.")
	case errors.As(err, &tag):
		diags.AddAttributeError(path.Root("tags"), "Cannot tag the image",
			registryMessage(err)+fmt.Sprintf(" The image itself was pushed: %s.", tag.Ref))
	default:
		diags.AddError("Cannot assemble the image", err.Error())
	}
	return diags
}

func (r *ImageResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	ctx, told := watchGCWaits(ctx) // why a publish waited for a collection
	defer told(&resp.Diagnostics)
	var m imageModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	if resp.Diagnostics.Append(r.push(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *ImageResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m imageModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	// Same digest (a change of it replaces): the image is there; an
	// import's first apply pushes it in case it is not.
	var prior imageModel
	if resp.Diagnostics.Append(req.State.Get(ctx, &prior)...); resp.Diagnostics.HasError() {
		return
	}
	switch {
	case prior.Layers.IsNull() || prior.Descriptors.IsNull():
		// An import's first apply, or an image whose store record is gone
		// (Read found none): record it again and push what is missing.
		resp.Diagnostics.Append(r.push(ctx, &m)...)
	default:
		resp.Diagnostics.Append(r.retag(ctx, &m)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// Read keeps the state: the image is identified by its digest, which
// does not change; the registry is not asked (a plan of an unchanged
// image costs no registry request). It asks the store whether the image's
// record is still there (one request): a collector deletes the record of
// an image no kept release names once it is old, and an export or a
// release diff needs it. Without it the layer descriptors are dropped
// from state, so the plan recomputes them and shows an in-place update
// that records the image again.
func (r *ImageResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if r.data == nil {
		return
	}
	var m imageModel
	if resp.Diagnostics.Append(req.State.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	sum, err := digest.Parse(m.Digest.ValueString())
	if err != nil || m.Layers.IsNull() || m.Descriptors.IsNull() {
		return
	}
	ok, err := r.data.store.Backend().Exists(ctx, store.ImageKey(sum))
	if err != nil {
		resp.Diagnostics.AddWarning("Cannot check the image's record",
			fmt.Sprintf("Could not ask the store %s for the record of %s: %v. The plan assumes it is there.", r.data.store, sum, err))
		return
	}
	if !ok {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("layer_descriptors"), types.ListNull(descriptorType))...)
	}
}

// Delete forgets the image. Nothing is deleted from the registry: a
// published digest may be deployed anywhere.
func (r *ImageResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}

func (r *ImageResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	repo, sum, err := registry.SplitDigestRef(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("%v. Import an image by its reference: terraform import immutable_image.NAME registry/repository@sha256:<64 hex>.", err))
		return
	}
	ref := repo + "@" + sum.String()
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), ref)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("ref"), ref)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("repository"), repo)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("digest"), sum.String())...)
}

// plannedSource reads content this operation hashed from disk.
type plannedSource struct{ d *providerData }

func (p plannedSource) Listing(ctx context.Context, sum digest.Sum) (*digest.Listing, bool, error) {
	return p.d.sources.PlannedListing(ctx, sum)
}

func (p plannedSource) Open(ctx context.Context, sum digest.Sum) (io.ReadCloser, error) {
	return p.d.sources.OpenPlanned(ctx, sum)
}

// registryMessage is a registry error's text (package registry's errors
// say what to do; anything else is shown as it is).
func registryMessage(err error) string {
	return strings.TrimSuffix(err.Error(), ".") + "."
}
