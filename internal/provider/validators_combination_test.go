package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// artifactConfig is an immutable_artifact configuration: each attribute
// of set is null (absent), unknown ("?") or a value (anything else).
func artifactConfig(t *testing.T, set map[string]string) tfsdk.Config {
	t.Helper()
	ctx := context.Background()
	s := artifactSchema()
	typ, ok := s.Type().TerraformType(ctx).(tftypes.Object)
	if !ok {
		t.Fatalf("the schema's type is %T", s.Type().TerraformType(ctx))
	}
	vals := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		v, ok := set[name]
		switch {
		case !ok:
			vals[name] = tftypes.NewValue(at, nil)
		case v == "?":
			vals[name] = tftypes.NewValue(at, tftypes.UnknownValue)
		case at.Is(tftypes.List{}):
			vals[name] = tftypes.NewValue(at, []tftypes.Value{tftypes.NewValue(tftypes.String, v)})
		default:
			vals[name] = tftypes.NewValue(at, v)
		}
	}
	return tfsdk.Config{Schema: s, Raw: tftypes.NewValue(typ, vals)}
}

func validateWith(ctx context.Context, config tfsdk.Config, validators []resource.ConfigValidator) resource.ValidateConfigResponse {
	var resp resource.ValidateConfigResponse
	for _, v := range validators {
		r := &resource.ValidateConfigResponse{}
		v.ValidateResource(ctx, resource.ValidateConfigRequest{Config: config}, r)
		resp.Diagnostics.Append(r.Diagnostics...)
	}
	return resp
}

// TestArtifactCombinationSameAsRules: for every way of leaving out,
// leaving unknown or setting source, content, sensitive_content,
// content_base64, excludes and archive, immutable_artifact's validator
// reports exactly what the framework's validators of the rules report.
func TestArtifactCombinationSameAsRules(t *testing.T) {
	ctx := context.Background()
	names := []string{"source", "content", "sensitive_content", "content_base64", "excludes", "archive"}
	values := map[string]string{"source": "dir", "content": "x", "sensitive_content": "x", "content_base64": "eA==", "excludes": "*.tmp", "archive": "zip"}
	combos, refused := 0, 0
	for i := 0; i < 729; i++ { // 3^6
		set, desc := map[string]string{}, ""
		for j, k := 0, i; j < len(names); j, k = j+1, k/3 {
			switch k % 3 {
			case 1:
				set[names[j]] = "?"
				desc += names[j] + "=? "
			case 2:
				set[names[j]] = values[names[j]]
				desc += names[j] + " "
			}
		}
		config := artifactConfig(t, set)
		got := validateWith(ctx, config, artifactConfigValidators()).Diagnostics
		want := validateWith(ctx, config, artifactCombinationRules()).Diagnostics
		if !got.Equal(want) {
			t.Errorf("{%s}: got %v, the rules give %v", desc, got, want)
		}
		combos++
		if want.HasError() {
			refused++
		}
	}
	if refused == 0 || refused == combos {
		t.Fatalf("%d of %d combinations refused: the test builds its configurations wrong", refused, combos)
	}
}

// TestArtifactCombinationCheapWhenValid: a valid configuration is checked
// without walking it once per rule (the rules allocate thousands of
// times a call): ValidateResourceConfig runs per artifact, several times
// per plan, on every plan.
func TestArtifactCombinationCheapWhenValid(t *testing.T) {
	ctx := context.Background()
	for _, set := range []map[string]string{
		{"source": "dir", "excludes": "*.tmp", "archive": "zip"},
		{"content": "x"},
		{"source": "?"},
	} {
		config := artifactConfig(t, set)
		rules := testing.AllocsPerRun(10, func() { validateWith(ctx, config, artifactCombinationRules()) })
		ours := testing.AllocsPerRun(10, func() { validateWith(ctx, config, artifactConfigValidators()) })
		t.Logf("%v: %.0f allocations, the rules %.0f", set, ours, rules)
		if ours > rules/5 {
			t.Errorf("%v: %.0f allocations to accept a valid configuration, the rules take %.0f: the fast path is not taken", set, ours, rules)
		}
	}
}
