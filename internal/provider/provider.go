package provider

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/storeurl"
)

// EnvStore names the environment variable read when `store` is not set.
const EnvStore = "IMMUTABLE_STORE"

var _ provider.Provider = (*ImmutableProvider)(nil)

// ImmutableProvider is the immutable provider.
type ImmutableProvider struct {
	version string
}

// New returns a constructor of the provider, as providerserver wants.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &ImmutableProvider{version: version} }
}

type providerModel struct {
	Store           types.String `tfsdk:"store"`
	VerifyOnRefresh types.Bool   `tfsdk:"verify_on_refresh"`
}

// providerData is what resources and data sources get from Configure.
type providerData struct {
	store           *store.Store
	verifyOnRefresh bool
}

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
					"PATH resolves against the directory Terraform runs in. Defaults to the `" + EnvStore + "` environment variable, " +
					"then to `" + storeurl.Default + "`. A local store serves one machine: when state is shared, share the store too.",
				Optional: true,
			},
			"verify_on_refresh": schema.BoolAttribute{
				MarkdownDescription: "Re-read and re-hash every stored blob of each artifact on refresh, and fail naming any blob " +
					"that no longer matches its digest. Refresh otherwise only checks that each artifact's manifest is present. Default `false`.",
				Optional: true,
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
	st, err := storeurl.Open(raw)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("store"), "Invalid store URL",
			"Cannot use "+source+": "+err.Error())
		return
	}
	tflog.Debug(ctx, "immutable store configured", map[string]any{"store": st.String()})
	data := &providerData{store: st, verifyOnRefresh: cfg.VerifyOnRefresh.ValueBool()}
	resp.ResourceData = data
	resp.DataSourceData = data
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
	return []func() resource.Resource{NewArtifactResource, NewReleaseResource}
}

func (p *ImmutableProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{NewArtifactDataSource, NewReleaseDataSource, NewReleasesDataSource}
}

func (p *ImmutableProvider) Functions(context.Context) []func() function.Function {
	return nil
}
