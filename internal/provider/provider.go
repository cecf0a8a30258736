package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/immutable-infra/terraform-provider-immutable/internal/actioncache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/artifact"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image/publish"
	"github.com/immutable-infra/terraform-provider-immutable/internal/registry"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/storeurl"
)

// EnvStore names the environment variable read when `store` is not set.
const EnvStore = "IMMUTABLE_STORE"

// EnvBuildCache is the environment variable build_cache falls back to.
const EnvBuildCache = "IMMUTABLE_BUILD_CACHE"

var (
	_ provider.Provider              = (*ImmutableProvider)(nil)
	_ provider.ProviderWithFunctions = (*ImmutableProvider)(nil)
)

// ImmutableProvider is the immutable provider.
type ImmutableProvider struct {
	version string
	hooks   hooks
}

// New returns a constructor of the provider, as providerserver wants.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &ImmutableProvider{version: version, hooks: tagHooks} }
}

type providerModel struct {
	Store           types.String    `tfsdk:"store"`
	VerifyOnRefresh types.Bool      `tfsdk:"verify_on_refresh"`
	BuildCache      types.String    `tfsdk:"build_cache"`
	SigningKey      types.String    `tfsdk:"signing_key"`
	BuilderID       types.String    `tfsdk:"builder_id"`
	S3              *s3Model        `tfsdk:"s3"`
	Trust           *trustModel     `tfsdk:"trust"`
	Registry        []registryModel `tfsdk:"registry"`
}

type s3Model struct {
	Region       types.String `tfsdk:"region"`
	Endpoint     types.String `tfsdk:"endpoint"`
	UsePathStyle types.Bool   `tfsdk:"use_path_style"`
	Profile      types.String `tfsdk:"profile"`
	MaxConc      types.Int64  `tfsdk:"max_concurrency"`
	MaxAttempts  types.Int64  `tfsdk:"max_attempts"`
}

// providerData is what resources and data sources get from Configure:
// one per operation (Terraform configures the provider once per
// operation).
type providerData struct {
	store           *store.Store
	verifyOnRefresh bool
	buildCache      actioncache.Mode
	// signer signs every record written (signing_key); nil signs nothing.
	signer *signature.Signer
	// builderID is the builder.id of the provenance of every build record
	// signed (builder_id); never in a record or its key.
	builderID string
	// trust checks every record read (the trust block), each once per
	// operation; nil checks nothing.
	trust *release.Trust
	// cache makes plans cheap: the stat cache skips unchanged files.
	cache *statcache.Cache
	// refs finds, builds and checks archives in the store, checking each
	// stored archive once per operation.
	refs *archive.Refs
	// sources hashes and stores artifact sources, walking each tree once
	// per operation, and remembers what this operation's destroys forgot
	// (a replacement publishes against them).
	sources *artifact.Sources

	// outputs maps each output_path planned in this operation (resolved)
	// to the archive planned there, so two artifacts writing different
	// archives to one path are caught instead of rewriting it in turn.
	outputs sync.Map
	// exports holds the resolved paths immutable_export plans to write in
	// this operation, to refuse one export inside another's directory.
	exports   sync.Map
	exportsMu sync.Mutex // one claim at a time: check, then record

	// registries is the operation's registry client, made on first use.
	registries *registries
	// images plans and pushes images, remembering those planned in this
	// operation (apply pushes what its final plan assembled) and their
	// layers, and reading the machine's layer cache (beside the stat
	// cache; none without one).
	images *publish.Operation

	// hooks are the provider's (see hooks).
	hooks hooks
}

// newProviderData returns the data of one operation on st, hashing
// through cache (nil: no stat cache), in the default modes; Configure sets
// the others.
func newProviderData(st *store.Store, cache *statcache.Cache) *providerData {
	refs := archive.NewRefs(st)
	var layerCache *image.LayerCache
	if cache != nil {
		layerCache = image.NewLayerCache(filepath.Join(cache.Dir(), "layers"))
		if st != nil {
			st.SetListingCache(store.NewListingCache(filepath.Join(cache.Dir(), "listings")))
		}
	}
	d := &providerData{
		store: st, buildCache: CacheReadWrite, cache: cache, refs: refs,
		sources: artifact.New(st, statcache.NewMemo(cache), refs), registries: &registries{},
	}
	d.images = publish.New(publish.Options{
		Store: st,
		// d.registries is Configure's by the time a client is made.
		Client:  func(ctx context.Context) (*registry.Client, error) { return d.registries.get(ctx) },
		Planned: plannedSource{d},
		Cache:   layerCache,
	})
	return d
}

// archives finds, builds and checks archives in the store.
func (d *providerData) archives() *archive.Refs { return d.refs }

func (p *ImmutableProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "immutable"
	resp.Version = p.version
}

func providerSchema() schema.Schema {
	return schema.Schema{
		MarkdownDescription: "Content-addressed, write-once artifacts and releases. See the guides for the digest spec and the store.",
		Attributes: map[string]schema.Attribute{
			"store": schema.StringAttribute{
				MarkdownDescription: "URL of the content-addressed store. `file://PATH` is a directory on this machine; a relative " +
					"PATH resolves against the directory Terraform runs in. `s3://BUCKET/PREFIX` is a bucket of AWS S3 or an " +
					"S3-compatible store (see the `s3` block). `gs://BUCKET/PREFIX` is a Google Cloud Storage bucket, reached with " +
					"Application Default Credentials. `azblob://ACCOUNT/CONTAINER/PREFIX` is an Azure Blob Storage container, reached " +
					"with the Azure default credentials (`az login`, a managed identity, `AZURE_CLIENT_ID`/`AZURE_TENANT_ID`/" +
					"`AZURE_CLIENT_SECRET`) or a connection string in `AZURE_STORAGE_CONNECTION_STRING`. Defaults to the `" + EnvStore + "` environment variable, " +
					"then to `" + storeurl.Default + "`. A local store serves one machine: when state is shared, share the store too. " +
					"A new store starts only where nothing else is: a directory or prefix that already holds other files is refused " +
					"(the collector must never take them for its own); an existing store, an empty directory or a new one is fine.",
				Optional: true,
			},
			"verify_on_refresh": schema.BoolAttribute{
				MarkdownDescription: "Re-read and re-hash every stored blob of each artifact on refresh, and its archive (checked " +
					"against the listing it was built from, and its reference against state), and fail naming any object that " +
					"no longer matches. Refresh otherwise only checks that each artifact's listing is present. Default `false`.",
				Optional: true,
			},
			"build_cache": schema.StringAttribute{
				MarkdownDescription: "Who may write the build cache (`immutable_build`'s action records): `read-write` " +
					"(default) looks steps up and records what it builds; `read-only` looks up what others (CI) recorded " +
					"and builds a miss without recording it — for laptops, so only CI's builds are shared; `off` neither " +
					"looks up nor records: every new step runs. Outputs are stored as artifacts in every mode. Defaults to " +
					"the `" + EnvBuildCache + "` environment variable, then `read-write`.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.OneOf(string(CacheReadWrite), string(CacheReadOnly), string(CacheOff))},
			},
			"signing_key": schema.StringAttribute{
				MarkdownDescription: signingKeyDescription,
				Optional:            true,
			},
			"builder_id": schema.StringAttribute{
				MarkdownDescription: builderIDDescription,
				Optional:            true,
			},
		},
		Blocks: map[string]schema.Block{
			"registry": registryBlock(),
			"trust":    trustBlock(),
			"s3": schema.SingleNestedBlock{
				MarkdownDescription: "Settings of an `s3://` store. Each falls back to the standard AWS environment. Credentials " +
					"always come from the standard AWS chain (environment, shared config and profiles, SSO, web identity, " +
					"instance roles), never from the configuration or the state.",
				Attributes: map[string]schema.Attribute{
					"region": schema.StringAttribute{
						MarkdownDescription: "The bucket's region. Defaults to `AWS_REGION`, the profile's region, then `us-east-1`.",
						Optional:            true,
					},
					"endpoint": schema.StringAttribute{
						MarkdownDescription: "URL of an S3-compatible endpoint (MinIO, Ceph RGW, Cloudflare R2, SeaweedFS, " +
							"Versity, …), `http://HOST[:PORT]` or `https://HOST[:PORT]`, checked before anything is sent. " +
							"Defaults to `AWS_ENDPOINT_URL_S3` (then `AWS_ENDPOINT_URL`), then AWS S3.",
						Optional: true,
					},
					"use_path_style": schema.BoolAttribute{
						MarkdownDescription: "Address the bucket as `endpoint/bucket` instead of `bucket.endpoint`, as most " +
							"S3-compatible servers need. Default `false`.",
						Optional: true,
					},
					"profile": schema.StringAttribute{
						MarkdownDescription: "Name of an AWS shared-config profile. Defaults to `AWS_PROFILE`.",
						Optional:            true,
					},
					"max_concurrency": schema.Int64Attribute{
						MarkdownDescription: fmt.Sprintf("How many requests the provider keeps in flight to the bucket at once, "+
							"over all its resources together (Terraform applies several at a time), with one kept-alive "+
							"connection each. Default %d: enough to hide a 20 ms round trip behind small uploads. Hashing "+
							"runs on the CPU cores apart from this. From 1 to %d.", store.DefaultConcurrency, store.MaxConcurrency),
						Optional:   true,
						Validators: []validator.Int64{int64validator.Between(1, store.MaxConcurrency)},
					},
					"max_attempts": schema.Int64Attribute{
						MarkdownDescription: fmt.Sprintf("How many times a request to the bucket is tried, the first try "+
							"included, when the server answers with a 5xx status or `503 SlowDown` or the connection fails. "+
							"Retries wait with exponential backoff and full jitter, at most 20 s. A write retried after its "+
							"answer was lost, that meets the object it made, is recognised as the provider's own by the random "+
							"tag each write stores with its object (`x-amz-meta-immutable-write`), never by its bytes. Defaults to "+
							"`AWS_MAX_ATTEMPTS`, the profile's `max_attempts`, then %d: enough for a publish of thousands of "+
							"files to ride out a busy server or a flaky network. From 1 (no retries) to %d.", store.DefaultMaxAttempts, store.MaxAttempts),
						Optional:   true,
						Validators: []validator.Int64{int64validator.Between(1, store.MaxAttempts)},
					},
				},
			},
		},
	}
}

func (p *ImmutableProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = providerSchema()
}

func (p *ImmutableProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.Store.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("store"), "Unknown store",
			"The store URL depends on a value that is only known after apply. The provider needs it to plan: "+
				"set `store` to a literal, a variable, or leave it unset and use "+EnvStore+".")
		return
	}
	raw, source := cfg.Store.ValueString(), "the provider's `store` setting"
	if cfg.Store.IsNull() {
		raw, source = os.Getenv(EnvStore), "the "+EnvStore+" environment variable"
		if raw == "" {
			raw, source = storeurl.Default, "the default store"
		}
	}
	var opts storeurl.Options
	if cfg.S3 != nil {
		for name, v := range map[string]attr.Value{"region": cfg.S3.Region, "endpoint": cfg.S3.Endpoint, "use_path_style": cfg.S3.UsePathStyle, "profile": cfg.S3.Profile, "max_concurrency": cfg.S3.MaxConc, "max_attempts": cfg.S3.MaxAttempts} {
			if v.IsUnknown() {
				resp.Diagnostics.AddAttributeError(path.Root("s3").AtName(name), "Unknown S3 setting",
					"This setting depends on a value only known after apply; the provider needs it to plan. Use a literal or a variable.")
			}
		}
		if resp.Diagnostics.HasError() {
			return
		}
		opts.S3 = s3store.Settings{
			Region: cfg.S3.Region.ValueString(), Endpoint: cfg.S3.Endpoint.ValueString(),
			UsePathStyle: cfg.S3.UsePathStyle.ValueBool(), Profile: cfg.S3.Profile.ValueString(),
			MaxConcurrency: int(cfg.S3.MaxConc.ValueInt64()), MaxAttempts: int(cfg.S3.MaxAttempts.ValueInt64()),
		}
	}
	if strings.HasPrefix(raw, "s3://") {
		if resp.Diagnostics.Append(checkEndpoint(opts.S3.Endpoint)...); resp.Diagnostics.HasError() {
			return
		}
	}
	st, err := storeurl.Open(ctx, raw, opts)
	if err != nil {
		var userInfo *storeurl.UserInfoError
		if errors.As(err, &userInfo) {
			// Not attached to the attribute: Terraform would quote the
			// configuration line under the error, secret and all.
			resp.Diagnostics.AddError("Credentials in the store URL", "Cannot use "+source+": "+err.Error())
			return
		}
		resp.Diagnostics.AddAttributeError(path.Root("store"), "Invalid store URL",
			"Cannot use "+source+": "+err.Error())
		return
	}
	if st.LocalRoot() != "" {
		// A local store is checked at plan, where Terraform names the
		// setting: a new store is never started in a folder that holds
		// other files (the collector would then take it for a store).
		// Writers check the same before they write the identity (Hold).
		var foreign *store.ForeignError
		if _, err := store.CheckLocation(ctx, st.Backend()); errors.As(err, &foreign) {
			resp.Diagnostics.AddAttributeError(path.Root("store"), "Store directory holds other files",
				"Cannot use "+source+": "+foreign.Error()+".")
			return
		}
	}
	st.Waiting = func(ctx context.Context, marker string, d time.Duration) {
		tflog.Warn(ctx, "waiting for a garbage collection deleting objects this apply reuses", map[string]any{
			"marker": marker, "at_most": d.Round(time.Second).String(),
		})
	}
	st.Waited = gcWaited // a warning on the resource, once the wait is over
	buildCache := actioncache.Mode(cfg.BuildCache.ValueString())
	if cfg.BuildCache.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("build_cache"), "Unknown build cache mode",
			"build_cache depends on a value only known after apply; the provider needs it to plan. Use a literal or a variable.")
		return
	}
	if cfg.BuildCache.IsNull() {
		buildCache = actioncache.Mode(os.Getenv(EnvBuildCache))
		switch {
		case buildCache == "":
			buildCache = CacheReadWrite
		case !buildCache.Valid():
			resp.Diagnostics.AddAttributeError(path.Root("build_cache"), "Invalid build cache mode",
				fmt.Sprintf("%s is %q; it must be %s, %s or %s.", EnvBuildCache, buildCache, CacheReadWrite, CacheReadOnly, CacheOff))
			return
		}
	}
	signer, diags := loadSigner(cfg.SigningKey)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	builderID, diags := loadBuilderID(cfg.BuilderID)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	trust, diags := loadTrust(cfg.Trust)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	regOpts, diags := registryOptions(cfg.Registry, "terraform-provider-immutable/"+p.version)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	tflog.Debug(ctx, "immutable store configured", map[string]any{"store": st.String()})
	data := newProviderData(st, statcache.Default())
	data.verifyOnRefresh, data.buildCache, data.hooks = cfg.VerifyOnRefresh.ValueBool(), buildCache, p.hooks
	data.signer, data.builderID, data.trust = signer, builderID, trust
	data.registries = &registries{opts: regOpts}
	resp.ResourceData = data
	resp.DataSourceData = data
}

// checkEndpoint checks the S3 endpoint of an s3:// store, from
// s3.endpoint or, unset, the environment the AWS SDK reads, before
// anything is sent: the SDK takes an endpoint without a scheme and fails
// only at the first request, as a network error.
func checkEndpoint(setting string) diag.Diagnostics {
	var diags diag.Diagnostics
	name, value := s3store.EndpointSource("s3.endpoint", setting)
	if value == "" {
		return diags
	}
	err := s3store.CheckEndpoint(name, value)
	switch {
	case err == nil:
	case name == "s3.endpoint" && !strings.Contains(value, "@"):
		diags.AddAttributeError(path.Root("s3").AtName("endpoint"), "Invalid S3 endpoint", err.Error()+". Nothing was sent to it.")
	default:
		// The environment, or what may be a secret: not attached to the
		// attribute, under which Terraform would quote the configuration
		// line, secret and all.
		diags.AddError("Invalid S3 endpoint", err.Error()+". Nothing was sent to it.")
	}
	return diags
}

// configureData unpacks what Configure gave resources and data sources;
// nil while the provider is not configured yet.
func configureData(v any, diags *diag.Diagnostics) *providerData {
	if v == nil {
		return nil
	}
	data, ok := v.(*providerData)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("Expected *providerData, got %T. This is a bug in the provider.", v))
		return nil
	}
	return data
}

func (p *ImmutableProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{NewArtifactResource, NewBuildResource, NewChannelResource, NewExportResource, NewImageResource, NewImageIndexResource, NewReleaseResource, NewYankResource}
}

func (p *ImmutableProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{NewArtifactDataSource, NewChannelDataSource, NewImageDataSource, NewReleaseDataSource, NewReleaseDiffDataSource, NewReleasesDataSource}
}

func (p *ImmutableProvider) Functions(context.Context) []func() function.Function {
	return []func() function.Function{NewDigestFunction, NewFileDigestsFunction}
}
