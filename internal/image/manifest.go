package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// Media types of manifests, configs and indexes.
const (
	MediaTypeManifest           = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig             = "application/vnd.oci.image.config.v1+json"
	MediaTypeIndex              = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// The JSON is written by encoding/json from the structs below and from
// maps (whose keys it sorts), never from go-containerregistry's types: the
// config of a base is kept whole as raw JSON, every field this package
// does not set included (Healthcheck, StopSignal, Volumes, Shell, fields
// of tomorrow), which typed structs would drop; and the bytes, hence the
// digests, depend on nothing but this file.

type descriptorJSON struct {
	MediaType string        `json:"mediaType"`
	Digest    string        `json:"digest"`
	Size      int64         `json:"size"`
	Platform  *platformJSON `json:"platform,omitempty"`
}

type platformJSON struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

type manifestJSON struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        descriptorJSON    `json:"config"`
	Layers        []json.RawMessage `json:"layers"`
}

// baseManifestJSON is what is read of a base's manifest.
type baseManifestJSON struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        *descriptorJSON   `json:"config"`
	Layers        []json.RawMessage `json:"layers"`
	Manifests     json.RawMessage   `json:"manifests"`
}

type historyJSON struct {
	Created    string `json:"created"`
	CreatedBy  string `json:"created_by"`
	Comment    string `json:"comment,omitempty"`
	EmptyLayer bool   `json:"empty_layer,omitempty"`
}

type rootfsJSON struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// marshal is encoding/json without HTML escaping and without the final
// newline: compact, map keys sorted, the same bytes every time.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func (d Descriptor) json() descriptorJSON {
	return descriptorJSON{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size}
}

func (p Platform) json() *platformJSON {
	return &platformJSON{Architecture: p.Architecture, OS: p.OS, Variant: p.Variant}
}

// Assemble builds the config and manifest of an image of base (nil: from
// scratch) and layers, with cfg merged over the base's config, for
// platform p, created at created (a fixed time from the configuration,
// never the clock).
//
// The config keeps everything of the base's config and adds to it: its
// layers' diff_ids, one history entry per layer, and cfg. A field of cfg
// that is set replaces the base's (an empty, non-nil Entrypoint or Cmd
// removes it; setting Entrypoint without Cmd drops the base's Cmd, as a
// Dockerfile's ENTRYPOINT does); Env merges by name, the base's order
// kept and new names appended; Labels merge; ExposedPorts are the union.
// The manifest has the base's type: a Docker schema 2 base gives a Docker
// manifest (whose layers must be gzip), any other an OCI one.
//
// The zero Platform, with a base, means the base's.
func Assemble(base *Base, layers []Layer, cfg Config, p Platform, created time.Time) (*Image, error) {
	if err := p.check(); err != nil && (base == nil || p != (Platform{})) {
		return nil, err
	}
	img := &Image{MediaType: MediaTypeManifest, Platform: p}
	configType := MediaTypeConfig
	config := map[string]json.RawMessage{}
	var history []json.RawMessage
	var manifestLayers []json.RawMessage
	if base != nil {
		b, err := readBase(base, p)
		if err != nil {
			return nil, err
		}
		img.MediaType, configType = b.mediaType, b.configType
		img.Platform = b.platform
		img.Layers, img.DiffIDs = b.layers, b.diffIDs
		config, history, manifestLayers = b.config, b.history, b.rawLayers
	} else {
		setJSON(config, "architecture", p.Architecture)
		setJSON(config, "os", p.OS)
		if p.Variant != "" {
			setJSON(config, "variant", p.Variant)
		}
	}
	stamp := created.UTC().Format(time.RFC3339)
	for i, l := range layers {
		d, err := layerDescriptor(l, img.MediaType)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i+1, l.Spec.Path, err)
		}
		img.Layers = append(img.Layers, d)
		img.DiffIDs = append(img.DiffIDs, l.DiffID)
		raw, err := marshal(d.json())
		if err != nil {
			return nil, err
		}
		manifestLayers = append(manifestLayers, raw)
		h, err := marshal(historyJSON{
			Created:   stamp,
			CreatedBy: "immutable_image layer " + l.Spec.Path,
			Comment:   Encoding + " of " + l.Spec.Tree.String(),
		})
		if err != nil {
			return nil, err
		}
		history = append(history, h)
	}
	if err := mergeConfig(config, cfg); err != nil {
		return nil, err
	}
	setJSON(config, "created", stamp)
	diffIDs := make([]string, len(img.DiffIDs))
	for i, d := range img.DiffIDs {
		diffIDs[i] = d.String()
	}
	setJSON(config, "rootfs", rootfsJSON{Type: "layers", DiffIDs: diffIDs})
	if history == nil {
		history = []json.RawMessage{}
	}
	setJSON(config, "history", history)
	var err error
	if img.Config, err = marshal(config); err != nil {
		return nil, err
	}
	img.ConfigDigest = digest.Bytes(img.Config)
	if manifestLayers == nil {
		manifestLayers = []json.RawMessage{}
	}
	m := manifestJSON{
		SchemaVersion: 2,
		MediaType:     img.MediaType,
		Config:        descriptorJSON{MediaType: configType, Digest: img.ConfigDigest.String(), Size: int64(len(img.Config))},
		Layers:        manifestLayers,
	}
	if img.Manifest, err = marshal(m); err != nil {
		return nil, err
	}
	img.Digest = digest.Bytes(img.Manifest)
	img.Size = int64(len(img.Manifest)) + int64(len(img.Config))
	for _, d := range img.Layers {
		img.Size += d.Size
	}
	return img, nil
}

// setJSON sets m[k] to v's JSON; v is always encodable.
func setJSON(m map[string]json.RawMessage, k string, v any) {
	b, err := marshal(v)
	if err != nil {
		panic(fmt.Sprintf("image: encoding %s: %v", k, err))
	}
	m[k] = b
}

// layerDescriptor is l's descriptor in a manifest of type manifestType.
func layerDescriptor(l Layer, manifestType string) (Descriptor, error) {
	d := l.Descriptor
	if l.Spec.Path == "" {
		return d, fmt.Errorf("the layer has no path: it was not made by WriteLayer")
	}
	switch d.MediaType {
	case MediaTypeLayerGzip, MediaTypeLayer:
	case MediaTypeDockerLayerGzip:
		// As a Docker manifest named it (a state's or a record's
		// descriptor): the same gzip blob, typed below for this manifest.
		d.MediaType = MediaTypeLayerGzip
	default:
		return d, fmt.Errorf("media type %q is not a layer WriteLayer makes", d.MediaType)
	}
	if manifestType == MediaTypeDockerManifest {
		if d.MediaType != MediaTypeLayerGzip {
			return d, fmt.Errorf("the base image is a Docker (schema 2) image, whose layers must be compressed: use gzip compression")
		}
		d.MediaType = MediaTypeDockerLayerGzip
	}
	return d, nil
}

// baseImage is what Assemble keeps of a base.
type baseImage struct {
	mediaType, configType string
	platform              Platform
	config                map[string]json.RawMessage
	history               []json.RawMessage
	rawLayers             []json.RawMessage
	layers                []Descriptor
	diffIDs               []digest.Sum
}

// readBase parses and checks a base: its manifest is the one Ref names,
// its config the one the manifest names, its platform p.
func readBase(base *Base, p Platform) (*baseImage, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("the base image %s: %s", base.Ref, fmt.Sprintf(format, args...))
	}
	_, hexDigest, ok := strings.Cut(base.Ref, "@")
	if !ok {
		return nil, fail("the reference has no digest: resolve it to repository@sha256:… first")
	}
	want, err := digest.Parse(hexDigest)
	if err != nil {
		return nil, fail("%v", err)
	}
	if got := digest.Bytes(base.Manifest); got != want {
		return nil, fail("its manifest hashes to %s, not the digest of the reference: the registry served other bytes; try again, or check the registry", got)
	}
	var m baseManifestJSON
	if err := json.Unmarshal(base.Manifest, &m); err != nil {
		return nil, fail("its manifest is not valid JSON: %v", err)
	}
	isIndex := func(t string) bool { return t == MediaTypeIndex || t == MediaTypeDockerManifestList }
	if isIndex(m.MediaType) || isIndex(base.MediaType) || len(m.Manifests) > 0 {
		return nil, fail("it is an index of several platforms: pick the manifest of platform %s first", p)
	}
	mt := m.MediaType
	switch {
	case mt == "":
		mt = base.MediaType
	case base.MediaType != "" && base.MediaType != mt:
		return nil, fail("its manifest says media type %q, the registry said %q", mt, base.MediaType)
	}
	b := &baseImage{mediaType: mt}
	switch mt {
	case MediaTypeManifest:
		b.configType = MediaTypeConfig
	case MediaTypeDockerManifest:
		b.configType = MediaTypeDockerConfig
	default:
		return nil, fail("media type %q is not an OCI image manifest nor a Docker schema 2 manifest", mt)
	}
	if m.SchemaVersion != 2 || m.Config == nil {
		return nil, fail("its manifest is not schema version 2 with a config")
	}
	cd, err := readDescriptor(m.Config)
	if err != nil {
		return nil, fail("its config descriptor: %v", err)
	}
	if got := digest.Bytes(base.Config); got != cd.Digest || int64(len(base.Config)) != cd.Size {
		return nil, fail("its config (%d bytes, %s) is not the one its manifest names (%d bytes, %s)", len(base.Config), got, cd.Size, cd.Digest)
	}
	b.rawLayers = m.Layers
	for i, raw := range m.Layers {
		var dj descriptorJSON
		if err := json.Unmarshal(raw, &dj); err != nil {
			return nil, fail("layer %d: %v", i+1, err)
		}
		d, err := readDescriptor(&dj)
		if err != nil {
			return nil, fail("layer %d: %v", i+1, err)
		}
		b.layers = append(b.layers, d)
	}
	if err := json.Unmarshal(base.Config, &b.config); err != nil || b.config == nil {
		return nil, fail("its config is not a JSON object")
	}
	var plat struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		History []json.RawMessage `json:"history"`
	}
	if err := json.Unmarshal(base.Config, &plat); err != nil {
		return nil, fail("its config: %v", err)
	}
	if b.platform, err = ConfigPlatform(base.Config); err != nil {
		return nil, fail("its config: %v", err)
	}
	if p != (Platform{}) && !b.platform.Matches(p) {
		return nil, fail("its platform is %s, not %s: choose the base's manifest for %s, or set the platform to %s", b.platform, p, p, b.platform)
	}
	if len(plat.RootFS.DiffIDs) != len(b.layers) {
		return nil, fail("its config lists %d diff_ids for %d layers", len(plat.RootFS.DiffIDs), len(b.layers))
	}
	for _, s := range plat.RootFS.DiffIDs {
		d, err := digest.Parse(s)
		if err != nil {
			return nil, fail("diff_id: %v", err)
		}
		b.diffIDs = append(b.diffIDs, d)
	}
	b.history = plat.History
	return b, nil
}

func readDescriptor(d *descriptorJSON) (Descriptor, error) {
	sum, err := digest.Parse(d.Digest)
	if err != nil {
		return Descriptor{}, err
	}
	if d.Size < 0 {
		return Descriptor{}, fmt.Errorf("negative size %d", d.Size)
	}
	return Descriptor{MediaType: d.MediaType, Digest: sum, Size: d.Size}, nil
}

// mergeConfig merges cfg into the "config" object of an image config.
func mergeConfig(config map[string]json.RawMessage, cfg Config) error {
	c := map[string]json.RawMessage{}
	if raw, ok := config["config"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("the base image's config has a \"config\" that is not an object: %v", err)
		}
	}
	if c == nil {
		c = map[string]json.RawMessage{}
	}
	setList := func(k string, v []string) {
		if len(v) == 0 {
			delete(c, k)
			return
		}
		setJSON(c, k, v)
	}
	if cfg.Entrypoint != nil {
		setList("Entrypoint", cfg.Entrypoint)
		if cfg.Cmd == nil {
			delete(c, "Cmd")
		}
	}
	if cfg.Cmd != nil {
		setList("Cmd", cfg.Cmd)
	}
	if cfg.WorkingDir != "" {
		setJSON(c, "WorkingDir", cfg.WorkingDir)
	}
	if cfg.User != "" {
		setJSON(c, "User", cfg.User)
	}
	if len(cfg.Env) > 0 {
		var env []string
		if err := unmarshalField(c, "Env", &env); err != nil {
			return err
		}
		env, err := MergeEnv(env, cfg.Env)
		if err != nil {
			return err
		}
		setJSON(c, "Env", env)
	}
	if len(cfg.ExposedPorts) > 0 {
		ports := map[string]struct{}{}
		if err := unmarshalField(c, "ExposedPorts", &ports); err != nil {
			return err
		}
		if ports == nil {
			ports = map[string]struct{}{}
		}
		for _, s := range cfg.ExposedPorts {
			port, err := ParsePort(s)
			if err != nil {
				return err
			}
			ports[port] = struct{}{}
		}
		setJSON(c, "ExposedPorts", ports)
	}
	if len(cfg.Labels) > 0 {
		labels := map[string]string{}
		if err := unmarshalField(c, "Labels", &labels); err != nil {
			return err
		}
		if labels == nil {
			labels = map[string]string{}
		}
		for k, v := range cfg.Labels {
			if k == "" {
				return fmt.Errorf("a label has an empty name: give every label a name")
			}
			labels[k] = v
		}
		setJSON(c, "Labels", labels)
	}
	setJSON(config, "config", c)
	return nil
}

func unmarshalField(c map[string]json.RawMessage, k string, v any) error {
	raw, ok := c[k]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("the base image's config has a %s that cannot be read: %v", k, err)
	}
	return nil
}

// MergeEnv sets each "NAME=value" of set in env: a name env has keeps its
// place, a new one is appended, in set's order. A name set twice, or an
// entry without "=" or a name, is an error.
func MergeEnv(env, set []string) ([]string, error) {
	out := slices.Clone(env)
	at := map[string]int{}
	for i, e := range out {
		name, _, _ := strings.Cut(e, "=")
		at[name] = i
	}
	seen := map[string]bool{}
	for _, e := range set {
		name, _, ok := strings.Cut(e, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("the environment variable %q is not NAME=value: write it as NAME=value", e)
		}
		if seen[name] {
			return nil, fmt.Errorf("the environment variable %s is set twice: set it once", name)
		}
		seen[name] = true
		if i, ok := at[name]; ok {
			out[i] = e
			continue
		}
		at[name] = len(out)
		out = append(out, e)
	}
	return out, nil
}

// ParsePort reads "8080", "8080/tcp", "53/udp" or "132/sctp" and returns
// it as the config spells it, with its protocol: "8080/tcp".
func ParsePort(s string) (string, error) {
	port, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		proto = "tcp"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", fmt.Errorf("the exposed port %q is not a port number from 1 to 65535 with an optional /tcp, /udp or /sctp: write it as \"8080\" or \"53/udp\"", s)
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return "", fmt.Errorf("the exposed port %q has protocol %q: use tcp, udp or sctp", s, proto)
	}
	return port + "/" + proto, nil
}
