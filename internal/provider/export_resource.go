package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/export"
	"github.com/immutable-infra/terraform-provider-immutable/internal/fsguard"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

var (
	_ resource.Resource                = (*ExportResource)(nil)
	_ resource.ResourceWithConfigure   = (*ExportResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*ExportResource)(nil)
	_ resource.ResourceWithImportState = (*ExportResource)(nil)
)

// ExportResource is immutable_export: a stored artifact written out to a
// local path. The logic is in internal/export; this is glue.
type ExportResource struct {
	data *providerData
}

// NewExportResource returns the resource.
func NewExportResource() resource.Resource { return &ExportResource{} }

type exportModel struct {
	ID           types.String `tfsdk:"id"`
	Digest       types.String `tfsdk:"digest"`
	Path         types.String `tfsdk:"path"`
	Format       types.String `tfsdk:"format"`
	SHA256       types.String `tfsdk:"sha256"`
	Base64SHA256 types.String `tfsdk:"base64sha256"`
	Drift        types.String `tfsdk:"drift"`
}

// privateWritten is the private-state key recording what an export wrote
// and where: Read checks it, Update replaces it, Delete removes exactly it.
const privateWritten = "written"

type written struct {
	Target string        `json:"target"` // absolute, as export.Target gave it
	Digest string        `json:"digest"`
	Format export.Format `json:"format"`
	SHA256 string        `json:"sha256,omitempty"` // of the file written; "" for a directory
	// Tree is the sha256 of the listing an oci-layout export wrote (its
	// files, named by their digests), which refresh compares the
	// directory with; "" for other formats, whose digest is the tree's.
	Tree string `json:"tree,omitempty"`
	// The directories a directory export made, so destroy leaves ones
	// made again by someone at the same paths; absent in the state of
	// older versions, and where the system cannot tell.
	Dirs *export.Dirs `json:"dirs,omitempty"`
}

func getWritten(ctx context.Context, p privateGetter) *written {
	var w written
	if b := privateValue(ctx, p, privateWritten); len(b) == 0 || json.Unmarshal(b, &w) != nil || w.Target == "" {
		return nil
	}
	return &w
}

func setWritten(ctx context.Context, p privateSetter, w written) diag.Diagnostics {
	b, _ := json.Marshal(w) // plain strings always encode
	return p.SetKey(ctx, privateWritten, b)
}

func (r *ExportResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_export"
}

func exportSchema() schema.Schema {
	return schema.Schema{
		MarkdownDescription: "Writes a stored artifact — by digest, typically a pinned release's " +
			"`data.immutable_release.x.artifacts[\"site\"]` — to a local path: a directory tree, a single file, or a " +
			"zip / tar.gz made by the same reproducible archiver as `immutable_artifact`. It also writes an image built by " +
			"`immutable_image`, without a registry, for air-gapped hosts: as an OCI image layout directory (`skopeo copy " +
			"oci:PATH`, `crane push PATH`) or as one tar that `docker load` and `podman load` read. Rolling back is pinning the " +
			"release's version: the export is updated in place to that version's exact bytes, and nothing is rebuilt.\n\n" +
			"The content is written into a sibling temporary path, verified against the digest as it is read from the " +
			"store, flushed to disk, and renamed into place in one step: a reader (a web server, a deploy tool) sees the " +
			"old content or the whole new one, never half a tree; on Linux a directory is swapped in one " +
			"`rename(2)` and never disappears. Files of the old content that hash to what the new one needs are copied " +
			"locally instead of downloaded. Refresh checks the export's own files at `path`: changed or missing ones are " +
			"shown in `drift` and written again by the next apply. What someone else added inside the directory is not the " +
			"export's: an update carries it over into the new content (hard-linked, never copied or lost; a path the new " +
			"content needs is refused), and destroy leaves it. The export refuses a `path` inside a store, one holding a " +
			"store, and any existing path it did not write.\n\n" +
			"There is no `terraform import`: importing would mean taking over a path the provider did not write, which " +
			"is what the resource refuses to do. Move the old copy away and let the export write its own.\n\n" +
			"Under the provider's `trust` policy, `digest` is trusted as the configuration that gives it is: the export " +
			"verifies every byte it writes against it (a hash, which no signature can add to) and does not ask who " +
			"published it. A release's artifact digests reach an export only through the data sources that check the " +
			"release's signature at plan (`immutable_release`, `immutable_channel`, `immutable_releases`); a digest written " +
			"into the configuration is as trusted as whoever reviews the configuration.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The absolute path written: `path` with its parent directories' symlinks resolved.",
				Computed:            true,
			},
			"digest": schema.StringAttribute{
				MarkdownDescription: "The artifact to write, `sha256:<hex>`: a directory or a file artifact in the store, such " +
					"as `data.immutable_release.x.artifacts[\"site\"]` or `immutable_artifact.x.digest`; with `format` " +
					"`oci-layout` or `docker-archive`, an image's manifest digest (`immutable_image.x.digest`; without one " +
					"of these formats that digest names the manifest's bytes, written as a file). A change updates the " +
					"export in place.",
				Required:   true,
				Validators: []validator.String{digestValidator},
			},
			"path": schema.StringAttribute{
				MarkdownDescription: "Where to write it. A relative path resolves against the directory Terraform runs in " +
					"(write `\"${path.module}/...\"` for a path next to the configuration). Missing parent directories are " +
					"created. The last component is never followed: a symlink there is not written through. Changing it " +
					"replaces the export (the old path is removed, the new one written).",
				Required:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"format": schema.StringAttribute{
				MarkdownDescription: "`directory` (files, exec bits and symlinks as recorded; a directory artifact's default), " +
					"`file` (a file artifact's bytes, mode 0644; its default), `zip` or `tar.gz` (a directory artifact as the " +
					"same reproducible archive `immutable_artifact` builds: byte-identical to its `archive_sha256`); for an image, " +
					"`oci-layout` (a directory: `oci-layout`, `index.json` and `blobs/sha256/`, as the OCI image layout " +
					"specifies) or `docker-archive` (one tar holding the same files and a `manifest.json`, as `docker save` " +
					"writes since Docker 25; the image loads untagged, by its ID). The image's own layers are encoded again from " +
					"their stored trees and checked against its digests; a base image's layers are read from its registry, " +
					"which must be reachable at apply. An image is one `immutable_image`'s `digest`: an index " +
					"(`immutable_image_index`) is not exported; export each platform's image.",
				Optional:   true,
				Computed:   true,
				Validators: []validator.String{stringvalidator.OneOf(export.FormatNames()...)},
			},
			"sha256": schema.StringAttribute{
				MarkdownDescription: "Hex sha256 of the file written (`file`, `zip`, `tar.gz`, `docker-archive`), known at " +
					"plan except for a `docker-archive` (known after apply: it needs every layer's bytes); null for a directory " +
					"or an `oci-layout`. For an archive not stored yet it is computed at plan by building the archive from the store.",
				Computed: true,
			},
			"base64sha256": schema.StringAttribute{
				MarkdownDescription: "The same hash in base64, what `aws_lambda_function.source_code_hash` takes; known at plan.",
				Computed:            true,
			},
			"drift": schema.StringAttribute{
				MarkdownDescription: "What refresh found changed at `path` since the export wrote it (\"index.html changed, " +
					"css/site.css missing\"), or null. A change plans an update that writes the content again; files someone " +
					"added beside the export's own are not drift, and are kept.",
				Computed: true,
			},
		},
	}
}

func (r *ExportResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = exportSchema()
}

func (r *ExportResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configureData(req.ProviderData, &resp.Diagnostics)
}

func (m *exportModel) setSum(sum *digest.Sum) {
	if sum == nil {
		m.SHA256, m.Base64SHA256 = types.StringNull(), types.StringNull()
		return
	}
	m.SHA256 = types.StringValue(sum.Hex())
	m.Base64SHA256 = types.StringValue(base64.StdEncoding.EncodeToString(sum[:]))
}

// loadExport reads what the model's digest names and checks the format.
// At plan, an artifact not stored yet is no error (nil content): an
// immutable_artifact of the same configuration stores it at apply.
func (r *ExportResource) loadExport(ctx context.Context, m *exportModel, configFormat types.String, atPlan bool) (*export.Content, export.Format, diag.Diagnostics) {
	var diags diag.Diagnostics
	sum, err := digest.Parse(m.Digest.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("digest"), "Invalid digest", err.Error())
		return nil, "", diags
	}
	st := r.data.store
	var c *export.Content
	if f := export.Format(configFormat.ValueString()); f.IsImage() {
		c, err = export.LoadImage(ctx, st, sum, f, r.baseOpener())
	} else {
		c, err = export.Load(ctx, st, sum)
	}
	switch {
	case errors.Is(err, store.ErrNotFound) && atPlan:
		return nil, "", diags // maybe stored by another resource in this apply: decided then
	case errors.Is(err, store.ErrNotFound):
		diags.AddAttributeError(path.Root("digest"), "Artifact not in the store",
			fmt.Sprintf("%s is neither a directory nor a file artifact, nor an image, in the store %s. Check the provider's "+
				"`store` setting (or %s): it must be the store the artifact, image or release was published to. Nothing was "+
				"written.", sum, st, EnvStore))
		return nil, "", diags
	case err != nil:
		var mismatch *store.MismatchError
		switch {
		case errors.As(err, &mismatch):
			diags.Append(corruptError(st, sum, err))
		case isImageError(err):
			diags.Append(exportError(st, err))
		default:
			diags.Append(storeReadError(st, err))
		}
		return nil, "", diags
	}
	format := export.Format(configFormat.ValueString())
	if configFormat.IsNull() || configFormat.IsUnknown() {
		format = export.DefaultFormat(c.Kind)
	}
	if err := export.Check(ctx, st, c, format); err != nil {
		diags.Append(exportError(st, err))
		return nil, "", diags
	}
	return c, format, diags
}

// isImageError tells an image that cannot be exported (export.LoadImage)
// from a store that cannot be read.
func isImageError(err error) bool {
	return errors.As(err, new(*export.FormatError)) || errors.As(err, new(*export.NotImageError)) ||
		errors.As(err, new(*export.BaseError)) || errors.As(err, new(*export.ManifestError)) ||
		errors.As(err, new(*image.CorruptRecordError))
}

// exportError explains a failure to check, write or remove an export.
func exportError(st *store.Store, err error) diag.Diagnostic {
	var formatErr *export.FormatError
	var refused *fsguard.RefusedError
	var exists *export.ExistsError
	var conflict *export.ConflictError
	var link *archive.LinkError
	var unsafeName *archive.UnsafeNameError
	var mismatch *store.MismatchError
	var corrupt *archive.CorruptError
	var notImage *export.NotImageError
	var baseErr *export.BaseError
	var blobMismatch *export.BlobMismatchError
	var badManifest *export.ManifestError
	var badRecord *image.CorruptRecordError
	switch {
	case errors.As(err, &formatErr) && formatErr.Format.IsImage():
		return diag.NewAttributeErrorDiagnostic(path.Root("digest"), "Not an image", err.Error()+". Nothing was written.")
	case errors.As(err, &formatErr):
		return diag.NewAttributeErrorDiagnostic(path.Root("format"), "Format does not fit the artifact", err.Error()+".")
	case errors.As(err, &notImage):
		return diag.NewAttributeErrorDiagnostic(path.Root("digest"), "Not an image", err.Error()+". Nothing was written.")
	case errors.As(err, &baseErr):
		return diag.NewAttributeErrorDiagnostic(path.Root("digest"), "Cannot read the base image's layers", err.Error()+
			". Nothing was written.")
	case errors.As(err, &blobMismatch):
		return diag.NewAttributeErrorDiagnostic(path.Root("digest"), "Image blob differs from its digest",
			fmt.Sprintf("Writing the image, %v: a base's registry served other bytes, or an own layer no longer encodes "+
				"as it did when the image was built (its tree in %s was altered?). Nothing was written.", err, st))
	case errors.As(err, &badManifest), errors.As(err, &badRecord):
		return diag.NewAttributeErrorDiagnostic(path.Root("digest"), "Stored image is corrupt",
			fmt.Sprintf("In %s, %v. It is not written out; build the image again. Nothing was written.", st, err))
	case errors.As(err, &refused):
		return diag.NewAttributeErrorDiagnostic(path.Root("path"), "Refusing to write path",
			fmt.Sprintf("path %s. The export writes only new paths, or content it wrote itself, and never into or over a "+
				"store. Choose another path. Nothing was written.", refused.Reason))
	case errors.As(err, &exists):
		return diag.NewAttributeErrorDiagnostic(path.Root("path"), "Refusing to write over an existing path",
			fmt.Sprintf("%v. The export never replaces what it did not write. Choose a new path, or move that one away "+
				"yourself if it may go (also when an earlier apply of this export was interrupted). If it is this export's and "+
				"you tainted it, `terraform untaint` it: Terraform does not tell a provider what a tainted object wrote, and "+
				"drift is repaired by a plain apply anyway. Nothing was written.", err))
	case errors.As(err, &conflict):
		return diag.NewAttributeErrorDiagnostic(path.Root("path"), "Refusing to write over files of others", err.Error()+". Nothing was written.")
	case errors.As(err, &link):
		return diag.NewAttributeErrorDiagnostic(path.Root("digest"), "Cannot export a link that leaves the tree",
			fmt.Sprintf("%v. Whoever serves or unpacks the export would follow it out. Nothing was written.", err))
	case errors.As(err, &unsafeName):
		return diag.NewAttributeErrorDiagnostic(path.Root("digest"), "Cannot export this file name", err.Error()+".")
	case errors.As(err, &corrupt):
		return archiveError(st, "sha256", "read the stored archive", err)
	case errors.As(err, &mismatch):
		return diag.NewAttributeErrorDiagnostic(path.Root("digest"), "Stored content is corrupt",
			fmt.Sprintf("In %s, %v. The stored object was altered or damaged behind the store's back; it is not written "+
				"out. To repair it, delete the damaged object and, for a directory artifact, its listing (trees/sha256/<first two "+
				"hex digits>/<hex> of the export's digest): a stored listing promises its files, so publishing again sends "+
				"nothing while it is there. Then apply again: the immutable_artifact's refresh finds it gone and publishes it "+
				"from its source. Nothing was written.", st, err))
	}
	var backendErr store.BackendError
	if errors.As(err, &backendErr) {
		return storeReadError(st, err)
	}
	return diag.NewAttributeErrorDiagnostic(path.Root("path"), "Cannot write the export", fmt.Sprintf("%v. Nothing was written.", err))
}

// baseOpener reads a base image's layers from its registry, through the
// operation's registry client (made on first use: planning an export
// makes no request).
func (r *ExportResource) baseOpener() export.BaseOpener {
	return func(ctx context.Context, repository string, d image.Descriptor) (io.ReadCloser, error) {
		c, err := r.data.registries.get(ctx)
		if err != nil {
			return nil, err
		}
		return c.OpenBlob(ctx, repository, d)
	}
}

func (r *ExportResource) hashTree(ctx context.Context, dir string) (*digest.Listing, error) {
	return statcache.HashTree(ctx, r.data.cache, dir, digest.Options{})
}

// claim records target for this operation and refuses a second export
// (or an artifact's output_path) writing the same path or one inside
// another export's directory.
func (r *ExportResource) claim(target, what string) error {
	r.data.exportsMu.Lock()
	defer r.data.exportsMu.Unlock()
	if other, loaded := r.data.outputs.LoadOrStore(target, what); loaded && other != what {
		return &fsguard.RefusedError{Target: target, Reason: "is also written by another resource of this configuration, with other content; each apply would overwrite the other's"}
	}
	var clash error
	r.data.exports.Range(func(k, _ any) bool {
		other, _ := k.(string) // only strings are stored
		clash = export.CheckApart(target, other)
		return clash == nil
	})
	r.data.exports.Store(target, true)
	return clash
}

func (r *ExportResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan exportModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	var prior *exportModel
	if !req.State.Raw.IsNull() {
		prior = &exportModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, prior)...)
	}
	var configFormat types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("format"), &configFormat)...)
	if resp.Diagnostics.HasError() {
		return
	}
	plan.Drift = types.StringNull() // what this plan writes is the content: no drift after it
	if plan.Path.IsUnknown() || r.data == nil {
		// Where it goes is known after apply: a replacement, since core
		// treats an unknown id as changed.
		if configFormat.IsNull() || configFormat.IsUnknown() {
			plan.Format = types.StringUnknown()
		}
		plan.ID, plan.SHA256, plan.Base64SHA256 = types.StringUnknown(), types.StringUnknown(), types.StringUnknown()
		if prior != nil {
			resp.RequiresReplace.Append(path.Root("id"))
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	st := r.data.store
	target, err := export.Target(plan.Path.ValueString())
	if err == nil {
		err = export.CheckPlace(target, st.LocalRoot())
	}
	if err != nil {
		resp.Diagnostics.Append(exportError(st, err))
		return
	}
	w := getWritten(ctx, req.Private)
	owned := prior != nil && w != nil && w.Target == target
	// The new object of a replacement (taint, -replace) is planned with no
	// prior state but the private data of the old one: the path it finds
	// is the old export's, which the destroy half removes first.
	replacing := prior == nil && w != nil && w.Target == target
	// movedOnto: the same `path` now resolves to another place, where
	// something exists already (a symlinked parent moved, or the working
	// directory of a relative path changed). Destroy's refresh plans too,
	// and no change to the configuration could lift an error here, so the
	// plan warns; and it plans an update, not a replacement, whose destroy
	// half would run first and remove the old export (or drop it from
	// state) before the create half is refused: Update refuses a moved
	// target before it touches anything.
	movedOnto := false
	if prior != nil && !owned {
		if err := export.CheckNew(target); err != nil && prior.Path.Equal(plan.Path) {
			movedOnto = true
			resp.Diagnostics.AddAttributeWarning(path.Root("path"), "The export's path now resolves elsewhere",
				fmt.Sprintf("%v. Applying will fail with nothing written or removed: the export never writes over what it did "+
					"not write, nor leaves what it wrote behind. Move that path away (the next plan then moves the export "+
					"there), or destroy the export; destroy is not affected.", err))
		} else {
			// Another target: replace on id, whose planned value is the
			// new target.
			resp.RequiresReplace.Append(path.Root("id"))
		}
	}
	if !owned && !replacing && !movedOnto {
		if err := export.CheckNew(target); err != nil {
			if prior != nil || w == nil {
				resp.Diagnostics.Append(exportError(st, err))
				return
			}
			// The create half of a replacement (it gets the old object's
			// private data) whose path now resolves to one that exists:
			// warn, and let the apply's write, which never replaces
			// anything, refuse.
			resp.Diagnostics.AddAttributeWarning(path.Root("path"), "The export's new path exists",
				fmt.Sprintf("%v. Replacing the export there will fail at apply: the export never writes over what it did "+
					"not write. Move that path away, or choose another; destroy is not affected.", err))
		}
	}
	if plan.Digest.IsUnknown() || configFormat.IsUnknown() {
		// The content is known after apply (a release published in this
		// apply, a data source read late): the target is known, so an
		// export already there is updated in place (swapped, never
		// removed first), not replaced.
		if configFormat.IsNull() || configFormat.IsUnknown() {
			plan.Format = types.StringUnknown()
		}
		plan.ID = types.StringValue(target)
		plan.SHA256, plan.Base64SHA256 = types.StringUnknown(), types.StringUnknown()
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	if owned && w.Digest == plan.Digest.ValueString() && (configFormat.IsNull() || export.Format(configFormat.ValueString()) == w.Format) {
		// The content written there already: everything is known from
		// what was written, without the store (a no-op plan, a drift
		// repair, destroy's refresh with the store gone).
		if err := r.claim(target, "export "+w.Digest+" "+string(w.Format)); err != nil {
			resp.Diagnostics.Append(exportError(st, err))
			return
		}
		plan.Format, plan.ID = types.StringValue(string(w.Format)), types.StringValue(target)
		plan.setSum(nil)
		if sum, err := digest.ParseHex(w.SHA256); err == nil {
			plan.setSum(&sum)
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}

	c, format, diags := r.loadExport(ctx, &plan, configFormat, true)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if c == nil {
		// Not stored yet (an artifact created in this apply, say): what it
		// is, and its archive's hash, are known after apply.
		if configFormat.IsNull() {
			plan.Format = types.StringUnknown()
		}
		plan.ID = types.StringValue(target)
		plan.SHA256, plan.Base64SHA256 = types.StringUnknown(), types.StringUnknown()
		if export.Format(configFormat.ValueString()).IsTree() {
			plan.setSum(nil)
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	if err := r.claim(target, "export "+c.Digest.String()+" "+string(format)); err != nil {
		resp.Diagnostics.Append(exportError(st, err))
		return
	}
	plan.Format = types.StringValue(string(format))
	plan.ID = types.StringValue(target)
	if owned && format.IsTree() != w.Format.IsTree() {
		// A file where the export wrote a directory (oci-layout to
		// docker-archive, directory to zip), or the reverse, is not swapped
		// in place: the old one is removed as destroy removes it, then the
		// new one written. An in-place update was planned and always failed.
		resp.RequiresReplace.Append(path.Root("format"))
	}
	if format == export.DockerArchive {
		// Known once written: hashing it needs every layer's bytes.
		plan.SHA256, plan.Base64SHA256 = types.StringUnknown(), types.StringUnknown()
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	var sum *digest.Sum
	s, ok, err := export.FileSum(ctx, r.data.archives(), st, c, format)
	if err != nil {
		resp.Diagnostics.Append(exportError(st, err))
		return
	}
	if ok {
		sum = &s
	}
	plan.setSum(sum)
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *ExportResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	ctx, told := watchGCWaits(ctx) // why a publish waited for a collection
	defer told(&resp.Diagnostics)
	var plan exportModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	w, diags := r.write(ctx, &plan, nil)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(setWritten(ctx, resp.Private, *w)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *ExportResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan exportModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	prior := getWritten(ctx, req.Private)
	if target, err := export.Target(plan.Path.ValueString()); err == nil && prior != nil && prior.Target != target {
		// Planned only when the same `path` came to resolve to an
		// existing place (ModifyPlan's movedOnto): writing there would
		// leave the export behind at the old one.
		resp.Diagnostics.AddAttributeError(path.Root("path"), "The export's path now resolves elsewhere",
			fmt.Sprintf("%q now resolves to %s, but the export wrote %s. Nothing was written or removed. Move what is at %s "+
				"away and plan again (the export then moves there), or destroy the export.", plan.Path.ValueString(), target,
				prior.Target, target))
		return
	}
	w, diags := r.write(ctx, &plan, prior)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(setWritten(ctx, resp.Private, *w)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// listingOf returns the listing of what an export wrote: from the store,
// or, when the store cannot give it, from the tree on disk if that still
// hashes to the digest written.
func (r *ExportResource) listingOf(ctx context.Context, w *written) (*digest.Listing, error) {
	sum, err := digest.Parse(w.Digest)
	if err != nil {
		return nil, err
	}
	if w.Format == export.OCILayout {
		return export.WrittenImageListing(ctx, r.data.store, sum, w.Target)
	}
	return export.WrittenListing(ctx, r.data.store, sum, w.Target, r.hashTree)
}

// write puts the planned content at the planned path. prior is what this
// export wrote before (nil on create): only at that very target is
// existing content replaced.
func (r *ExportResource) write(ctx context.Context, plan *exportModel, prior *written) (*written, diag.Diagnostics) {
	var diags diag.Diagnostics
	if r.data == nil {
		diags.AddError("Provider not configured", "immutable_export needs a configured provider. This is a bug in the provider.")
		return nil, diags
	}
	c, format, d := r.loadExport(ctx, plan, plan.Format, false) // the plan holds the format decided at plan
	diags.Append(d...)
	if diags.HasError() {
		return nil, diags
	}
	st := r.data.store
	target, err := export.Target(plan.Path.ValueString())
	place := func() error { return export.CheckPlace(target, st.LocalRoot()) }
	if err == nil {
		err = place()
	}
	if err != nil {
		diags.Append(exportError(st, err))
		return nil, diags
	}
	var old *export.Content
	if prior != nil && prior.Target == target {
		old = &export.Content{}
		if prior.Format.IsTree() {
			if old.Listing, err = r.listingOf(ctx, prior); err != nil {
				diags.AddAttributeError(path.Root("digest"), "Cannot tell which files the export wrote", fmt.Sprintf(
					"Replacing %s needs %v. Nothing was written; make the store reachable and apply again.", target, err))
				return nil, diags
			}
		}
	}
	wr := &export.Writer{St: st, Refs: r.data.archives()}
	if !format.IsTree() && !plan.SHA256.IsUnknown() && !plan.SHA256.IsNull() {
		if want, err := digest.ParseHex(plan.SHA256.ValueString()); err == nil {
			wr.Expect = &want
		}
	}
	sum, err := wr.Write(ctx, c, format, target, old, place)
	var mismatch *export.MismatchError
	if errors.As(err, &mismatch) {
		diags.AddAttributeError(path.Root("sha256"), "Archive differs from the plan",
			fmt.Sprintf("The plan said the file written to %s would hash to %s; it hashes to %s (an archive stored for this "+
				"artifact between plan and apply, by another version of the provider?). Nothing was written; plan again.",
				target, mismatch.Want.Hex(), mismatch.Got.Hex()))
		return nil, diags
	}
	if err != nil {
		diags.Append(exportError(st, err))
		return nil, diags
	}
	if wr.SetAside != "" {
		diags.AddAttributeWarning(path.Root("path"), "Files of others set aside",
			fmt.Sprintf("Paths someone added to %s while the new content was being written could not be carried over into it "+
				"(the new content has something at the same path); they were moved, unchanged, to %s. Nothing was deleted.",
				target, wr.SetAside))
	}
	if wr.Kept > 0 {
		diags.AddAttributeWarning(path.Root("path"), "Files of others kept in the export",
			fmt.Sprintf("%s held %d path(s) the export did not write; they were carried over into the new content unchanged. "+
				"They are not part of the artifact, and destroy leaves them.", target, wr.Kept))
	}
	plan.Format = types.StringValue(string(format))
	plan.ID = types.StringValue(target)
	plan.Drift = types.StringNull()
	w := written{Target: target, Digest: c.Digest.String(), Format: format, Dirs: wr.Made}
	if format == export.OCILayout {
		w.Tree = c.Listing.Digest().Hex()
	}
	if format.IsTree() {
		plan.setSum(nil)
	} else {
		plan.setSum(&sum)
		w.SHA256 = sum.Hex()
	}
	return &w, diags
}

func (r *ExportResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state exportModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || r.data == nil {
		return
	}
	w := getWritten(ctx, req.Private)
	if w == nil {
		return // nothing known to check against
	}
	want, err := digest.Parse(w.Digest)
	if w.SHA256 != "" {
		want, err = digest.ParseHex(w.SHA256)
	} else if w.Tree != "" {
		want, err = digest.ParseHex(w.Tree)
	}
	if err != nil {
		return
	}
	listing := func(ctx context.Context) (*digest.Listing, error) { return r.listingOf(ctx, w) }
	found, err := export.Inspect(ctx, w.Target, w.Format, want, r.hashTree, listing)
	if err != nil {
		resp.Diagnostics.AddAttributeWarning(path.Root("path"), "Cannot check the export",
			fmt.Sprintf("Whether %s still holds what the export wrote cannot be told: %v. The plan assumes it does.", w.Target, err))
		return
	}
	switch found.Status {
	case export.Absent:
		// Gone: planned as a new export, written again by the next apply.
		resp.State.RemoveResource(ctx)
		return
	case export.Matches:
		state.Drift = types.StringNull()
	default:
		// The plan sets drift back to null: an update that writes the
		// content again, showing what changed.
		state.Drift = types.StringValue(found.What)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *ExportResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state exportModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || r.data == nil {
		return
	}
	w := getWritten(ctx, req.Private)
	if w == nil {
		resp.Diagnostics.AddWarning("Export left in place",
			fmt.Sprintf("The state does not record what was written to %s, so nothing there was removed.", state.ID.ValueString()))
		return
	}
	c := &export.Content{Made: w.Dirs}
	if sum, err := digest.ParseHex(w.SHA256); err == nil {
		c.Written = &sum
	}
	if w.Format.IsTree() {
		m, err := r.listingOf(ctx, w)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("digest"), "Cannot tell which files the export wrote",
				fmt.Sprintf("Removing %s needs %v. Nothing was removed; make the store reachable and destroy again, or remove "+
					"the path yourself and `terraform state rm` the export.", w.Target, err))
			return
		}
		c.Listing = m
	}
	kept, err := export.Remove(ctx, w.Target, w.Format, c)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("path"), "Cannot remove the export", fmt.Sprintf(
			"Removing what the export wrote to %s stopped: %v. Nothing that is not byte for byte the export's was touched. "+
				"The export stays in state: make that path removable (its directory writable, no immutable attribute) and "+
				"destroy again.", w.Target, err))
		return
	}
	if len(kept) > 0 {
		resp.Diagnostics.AddWarning("Export removed, some paths kept", keptDetail(w.Target, kept))
	}
}

// A destroy warning names at most keptPerWhy paths for each reason, for
// at most keptWhys reasons.
const keptPerWhy, keptWhys = 5, 6

// keptDetail says what destroy left at target, grouped by why, in the
// order export.Remove gives (the export's changed paths first).
func keptDetail(target string, kept []export.Kept) string {
	if len(kept) == 1 && kept[0].Path == target {
		return fmt.Sprintf("Left %s in place: %s. Nothing was deleted; remove it yourself if it may go.", target, kept[0].Why)
	}
	groups := export.GroupKept(kept)
	var b strings.Builder
	fmt.Fprintf(&b, "Removed from %s what was still byte for byte what the export wrote, and kept %d path(s):", target, len(kept))
	for _, g := range groups[:min(len(groups), keptWhys)] {
		ps := g.Paths
		fmt.Fprintf(&b, "\n- %s: %s", g.Why, strings.Join(ps[:min(len(ps), keptPerWhy)], ", "))
		if len(ps) > keptPerWhy {
			fmt.Fprintf(&b, " and %d more", len(ps)-keptPerWhy)
		}
	}
	if len(groups) > keptWhys {
		n := 0
		for _, g := range groups[keptWhys:] {
			n += len(g.Paths)
		}
		fmt.Fprintf(&b, "\n- and %d more, for other reasons", n)
	}
	b.WriteString("\nA directory holding any of them stays too. Nothing of these was deleted; remove them yourself if they may go.")
	return b.String()
}

// ImportState refuses, saying why and what to do instead: importing would
// take over a path the provider did not write.
func (r *ExportResource) ImportState(_ context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.AddError("immutable_export cannot be imported",
		fmt.Sprintf("An export only ever removes or replaces what it wrote itself, and it cannot know what wrote %q. "+
			"Move that path away (or delete it) and apply: the export writes the content again, verified against the "+
			"digest, in one rename. Nothing was changed.", req.ID))
}
