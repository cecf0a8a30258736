package provider

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

func artifactConfigValidators() []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(
			path.MatchRoot("source"), path.MatchRoot("content"),
			path.MatchRoot("sensitive_content"), path.MatchRoot("content_base64"),
		),
		resourcevalidator.Conflicting(path.MatchRoot("excludes"), path.MatchRoot("content")),
		resourcevalidator.Conflicting(path.MatchRoot("excludes"), path.MatchRoot("sensitive_content")),
		resourcevalidator.Conflicting(path.MatchRoot("excludes"), path.MatchRoot("content_base64")),
		resourcevalidator.Conflicting(path.MatchRoot("archive"), path.MatchRoot("content")),
		resourcevalidator.Conflicting(path.MatchRoot("archive"), path.MatchRoot("sensitive_content")),
		resourcevalidator.Conflicting(path.MatchRoot("archive"), path.MatchRoot("content_base64")),
	}
}

// globValidator checks an `excludes` glob with the matcher that applies it.
type globValidator struct{}

var _ validator.String = globValidator{}

func (globValidator) Description(context.Context) string {
	return "a glob relative to the source directory"
}

func (v globValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (globValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := digest.CheckExclude(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid glob", err.Error())
	}
}

// base64Validator checks content_base64 before anything is hashed.
type base64Validator struct{}

var _ validator.String = base64Validator{}

func (base64Validator) Description(context.Context) string { return "standard base64 with padding" }

func (v base64Validator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (base64Validator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := base64.StdEncoding.DecodeString(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid base64",
			fmt.Sprintf("content_base64 must be standard base64 with padding, as base64encode() and filebase64() produce: %v", err))
	}
}
