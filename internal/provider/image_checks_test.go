package provider

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
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

// TestDescriptorLayerMediaType: a layer the state lists with Docker's
// media type (an image on a Docker base) is the encoder's OCI gzip layer
// to assembly, which gives it the new manifest's type: moving such an
// image to an OCI base failed at plan with "is not a layer WriteLayer
// makes".
func TestDescriptorLayerMediaType(t *testing.T) {
	d := descriptorModel{
		Digest: types.StringValue(digestOfBytes("blob")), DiffID: types.StringValue(digestOfBytes("tar")),
		Size: types.Int64Value(10), MediaType: types.StringValue(image.MediaTypeDockerLayerGzip),
	}
	l, ok := d.layer(image.LayerSpec{Path: "/app", Compression: image.Gzip})
	if !ok || l.MediaType != image.MediaTypeLayerGzip {
		t.Errorf("layer %+v, %v: want media type %s", l, ok, image.MediaTypeLayerGzip)
	}
	if _, err := image.Assemble(nil, []image.Layer{l}, image.Config{}, image.Platform{OS: "linux", Architecture: "amd64"}, time.Unix(0, 0)); err != nil {
		t.Errorf("assembling it from scratch: %v", err)
	}
}
