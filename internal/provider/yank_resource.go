package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

var (
	_ resource.Resource                = (*YankResource)(nil)
	_ resource.ResourceWithConfigure   = (*YankResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*YankResource)(nil)
	_ resource.ResourceWithImportState = (*YankResource)(nil)
)

// YankResource is immutable_yank.
type YankResource struct {
	data *providerData
}

// NewYankResource returns the resource.
func NewYankResource() resource.Resource { return &YankResource{} }

type yankModel struct {
	ID       types.String `tfsdk:"id"`
	Name     types.String `tfsdk:"name"`
	Version  types.String `tfsdk:"version"`
	Reason   types.String `tfsdk:"reason"`
	YankedAt types.String `tfsdk:"yanked_at"`
	Entry    types.Int64  `tfsdk:"entry"`
}

func (r *YankResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_yank"
}

func (r *YankResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Marks a published version of a release as broken. A constraint (`~> 1.4`) and the latest " +
			"skip a yanked version; an exact pin still resolves it, with a warning. Yanking writes a new, write-once " +
			"entry in the version's yank history; destroying this resource un-yanks it with another entry — nothing is " +
			"ever deleted or rewritten, and the version's record and artifacts stay. A version that is yanked already (by " +
			"another configuration, or by hand) is refused at plan: a version has one yank managing it, since destroying " +
			"one un-yanks it. Import that yank (`web@1.4.2`) to manage it here.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{MarkdownDescription: "`name@version`.", Computed: true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"name": schema.StringAttribute{MarkdownDescription: "Release name.", Required: true,
				Validators: []validator.String{releaseNameValidator}, PlanModifiers: replace},
			"version": schema.StringAttribute{MarkdownDescription: "The published version to yank, exactly (`1.4.2`).", Required: true,
				Validators: []validator.String{versionValidator}, PlanModifiers: replace},
			"reason": schema.StringAttribute{
				MarkdownDescription: "Why, for whoever resolves it next (shown in their warning): " + reasonRule +
					". Changing it records a new entry; the version stays yanked throughout.",
				Required: true,
				Validators: []validator.String{
					stringvalidator.LengthAtLeast(1),
					reasonValidator,
				},
			},
			"yanked_at": schema.StringAttribute{MarkdownDescription: "When the entry in effect was written (RFC 3339, UTC).", Computed: true},
			"entry": schema.Int64Attribute{MarkdownDescription: "The number of the version's yank entry in effect. Destroy " +
				"un-yanks only if it is still the last (nobody yanked or un-yanked it since).", Computed: true},
		},
	}
}

func (r *YankResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configureData(req.ProviderData, &resp.Diagnostics)
}

// ModifyPlan refuses, at plan, a version that is not published.
func (r *YankResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() && !req.State.Raw.IsNull() && r.data.writesRefused() {
		// Destroying un-yanks: an entry written.
		resp.Diagnostics.Append(unsignedWriteError("yank entry (the un-yank destroying it writes)"))
		return
	}
	if req.Plan.Raw.IsNull() || r.data == nil {
		return
	}
	var plan yankModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...); resp.Diagnostics.HasError() {
		return
	}
	if plan.Name.IsUnknown() || plan.Version.IsUnknown() {
		return
	}
	name, version := plan.Name.ValueString(), plan.Version.ValueString()
	var prior *yankModel
	if !req.State.Raw.IsNull() {
		prior = &yankModel{}
		if resp.Diagnostics.Append(req.State.Get(ctx, prior)...); resp.Diagnostics.HasError() {
			return
		}
	}
	if (prior == nil || !prior.Reason.Equal(plan.Reason)) && r.data.writesRefused() {
		resp.Diagnostics.Append(unsignedWriteError("yank entry"))
		return
	}
	_, err := release.Get(ctx, r.data.store.Backend(), name, version)
	switch {
	case errors.Is(err, store.ErrNotFound):
		var np *release.NotPublishedError
		if err := release.NotPublished(ctx, r.data.store.Backend(), name, version); errors.As(err, &np) && np.Collected {
			at := path.Root("version")
			switch {
			case prior == nil:
				resp.Diagnostics.AddAttributeError(at, "Version deleted by retention",
					fmt.Sprintf("%v (in %s), so there is nothing left to yank or to change: remove this immutable_yank.", err, r.data.store))
			case !prior.Reason.Equal(plan.Reason):
				// Not an error at plan, so that `terraform destroy` (which
				// plans normally first) is not stopped.
				resp.Diagnostics.AddAttributeWarning(at, "Version deleted by retention",
					fmt.Sprintf("%v (in %s), so its yank cannot change: applying this plan fails. Remove this immutable_yank "+
						"instead (that leaves the yank as it is).", err, r.data.store))
			default:
				// A yank that stands: its entry stays in the history and
				// keeps the content refused. Nothing to change.
				resp.Diagnostics.AddAttributeWarning(at, "Version deleted by retention",
					fmt.Sprintf("%v (in %s). Its yank entry stays and keeps its content from being published again without "+
						"a version; this immutable_yank has nothing left to manage and can be removed (that leaves the yank as it is).", err, r.data.store))
				plan.YankedAt, plan.Entry = prior.YankedAt, prior.Entry
				resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
			}
			return
		}
		resp.Diagnostics.AddAttributeError(path.Root("version"), "Version not published",
			fmt.Sprintf("%s@%s is not published in %s, so it cannot be yanked. Check the name and version: a yank names "+
				"a published version literally (not immutable_release.x.version, which moves with every publish).", name, version, r.data.store))
		return
	case err != nil:
		resp.Diagnostics.Append(releaseError(r.data.store, name, err))
		return
	}
	if prior == nil {
		// A yank has one owner, as a channel has: destroying an
		// immutable_yank un-yanks the version, so two would undo each other.
		y, err := release.YankState(ctx, r.data.store.Backend(), name, version)
		if err != nil {
			resp.Diagnostics.Append(releaseError(r.data.store, name, err))
			return
		}
		if y != nil && y.Yanked {
			resp.Diagnostics.AddAttributeError(path.Root("version"), "Version already yanked",
				fmt.Sprintf("%s@%s is yanked already in %s (entry %d, %s: %s). Destroying an immutable_yank un-yanks its "+
					"version, so a version has one yank managing it. To manage that yank here, import it (terraform import "+
					"<address> %s@%s) and plan again; if another configuration manages it, remove this one.",
					name, version, r.data.store, y.Seq, y.At, usertext.Show(y.Reason), name, version)+destroyHint)
			return
		}
	}
	if prior != nil {
		if !prior.Reason.Equal(plan.Reason) {
			plan.YankedAt, plan.Entry = types.StringUnknown(), types.Int64Unknown()
		} else {
			plan.YankedAt, plan.Entry = prior.YankedAt, prior.Entry
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
	}
}

func (r *YankResource) set(ctx context.Context, m *yankModel, yanked bool, reason string, expect int) error {
	y, err := release.SetYank(ctx, r.data.store.Backend(), m.Name.ValueString(), m.Version.ValueString(), yanked, reason, expect, time.Now(), release.SignWith(r.data.signer))
	if err != nil {
		return err
	}
	m.ID = types.StringValue(m.Name.ValueString() + "@" + m.Version.ValueString())
	m.YankedAt, m.Entry = types.StringValue(y.At), types.Int64Value(int64(y.Seq))
	return nil
}

func (r *YankResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	ctx, told := watchGCWaits(ctx) // why a publish waited for a collection
	defer told(&resp.Diagnostics)
	var m yankModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	name, version := m.Name.ValueString(), m.Version.ValueString()
	// Not yanked at plan: written only after the entry seen now, and not
	// over a yank someone made since, whatever its reason. Adopting one
	// with the same reason would make two configurations manage it (the
	// plan refuses that), and either's destroy would un-yank the other's.
	cur, err := release.YankState(ctx, r.data.store.Backend(), name, version)
	if err != nil {
		resp.Diagnostics.Append(releaseError(r.data.store, name, err))
		return
	}
	expect := 0
	if cur != nil {
		expect = cur.Seq
	}
	if cur != nil && cur.Yanked {
		resp.Diagnostics.Append(yankError(r.data.store, name, &release.YankMovedError{Name: name, Version: version, Now: cur},
			"nothing was written. To manage that yank here, import it (terraform import <address> "+name+"@"+version+
				"); if another configuration manages it, remove this one"))
		return
	}
	if err := r.set(ctx, &m, true, m.Reason.ValueString(), expect); err != nil {
		resp.Diagnostics.Append(yankError(r.data.store, name, err,
			"nothing was written: plan again"))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *YankResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	// Only the reason changed: a new yanked entry, never an un-yank between.
	var m, prior yankModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	if resp.Diagnostics.Append(req.State.Get(ctx, &prior)...); resp.Diagnostics.HasError() {
		return
	}
	if err := r.set(ctx, &m, true, m.Reason.ValueString(), int(prior.Entry.ValueInt64())); err != nil {
		resp.Diagnostics.Append(yankError(r.data.store, m.Name.ValueString(), err,
			"to manage that yank here, remove this one from state (terraform state rm) and import it again"))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// yankError says what to do about a yank someone else changed (todo),
// or about a version that is gone.
func yankError(st *store.Store, name string, err error, todo string) diag.Diagnostic {
	var moved *release.YankMovedError
	var np *release.NotPublishedError
	var unsigned *release.SignatureError
	switch {
	case errors.As(err, &unsigned):
		return signatureError(unsigned)
	case errors.As(err, &moved):
		// Not sentence-cased: the message starts with the release's name.
		return diag.NewAttributeErrorDiagnostic(path.Root("reason"), "Yank changed by someone else", fmt.Sprintf("%v: %s.", err, todo))
	case errors.As(err, &np) && np.Collected:
		return diag.NewAttributeErrorDiagnostic(path.Root("version"), "Version deleted by retention",
			fmt.Sprintf("%v (in %s), so its yank cannot be written or changed; nothing was written. A yank entry it "+
				"has stays and keeps its content refused. Remove this immutable_yank (that leaves the yank as it is).", err, st))
	case errors.As(err, &np):
		return diag.NewAttributeErrorDiagnostic(path.Root("version"), "Version not published",
			fmt.Sprintf("%v in %s, so it cannot be yanked; nothing was written. Check the name and version.", err, st))
	}
	return releaseError(st, name, err)
}

func (r *YankResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m yankModel
	if resp.Diagnostics.Append(req.State.Get(ctx, &m)...); resp.Diagnostics.HasError() || r.data == nil {
		return
	}
	y, err := release.YankState(ctx, r.data.store.Backend(), m.Name.ValueString(), m.Version.ValueString())
	if err != nil {
		resp.Diagnostics.Append(releaseError(r.data.store, m.Name.ValueString(), err))
		return
	}
	if y == nil || !y.Yanked {
		// Un-yanked by someone else (or never yanked, on import): the next
		// plan yanks it again.
		if m.YankedAt.IsNull() {
			resp.Diagnostics.AddError("Version not yanked",
				fmt.Sprintf("%s@%s is not yanked, so there is no yank to import. Apply an immutable_yank of it instead.", m.Name.ValueString(), m.Version.ValueString()))
			return
		}
		resp.State.RemoveResource(ctx)
		return
	}
	m.ID = types.StringValue(m.Name.ValueString() + "@" + m.Version.ValueString())
	// The entry this resource wrote is not checked: its state holds what it
	// wrote (reason, time), a stronger check than a signature. An entry
	// written by others (imported, or a yank since) is, under a trust
	// policy, before any of its words is used. (An un-yank by others, above,
	// is never taken: the resource leaves the state and yanks again.)
	own := !m.Entry.IsNull() && int64(y.Seq) == m.Entry.ValueInt64()
	if !own || m.Reason.ValueString() != y.Reason || m.YankedAt.ValueString() != y.At {
		err := r.data.trust.CheckYank(ctx, r.data.store.Backend(), y)
		var untrusted *release.UntrustedRecordError
		switch {
		case errors.As(err, &untrusted):
			// Imported, or yanked again by someone the policy refuses: its
			// position only, none of its words (reason and yanked_at null),
			// so the plan is an update that writes a signed entry after it
			// with the configured reason, even where it says the same
			// (apply: yank again; destroy: un-yank).
			title, what := "Untrusted yank imported by its position only", "This resource takes the entry's number"
			if !m.Entry.IsNull() && !own {
				title, what = "Yank changed by an untrusted writer", fmt.Sprintf("%s@%s was yanked again since this "+
					"configuration yanked it, and readers of the version (data.immutable_release) refuse that entry. "+
					"This resource takes its number", m.Name.ValueString(), m.Version.ValueString())
			}
			m.Entry, m.Reason, m.YankedAt = types.Int64Value(int64(y.Seq)), types.StringNull(), types.StringNull()
			resp.Diagnostics.AddWarning(title,
				fmt.Sprintf("%v. %s, so that the next write follows it, and none of its words: the plan yanks %s@%s again "+
					"with the configured reason, signed by the provider's signing_key, written after it; destroying this "+
					"resource instead un-yanks the version, signed.", upperFirst(untrusted.Error()), what, m.Name.ValueString(), m.Version.ValueString()))
			resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
			return
		case err != nil:
			resp.Diagnostics.Append(releaseError(r.data.store, m.Name.ValueString(), err))
			return
		}
	}
	if !m.Entry.IsNull() && int64(y.Seq) != m.Entry.ValueInt64() {
		// Yanked again by someone else: theirs is in effect now, and this
		// yank is no longer the one a destroy would undo.
		resp.Diagnostics.AddWarning("Yank changed by someone else",
			fmt.Sprintf("%s@%s was yanked again since this configuration yanked it (entry %d, %s: %s). Destroying this "+
				"resource will not un-yank it. To manage that yank here, remove this one from state and import it again.",
				m.Name.ValueString(), m.Version.ValueString(), y.Seq, usertext.Show(y.At), usertext.Quote(y.Reason)))
		resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
		return
	}
	m.Reason, m.YankedAt, m.Entry = types.StringValue(y.Reason), types.StringValue(y.At), types.Int64Value(int64(y.Seq))
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *YankResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m yankModel
	if resp.Diagnostics.Append(req.State.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	name, version := m.Name.ValueString(), m.Version.ValueString()
	reason := fmt.Sprintf("un-yanked: the immutable_yank of %s@%s was destroyed", name, version)
	err := r.set(ctx, &m, false, reason, int(m.Entry.ValueInt64()))
	var moved *release.YankMovedError
	if errors.As(err, &moved) {
		// Someone yanked or un-yanked it since: theirs stands.
		resp.Diagnostics.AddWarning("Yank left as it is",
			fmt.Sprintf("%v. This yank is forgotten without un-yanking the version.", err))
		return
	}
	var np *release.NotPublishedError
	if errors.As(err, &np) && np.Collected {
		// Nothing to un-yank: the version is gone; its yank entry stays
		// and keeps its content refused (release.PlanVersion).
		resp.Diagnostics.AddWarning("Yank left as it is",
			fmt.Sprintf("%v. This yank is forgotten; its entry stays in the version's history.", err))
		return
	}
	if err != nil {
		resp.Diagnostics.Append(releaseError(r.data.store, name, err))
	}
}

func (r *YankResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	name, version, ok := strings.Cut(req.ID, "@")
	if !ok || release.CheckName(name) != nil || versionCheck(version) != nil {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("Import a yank as name@version (`web@1.4.2`), not %q.", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("version"), version)...)
}
