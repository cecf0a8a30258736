package provider

import (
	"context"
	"strings"
	"testing"

	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// TestReasonValidatorShared: the channel's and the yank's reason refuse
// the same text with the same validator, and describe the rule it
// applies (not the older "printable text").
func TestReasonValidatorShared(t *testing.T) {
	ctx := context.Background()
	for name, r := range map[string]fwresource.Resource{"immutable_channel": NewChannelResource(), "immutable_yank": NewYankResource()} {
		var resp fwresource.SchemaResponse
		r.Schema(ctx, fwresource.SchemaRequest{}, &resp)
		attr, ok := resp.Schema.Attributes["reason"].(schema.StringAttribute)
		if !ok {
			t.Fatalf("%s.reason is not a string attribute", name)
		}
		if d := attr.GetMarkdownDescription(); !strings.Contains(d, reasonRule) || strings.Contains(d, "printable") {
			t.Errorf("%s.reason says %q, want the rule %q", name, d, reasonRule)
		}
		var found bool
		for _, v := range attr.Validators {
			if v.MarkdownDescription(ctx) == reasonRule {
				found = true
			}
			if strings.Contains(v.Description(ctx), "printable") {
				t.Errorf("%s.reason has a validator describing %q", name, v.Description(ctx))
			}
		}
		if !found {
			t.Errorf("%s.reason does not use reasonValidator", name)
		}
	}
	for text, ok := range map[string]bool{"INC-4711: roll back ✓ café 👩\u200d💻": true, "ok\u202Eliaf": false, "a\u200Bb": false, "a\nb": false, strings.Repeat("x", 1025): false} {
		var resp validator.StringResponse
		reasonValidator.ValidateString(ctx, validator.StringRequest{ConfigValue: types.StringValue(text)}, &resp)
		if resp.Diagnostics.HasError() == ok {
			t.Errorf("reason %q: errors %v, want accepted %v", text, resp.Diagnostics, ok)
		}
	}
}
