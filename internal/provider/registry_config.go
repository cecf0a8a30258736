package provider

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/registry"
)

// Environment variables a registry block without credentials falls back to.
const (
	EnvRegistryUsername = "IMMUTABLE_REGISTRY_USERNAME"
	EnvRegistryPassword = "IMMUTABLE_REGISTRY_PASSWORD"
)

type registryModel struct {
	Address   types.String `tfsdk:"address"`
	Username  types.String `tfsdk:"username"`
	Password  types.String `tfsdk:"password"`
	PlainHTTP types.Bool   `tfsdk:"plain_http"`
	CAFile    types.String `tfsdk:"ca_file"`
}

func registryBlock() schema.Block {
	return schema.ListNestedBlock{
		MarkdownDescription: "How to reach an OCI registry that `immutable_image` pushes to or reads a base from, one block per " +
			"registry. Registries without a block, and blocks without credentials, use what `docker` and `crane` use: " +
			"Docker's `config.json` (`DOCKER_CONFIG`) and its credential helpers (`docker login`, `docker-credential-ecr-login`, " +
			"`gcloud auth configure-docker`). Credentials never reach the state, the plan or the logs.",
		NestedObject: schema.NestedBlockObject{
			Attributes: map[string]schema.Attribute{
				"address": schema.StringAttribute{
					MarkdownDescription: "The registry's host and optional port, as in an image reference: `ghcr.io`, " +
						"`123456789012.dkr.ecr.eu-west-1.amazonaws.com`, `127.0.0.1:5000`.",
					Required: true,
				},
				"username": schema.StringAttribute{
					MarkdownDescription: "User name for basic or token authentication. Defaults to `" + EnvRegistryUsername + "` when " +
						"that and `" + EnvRegistryPassword + "` are set; otherwise Docker's configuration is used.",
					Optional: true,
				},
				"password": schema.StringAttribute{
					MarkdownDescription: "Password or token. Defaults to `" + EnvRegistryPassword + "`. Sensitive: pass it from a " +
						"variable marked `sensitive` or the environment, never as a literal.",
					Optional:  true,
					Sensitive: true,
				},
				"plain_http": schema.BoolAttribute{
					MarkdownDescription: "Reach this registry over plain HTTP. Only loopback addresses (`127.0.0.1`, `[::1]`, " +
						"`localhost`) are reached over HTTP without it; every other registry is HTTPS only. Default `false`.",
					Optional: true,
				},
				"ca_file": schema.StringAttribute{
					MarkdownDescription: "A PEM file of certificate authorities trusted besides the system's (a private Harbor, " +
						"a test registry). One file per provider: it is trusted for every registry the provider reaches, so " +
						"blocks that name one must name the same file (put several authorities in it).",
					Optional: true,
				},
			},
		},
	}
}

// registryOptions reads the registry blocks.
func registryOptions(blocks []registryModel, userAgent string) (registry.Options, diag.Diagnostics) {
	var diags diag.Diagnostics
	opts := registry.Options{UserAgent: userAgent}
	seen := map[string]bool{}
	for i, b := range blocks {
		at := path.Root("registry").AtListIndex(i)
		for name, v := range map[string]interface{ IsUnknown() bool }{"address": b.Address, "username": b.Username, "password": b.Password, "plain_http": b.PlainHTTP, "ca_file": b.CAFile} {
			if v.IsUnknown() {
				diags.AddAttributeError(at.AtName(name), "Unknown registry setting",
					at.AtName(name).String()+" depends on a value only known after apply; the provider needs it to plan. Use a literal, a variable or the environment.")
			}
		}
		if diags.HasError() {
			return opts, diags
		}
		addr := b.Address.ValueString()
		if err := registry.CheckAddress(addr); err != nil {
			diags.AddAttributeError(at.AtName("address"), "Invalid registry address", err.Error()+".")
			return opts, diags
		}
		if seen[addr] {
			diags.AddAttributeError(at.AtName("address"), "Registry listed twice",
				fmt.Sprintf("%q has two registry blocks. Keep one.", addr))
			return opts, diags
		}
		seen[addr] = true
		user, pass := b.Username.ValueString(), b.Password.ValueString()
		if b.Username.IsNull() && b.Password.IsNull() {
			user, pass = os.Getenv(EnvRegistryUsername), os.Getenv(EnvRegistryPassword)
		}
		if (user == "") != (pass == "") {
			// On the username's line when it is the one given; never on
			// the password's, which Terraform would quote.
			on := at
			if !b.Username.IsNull() {
				on = at.AtName("username")
			}
			diags.AddAttributeError(on, "Incomplete registry credentials",
				fmt.Sprintf("The registry block for %q has a username without a password or a password without a username "+
					"(after the %s and %s fallbacks). Set both, or neither to use Docker's configuration.", addr, EnvRegistryUsername, EnvRegistryPassword))
			return opts, diags
		}
		if user != "" {
			opts.Credentials = append(opts.Credentials, registry.Credential{Registry: addr, Username: user, Password: pass})
		}
		if b.PlainHTTP.ValueBool() {
			opts.PlainHTTP = append(opts.PlainHTTP, addr)
		}
		if f := b.CAFile.ValueString(); f != "" {
			if opts.CAFile != "" && opts.CAFile != f {
				diags.AddAttributeError(at.AtName("ca_file"), "One CA file per provider",
					"Two registry blocks name different ca_file values; put both authorities in one PEM file and name it in each block.")
				return opts, diags
			}
			if _, err := os.Stat(f); err != nil {
				diags.AddAttributeError(at.AtName("ca_file"), "Cannot read the CA file", err.Error())
				return opts, diags
			}
			opts.CAFile = f
		}
	}
	return opts, diags
}

// registries makes the operation's registry client on first use: a
// configuration without images never builds one.
type registries struct {
	opts   registry.Options
	once   sync.Once
	client *registry.Client
	err    error
}

func (r *registries) get(context.Context) (*registry.Client, error) {
	r.once.Do(func() { r.client, r.err = registry.New(r.opts) })
	return r.client, r.err
}
