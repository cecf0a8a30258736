package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
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
			"ever deleted or rewritten, and the version's record and artifacts stay.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{MarkdownDescription: "`name@version`.", Computed: true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"name": schema.StringAttribute{MarkdownDescription: "Release name.", Required: true,
				Validators: []validator.String{releaseNameValidator}, PlanModifiers: replace},
			"version": schema.StringAttribute{MarkdownDescription: "The published version to yank, exactly (`1.4.2`).", Required: true,
				Validators: []validator.String{versionValidator}, PlanModifiers: replace},
			"reason": schema.StringAttribute{
				MarkdownDescription: "Why, for whoever resolves it next (shown in their warning). Changing it records " +
					"a new entry; the version stays yanked throughout.",
				Required:   true,
				Validators: []validator.String{stringvalidator.LengthBetween(1, release.MaxReason)},
			},
			"yanked_at": schema.StringAttribute{MarkdownDescription: "When the entry in effect was written (RFC 3339, UTC).", Computed: true},
		},
	}
}

func (r *YankResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configureData(req.ProviderData, &resp.Diagnostics)
}

// ModifyPlan refuses, at plan, a version that is not published.
func (r *YankResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
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
	_, err := release.Get(ctx, r.data.store.Backend(), name, version)
	switch {
	case errors.Is(err, store.ErrNotFound):
		resp.Diagnostics.AddAttributeError(path.Root("version"), "Version not published",
			fmt.Sprintf("%s@%s is not published in %s, so it cannot be yanked. Check the name and version.", name, version, r.data.store))
	case err != nil:
		resp.Diagnostics.Append(releaseError(r.data.store, name, err))
	}
	if !req.State.Raw.IsNull() {
		var prior yankModel
		if resp.Diagnostics.Append(req.State.Get(ctx, &prior)...); resp.Diagnostics.HasError() {
			return
		}
		if !prior.Reason.Equal(plan.Reason) {
			plan.YankedAt = types.StringUnknown()
		} else {
			plan.YankedAt = prior.YankedAt
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
	}
}

func (r *YankResource) set(ctx context.Context, m *yankModel, yanked bool, reason string) error {
	y, err := release.SetYank(ctx, r.data.store.Backend(), m.Name.ValueString(), m.Version.ValueString(), yanked, reason, time.Now())
	if err != nil {
		return err
	}
	m.ID = types.StringValue(m.Name.ValueString() + "@" + m.Version.ValueString())
	m.YankedAt = types.StringValue(y.At)
	return nil
}

func (r *YankResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m yankModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	if err := r.set(ctx, &m, true, m.Reason.ValueString()); err != nil {
		resp.Diagnostics.Append(releaseError(r.data.store, m.Name.ValueString(), err))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *YankResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	// Only the reason changed: a new yanked entry, never an un-yank between.
	var m yankModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	if err := r.set(ctx, &m, true, m.Reason.ValueString()); err != nil {
		resp.Diagnostics.Append(releaseError(r.data.store, m.Name.ValueString(), err))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
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
		// Un-yanked by someone else (or never): the next plan yanks again.
		resp.State.RemoveResource(ctx)
		return
	}
	m.ID = types.StringValue(m.Name.ValueString() + "@" + m.Version.ValueString())
	m.Reason, m.YankedAt = types.StringValue(y.Reason), types.StringValue(y.At)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *YankResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m yankModel
	if resp.Diagnostics.Append(req.State.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	if err := r.set(ctx, &m, false, "un-yanked: immutable_yank."+m.Name.ValueString()+" destroyed"); err != nil {
		resp.Diagnostics.Append(releaseError(r.data.store, m.Name.ValueString(), err))
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
