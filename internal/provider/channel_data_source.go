package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

var _ datasource.DataSourceWithConfigure = (*ChannelDataSource)(nil)

// ChannelDataSource is data.immutable_channel.
type ChannelDataSource struct {
	data *providerData
}

// NewChannelDataSource returns the data source.
func NewChannelDataSource() datasource.DataSource { return &ChannelDataSource{} }

type channelDataModel struct {
	ID           types.String `tfsdk:"id"`
	Release      types.String `tfsdk:"release"`
	Channel      types.String `tfsdk:"channel"`
	HistoryLimit types.Int64  `tfsdk:"history_limit"`
	Version      types.String `tfsdk:"version"`
	Digest       types.String `tfsdk:"digest"`
	Artifacts    types.Map    `tfsdk:"artifacts"`
	Images       types.Map    `tfsdk:"images"`
	Metadata     types.Map    `tfsdk:"metadata"`
	MovedAt      types.String `tfsdk:"moved_at"`
	History      types.List   `tfsdk:"history"`
}

var moveType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"move": types.Int64Type, "from": types.StringType, "to": types.StringType, "reason": types.StringType, "at": types.StringType,
}}

// defaultHistory is how many moves the data source returns by default.
const defaultHistory = 10

func (d *ChannelDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_channel"
}

func (d *ChannelDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Computed: true}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads where a channel points — the version, its artifacts — and its recent moves, so a " +
			"deploy workspace follows `prod` while the release workspace promotes. Read once, during plan.",
		Attributes: map[string]schema.Attribute{
			"id":      computed("`release/channel`."),
			"release": schema.StringAttribute{MarkdownDescription: "Release name.", Required: true, Validators: []validator.String{releaseNameValidator}},
			"channel": schema.StringAttribute{MarkdownDescription: "Channel name.", Required: true, Validators: []validator.String{channelValidator}},
			"history_limit": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("How many of the latest moves `history` holds. Default %d.", defaultHistory),
				Optional:            true, Validators: []validator.Int64{int64validator.Between(1, 1000)},
			},
			"version":   computed("The version the channel points to."),
			"digest":    computed("That version's release digest."),
			"artifacts": schema.MapAttribute{MarkdownDescription: "That version's artifacts, name → digest.", ElementType: types.StringType, Computed: true},
			"images": schema.MapAttribute{
				MarkdownDescription: "That version's images, name → `registry/repository@sha256:…`: a deploy workspace " +
					"following the channel gives these to its services.",
				ElementType: types.StringType, Computed: true,
			},
			"metadata": schema.MapAttribute{MarkdownDescription: "That version's metadata.", ElementType: types.StringType, Computed: true},
			"moved_at": computed("When the channel moved there (RFC 3339, UTC)."),
			"history": schema.ListAttribute{
				MarkdownDescription: "The latest moves, oldest first: `move` (its number), `from` (null for the first), `to`, `reason`, `at`. " +
					"Under a trust policy, an older move the policy refuses is left out, with a warning naming it, and the move " +
					"after it shows a null `from`; the move in effect is never left out: refused, the read fails.",
				ElementType: moveType, Computed: true,
			},
		},
	}
}

func (d *ChannelDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configureData(req.ProviderData, &resp.Diagnostics)
}

func (d *ChannelDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m channelDataModel
	if resp.Diagnostics.Append(req.Config.Get(ctx, &m)...); resp.Diagnostics.HasError() || d.data == nil {
		return
	}
	st, rel, ch := d.data.store, m.Release.ValueString(), m.Channel.ValueString()
	limit := defaultHistory
	if !m.HistoryLimit.IsNull() {
		limit = int(m.HistoryLimit.ValueInt64())
	}
	hist, err := release.History(ctx, st.Backend(), rel, ch, limit)
	if err != nil {
		resp.Diagnostics.Append(releaseError(st, rel, err))
		return
	}
	if len(hist) == 0 {
		resp.Diagnostics.AddAttributeError(path.Root("channel"), "Channel not found",
			fmt.Sprintf("The channel %s of release %q has never pointed anywhere in %s. Check the names, or create it with immutable_channel.", ch, rel, st))
		return
	}
	cur := hist[len(hist)-1]
	// Every move `history` shows is checked, the current one first: the
	// history is values a plan can use.
	if err := d.data.trust.CheckMove(ctx, st.Backend(), cur); err != nil {
		resp.Diagnostics.Append(releaseError(st, rel, err))
		return
	}
	// An older move the policy refuses is left out of `history`, with a
	// warning naming it: the channel's position does not rest on it, and
	// one forged move must not break every reader for the next
	// history_limit moves. Nothing of it is shown, nor the `from` of the
	// move after it (where it ended).
	skip := map[int]bool{}
	if err := d.data.trust.CheckMoves(ctx, st.Backend(), hist[:len(hist)-1]); err != nil {
		for _, h := range hist[:len(hist)-1] {
			err := d.data.trust.CheckMove(ctx, st.Backend(), h) // memoised: read once
			var untrusted *release.UntrustedRecordError
			switch {
			case errors.As(err, &untrusted):
				skip[h.Seq] = true
				resp.Diagnostics.AddAttributeWarning(path.Root("history"), "Untrusted move left out of history",
					fmt.Sprintf("%s. It is an older move of the channel %s of %s (move %d), not the one in effect: `history` "+
						"leaves it out, and shows no `from` for the move after it. Check who can write the store.",
						upperFirst(untrusted.Error()), ch, rel, h.Seq))
			case err != nil:
				resp.Diagnostics.Append(releaseError(st, rel, err))
				return
			}
		}
	}
	rec, err := d.data.trust.Get(ctx, st.Backend(), rel, cur.To)
	if err == nil {
		err = d.data.trust.CheckMoveRecord(ctx, st.Backend(), cur, rec)
	}
	if err == nil {
		err = d.data.trust.CheckChannel(ctx, st.Backend(), ch, rec)
	}
	if err != nil {
		resp.Diagnostics.Append(releaseError(st, rel, err))
		return
	}
	y, err := release.YankState(ctx, st.Backend(), rel, cur.To)
	if err == nil {
		// The warning is the entry's word: checked like the rest.
		err = d.data.trust.CheckYank(ctx, st.Backend(), y)
	}
	var untrusted *release.UntrustedRecordError
	if errors.As(err, &untrusted) {
		resp.Diagnostics.Append(untrustedError(untrusted))
		return
	}
	if err == nil && y != nil && y.Yanked {
		resp.Diagnostics.AddAttributeWarning(path.Root("channel"), "Channel points to a yanked version",
			fmt.Sprintf("%s of %s points to %s, yanked on %s: %s. Move the channel to another version.", ch, rel, usertext.Show(cur.To), usertext.Show(y.At), usertext.Show(y.Reason)))
	}
	elems := make([]attr.Value, 0, len(hist))
	for _, h := range hist {
		if skip[h.Seq] {
			continue
		}
		from := optionalString(h.From)
		if skip[h.Seq-1] {
			from = types.StringNull()
		}
		elems = append(elems, types.ObjectValueMust(moveType.AttrTypes, map[string]attr.Value{
			"move": types.Int64Value(int64(h.Seq)), "from": from, "to": types.StringValue(h.To),
			"reason": types.StringValue(h.Reason), "at": types.StringValue(h.At),
		}))
	}
	m.ID = types.StringValue(rel + "/" + ch)
	m.Version, m.Digest, m.MovedAt = types.StringValue(cur.To), types.StringValue(rec.Digest), types.StringValue(cur.At)
	m.Artifacts, m.Images, m.Metadata = stringMap(rec.Artifacts), stringMap(rec.Images), stringMap(rec.Metadata)
	m.History = types.ListValueMust(moveType, elems)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
