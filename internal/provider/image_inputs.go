package provider

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image"
	"github.com/immutable-infra/terraform-provider-immutable/internal/image/publish"
	"github.com/immutable-infra/terraform-provider-immutable/internal/registry"
)

// The image resource's attributes translated into a publish.Request,
// each bad value refused with a diagnostic naming its attribute.

// imageInputs is an image's configuration, parsed.
type imageInputs struct {
	repository string
	req        publish.Request // without Known: the state's layers
	tags       []string
	// tagsKnown is false when tags are known only at apply: they point at
	// the image, they do not make it.
	tagsKnown bool
}

// unknownIn reports whether v is unknown or, a list, set or map, holds an
// unknown element (ElementsAs cannot read those into Go values).
func unknownIn(v attr.Value) bool {
	if v.IsUnknown() {
		return true
	}
	var elems []attr.Value
	switch c := v.(type) {
	case types.List:
		elems = c.Elements()
	case types.Set:
		elems = c.Elements()
	case types.Map:
		for _, e := range c.Elements() {
			elems = append(elems, e)
		}
	}
	for _, e := range elems {
		if e.IsUnknown() {
			return true
		}
	}
	return false
}

// readInputs parses m's inputs; known is false when one that makes the
// image is unknown (tags do not: see tagsKnown).
func readInputs(ctx context.Context, m *imageModel) (in imageInputs, known bool, diags diag.Diagnostics) {
	for _, v := range []attr.Value{m.Repository, m.Base, m.Platform, m.Created, m.Compression, m.Layers, m.Config} {
		if unknownIn(v) {
			return in, false, diags
		}
	}
	in.repository = m.Repository.ValueString()
	if err := registry.CheckRepository(in.repository); err != nil {
		diags.AddAttributeError(path.Root("repository"), "Invalid repository", err.Error())
		return in, true, diags
	}
	if !m.Base.IsNull() {
		in.req.Base = m.Base.ValueString()
		if err := registry.CheckDigestRef(in.req.Base); err != nil {
			diags.AddAttributeError(path.Root("base"), "Base must be pinned by digest",
				err.Error()+". Resolve a tag with data.immutable_image and pass its `ref` (for example "+
					"`base = data.immutable_image.distroless.ref`), so a base bump shows in the plan as a new digest.")
			return in, true, diags
		}
	}
	if !m.Platform.IsNull() {
		p, err := image.ParsePlatform(m.Platform.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root("platform"), "Invalid platform", err.Error())
			return in, true, diags
		}
		in.req.Platform = &p
	}
	created := defaultCreated
	if !m.Created.IsNull() {
		created = m.Created.ValueString()
	}
	t, err := time.Parse(time.RFC3339, created)
	if err != nil {
		diags.AddAttributeError(path.Root("created"), "Invalid creation time",
			fmt.Sprintf("%q is not an RFC 3339 time such as %q: %v.", created, defaultCreated, err))
		return in, true, diags
	}
	in.req.Created = t.UTC()
	compression := image.Gzip
	if !m.Compression.IsNull() {
		compression = image.Compression(m.Compression.ValueString())
	}
	var layers []imageLayerModel
	if diags.Append(m.Layers.ElementsAs(ctx, &layers, false)...); diags.HasError() {
		return in, true, diags
	}
	if len(layers) == 0 {
		diags.AddAttributeError(path.Root("layers"), "No layers", "An image needs at least one layer: give a stored tree or file and its path.")
		return in, true, diags
	}
	for i, l := range layers {
		at := path.Root("layers").AtListIndex(i)
		for _, v := range []attr.Value{l.Digest, l.Path, l.UID, l.GID, l.FileMode, l.DirMode} {
			if v.IsUnknown() {
				return in, false, diags
			}
		}
		sum, err := digest.Parse(l.Digest.ValueString())
		if err != nil {
			diags.AddAttributeError(at.AtName("digest"), "Invalid layer digest", at.AtName("digest").String()+": "+err.Error())
			return in, true, diags
		}
		if err := image.CheckPath(l.Path.ValueString()); err != nil {
			diags.AddAttributeError(at.AtName("path"), "Invalid layer path", at.AtName("path").String()+": "+err.Error())
			return in, true, diags
		}
		spec := image.LayerSpec{Tree: sum, Path: l.Path.ValueString(), UID: int(l.UID.ValueInt64()), GID: int(l.GID.ValueInt64()), Compression: compression}
		for name, id := range map[string]types.Int64{"uid": l.UID, "gid": l.GID} {
			if v := id.ValueInt64(); v < 0 || v > 1<<31-1 {
				diags.AddAttributeError(at.AtName(name), "Invalid owner", fmt.Sprintf("%d is not a uid or gid: use 0 to 2147483647.", v))
				return in, true, diags
			}
		}
		if !l.FileMode.IsNull() {
			v, _ := strconv.ParseUint(l.FileMode.ValueString(), 8, 32)
			spec.FileMode = fsMode(v)
		}
		if !l.DirMode.IsNull() {
			v, _ := strconv.ParseUint(l.DirMode.ValueString(), 8, 32)
			spec.DirMode = fsMode(v)
		}
		in.req.Layers = append(in.req.Layers, spec)
	}
	if !m.Config.IsNull() {
		var c imageConfigModel
		if diags.Append(m.Config.As(ctx, &c, objectAsOptions)...); diags.HasError() {
			return in, true, diags
		}
		for _, v := range []attr.Value{c.Entrypoint, c.Cmd, c.Env, c.WorkingDir, c.User, c.ExposedPorts, c.Labels} {
			if unknownIn(v) {
				return in, false, diags
			}
		}
		cfg := &in.req.Config
		diags.Append(c.Entrypoint.ElementsAs(ctx, &cfg.Entrypoint, false)...)
		diags.Append(c.Cmd.ElementsAs(ctx, &cfg.Cmd, false)...)
		diags.Append(c.ExposedPorts.ElementsAs(ctx, &cfg.ExposedPorts, false)...)
		var env, labels map[string]string
		diags.Append(c.Env.ElementsAs(ctx, &env, false)...)
		diags.Append(c.Labels.ElementsAs(ctx, &labels, false)...)
		if diags.HasError() {
			return in, true, diags
		}
		names := make([]string, 0, len(env))
		for k := range env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				diags.AddAttributeError(path.Root("config").AtName("env"), "Invalid environment variable name",
					fmt.Sprintf("%q cannot be a variable name: names are not empty and hold no '=' or NUL.", k))
				return in, true, diags
			}
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			cfg.Env = append(cfg.Env, k+"="+env[k])
		}
		sort.Strings(cfg.ExposedPorts)
		for _, p := range cfg.ExposedPorts {
			if err := checkPort(p); err != nil {
				diags.AddAttributeError(path.Root("config").AtName("exposed_ports"), "Invalid port", err.Error())
				return in, true, diags
			}
		}
		cfg.WorkingDir, cfg.User, cfg.Labels = c.WorkingDir.ValueString(), c.User.ValueString(), labels
	}
	if in.tagsKnown = !unknownIn(m.Tags); !in.tagsKnown {
		return in, true, diags
	}
	if diags.Append(m.Tags.ElementsAs(ctx, &in.tags, false)...); diags.HasError() {
		return in, true, diags
	}
	sort.Strings(in.tags)
	for _, t := range in.tags {
		if err := registry.CheckTag(t); err != nil {
			diags.AddAttributeError(path.Root("tags"), "Invalid tag", err.Error())
			return in, true, diags
		}
	}
	return in, true, diags
}

// checkPort reads "8080/tcp", "53/udp", "132/sctp" or "8080" (tcp), as
// the image's config is assembled from them: a port this let through
// ("080") failed later with no attribute named.
func checkPort(p string) error {
	_, err := image.ParsePort(p)
	return err
}

// knownLayers finds the layers of prior (the state) described by their
// spec, so a plan does not encode them again.
func knownLayers(ctx context.Context, prior *imageModel) map[image.LayerSpec]image.Layer {
	byspec := map[image.LayerSpec]image.Layer{}
	if prior == nil || prior.Layers.IsNull() || prior.Descriptors.IsNull() {
		return byspec
	}
	in, known, diags := readInputs(ctx, prior)
	var descs []descriptorModel
	if known && !diags.HasError() && !prior.Descriptors.ElementsAs(ctx, &descs, false).HasError() {
		own := len(descs) - len(in.req.Layers)
		for i, spec := range in.req.Layers {
			if own < 0 {
				break
			}
			if l, ok := descs[own+i].layer(spec); ok {
				byspec[spec] = l
			}
		}
	}
	return byspec
}

type descriptorModel struct {
	Digest    types.String `tfsdk:"digest"`
	DiffID    types.String `tfsdk:"diff_id"`
	Size      types.Int64  `tfsdk:"size"`
	MediaType types.String `tfsdk:"media_type"`
}

func (d descriptorModel) layer(spec image.LayerSpec) (image.Layer, bool) {
	sum, err1 := digest.Parse(d.Digest.ValueString())
	diff, err2 := digest.Parse(d.DiffID.ValueString())
	if err1 != nil || err2 != nil || d.Size.ValueInt64() <= 0 {
		return image.Layer{}, false
	}
	mediaType := d.MediaType.ValueString()
	if mediaType == image.MediaTypeDockerLayerGzip {
		// The same gzip bytes as the encoder's OCI layer, listed so by a
		// manifest on a Docker base; assembly gives them the manifest's type.
		mediaType = image.MediaTypeLayerGzip
	}
	return image.Layer{Descriptor: image.Descriptor{MediaType: mediaType, Digest: sum, Size: d.Size.ValueInt64()}, DiffID: diff, Spec: spec}, true
}

// modePattern is an octal permission: "0644", "755".
var modePattern = regexp.MustCompile(`^0?[0-7]{3}$`)

func fsMode(v uint64) fs.FileMode { return fs.FileMode(v) & fs.ModePerm }

var objectAsOptions = basetypes.ObjectAsOptions{}
