package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

var (
	_ resource.Resource                = (*ChannelResource)(nil)
	_ resource.ResourceWithConfigure   = (*ChannelResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*ChannelResource)(nil)
	_ resource.ResourceWithImportState = (*ChannelResource)(nil)
)

// ChannelResource is immutable_channel.
type ChannelResource struct {
	data *providerData
}

// NewChannelResource returns the resource.
func NewChannelResource() resource.Resource { return &ChannelResource{} }

type channelModel struct {
	ID              types.String `tfsdk:"id"`
	Release         types.String `tfsdk:"release"`
	Channel         types.String `tfsdk:"channel"`
	Version         types.String `tfsdk:"version"`
	Reason          types.String `tfsdk:"reason"`
	Requires        types.List   `tfsdk:"requires"`
	PreviousVersion types.String `tfsdk:"previous_version"`
	Move            types.Int64  `tfsdk:"move"`
	MovedAt         types.String `tfsdk:"moved_at"`
	Artifacts       types.Map    `tfsdk:"artifacts"`
	ArtifactChanges types.List   `tfsdk:"artifact_changes"`
	ImageTags       types.Map    `tfsdk:"image_tags"`
	ImageTagTargets types.Map    `tfsdk:"image_tag_targets"`
}

func (r *ChannelResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_channel"
}

var channelValidator = stringCheck{"a channel name", "Invalid channel name", release.CheckChannel}

func (r *ChannelResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Computed: true}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A named pointer (`prod`, `staging`) of a release to one published version. Changing " +
			"`version` moves it: a new, write-once entry in the channel's history (from, to, time, reason), so a rollback " +
			"is a move back and the history is never rewritten. Of two applies moving a channel from the same position, " +
			"exactly one writes; the other fails and says to plan again. A move to a version that is not published, is " +
			"yanked, or fails a gate (`requires`) is refused at plan. `terraform destroy` plans the configuration first, " +
			"and a provider cannot tell that plan from any other (Terraform and OpenTofu alike), so while the configuration " +
			"names such a version destroy is refused too: run `terraform destroy -refresh=false`, which skips that plan. " +
			"Deploy workspaces follow a channel with " +
			"`data.immutable_channel`; registry-native consumers (Flux, Argo CD, a `docker pull`) follow the registry tags " +
			"`image_tags` points at the version's images. Destroying this resource forgets the channel; its history stays, " +
			"and so do the tags, where they point.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{MarkdownDescription: "`release/channel`.", Computed: true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"release": schema.StringAttribute{MarkdownDescription: "Release name.", Required: true,
				Validators: []validator.String{releaseNameValidator}, PlanModifiers: replace},
			"channel": schema.StringAttribute{MarkdownDescription: "Channel name (`prod`).", Required: true,
				Validators: []validator.String{channelValidator}, PlanModifiers: replace},
			"version": schema.StringAttribute{MarkdownDescription: "The published version the channel points to, exactly (`1.4.2`).",
				Required: true, Validators: []validator.String{versionValidator}},
			"reason": schema.StringAttribute{MarkdownDescription: "Recorded with each move this resource makes (`\"INC-4711: roll back\"`), for others to read in their plans: " +
				reasonRule + ".",
				Optional: true, Validators: []validator.String{reasonValidator}},
			"requires": schema.ListAttribute{
				MarkdownDescription: "Gates: channels of the same release a version must have been on before this one " +
					"takes it (`[\"staging\"]`: prod takes only what staging had). A move that fails any is refused at plan, " +
					"naming each. Gates are read at plan: promote to staging in one apply and to prod in the next.",
				ElementType: types.StringType, Optional: true,
				Validators: []validator.List{listvalidator.ValueStringsAre(channelValidator), listvalidator.UniqueValues()},
			},
			"previous_version": computed("Where the channel pointed before this move; null for its first."),
			"move": schema.Int64Attribute{MarkdownDescription: "The number of the history entry in effect (1 for the first move).",
				Computed: true},
			"moved_at":  computed("When the entry in effect was written (RFC 3339, UTC)."),
			"artifacts": schema.MapAttribute{MarkdownDescription: "The artifacts of `version`, known at plan.", ElementType: types.StringType, Computed: true},
			"artifact_changes": schema.ListAttribute{
				MarkdownDescription: "What a move changes, known at plan, against `previous_version`: `+ name <digest>`, " +
					"`- name <digest>`, `~ name <old> -> <new>`.",
				ElementType: types.StringType, Computed: true,
			},
			"image_tags": schema.MapAttribute{
				MarkdownDescription: "Registry tags that mirror the channel: an image name of the release → a tag " +
					"(`{ api = \"prod\" }`). After each move, apply points the tag of that image's repository at the image " +
					"`version` names (`registry/repo:prod` → `registry/repo@sha256:…`), so what pulls by tag follows the " +
					"channel. The move in the store stays the truth and the tag a mirror: if the registry refuses the tag, the " +
					"apply fails saying the channel moved, and the next apply tags again. A name that is not an image of " +
					"`version` is refused at plan. Tags are pointers: deploy by digest to pin. Removing a tag from here, or " +
					"destroying the channel, leaves the tag in the registry where it points. A plan of an unchanged channel " +
					"asks the registry nothing, so a tag moved by hand is put back at the next move, or at once by removing " +
					"it from here and adding it again (two applies). Give each tag one channel: a second channel mirroring " +
					"the same tag takes it over at its next move, with only a warning.",
				ElementType: types.StringType, Optional: true,
				Validators: []validator.Map{mapvalidator.KeysAre(imageNameValidator), mapvalidator.ValueStringsAre(tagValidator)},
			},
			"image_tag_targets": schema.MapAttribute{
				MarkdownDescription: "The tags `image_tags` mirrors, `registry/repo:tag` → the manifest digest this channel " +
					"pointed them at, known at plan: a move shows each tag's from → to. A tag is recorded here once it is " +
					"pointed. When a plan moves a tag that the registry has pointing elsewhere than recorded here (moved by " +
					"hand), it warns; an unchanged channel asks the registry nothing.",
				ElementType: types.StringType, Computed: true,
			},
		},
	}
}

func (r *ChannelResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configureData(req.ProviderData, &resp.Diagnostics)
}

func (m *channelModel) gates(ctx context.Context) ([]string, diag.Diagnostics) {
	var g []string
	if m.Requires.IsNull() || m.Requires.IsUnknown() {
		return nil, nil
	}
	diags := m.Requires.ElementsAs(ctx, &g, false)
	return g, diags
}

// destroyHint ends a refusal at plan. `terraform destroy` (OpenTofu's
// too) makes an ordinary plan first, to refresh, and a provider cannot
// tell it from any other plan: the same request, no flag. So a refused
// move stops destroy as well, except with -refresh=false, which skips
// that plan.
const destroyHint = "\n\nThis stops `terraform destroy` too, which plans the configuration first: to destroy while the " +
	"configuration names this version, run `terraform destroy -refresh=false`."

// checkMove turns a refused move into a diagnostic on the attribute; hint
// ends each detail.
func (r *ChannelResource) checkMove(ctx context.Context, m *channelModel, hint string) diag.Diagnostics {
	var diags diag.Diagnostics
	gates, d := m.gates(ctx)
	if diags.Append(d...); diags.HasError() {
		return diags
	}
	err := release.CheckMove(ctx, r.data.store.Backend(), m.Release.ValueString(), m.Version.ValueString(), gates, r.data.trust)
	return r.moveRefused(m, err, hint)
}

// moveRefused turns an error of release.CheckMove or release.MoveTo
// into a diagnostic: a refused move on the attribute, ending with hint;
// anything else as releaseError says.
func (r *ChannelResource) moveRefused(m *channelModel, err error, hint string) diag.Diagnostics {
	var diags diag.Diagnostics
	var np *release.NotPublishedError
	var yanked *release.YankedError
	var gate *release.GateError
	var gates2 *release.GatesError
	switch {
	case err == nil:
	case errors.As(err, &np) && np.Collected:
		diags.AddAttributeError(path.Root("version"), "Version deleted by retention", fmt.Sprintf("Release %v, and a deleted "+
			"version is never published again, so no channel can point to it. Choose a version that is kept.", err)+hint)
	case errors.As(err, &np):
		diags.AddAttributeError(path.Root("version"), "Version not published", fmt.Sprintf("Release %v, so no channel can point to it. "+
			"(A version published by this same apply is published after the plan: promote it in the next apply.)", err)+hint)
	case errors.As(err, &yanked):
		diags.AddAttributeError(path.Root("version"), "Version is yanked", fmt.Sprintf("Release %v. Pick another version, or un-yank it first.", err)+hint)
	case errors.As(err, &gate), errors.As(err, &gates2):
		diags.AddAttributeError(path.Root("requires"), "Gate refuses the move", fmt.Sprintf("The channel %s cannot move: %v.", m.Channel.ValueString(), err)+hint)
	default:
		diags.Append(releaseError(r.data.store, m.Release.ValueString(), err))
	}
	return diags
}

// planTarget fills what the plan knows of a move from previous, and
// returns the record of the version moved to.
func (r *ChannelResource) planTarget(ctx context.Context, m *channelModel, previous string) (*release.Record, diag.Diagnostics) {
	var diags diag.Diagnostics
	b, rel := r.data.store.Backend(), m.Release.ValueString()
	to, err := r.data.trust.Get(ctx, b, rel, m.Version.ValueString())
	if err == nil {
		err = r.data.trust.CheckChannel(ctx, b, m.Channel.ValueString(), to)
	}
	if err != nil {
		diags.Append(releaseError(r.data.store, rel, err))
		return nil, diags
	}
	m.Artifacts = stringMap(to.Artifacts)
	m.PreviousVersion = optionalString(previous)
	var changes []string
	if previous != "" && previous != to.Version {
		from, err := r.data.trust.Get(ctx, b, rel, previous)
		var untrusted *release.UntrustedRecordError
		if errors.As(err, &untrusted) {
			// Only artifact_changes rests on it, and a move away from an
			// untrusted version must stay possible: not compared.
			diags.AddAttributeWarning(path.Root("artifact_changes"), "Previous version not compared",
				fmt.Sprintf("The channel %s points to %s now, and the trust policy refuses that version's record: %v. "+
					"`artifact_changes` is null rather than show that record's artifacts; the move does not depend on it.",
					m.Channel.ValueString(), previous, untrusted))
			m.ArtifactChanges = types.ListNull(types.StringType)
			return to, diags
		}
		if err != nil {
			diags.Append(releaseError(r.data.store, rel, fmt.Errorf("the version the channel points to now: %w", err)))
			return nil, diags
		}
		changes = release.ArtifactChanges(from.Artifacts, to.Artifacts)
	}
	vals := make([]attr.Value, len(changes))
	for i, c := range changes {
		vals[i] = types.StringValue(c)
	}
	m.ArtifactChanges = types.ListValueMust(types.StringType, vals)
	return to, diags
}

func (r *ChannelResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil {
		return // destroy forgets the channel; its history stays
	}
	var plan channelModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...); resp.Diagnostics.HasError() {
		return
	}
	if plan.Release.IsUnknown() || plan.Channel.IsUnknown() || plan.Version.IsUnknown() || plan.Requires.IsUnknown() {
		return
	}
	var prior *channelModel
	if !req.State.Raw.IsNull() {
		prior = &channelModel{}
		if resp.Diagnostics.Append(req.State.Get(ctx, prior)...); resp.Diagnostics.HasError() {
			return
		}
	}
	if prior != nil && prior.Version.Equal(plan.Version) {
		// No move: reason and gates apply to the next one.
		plan.PreviousVersion, plan.Move, plan.MovedAt, plan.Artifacts, plan.ArtifactChanges = prior.PreviousVersion, prior.Move, prior.MovedAt, prior.Artifacts, prior.ArtifactChanges
		// Tags mirror the version in effect: a new one, or one a failed
		// apply left behind, is pointed now (a store read, and registry
		// requests only for those).
		if resp.Diagnostics.Append(r.planImageTags(ctx, &plan, prior, nil, false)...); resp.Diagnostics.HasError() {
			return
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	if gates, _ := plan.gates(ctx); slices.Contains(gates, plan.Channel.ValueString()) {
		resp.Diagnostics.AddAttributeError(path.Root("requires"), "Channel gates itself",
			fmt.Sprintf("requires names %s, the channel itself: a version could never get on it. Name other channels.", plan.Channel.ValueString()))
		return
	}
	// Refused at plan, for a new channel and a move alike: a plan that
	// cannot apply must not pass review.
	if resp.Diagnostics.Append(r.checkMove(ctx, &plan, destroyHint)...); resp.Diagnostics.HasError() {
		return
	}
	previous := ""
	if prior != nil {
		previous = prior.Version.ValueString()
	} else {
		cur, err := release.Current(ctx, r.data.store.Backend(), plan.Release.ValueString(), plan.Channel.ValueString())
		if err != nil {
			resp.Diagnostics.Append(releaseError(r.data.store, plan.Release.ValueString(), err))
			return
		}
		if cur != nil {
			// Managed elsewhere, or by a configuration that forgot it: taking
			// it over is an import, not a create.
			tainted := ""
			if cur.To == plan.Version.ValueString() && !plan.ImageTags.IsNull() {
				tainted = " If this configuration created it and the apply failed to point its image_tags, Terraform marked " +
					"it tainted: run `terraform untaint` on it and apply again."
			}
			resp.Diagnostics.AddAttributeError(path.Root("channel"), "Channel exists",
				fmt.Sprintf("The channel %s of %s exists in %s: it points to %s (move %d, %s). To manage it here, import it "+
					"(terraform import <address> %s/%s) and plan again; if another configuration manages it, leave it to that one.",
					plan.Channel.ValueString(), plan.Release.ValueString(), r.data.store, usertext.Show(cur.To), cur.Seq, usertext.Show(cur.At), plan.Release.ValueString(), plan.Channel.ValueString())+tainted)
			return
		}
	}
	if r.data.writesRefused() {
		// Last: what is wrong with the move itself is said first.
		resp.Diagnostics.Append(unsignedWriteError("channel move"))
		return
	}
	to, diags := r.planTarget(ctx, &plan, previous)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	if resp.Diagnostics.Append(r.planImageTags(ctx, &plan, prior, to, true)...); resp.Diagnostics.HasError() {
		return
	}
	plan.ID = types.StringValue(plan.Release.ValueString() + "/" + plan.Channel.ValueString())
	plan.Move, plan.MovedAt = types.Int64Unknown(), types.StringUnknown()
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// move writes the planned move from the position seen at plan (previous
// version, and the entry after seq), or adopts a channel already there.
// after says the move at seq is untrusted: the move is written after it
// whatever it names (release.MoveRequest.After).
func (r *ChannelResource) move(ctx context.Context, m *channelModel, seq int, after bool) diag.Diagnostics {
	var diags diag.Diagnostics
	gates, d := m.gates(ctx)
	if diags.Append(d...); diags.HasError() {
		return diags
	}
	rel := m.Release.ValueString()
	cur, err := release.MoveTo(ctx, r.data.store, release.MoveRequest{
		Release: rel, Channel: m.Channel.ValueString(), To: m.Version.ValueString(),
		From: m.PreviousVersion.ValueString(), Seq: seq, After: after, Reason: m.Reason.ValueString(), Requires: gates, Trust: r.data.trust,
	}, time.Now(), release.BeforeWrite(r.data.hooks.beforeMove), release.SignWith(r.data.signer))
	var moved *release.MovedError
	var unsigned *release.SignatureError
	var step *release.StepError
	var invalid *release.InvalidError
	var interrupted *release.InterruptedError
	switch {
	case err == nil:
	case errors.As(err, &unsigned):
		diags.Append(signatureError(unsigned))
		return diags
	case errors.As(err, &interrupted):
		// Stopped after its checks, before the write (the apply was
		// cancelled there): nothing was written, and it is no refusal.
		diags.AddError("Move interrupted", fmt.Sprintf("Moving the channel %s of %s to %s stopped before it was written: %v. "+
			"Nothing was written; apply again.", m.Channel.ValueString(), rel, m.Version.ValueString(), interrupted))
		return diags
	case errors.As(err, &invalid):
		at := path.Root("version")
		switch invalid.Input {
		case release.InputRelease:
			at = path.Root("release")
		case release.InputChannel:
			at = path.Root("channel")
		case release.InputReason:
			at = path.Root("reason")
		case release.InputRequires:
			at = path.Root("requires").AtListIndex(slices.Index(gates, invalid.Key))
		}
		diags.Append(invalidInput(invalid, at))
		return diags
	case errors.As(err, &step) && step.Step == release.StepHold:
		diags.Append(storeWriteError(step.Err))
		return diags
	case errors.As(err, &moved) && moved.Now != nil && r.data.trust.CheckMove(ctx, r.data.store.Backend(), moved.Now) != nil:
		// None of its values: the policy refuses them.
		diags.AddAttributeError(path.Root("version"), "Channel moved by an untrusted writer",
			fmt.Sprintf("The channel %s of %s was moved since this plan was made, to move %d, which the trust policy refuses "+
				"(%v); nothing was written. Plan again: the refresh takes that move's number only, and the plan writes a signed "+
				"move after it. Check who can write the store.", m.Channel.ValueString(), rel, moved.Now.Seq,
				r.data.trust.CheckMove(ctx, r.data.store.Backend(), moved.Now)))
		return diags
	case errors.As(err, &moved):
		diags.AddAttributeError(path.Root("version"), "Channel moved by another apply", upperFirst(err.Error())+".")
		return diags
	case errors.As(err, &step) && step.Step == release.StepWrite && !errors.As(err, new(*release.TamperedError)):
		diags.Append(storeWriteError(fmt.Errorf("moving the channel %s of %s to %s: %w", m.Channel.ValueString(), rel, m.Version.ValueString(), step.Err)))
		return diags
	default: // refused by its checks, or the store could not be read (StepCheck)
		diags.Append(r.moveRefused(m, err, "")...)
		return diags
	}
	m.ID = types.StringValue(rel + "/" + m.Channel.ValueString())
	m.Move, m.MovedAt = types.Int64Value(int64(cur.Seq)), types.StringValue(cur.At)
	return diags
}

func (r *ChannelResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	ctx, told := watchGCWaits(ctx) // why a publish waited for a collection
	defer told(&resp.Diagnostics)
	var m channelModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	if resp.Diagnostics.Append(r.move(ctx, &m, -1, false)...); resp.Diagnostics.HasError() {
		return
	}
	// The move is written: whatever the tags do, the state says so.
	resp.Diagnostics.Append(r.pointTags(ctx, &m, types.MapNull(types.StringType), true, true)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *ChannelResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m, prior channelModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	if resp.Diagnostics.Append(req.State.Get(ctx, &prior)...); resp.Diagnostics.HasError() {
		return
	}
	moved := !prior.Version.Equal(m.Version)
	if moved {
		// A null version in state is a move refresh found untrusted: the
		// move is written after it (untrustedPosition).
		if resp.Diagnostics.Append(r.move(ctx, &m, int(prior.Move.ValueInt64()), prior.Version.IsNull())...); resp.Diagnostics.HasError() {
			return
		}
	}
	// The move is written: whatever the tags do, the state says so.
	resp.Diagnostics.Append(r.pointTags(ctx, &m, prior.ImageTagTargets, moved, false)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *ChannelResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m channelModel
	if resp.Diagnostics.Append(req.State.Get(ctx, &m)...); resp.Diagnostics.HasError() || r.data == nil {
		return
	}
	rel, ch := m.Release.ValueString(), m.Channel.ValueString()
	cur, err := release.Current(ctx, r.data.store.Backend(), rel, ch)
	if err != nil {
		resp.Diagnostics.Append(releaseError(r.data.store, rel, err))
		return
	}
	if cur == nil || (m.Move.ValueInt64() > 0 && int64(cur.Seq) < m.Move.ValueInt64()) {
		if m.Move.ValueInt64() > 0 {
			resp.Diagnostics.AddAttributeError(path.Root("move"), "Channel history lost",
				fmt.Sprintf("The channel %s of %s was at move %d, and the store now has %s: moves are never deleted, so they were "+
					"removed behind the store's back. Restore them from a backup.", ch, rel, m.Move.ValueInt64(), movesText(cur)))
			return
		}
		resp.State.RemoveResource(ctx)
		return
	}
	b := r.data.store.Backend()
	// Under a policy the move in effect is checked whoever wrote it: a
	// record replaced since this resource's move (re-signed by another
	// trusted key) leaves that move vouching for nothing, and readers
	// refuse it; so must the owner, to write a move that approves it.
	if r.data.trust.Enabled() || cur.Seq != int(m.Move.ValueInt64()) || m.Version.IsNull() {
		err := r.data.trust.CheckMove(ctx, b, cur)
		if err == nil {
			var rec *release.Record
			if rec, err = r.data.trust.Get(ctx, b, rel, cur.To); err == nil {
				if err = r.data.trust.CheckMoveRecord(ctx, b, cur, rec); err == nil {
					err = r.data.trust.CheckChannel(ctx, b, ch, rec)
				}
			}
		}
		var refused *release.UntrustedRecordError
		var policy *release.ChannelPolicyError
		var replaced *release.MoveRecordError
		switch {
		case errors.As(err, &refused):
			r.untrustedPosition(&m, cur, refused.Error(), &resp.Diagnostics)
		case errors.As(err, &policy):
			r.untrustedPosition(&m, cur, policy.Error(), &resp.Diagnostics)
		case errors.As(err, &replaced):
			r.untrustedPosition(&m, cur, replaced.Error(), &resp.Diagnostics)
		case err != nil:
			resp.Diagnostics.Append(releaseError(r.data.store, rel, err))
			return
		case cur.Seq != int(m.Move.ValueInt64()) || m.Version.IsNull():
			// Moved by someone else (or imported, or trusted since), trusted: the state
			// follows the store, and the next plan shows the move back to
			// the configured version, if any. The tags stay where this
			// channel left them (image_tag_targets): the next plan moves
			// them with the channel.
			m.Version, m.Move, m.MovedAt = types.StringValue(cur.To), types.Int64Value(int64(cur.Seq)), types.StringValue(cur.At)
			m.PreviousVersion = optionalString(cur.From)
			_, diags := r.planTarget(ctx, &m, cur.From)
			if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
				return
			}
		}
	}
	if !m.Version.IsNull() {
		// The version in effect, trusted: its yank is read (and checked)
		// only then, so an untrusted move naming anything at all never
		// fails the refresh.
		y, err := release.YankState(ctx, b, rel, cur.To)
		if err == nil {
			err = r.data.trust.CheckYank(ctx, b, y)
		}
		var untrusted *release.UntrustedRecordError
		if errors.As(err, &untrusted) {
			// Only a warning rests on it: refresh goes on without its word.
			resp.Diagnostics.AddAttributeWarning(path.Root("version"), "Untrusted yank entry not shown", upperFirst(untrusted.Error())+".")
		} else if err == nil && y != nil && y.Yanked {
			resp.Diagnostics.AddAttributeWarning(path.Root("version"), "Channel points to a yanked version",
				fmt.Sprintf("%s of %s points to %s, yanked on %s: %s. Move it to another version.", ch, rel, usertext.Show(cur.To), usertext.Show(y.At), usertext.Show(y.Reason)))
		}
	}
	m.ID = types.StringValue(rel + "/" + ch)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// untrustedPosition records in m the position of the channel's current
// move cur, which the trust policy refuses (the move, the record it names
// or, for a move it signed, that record since replaced: why), and none of
// its values. Refresh does not fail on it: a channel moved by an
// untrusted writer must stay movable back. So the state takes cur's
// number only: version, previous_version, moved_at, artifacts and
// artifact_changes are null, so nothing the policy refuses reaches a
// plan's values, and the plan, whatever the configuration names (cur's
// version too), is a move to it, written after cur and signed.
func (r *ChannelResource) untrustedPosition(m *channelModel, cur *release.Move, why string, diags *diag.Diagnostics) {
	m.Version, m.Move = types.StringNull(), types.Int64Value(int64(cur.Seq))
	m.PreviousVersion, m.MovedAt = types.StringNull(), types.StringNull()
	m.Artifacts, m.ArtifactChanges = types.MapNull(types.StringType), types.ListNull(types.StringType)
	diags.AddAttributeWarning(path.Root("version"), "Channel moved by an untrusted writer",
		fmt.Sprintf("The channel %s of %s is at move %d, which the trust policy refuses: %s. Readers of the channel "+
			"(data.immutable_channel) refuse it too. The state takes that move's number only, none of its values (`version` "+
			"is null), so the plan is a move to the configured version, written after it and signed by the provider's "+
			"signing_key, even if that move names the same version: apply it, and check who can write the store.",
			m.Channel.ValueString(), m.Release.ValueString(), cur.Seq, why))
}

func (r *ChannelResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {
	// A channel's history is never deleted: destroying only forgets it.
}

func (r *ChannelResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	rel, ch, ok := strings.Cut(req.ID, "/")
	if !ok || release.CheckName(rel) != nil || release.CheckChannel(ch) != nil {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("Import a channel as release/channel (`web/prod`), not %q.", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("release"), rel)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("channel"), ch)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("move"), int64(-1))...)
	if r.data == nil {
		return
	}
	if cur, err := release.Current(ctx, r.data.store.Backend(), rel, ch); err == nil && cur == nil {
		resp.Diagnostics.AddError("Channel not found", fmt.Sprintf("The channel %s of %s has no moves in %s.", ch, rel, r.data.store))
	}
}

func movesText(cur *release.Move) string {
	if cur == nil {
		return "none"
	}
	return fmt.Sprintf("%d", cur.Seq)
}
