package provider

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"golang.org/x/text/unicode/norm"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/artifact"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/fsguard"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

var (
	_ resource.Resource                     = (*ArtifactResource)(nil)
	_ resource.ResourceWithConfigure        = (*ArtifactResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*ArtifactResource)(nil)
	_ resource.ResourceWithImportState      = (*ArtifactResource)(nil)
	_ resource.ResourceWithConfigValidators = (*ArtifactResource)(nil)
)

// FilesLimit is the largest tree whose per-file map is kept in state.
// Larger trees leave `files` null, and a plan that changes one names the
// changed paths in a warning instead.
const FilesLimit = 1000

// changesShown bounds the paths listed in a large tree's change warning.
const changesShown = 25

// ArtifactResource is immutable_artifact.
type ArtifactResource struct {
	data *providerData
}

// NewArtifactResource returns the resource.
func NewArtifactResource() resource.Resource { return &ArtifactResource{} }

type artifactModel struct {
	ID                  types.String `tfsdk:"id"`
	Source              types.String `tfsdk:"source"`
	Content             types.String `tfsdk:"content"`
	SensitiveContent    types.String `tfsdk:"sensitive_content"`
	ContentBase64       types.String `tfsdk:"content_base64"`
	Excludes            types.List   `tfsdk:"excludes"`
	Archive             types.String `tfsdk:"archive"`
	OutputPath          types.String `tfsdk:"output_path"`
	Digest              types.String `tfsdk:"digest"`
	FileCount           types.Int64  `tfsdk:"file_count"`
	Size                types.Int64  `tfsdk:"size"`
	Files               types.Map    `tfsdk:"files"`
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

func (r *ArtifactResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_artifact"
}

func artifactSchema() schema.Schema {
	computedString := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Computed: true}
	}
	return schema.Schema{
		MarkdownDescription: "A file, a directory or inline content, turned into a content digest **during plan** and stored " +
			"once in the content-addressed store on apply. The digest follows the [digest spec](../guides/digest-spec.md): " +
			"it is the same on every OS, umask, clone and machine, and ignores modification times. " +
			"The artifact is replaced exactly when its digest (or `archive` format) changes; moving the source elsewhere " +
			"with the same content updates it in place. Destroying it only removes it from state: stored objects stay.",
		Attributes: map[string]schema.Attribute{
			"id": computedString("The artifact's digest, as `digest`."),
			"source": schema.StringAttribute{
				MarkdownDescription: "Path of a file or directory. A relative path resolves against the directory Terraform " +
					"runs in, as `file()` does: write `\"${path.module}/dist\"`. The path itself is not part of the digest, so " +
					"changing it alone changes nothing stored. A symlink given here is followed; symlinks inside a directory " +
					"are recorded, never followed.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"content": schema.StringAttribute{
				MarkdownDescription: "Inline UTF-8 content. Its digest equals `sha256()` of it.",
				Optional:            true,
			},
			"sensitive_content": schema.StringAttribute{
				MarkdownDescription: "Inline content, like `content`, hidden from plan output.",
				Optional:            true,
				Sensitive:           true,
			},
			"content_base64": schema.StringAttribute{
				MarkdownDescription: "Inline binary content, base64-encoded (standard encoding, with padding). Its digest " +
					"is of the decoded bytes.",
				Optional:   true,
				Validators: []validator.String{base64Validator},
			},
			"excludes": schema.ListAttribute{
				MarkdownDescription: "Globs of paths to leave out of a directory `source`, relative to it, with `**` for " +
					"any depth (`\"**/*.map\"`, `\".git\"`, `\"node_modules\"`). A directory that matches is left out whole.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.List{listvalidator.ValueStringsAre(globValidator)},
			},
			"archive": schema.StringAttribute{
				MarkdownDescription: "Also store a byte-reproducible archive of the content, `zip` or `tar.gz`: entries in " +
					"the spec's order, every time set to 1980-01-01, modes 0644 or 0755. An archive is built once per " +
					"listing (paths, kinds and content) and format and reused after; a stored archive is checked against " +
					"that listing before it is used or written out. Needs `source`; a file source becomes one entry named " +
					"after the file. A symlink whose target is absolute or leaves the tree is refused (exclude it).",
				Optional:   true,
				Validators: []validator.String{stringvalidator.OneOf(archive.FormatNames()...)},
			},
			"output_path": schema.StringAttribute{
				MarkdownDescription: "Write a copy of the archive to this path on apply (creating missing directories), and again whenever it is missing " +
					"or differs (a fresh CI machine, say). Needs `archive`. Written atomically and only ever over a regular file: " +
					"a path inside the store, the source itself or a path inside a directory source (unless `excludes` leaves it " +
					"out), or an existing directory, symlink, named pipe, device or socket is refused at plan, and nothing is written.",
				Optional: true,
				Validators: []validator.String{
					stringvalidator.LengthAtLeast(1),
					stringvalidator.AlsoRequires(path.MatchRoot("archive")),
				},
			},
			"digest": computedString("The content digest, `sha256:<hex>`: of the bytes for a file or inline content (equal to " +
				"`filesha256()`), of the canonical listing for a directory. Known at plan time."),
			"file_count": schema.Int64Attribute{MarkdownDescription: "Number of files and symlinks in the artifact (1 for a file or inline content).", Computed: true},
			"size":       schema.Int64Attribute{MarkdownDescription: "Total size of the content in bytes.", Computed: true},
			"files": schema.MapAttribute{
				MarkdownDescription: fmt.Sprintf("For a directory of at most %d entries: each path mapped to `<kind> sha256:<hex>`, "+
					"kind being `file`, `exec` or `symlink`, so the plan shows which files were added, changed or removed. Null "+
					"for a larger directory (state stays small), and for one holding a name not in Unicode NFC (Terraform "+
					"normalizes every string to NFC, so such a name cannot be a key); a plan that changes one lists the changed "+
					"paths in a warning.", FilesLimit),
				ElementType: types.StringType,
				Computed:    true,
			},
			"archive_sha256": computedString("Hex sha256 of the archive's bytes. Known at plan when this content's archive " +
				"is already stored, else after apply."),
			"archive_base64sha256": computedString("Base64 sha256 of the archive's bytes, what `source_code_hash` of " +
				"`aws_lambda_function` wants."),
			"path": computedString("On a `file://` store, for a file or inline content: the absolute path of the stored, " +
				"read-only copy of its bytes. Null for a directory or on S3. Known at plan."),
			"s3_bucket": computedString("On an `s3://` store, for a file or inline content: the bucket holding its bytes " +
				"(`aws_lambda_function.s3_bucket`, a CloudFront origin). Null for a directory or on a local store. Known at plan."),
			"s3_key": computedString("On an `s3://` store, for a file or inline content: the object key of its bytes. Known at plan."),
			"s3_url": computedString("On an `s3://` store, for a file or inline content: `s3://bucket/key` of its bytes. Known at plan."),
			"archive_path": computedString("On a `file://` store: the absolute path of the stored, read-only archive — what " +
				"`aws_lambda_function.filename` takes, no copy needed. Known at plan whenever `archive_sha256` is."),
			"archive_s3_bucket": computedString("On an `s3://` store: the bucket holding the archive (`aws_lambda_function.s3_bucket`). " +
				"Known at plan whenever `archive_sha256` is."),
			"archive_s3_key": computedString("On an `s3://` store: the archive's object key (`aws_lambda_function.s3_key`). " +
				"Known at plan whenever `archive_sha256` is."),
			"archive_s3_url": computedString("On an `s3://` store: `s3://bucket/key` of the archive. Known at plan whenever `archive_sha256` is."),
		},
	}
}

func (r *ArtifactResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = artifactSchema()
}

func (r *ArtifactResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return artifactConfigValidators()
}

func (r *ArtifactResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configureData(req.ProviderData, &resp.Diagnostics)
}

// filesValue is the `files` of a listing: null for a file (nil), a tree
// over FilesLimit, or one holding a name Terraform would change.
func filesValue(man *digest.Listing) types.Map {
	if man == nil || len(man.Entries) > FilesLimit {
		return types.MapNull(types.StringType)
	}
	for _, e := range man.Entries {
		if !norm.NFC.IsNormalString(e.Path) {
			// Terraform turns every string into Unicode NFC: "é" written as
			// e + U+0301 would come back as another key (or two names as
			// one), and the plan could not be applied. Left out, like a
			// large tree's: a change is named in a warning instead.
			return types.MapNull(types.StringType)
		}
	}
	elems := make(map[string]attr.Value, len(man.Entries))
	for _, e := range man.Entries {
		elems[e.Path] = types.StringValue(string(e.Kind) + " " + e.SHA256.String())
	}
	return types.MapValueMust(types.StringType, elems)
}

// inlineContent returns the bytes of whichever inline attribute is set.
func (m *artifactModel) inlineContent() ([]byte, path.Path, bool, error) {
	switch {
	case !m.Content.IsNull():
		return []byte(m.Content.ValueString()), path.Root("content"), true, nil
	case !m.SensitiveContent.IsNull():
		return []byte(m.SensitiveContent.ValueString()), path.Root("sensitive_content"), true, nil
	case !m.ContentBase64.IsNull():
		b, err := base64.StdEncoding.DecodeString(m.ContentBase64.ValueString())
		return b, path.Root("content_base64"), true, err
	}
	return nil, path.Empty(), false, nil
}

// format is the archive format asked for (validated by the schema).
func (m *artifactModel) format() archive.Format { return archive.Format(m.Archive.ValueString()) }

func (m *artifactModel) excludes(ctx context.Context) ([]string, diag.Diagnostics) {
	var ex []string
	if m.Excludes.IsNull() {
		return nil, nil
	}
	diags := m.Excludes.ElementsAs(ctx, &ex, false)
	return ex, diags
}

// source is the artifact's source as internal/artifact hashes it.
func (m *artifactModel) source(ctx context.Context) (artifact.Source, diag.Diagnostics) {
	excludes, diags := m.excludes(ctx)
	return artifact.Source{Path: m.Source.ValueString(), Excludes: excludes, Progress: &digest.Progress{}}, diags
}

// planned is the digest the plan in m expects (nil when unknown), of
// the content or, with archive, of the archive. A value that does not
// parse expects nothing that can be stored.
func planned(v types.String, parse func(string) (digest.Sum, error)) *digest.Sum {
	if v.IsUnknown() || v.IsNull() {
		return nil
	}
	sum, err := parse(v.ValueString())
	if err != nil {
		return &digest.Sum{}
	}
	return &sum
}

func (m *artifactModel) anyUnknown() bool {
	for _, v := range []attr.Value{m.Source, m.Content, m.SensitiveContent, m.ContentBase64, m.Excludes, m.Archive} {
		if v.IsUnknown() {
			return true
		}
	}
	if !m.Excludes.IsNull() {
		for _, e := range m.Excludes.Elements() {
			if e.IsUnknown() {
				return true
			}
		}
	}
	return false
}

// setLocations derives where the artifact's bytes and its archive live
// from the digests in m: a stored object's place is a function of its
// digest, so it is known whenever the digest is. Only the fields of the
// store's kind are set; the others are null.
func (m *artifactModel) setLocations(st *store.Store) {
	local := false
	if st != nil {
		probe, _ := st.Locate(store.BlobKey(digest.Sum{}))
		local = probe.Path != ""
	}
	set := func(sum types.String, applies bool, path, bucket, key, url *types.String) {
		for _, f := range []*types.String{path, bucket, key, url} {
			*f = types.StringNull()
		}
		fields := []*types.String{bucket, key, url}
		if local {
			fields = []*types.String{path}
		}
		switch {
		case !applies || sum.IsNull():
			return
		case st == nil || sum.IsUnknown():
			for _, f := range fields {
				*f = types.StringUnknown()
			}
			return
		}
		s := strings.TrimPrefix(sum.ValueString(), digest.Prefix)
		parsed, err := digest.ParseHex(s)
		if err != nil {
			return
		}
		loc, ok := st.Locate(store.BlobKey(parsed))
		if !ok {
			return
		}
		*path, *bucket, *key, *url = optionalString(loc.Path), optionalString(loc.Bucket), optionalString(loc.Key), optionalString(loc.URL)
	}
	// A file or inline content is one blob; a tree is a listing (its
	// files' blobs are reached through it, or through the archive).
	blobDigest := m.Digest
	isBlob := true
	switch {
	case m.Digest.IsUnknown() || m.Files.IsUnknown() || m.FileCount.IsUnknown():
		blobDigest = types.StringUnknown()
	case !m.Files.IsNull() || m.FileCount.ValueInt64() != 1:
		isBlob = false
	}
	set(blobDigest, isBlob, &m.Path, &m.S3Bucket, &m.S3Key, &m.S3URL)
	set(m.ArchiveSHA256, true, &m.ArchivePath, &m.ArchiveS3Bucket, &m.ArchiveS3Key, &m.ArchiveS3URL)
}

func (m *artifactModel) setUnknownOutputs() {
	m.ID = types.StringUnknown()
	m.Digest = types.StringUnknown()
	m.FileCount = types.Int64Unknown()
	m.Size = types.Int64Unknown()
	m.Files = types.MapUnknown(types.StringType)
	m.ArchiveSHA256 = types.StringUnknown()
	m.ArchiveBase64SHA256 = types.StringUnknown()
}

func (m *artifactModel) setOutputs(c *artifact.Content) {
	m.ID = types.StringValue(c.Sum.String())
	m.Digest = m.ID
	m.FileCount = types.Int64Value(c.Count)
	m.Size = types.Int64Value(c.Size)
	m.Files = filesValue(c.Tree)
}

func (m *artifactModel) setArchive(sum *digest.Sum) {
	switch {
	case m.Archive.IsNull():
		m.ArchiveSHA256, m.ArchiveBase64SHA256 = types.StringNull(), types.StringNull()
	case sum == nil:
		m.ArchiveSHA256, m.ArchiveBase64SHA256 = types.StringUnknown(), types.StringUnknown()
	default:
		m.ArchiveSHA256 = types.StringValue(sum.Hex())
		m.ArchiveBase64SHA256 = types.StringValue(base64.StdEncoding.EncodeToString(sum[:]))
	}
}

// hashContent computes the digest of a source or inline content without
// writing anything.
func (r *ArtifactResource) hashContent(ctx context.Context, m *artifactModel) (*artifact.Content, diag.Diagnostics) {
	var diags diag.Diagnostics
	if b, p, ok, err := m.inlineContent(); ok {
		if err != nil {
			diags.AddAttributeError(p, "Invalid base64", "content_base64 must be standard base64 with padding: "+err.Error())
			return nil, diags
		}
		return r.data.sources.RememberInline(b), diags
	}
	src, diags := m.source(ctx)
	if diags.HasError() {
		return nil, diags
	}
	stop := logProgress(ctx, src.Path, src.Progress)
	c, err := r.data.sources.Hash(ctx, src)
	stop()
	if err != nil {
		diags.Append(sourceDiag(path.Root("source"), err))
		return nil, diags
	}
	return c, diags
}

// storeContent stores the source or inline content at apply, if it is
// still what the plan in m expects.
func (r *ArtifactResource) storeContent(ctx context.Context, m *artifactModel) (*artifact.Content, diag.Diagnostics) {
	var diags diag.Diagnostics
	want := planned(m.Digest, digest.Parse)
	if b, p, ok, err := m.inlineContent(); ok {
		if err != nil {
			diags.AddAttributeError(p, "Invalid base64", "content_base64 must be standard base64 with padding: "+err.Error())
			return nil, diags
		}
		c, err := r.data.sources.PutInline(ctx, b)
		switch {
		case err != nil:
			diags.Append(storeWriteError(err))
		case want != nil && *want != c.Sum:
			diags.Append(sourceDiag(p, &artifact.ChangedError{Planned: *want, Now: c.Sum}))
		}
		return c, diags
	}
	src, diags := m.source(ctx)
	if diags.HasError() {
		return nil, diags
	}
	stop := logProgress(ctx, src.Path, src.Progress)
	c, stats, err := r.data.sources.Put(ctx, src, want)
	stop()
	if err != nil {
		diags.Append(sourceDiag(path.Root("source"), err))
		return nil, diags
	}
	if c.Tree != nil {
		tflog.Debug(ctx, "published a directory", map[string]any{
			"source": src.Path, "files": c.Count, "needed": stats.Needed, "written": stats.Written, "present": stats.Present,
		})
	}
	return c, diags
}

func (r *ArtifactResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy: nothing to compute
	}
	var plan artifactModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var prior *artifactModel
	if !req.State.Raw.IsNull() {
		prior = &artifactModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, prior)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}

	if plan.anyUnknown() || r.data == nil {
		// Known only after apply (source made by another resource, say).
		plan.setUnknownOutputs()
		if !plan.Archive.IsUnknown() {
			plan.setArchive(nil)
		}
		if prior != nil {
			resp.RequiresReplace.Append(path.Root("digest"))
		}
		plan.setLocations(r.storeOrNil())
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}

	missing := false
	if !plan.Source.IsNull() {
		_, err := os.Stat(plan.Source.ValueString())
		missing = digest.IsNotExist(err)
	}
	// Core plans the create half of a replacement in a second call, with no
	// prior state but with the private data of the first: the mark tells it
	// that this is the replacement of an artifact whose source is gone.
	replacingMissing := prior == nil && missing && len(privateValue(ctx, req.Private, privateMissingSource)) > 0
	if (prior != nil && missing) || replacingMissing {
		// `terraform destroy` plans normally first; an error here would
		// make an artifact impossible to destroy once its files are gone.
		// Warn, and plan a replacement that fails at apply if the source
		// is still missing then.
		if prior != nil {
			resp.Diagnostics.AddAttributeWarning(path.Root("source"), "Source not found",
				fmt.Sprintf("source %q does not exist, so the artifact %s cannot be rebuilt. This plan replaces it: applying it "+
					"before the source is back removes the artifact from state (its stored objects stay) and then fails; restore "+
					"the source first. (This is expected when destroying.)", plan.Source.ValueString(), prior.Digest.ValueString()))
			resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateMissingSource, []byte(`true`))...)
		}
		// The digest becomes unknown, and the replacement is requested on
		// it: core ignores a replacement requested on an attribute whose
		// value did not change (source), and would then plan an update
		// that a restored source turns into a replace at apply.
		plan.setUnknownOutputs()
		plan.setArchive(nil)
		if prior != nil {
			resp.RequiresReplace.Append(path.Root("digest"))
		}
		plan.setLocations(r.storeOrNil())
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}

	c, diags := r.hashContent(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.Archive.IsNull() {
		src := plan.Source.ValueString()
		if err := artifact.CheckArchive(src, c); err != nil {
			var name *artifact.ArchiveNameError
			if errors.As(err, &name) {
				resp.Diagnostics.AddAttributeError(path.Root("archive"), "Cannot archive this source", name.Error()+". Rename it.")
			} else {
				resp.Diagnostics.Append(archiveError(r.data.store, "archive", "archive the source", err))
			}
			return
		}
		if out := plan.OutputPath; !out.IsNull() && !out.IsUnknown() {
			excludes, _ := plan.excludes(ctx)
			guard := r.data.sources.OutputGuard(src, c.Tree != nil, excludes)
			if resp.Diagnostics.Append(outputPathDiags(guard(out.ValueString()))...); resp.Diagnostics.HasError() {
				return
			}
			if target, err := fsguard.Resolve(out.ValueString()); err == nil {
				claim := string(plan.format()) + " " + c.Listing.Digest().String()
				if other, loaded := r.data.outputs.LoadOrStore(target, claim); loaded && other != claim {
					resp.Diagnostics.AddAttributeError(path.Root("output_path"), "Two artifacts write one output_path",
						fmt.Sprintf("Another immutable_artifact in this configuration writes a different archive to %s; each apply "+
							"would overwrite the other's. Give each artifact its own output_path.", target))
					return
				}
			}
		}
	}
	plan.setOutputs(c)

	sameContent := prior != nil && prior.Digest.ValueString() == c.Sum.String()
	sameArchive := prior != nil && prior.Archive.Equal(plan.Archive)
	switch {
	case plan.Archive.IsNull():
		plan.setArchive(nil)
	case sameArchive && !prior.ArchiveSHA256.IsNull() && !prior.ArchiveSHA256.IsUnknown() &&
		r.sameArchiveListing(ctx, req.Private, prior, c):
		// The archive's identity is its listing (names and kinds too, which
		// a file source's digest does not cover): reused only for the same.
		plan.ArchiveSHA256, plan.ArchiveBase64SHA256 = prior.ArchiveSHA256, prior.ArchiveBase64SHA256
	default:
		ref, err := r.data.archives().Lookup(ctx, plan.format(), c.Listing)
		switch {
		case err == nil:
			plan.setArchive(&ref)
		case errors.Is(err, store.ErrNotFound):
			plan.setArchive(nil) // built on apply
		default:
			resp.Diagnostics.Append(archiveError(r.data.store, "archive_sha256", "read the stored archive", err))
			return
		}
	}

	if prior != nil {
		if !sameContent {
			resp.RequiresReplace.Append(path.Root("digest"))
			r.warnLargeChange(ctx, prior, c, &resp.Diagnostics)
		}
		if !sameArchive {
			resp.RequiresReplace.Append(path.Root("archive"))
		}
	}
	plan.setLocations(r.storeOrNil())
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// sameArchiveListing reports whether the prior archive (archive_sha256 in
// state) is the archive of the listing planned now. The listing recorded
// in private state answers; without it (state from an import or an older
// build), a tree's listing is its digest, and a file's one-entry listing
// is the same only if the store records the prior archive for it (one
// small read, no archive download).
func (r *ArtifactResource) sameArchiveListing(ctx context.Context, p privateGetter, prior *artifactModel, c *artifact.Content) bool {
	want := c.Listing.Digest()
	if recorded := priorArchiveListing(ctx, p); recorded != "" {
		return recorded == want.String()
	}
	if c.Tree != nil {
		return prior.Digest.ValueString() == c.Sum.String()
	}
	ref, err := r.data.store.GetArchiveRef(ctx, archive.Version(prior.format()), want)
	return err == nil && ref.Hex() == prior.ArchiveSHA256.ValueString()
}

// printable shows a path as it is, or quoted with escapes when it holds a
// control character: a file name must not be able to move the cursor or
// clear the terminal of someone reading the plan.
func printable(p string) string {
	for _, r := range p {
		if !unicode.IsPrint(r) {
			return strconv.Quote(p)
		}
	}
	return p
}

// warnLargeChange names the changed paths of a tree too large for `files`,
// against the previous listing in the store. It only ever warns.
func (r *ArtifactResource) warnLargeChange(ctx context.Context, prior *artifactModel, c *artifact.Content, diags *diag.Diagnostics) {
	if c.Tree == nil || (!filesValue(c.Tree).IsNull() && !prior.Files.IsNull()) {
		return
	}
	old, err := digest.Parse(prior.Digest.ValueString())
	if err != nil {
		return
	}
	oldMan, err := r.data.store.ListingContent(ctx, old) // content only: this machine's copy will do
	if err != nil {
		return
	}
	lines, total := digest.Diff(oldMan, c.Tree, changesShown)
	for i, l := range lines {
		lines[i] = l[:2] + printable(l[2:])
	}
	if total == 0 {
		return
	}
	more := ""
	if total > len(lines) {
		more = fmt.Sprintf("\n  … and %d more", total-len(lines))
	}
	diags.AddAttributeWarning(path.Root("files"), "Artifact content changed",
		fmt.Sprintf("%d of %d paths differ from %s (+ added, - removed, ~ changed):\n  %s%s",
			total, len(c.Tree.Entries), prior.Digest.ValueString(), strings.Join(lines, "\n  "), more))
}

func (r *ArtifactResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	ctx, told := watchGCWaits(ctx) // why a publish waited for a collection
	defer told(&resp.Diagnostics)
	var plan artifactModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	listing := r.apply(ctx, &plan, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(setArchiveListing(ctx, resp.Private, listing)...)
	plan.setLocations(r.storeOrNil())
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *ArtifactResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan artifactModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	listing := r.apply(ctx, &plan, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(setArchiveListing(ctx, resp.Private, listing)...)
	plan.setLocations(r.storeOrNil())
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// apply stores the content, checks it is what was planned, stores the
// archive and writes output_path. m is the plan, and becomes the state.
// It returns the digest of the archived listing ("" without an archive).
func (r *ArtifactResource) apply(ctx context.Context, m *artifactModel, diags *diag.Diagnostics) string {
	if r.data == nil {
		diags.AddError("Provider not configured", "The provider was not configured before apply. This is a bug in the provider.")
		return ""
	}
	st, sources := r.data.store, r.data.sources
	var guard func(string) error
	if !m.OutputPath.IsNull() {
		// Checked before anything is stored (the plan checked it too, but
		// the file system may have changed since), and again by
		// WriteArchive just before the rename.
		src, isDir := m.Source.ValueString(), false
		if fi, err := os.Stat(src); err == nil {
			isDir = fi.IsDir()
		}
		excludes, _ := m.excludes(ctx)
		guard = sources.OutputGuard(src, isDir, excludes)
		if diags.Append(outputPathDiags(guard(m.OutputPath.ValueString()))...); diags.HasError() {
			return ""
		}
	}
	c, d := r.storeContent(ctx, m)
	if diags.Append(d...); diags.HasError() {
		return ""
	}
	m.setOutputs(c)

	if m.Archive.IsNull() {
		m.setArchive(nil)
		return ""
	}
	format := m.format()
	sum, err := sources.StoreArchive(ctx, format, m.Source.ValueString(), c, planned(m.ArchiveSHA256, digest.ParseHex), !m.OutputPath.IsNull())
	var changed *artifact.ArchiveChangedError
	switch {
	case errors.As(err, &changed):
		diags.AddAttributeError(path.Root("archive_sha256"), "Archive differs from plan",
			fmt.Sprintf("The plan expected archive sha256 %s, the store holds %s. Run plan again.", m.ArchiveSHA256.ValueString(), sum.Hex()))
		return ""
	case err != nil:
		diags.Append(archiveError(st, "archive", "store the archive", err))
		return ""
	}
	m.setArchive(&sum)
	if !m.OutputPath.IsNull() {
		if err := sources.WriteArchive(ctx, format, c, sum, m.OutputPath.ValueString(), guard); err != nil {
			var corrupt *archive.CorruptError
			var mismatch *store.MismatchError
			var notRegular *archive.NotRegularError
			var refused *fsguard.RefusedError
			if errors.As(err, &refused) {
				diags.Append(outputPathDiags(err)...)
				return ""
			}
			if errors.As(err, &corrupt) || errors.As(err, &mismatch) || errors.As(err, &notRegular) {
				diags.Append(archiveError(st, "output_path", "write the archive copy", err))
				return ""
			}
			diags.AddAttributeError(path.Root("output_path"), "Cannot write the archive copy",
				fmt.Sprintf("Writing %s failed: %v. Check that its directory can be created and written by the user running Terraform.", m.OutputPath.ValueString(), err))
			return ""
		}
	}
	return c.Listing.Digest().String()
}

func (r *ArtifactResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m artifactModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || r.data == nil {
		return
	}
	st := r.data.store
	sum, kind, diags := lookupArtifact(ctx, st, m.Digest.ValueString())
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if kind == store.Missing {
		// Gone from the store: forget it, so the next plan creates it again.
		resp.State.RemoveResource(ctx)
		return
	}
	if r.data.verifyOnRefresh {
		if err := st.Verify(ctx, sum); err != nil {
			resp.Diagnostics.Append(corruptError(st, sum, err))
			return
		}
		resp.Diagnostics.Append(r.verifyArchive(ctx, &m, req.Private, kind)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if m.FileCount.IsNull() { // after import: fill in what the store knows
		c, err := r.data.sources.Stored(ctx, sum, kind, false)
		if err != nil {
			resp.Diagnostics.Append(storedError(st, sum, err))
			return
		}
		m.setOutputs(c)
		m.setArchive(nil)
	}
	if !m.OutputPath.IsNull() && !m.ArchiveSHA256.IsNull() {
		if got, _, err := digest.HashFile(ctx, m.OutputPath.ValueString()); err != nil || got.Hex() != m.ArchiveSHA256.ValueString() {
			m.OutputPath = types.StringNull() // missing or altered: the next plan writes it again
		}
	}
	m.setLocations(r.storeOrNil())
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// verifyArchive re-reads the artifact's stored archive and checks it holds
// the listing it was built from (verify_on_refresh).
func (r *ArtifactResource) verifyArchive(ctx context.Context, m *artifactModel, p privateGetter, kind store.Kind) diag.Diagnostics {
	var diags diag.Diagnostics
	if m.Archive.IsNull() || m.ArchiveSHA256.IsNull() || m.ArchiveSHA256.IsUnknown() {
		return diags
	}
	st := r.data.store
	listing := priorArchiveListing(ctx, p)
	if listing == "" && kind == store.Tree { // state from before the listing was kept: a tree's listing is itself
		listing = m.Digest.ValueString()
	}
	lsum, err := digest.Parse(listing)
	if err != nil {
		diags.AddAttributeWarning(path.Root("archive_sha256"), "Archive not verified",
			"This artifact's state does not record which listing its archive was built from (it was imported or written "+
				"by an older build), so verify_on_refresh checked its content but not its archive. The next apply that "+
				"rebuilds or rewrites the archive records it.")
		return diags
	}
	var asum *digest.Sum
	if sum, err := digest.ParseHex(m.ArchiveSHA256.ValueString()); err == nil {
		asum = &sum
	}
	err = r.data.sources.VerifyArchive(ctx, m.format(), lsum, asum)
	var changed *artifact.ArchiveRefChangedError
	var unreadable *artifact.ArchiveRefUnreadableError
	switch {
	case errors.As(err, &changed):
		diags.AddAttributeError(path.Root("archive_sha256"), "Stored archive reference altered",
			fmt.Sprintf("In %s, the archive reference %s names %s, but this artifact's archive is %s (which still verifies). "+
				"References are written once, so it was replaced behind the store's back: delete it (and nothing else), and "+
				"the next apply records it again.", st, changed.Key, changed.Ref, changed.Archive))
	case errors.As(err, &unreadable):
		diags.Append(storeReadError(st, unreadable.Err))
	case err != nil: // the listing unreadable (*artifact.ArchiveListingError), the archive damaged
		diags.Append(archiveError(st, "archive_sha256", "verify the archive", err))
	}
	return diags
}

// storeOrNil is the configured store, or nil before configuration.
func (r *ArtifactResource) storeOrNil() *store.Store {
	if r.data == nil {
		return nil
	}
	return r.data.store
}

func (r *ArtifactResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	// Stored objects are immutable and may be shared by other artifacts and
	// releases: destroying only forgets the artifact. A replacement created
	// next in this operation publishes against its listing.
	var state artifactModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || r.data == nil || state.Source.IsNull() || state.Digest.IsNull() {
		return
	}
	if sum, err := digest.Parse(state.Digest.ValueString()); err == nil {
		r.data.sources.Forgot(state.Source.ValueString(), sum)
	}
}

func (r *ArtifactResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if _, err := digest.Parse(req.ID); err != nil {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("Import an artifact by its digest, e.g. `terraform import immutable_artifact.site sha256:<64 hex>`: %v", err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("digest"), req.ID)...)
}
