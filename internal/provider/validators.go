package provider

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/registry"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/versions"
)

// artifactConfigValidators are immutable_artifact's rules on which of
// source, content, sensitive_content, content_base64, excludes and archive
// go together, as one validator: see artifactCombination.
func artifactConfigValidators() []resource.ConfigValidator {
	return []resource.ConfigValidator{artifactCombination{}}
}

// artifactCombinationRules are the rules, as the framework's validators
// that word their diagnostics.
func artifactCombinationRules() []resource.ConfigValidator {
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

// artifactCombination checks artifactCombinationRules. Each of those
// walks the whole configuration once per path expression, resolving
// every value's path against the schema: sixteen walks, about 1 ms of CPU
// a resource per ValidateResourceConfig, which Terraform sends twice per
// plan and again at apply. A configuration the rules accept (nearly every
// one) is recognised from the six root values, read once; any other is
// handed to the rules, which write the diagnostics.
type artifactCombination struct{}

var _ resource.ConfigValidator = artifactCombination{}

func (artifactCombination) Description(context.Context) string {
	return "exactly one of source, content, sensitive_content and content_base64; excludes and archive only with source"
}

func (v artifactCombination) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (artifactCombination) ValidateResource(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	if artifactCombinationAccepted(ctx, req.Config) {
		return
	}
	for _, rule := range artifactCombinationRules() {
		// A response each: the rules overwrite its diagnostics.
		r := &resource.ValidateConfigResponse{}
		rule.ValidateResource(ctx, req, r)
		resp.Diagnostics.Append(r.Diagnostics...)
	}
}

// artifactCombinationAccepted says the rules would report nothing: one of
// the four sources set (or none set and one unknown), and excludes and
// archive unset when the content is inline. False when in doubt.
func artifactCombinationAccepted(ctx context.Context, config tfsdk.Config) bool {
	set, unknown := map[string]bool{}, false
	for _, name := range []string{"source", "content", "sensitive_content", "content_base64", "excludes", "archive"} {
		var v attr.Value
		if config.GetAttribute(ctx, path.Root(name), &v).HasError() || v == nil {
			return false
		}
		set[name] = !v.IsNull() && !v.IsUnknown()
		unknown = unknown || (v.IsUnknown() && name != "excludes" && name != "archive")
	}
	n := 0
	for _, name := range []string{"source", "content", "sensitive_content", "content_base64"} {
		if set[name] {
			n++
		}
	}
	if n > 1 || (n == 0 && !unknown) {
		return false
	}
	inline := set["content"] || set["sensitive_content"] || set["content_base64"]
	return !inline || (!set["excludes"] && !set["archive"])
}

func base64Check(s string) error {
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		return fmt.Errorf("content_base64 must be standard base64 with padding, as base64encode() and filebase64() produce: %v", err)
	}
	return nil
}

// stringCheck adapts a plain check of a string to a validator.
type stringCheck struct {
	desc    string
	summary string
	check   func(string) error
}

var _ validator.String = stringCheck{}

func (v stringCheck) Description(context.Context) string { return v.desc }

func (v stringCheck) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, v.summary, err.Error())
	}
}

// namedCheck is a stringCheck whose message starts with the attribute's
// path (layers[0].path): for an attribute nested in a list, Terraform
// shows the resource's first line, not the attribute.
type namedCheck struct{ stringCheck }

var _ validator.String = namedCheck{}

func (v namedCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, v.summary, req.Path.String()+": "+err.Error())
	}
}

func digestCheck(s string) error {
	_, err := digest.Parse(s)
	return err
}

func versionCheck(s string) error {
	_, err := versions.Parse(s)
	return err
}

func constraintCheck(s string) error {
	_, err := versions.Constraint(s)
	return err
}

var (
	releaseNameValidator = stringCheck{"a release name", "Invalid release name", release.CheckName}
	digestValidator      = stringCheck{"a digest, sha256:<64 hex>", "Invalid digest", digestCheck}
	versionValidator     = stringCheck{"a version, MAJOR.MINOR.PATCH[-PRERELEASE]", "Invalid version", versionCheck}
	constraintValidator  = stringCheck{"an exact version or a version constraint", "Invalid version constraint", constraintCheck}
	globValidator        = stringCheck{"a glob relative to the source directory", "Invalid glob", digest.CheckExclude}
	base64Validator      = stringCheck{"standard base64 with padding", "Invalid base64", base64Check}
	// Text others read: no control, format or line-separating characters
	// (see usertext).
	metadataKeyValidator  = stringCheck{"text without control or invisible characters", "Invalid metadata key", release.CheckMetadataKey}
	artifactNameValidator = stringCheck{"text without control or invisible characters", "Invalid artifact name", release.CheckArtifactName}
	imageNameValidator    = stringCheck{"text without control or invisible characters", "Invalid image name", release.CheckImageName}
	// An image a release names: pinned by digest, never a tag.
	imageRefValidator = stringCheck{"an image reference pinned by digest, registry/repository@sha256:<64 hex>", "Invalid image reference", release.CheckImageRef}
	// A registry tag (a pointer, never an image's identity).
	tagValidator = stringCheck{"a registry tag: 1 to 128 letters, digits, '_', '.' and '-'", "Invalid tag", registry.CheckTag}
	// A yank's or a channel move's reason, printed in other people's plans.
	reasonValidator = stringCheck{reasonRule, "Invalid reason", release.CheckReason}
)

// invalidInput turns input a write of the release package refused before
// writing anything into the diagnostic its validator gives at plan, on
// the attribute at says. Input reaches a write unvalidated only when it
// was unknown at plan and Terraform did not validate it again.
func invalidInput(e *release.InvalidError, at path.Path) diag.Diagnostic {
	v := map[release.Input]stringCheck{
		release.InputRelease: releaseNameValidator, release.InputVersion: versionValidator,
		release.InputArtifact: artifactNameValidator, release.InputMetadata: metadataKeyValidator,
		release.InputChannel: channelValidator, release.InputRequires: channelValidator,
		release.InputReason:    reasonValidator,
		release.InputImageName: imageNameValidator, release.InputImage: imageRefValidator,
	}[e.Input]
	summary := v.summary
	if summary == "" {
		summary = "Invalid input"
	}
	return diag.NewAttributeErrorDiagnostic(at, summary, e.Err.Error())
}

// reasonRule is what release.CheckReason accepts, for the reason
// attributes' descriptions.
var reasonRule = fmt.Sprintf("text of at most %d bytes without control characters (a newline, an escape), invisible "+
	"characters (a zero-width space) or bidirectional controls (U+202E); accents, every script and emoji are fine", release.MaxReason)
