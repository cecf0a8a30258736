package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
)

// TestStringChecksHaveSummaries: every stringCheck on a resource's string
// attribute has a summary, the line Terraform prints after "Error:". The
// image layers' digest and path checks had none, so a bad layer path
// printed a bare "Error:".
func TestStringChecksHaveSummaries(t *testing.T) {
	ctx := context.Background()
	var walk func(name string, attrs map[string]schema.Attribute)
	walk = func(name string, attrs map[string]schema.Attribute) {
		for n, a := range attrs {
			switch a := a.(type) {
			case schema.StringAttribute:
				for _, v := range a.Validators {
					if n, ok := v.(namedCheck); ok {
						v = n.stringCheck
					}
					if c, ok := v.(stringCheck); ok && c.summary == "" {
						t.Errorf("%s.%s: a stringCheck (%q) without a summary", name, n, c.desc)
					}
				}
			case schema.ListNestedAttribute:
				walk(name+"."+n, a.NestedObject.Attributes)
			case schema.SetNestedAttribute:
				walk(name+"."+n, a.NestedObject.Attributes)
			case schema.MapNestedAttribute:
				walk(name+"."+n, a.NestedObject.Attributes)
			case schema.SingleNestedAttribute:
				walk(name+"."+n, a.Attributes)
			}
		}
	}
	for _, f := range New("test")().Resources(ctx) {
		r := f()
		var md resource.MetadataResponse
		r.Metadata(ctx, resource.MetadataRequest{ProviderTypeName: "immutable"}, &md)
		var sr resource.SchemaResponse
		r.Schema(ctx, resource.SchemaRequest{}, &sr)
		walk(md.TypeName, sr.Schema.Attributes)
	}
}

// TestCheckPort: the plan-time check of exposed_ports refuses what the
// image's assembly refuses, so the diagnostic names the attribute ("080"
// passed it and failed as "Cannot assemble the image").
func TestCheckPort(t *testing.T) {
	for _, p := range []string{"80", "8080/tcp", "53/udp", "132/sctp", "65535"} {
		if err := checkPort(p); err != nil {
			t.Errorf("checkPort(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"080/tcp", "+80", "0", "65536", "80/http", "80/TCP", "", "/tcp"} {
		if err := checkPort(p); err == nil {
			t.Errorf("checkPort(%q) = nil, want an error", p)
		}
	}
}
