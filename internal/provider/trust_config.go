package provider

import (
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/signature"
)

// trustModel is the provider's trust block.
type trustModel struct {
	Keys              []types.String `tfsdk:"keys"`
	RequireSignatures types.Bool     `tfsdk:"require_signatures"`
}

// trustBlock is the schema of the provider's trust block.
func trustBlock() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
		MarkdownDescription: "The verification policy: which keys' signatures the provider trusts on the records it reads. " +
			"With keys set, the data sources `immutable_release`, `immutable_releases` (its `latest`), `immutable_channel` " +
			"(the channel's current move and the version it names) and `immutable_release_diff`, and the plan of a channel " +
			"move (its target version), refuse at plan a record that carries signatures none of which is a trusted key's " +
			"valid signature of that record — naming the record and the key IDs found. A record with no signature passes " +
			"unless `require_signatures` is set. Removing a key from `keys` makes its signatures untrusted at the next plan " +
			"(rotation, revocation). Without this block nothing is verified and nothing extra is read.",
		Attributes: map[string]schema.Attribute{
			"keys": schema.ListAttribute{
				MarkdownDescription: "Trusted public keys, each a PEM string (`-----BEGIN PUBLIC KEY-----`, Ed25519 or ECDSA " +
					"P-256; one string may hold several blocks), such as `file(\"ci.pub\")`. A key's ID is the one its " +
					"signatures name.",
				ElementType: types.StringType,
				Optional:    true,
			},
			"require_signatures": schema.BoolAttribute{
				MarkdownDescription: "Refuse a record that has no signature at all, too. Default `false`: unsigned records " +
					"pass (a store whose older records predate signing), signed ones must be signed by a trusted key.",
				Optional: true,
			},
		},
	}
}

// loadTrust makes the operation's policy from the trust block: nil (no
// checks) without one. Its diagnostics name the attribute.
func loadTrust(m *trustModel) (*release.Trust, diag.Diagnostics) {
	var diags diag.Diagnostics
	if m == nil {
		return nil, nil
	}
	if m.RequireSignatures.IsUnknown() {
		diags.AddAttributeError(path.Root("trust").AtName("require_signatures"), "Unknown require_signatures",
			"trust.require_signatures depends on a value only known after apply; the provider needs it to plan. Use a literal or a variable.")
		return nil, diags
	}
	var keys []*signature.Verifier
	for i, k := range m.Keys {
		at := path.Root("trust").AtName("keys").AtListIndex(i)
		switch {
		case k.IsUnknown():
			diags.AddAttributeError(at, "Unknown trusted key",
				fmt.Sprintf("trust.keys[%d] depends on a value only known after apply; the provider needs it to plan. "+
					"Use file(\"key.pub\") or a variable.", i))
			continue
		case k.IsNull():
			diags.AddAttributeError(at, "Null trusted key", fmt.Sprintf("trust.keys[%d] is null: give a PEM public key, or remove the entry.", i))
			continue
		}
		vs, err := signature.ParsePublicKeys([]byte(k.ValueString()))
		if err != nil {
			diags.AddAttributeError(at, "Invalid trusted key",
				fmt.Sprintf("trust.keys[%d] is not a usable public key: %v. Give a public key in PEM (\"-----BEGIN PUBLIC KEY-----\", "+
					"Ed25519 or ECDSA P-256), such as file(\"ci.pub\"); make one from a signing key with "+
					"`openssl pkey -in signing.pem -pubout -out ci.pub`.", i, err))
			continue
		}
		keys = append(keys, vs...)
	}
	if diags.HasError() {
		return nil, diags
	}
	return release.NewTrust(keys, m.RequireSignatures.ValueBool()), nil
}

// untrustedError is a record refused by the trust policy.
func untrustedError(err *release.UntrustedRecordError) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Untrusted record", upperFirst(err.Error())+".")
}
