package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

var (
	_ datasource.DataSource              = (*ArtifactDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*ArtifactDataSource)(nil)
)

// ArtifactDataSource is data.immutable_artifact: a stored artifact, checked.
type ArtifactDataSource struct {
	data *providerData
}

// NewArtifactDataSource returns the data source.
func NewArtifactDataSource() datasource.DataSource { return &ArtifactDataSource{} }

type artifactDataModel struct {
	ID        types.String `tfsdk:"id"`
	Digest    types.String `tfsdk:"digest"`
	Kind      types.String `tfsdk:"kind"`
	FileCount types.Int64  `tfsdk:"file_count"`
	Size      types.Int64  `tfsdk:"size"`
	Files     types.Map    `tfsdk:"files"`
	Archives  types.Map    `tfsdk:"archives"`

	Path             types.String `tfsdk:"path"`
	S3Bucket         types.String `tfsdk:"s3_bucket"`
	S3Key            types.String `tfsdk:"s3_key"`
	S3URL            types.String `tfsdk:"s3_url"`
	ArchiveLocations types.Map    `tfsdk:"archive_locations"`
}

func (d *ArtifactDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_artifact"
}

func (d *ArtifactDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Checks that an artifact is in the store and intact — every blob is re-read and re-hashed — " +
			"and describes it. Use it to gate a deploy on content that really is stored.",
		Attributes: map[string]schema.Attribute{
			"id":         schema.StringAttribute{MarkdownDescription: "The digest.", Computed: true},
			"digest":     schema.StringAttribute{MarkdownDescription: "The artifact digest, `sha256:<hex>`.", Required: true, Validators: []validator.String{digestValidator}},
			"kind":       schema.StringAttribute{MarkdownDescription: "`directory`, or `file` for a file or inline content.", Computed: true},
			"file_count": schema.Int64Attribute{MarkdownDescription: "Number of files and symlinks (1 for a file).", Computed: true},
			"size":       schema.Int64Attribute{MarkdownDescription: "Total size in bytes.", Computed: true},
			"files": schema.MapAttribute{
				MarkdownDescription: fmt.Sprintf("For a directory of at most %d entries, path → `<kind> sha256:<hex>`; else null.", FilesLimit),
				ElementType:         types.StringType, Computed: true,
			},
			"path": schema.StringAttribute{MarkdownDescription: "On a `file://` store, for a file artifact: the absolute path " +
				"of the stored, read-only file (what `aws_lambda_function.filename` takes).", Computed: true},
			"s3_bucket": schema.StringAttribute{MarkdownDescription: "On an `s3://` store: the bucket of the store (for a file artifact, " +
				"the bucket of its bytes; for archives with the keys in `archive_locations`).", Computed: true},
			"s3_key": schema.StringAttribute{MarkdownDescription: "On an `s3://` store, for a file artifact: the object key of its bytes.", Computed: true},
			"s3_url": schema.StringAttribute{MarkdownDescription: "On an `s3://` store, for a file artifact: `s3://bucket/key` of its bytes.", Computed: true},
			"archive_locations": schema.MapAttribute{
				MarkdownDescription: "Where each archive in `archives` lives: format → the absolute path of the read-only stored " +
					"file on a `file://` store, or the object key on an `s3://` store (in the bucket `s3_bucket`).",
				ElementType: types.StringType, Computed: true,
			},
			"archives": schema.MapAttribute{
				MarkdownDescription: "Archives stored for this directory: format (`zip`, `tar.gz`) → hex sha256 of the archive.",
				ElementType:         types.StringType, Computed: true,
			},
		},
	}
}

func (d *ArtifactDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configureData(req.ProviderData, &resp.Diagnostics)
}

func (d *ArtifactDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m artifactDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || d.data == nil {
		return
	}
	st := d.data.store
	sum, kind, diags := lookupArtifact(ctx, st, m.Digest.ValueString())
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if kind == store.Missing {
		resp.Diagnostics.AddAttributeError(path.Root("digest"), "Artifact not in the store",
			fmt.Sprintf("%s is not in the store %s. Check the digest and the provider's `store`.", sum, st))
		return
	}
	c, err := d.data.sources.Stored(ctx, sum, kind, true) // every blob re-read and re-hashed
	if err != nil {
		resp.Diagnostics.Append(storedError(st, sum, err))
		return
	}
	archives, locations := map[string]attr.Value{}, map[string]attr.Value{}
	if man := c.Tree; man != nil {
		for _, f := range archive.Formats {
			ref, err := d.data.archives().Lookup(ctx, f, man) // checked against the listing
			switch {
			case err == nil:
				archives[string(f)] = types.StringValue(ref.Hex())
				if loc, ok := st.Locate(store.BlobKey(ref)); ok {
					locations[string(f)] = types.StringValue(loc.Path + loc.Key) // one of the two is set
				}
			case !errors.Is(err, store.ErrNotFound):
				resp.Diagnostics.Append(archiveError(st, "archives", "read the stored archive", err))
				return
			}
		}
		m.Kind = types.StringValue("directory")
	} else {
		m.Kind = types.StringValue("file")
	}
	m.ID = m.Digest
	m.FileCount, m.Size, m.Files = types.Int64Value(c.Count), types.Int64Value(c.Size), filesValue(c.Tree)
	m.Archives = types.MapValueMust(types.StringType, archives)
	m.ArchiveLocations = types.MapValueMust(types.StringType, locations)
	m.Path, m.S3Bucket, m.S3Key, m.S3URL = types.StringNull(), types.StringNull(), types.StringNull(), types.StringNull()
	if probe, ok := st.Locate(store.BlobKey(sum)); ok {
		m.S3Bucket = optionalString(probe.Bucket)
		if kind == store.Blob {
			m.Path, m.S3Key, m.S3URL = optionalString(probe.Path), optionalString(probe.Key), optionalString(probe.URL)
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
