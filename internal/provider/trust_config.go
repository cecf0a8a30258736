package provider

import (
	"context"
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
	Channels          types.Map      `tfsdk:"channels"`
}

// trustBlock is the schema of the provider's trust block.
func trustBlock() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
		MarkdownDescription: "The verification policy: which keys' signatures the provider trusts on the records it reads. " +
			"With keys set, the data sources `immutable_release` (and the yank entries that decide what a constraint " +
			"resolves to), `immutable_releases` (every version and yank entry it lists), `immutable_channel` (every move " +
			"`history` shows, the version the channel points to and its yank entry) and `immutable_release_diff`, the plan " +
			"of a channel move (its target version and that version's yank entry), a build cache hit, and the refresh of " +
			"what a resource did not write itself (an import, a channel moved by others), refuse at plan a record that " +
			"carries signatures none of which is a trusted key's " +
			"valid signature of that record — naming the record and the key IDs found — and, unless `require_signatures = " +
			"false`, a record with no signature: whoever can write the bucket could otherwise get past the policy by not " +
			"signing. Removing a key from `keys` makes its signatures untrusted at the next plan " +
			"(rotation, revocation). `channels` adds per-channel requirements. Without this block nothing is verified and " +
			"nothing extra is read.",
		Attributes: map[string]schema.Attribute{
			"keys": schema.ListAttribute{
				MarkdownDescription: "Trusted public keys, Ed25519 or ECDSA P-256, each string such as `file(\"ci.pub\")` " +
					"in one of two forms: PEM (`-----BEGIN PUBLIC KEY-----`; several blocks allowed), or SSH public keys one a " +
					"line — a `.pub` file, `authorized_keys`, or an `allowed_signers` file (`principals [options] ssh-ed25519 " +
					"AAAA… [comment]`; `#` comments and blank lines skipped; the principals are shown next to the key ID in " +
					"errors). An SSH key and its PEM form have the same key ID. Refused: both forms in one string, " +
					"`cert-authority` lines, certificates, validity windows (`valid-after`, `valid-before`, `expiry-time`: " +
					"not enforced, so remove the line to revoke a key), a `namespaces=\"…\"` list that does not allow " +
					"`immutable-infra.dev` (a key for Git only), and other key types; other options are ignored. Trust a " +
					"signers file of its own, holding only keys used to sign releases, not a team's Git signers file. A key's " +
					"ID is the one its signatures name.",
				ElementType: types.StringType,
				Optional:    true,
			},
			"require_signatures": schema.BoolAttribute{
				MarkdownDescription: "Refuse a record that has no signature at all, too. Default `true` (with a policy, an " +
					"unsigned record is refused: anyone who can write the bucket could write one). Set `false` only while a " +
					"store's older records predate signing: unsigned records then pass, signed ones must be signed by a " +
					"trusted key. This catches mistakes, not attackers (an unsigned or hand-edited record passes): the provider " +
					"warns at every plan while it is `false`.",
				Optional: true,
			},
			"channels": schema.MapAttribute{
				MarkdownDescription: "Per-channel requirements: a channel name → the public keys (as in `keys`: PEM or SSH) one of " +
					"which must have signed any version that channel moves to (the plan of `immutable_channel`) or is read " +
					"through (`immutable_channel` data source), on top of the general policy — such as " +
					"`{ prod = [file(\"rm.pub\")] }`: `prod` takes only versions a release manager approved " +
					"(`terraform-provider-immutable sign`). A key is a channel name alone (`prod`, not `web/prod`; no wildcards), " +
					"applying to that channel of every release. These keys are trusted by the general policy too.",
				ElementType: types.ListType{ElemType: types.StringType},
				Optional:    true,
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
	keys := parseKeys(m.Keys, path.Root("trust").AtName("keys"), "trust.keys", &diags)
	var channels map[string][]*signature.Verifier
	switch {
	case m.Channels.IsUnknown():
		diags.AddAttributeError(path.Root("trust").AtName("channels"), "Unknown trust.channels",
			"trust.channels depends on a value only known after apply; the provider needs it to plan. Use literals, file() or variables.")
	case !m.Channels.IsNull():
		var raw map[string]types.List
		diags.Append(m.Channels.ElementsAs(context.Background(), &raw, false)...)
		channels = make(map[string][]*signature.Verifier, len(raw))
		for ch, l := range raw {
			at := path.Root("trust").AtName("channels").AtMapKey(ch)
			name := fmt.Sprintf("trust.channels[%q]", ch)
			if err := release.CheckChannel(ch); err != nil {
				// A key no channel can have would be a requirement that
				// never applies: "Prod", "prod ", "web/prod" or "*" would
				// leave prod unguarded.
				diags.AddAttributeError(at, "Invalid channel in trust.channels",
					fmt.Sprintf("%s: %v. A key is a channel's name alone (\"prod\"), without its release (not \"web/prod\") "+
						"or wildcards; it applies to that channel of every release.", name, err))
				continue
			}
			var elems []types.String
			if l.IsUnknown() || l.IsNull() {
				diags.AddAttributeError(at, "Invalid channel keys", fmt.Sprintf("%s is null or only known after apply: give a list of "+
					"public keys (PEM or SSH), such as [file(\"rm.pub\")].", name))
				continue
			}
			diags.Append(l.ElementsAs(context.Background(), &elems, false)...)
			vs := parseKeys(elems, at, name, &diags)
			if len(elems) == 0 {
				diags.AddAttributeError(at, "No channel keys", fmt.Sprintf("%s is empty: list the public keys one of which must "+
					"sign the versions channel %s takes, or remove the entry.", name, ch))
			}
			channels[ch] = vs
		}
	}
	if diags.HasError() {
		return nil, diags
	}
	require := m.RequireSignatures.ValueBool()
	if m.RequireSignatures.IsNull() {
		require = true // a policy that unsigned records pass is one a bucket writer passes by not signing
	}
	if !require {
		diags.AddAttributeWarning(path.Root("trust").AtName("require_signatures"), "Unsigned records are trusted",
			"trust.require_signatures = false: a record with no signature passes the policy. This catches mistakes, not "+
				"attackers: whoever can write the bucket can publish a record without signing it, and a signed record "+
				"edited by hand is a new, unsigned record, which passes too. Set it back to true (the default) once "+
				"every record the workspace reads is signed.")
	}
	if require && len(keys) == 0 && len(channels) == 0 {
		// Every read would be refused, each saying only that its signer is
		// not trusted: say once why.
		diags.AddAttributeWarning(path.Root("trust").AtName("keys"), "No trusted keys",
			"trust.keys is empty and trust.channels lists no keys: no signature can be trusted, so every record the "+
				"workspace reads is refused. List the public keys whose signatures are trusted (PEM or SSH), such as "+
				"keys = [file(\"ci.pub\")].")
	}
	t := release.NewTrust(keys, require)
	t.Channels = channels
	return t, diags
}

// parseKeys parses a list of public keys (PEM or SSH) at attribute at, which
// diagnostics call name.
func parseKeys(list []types.String, at path.Path, name string, diags *diag.Diagnostics) []*signature.Verifier {
	var keys []*signature.Verifier
	for i, k := range list {
		at := at.AtListIndex(i)
		switch {
		case k.IsUnknown():
			diags.AddAttributeError(at, "Unknown trusted key",
				fmt.Sprintf("%s[%d] depends on a value only known after apply; the provider needs it to plan. "+
					"Use file(\"key.pub\") or a variable.", name, i))
			continue
		case k.IsNull():
			diags.AddAttributeError(at, "Null trusted key", fmt.Sprintf("%s[%d] is null: give a public key (PEM or SSH), or remove the entry.", name, i))
			continue
		}
		vs, err := signature.ParsePublicKeys([]byte(k.ValueString()))
		if err != nil {
			diags.AddAttributeError(at, "Invalid trusted key",
				fmt.Sprintf("%s[%d] is not a usable public key: %v. Give public keys, Ed25519 or ECDSA P-256, in PEM "+
					"(\"-----BEGIN PUBLIC KEY-----\"; from a signing key: `openssl pkey -in signing.pem -pubout -out ci.pub`) "+
					"or as SSH public key lines (a .pub or allowed_signers file: `ci@example.com ssh-ed25519 AAAA…`), "+
					"such as file(\"ci.pub\").", name, i, err))
			continue
		}
		keys = append(keys, vs...)
	}
	return keys
}

// untrustedError is a record refused by the trust policy.
func untrustedError(err *release.UntrustedRecordError) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Untrusted record", upperFirst(err.Error())+".")
}

// channelPolicyError is a version refused by a channel's requirement.
func channelPolicyError(err *release.ChannelPolicyError) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Version not approved for the channel", upperFirst(err.Error())+".")
}
