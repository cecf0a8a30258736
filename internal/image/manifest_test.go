package image

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

var created = time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600))

// twoLayers encodes two layers of the golden tree: /srv/www and a file.
func twoLayers(t *testing.T, c Compression) []Layer {
	t.Helper()
	m := newMemSource()
	tree := fixedTree(m)
	file := m.file("", digest.KindFile, "#!/bin/sh\n").SHA256
	var ls []Layer
	for _, spec := range []LayerSpec{
		{Tree: tree, Path: "/srv/www", Compression: c},
		{Tree: file, Path: "/usr/bin/tool", FileMode: 0o755, Compression: c},
	} {
		l, err := DescribeLayer(context.Background(), m, spec)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	return ls
}

func TestAssembleScratch(t *testing.T) {
	layers := twoLayers(t, Gzip)
	cfg := Config{
		Entrypoint:   []string{"/usr/bin/tool"},
		Cmd:          []string{"--serve", "<html>"},
		Env:          []string{"PATH=/usr/bin", "MODE=prod"},
		WorkingDir:   "/srv/www",
		User:         "1000:1000",
		ExposedPorts: []string{"8080", "53/udp"},
		Labels:       map[string]string{"org.opencontainers.image.source": "https://example.com/x", "a": "b"},
	}
	p := Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	img, err := Assemble(nil, layers, cfg, p, created)
	if err != nil {
		t.Fatal(err)
	}
	l0, l1 := layers[0], layers[1]
	wantConfig := `{"architecture":"arm","config":{"Cmd":["--serve","<html>"],"Entrypoint":["/usr/bin/tool"],"Env":["PATH=/usr/bin","MODE=prod"],"ExposedPorts":{"53/udp":{},"8080/tcp":{}},"Labels":{"a":"b","org.opencontainers.image.source":"https://example.com/x"},"User":"1000:1000","WorkingDir":"/srv/www"},"created":"2024-05-01T10:00:00Z",` +
		`"history":[{"created":"2024-05-01T10:00:00Z","created_by":"immutable_image layer /srv/www","comment":"immutable-layer-v1 of ` + l0.Spec.Tree.String() + `"},{"created":"2024-05-01T10:00:00Z","created_by":"immutable_image layer /usr/bin/tool","comment":"immutable-layer-v1 of ` + l1.Spec.Tree.String() + `"}],` +
		`"os":"linux","rootfs":{"type":"layers","diff_ids":["` + l0.DiffID.String() + `","` + l1.DiffID.String() + `"]},"variant":"v7"}`
	if string(img.Config) != wantConfig {
		t.Errorf("config\n%s\nwant\n%s", img.Config, wantConfig)
	}
	wantManifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}`,
		digest.Bytes(img.Config), len(img.Config), l0.Digest, l0.Size, l1.Digest, l1.Size)
	if string(img.Manifest) != wantManifest {
		t.Errorf("manifest\n%s\nwant\n%s", img.Manifest, wantManifest)
	}
	if img.Digest != digest.Bytes(img.Manifest) || img.ConfigDigest != digest.Bytes(img.Config) || img.MediaType != MediaTypeManifest || img.Platform != p {
		t.Errorf("image %+v does not describe its bytes", img)
	}
	if want := int64(len(img.Manifest)+len(img.Config)) + l0.Size + l1.Size; img.Size != want {
		t.Errorf("size %d, want %d", img.Size, want)
	}
	if len(img.Layers) != 2 || img.Layers[0] != l0.Descriptor || img.DiffIDs[1] != l1.DiffID {
		t.Errorf("layers %+v, diff_ids %v", img.Layers, img.DiffIDs)
	}
	again, err := Assemble(nil, layers, cfg, p, created)
	if err != nil || again.Digest != img.Digest {
		t.Errorf("assembled twice: %v, %v", again, err)
	}
	empty, err := Assemble(nil, nil, Config{}, Platform{OS: "linux", Architecture: "amd64"}, created)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"architecture":"amd64","config":{},"created":"2024-05-01T10:00:00Z","history":[],"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`; string(empty.Config) != want {
		t.Errorf("empty config %s, want %s", empty.Config, want)
	}
}

// baseImage makes a base: one layer, a config with fields Assemble does
// not set, as a registry would serve it.
func makeBase(t *testing.T, mediaType, arch, variant string) *Base {
	t.Helper()
	layerType, configType := MediaTypeLayerGzip, MediaTypeConfig
	if mediaType == MediaTypeDockerManifest {
		layerType, configType = MediaTypeDockerLayerGzip, MediaTypeDockerConfig
	}
	diffID := digest.Bytes([]byte("base tar"))
	config := map[string]any{
		"architecture": arch, "os": "linux",
		"created": "2020-01-01T00:00:00Z",
		"config": map[string]any{
			"Env":          []string{"PATH=/usr/local/bin:/usr/bin", "LANG=C"},
			"Cmd":          []string{"sh"},
			"Labels":       map[string]string{"a": "base", "keep": "yes"},
			"ExposedPorts": map[string]any{"80/tcp": map[string]any{}},
			"Healthcheck":  map[string]any{"Test": []string{"CMD", "true"}},
			"StopSignal":   "SIGTERM",
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{diffID.String()}},
		"history": []map[string]any{{"created": "2020-01-01T00:00:00Z", "created_by": "base"}},
	}
	if variant != "" {
		config["variant"] = variant
	}
	cb, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	layer := digest.Bytes([]byte("base layer"))
	manifest := fmt.Sprintf(`{"schemaVersion": 2, "mediaType": %q, "config": {"mediaType": %q, "digest": %q, "size": %d},
 "layers": [{"mediaType": %q, "digest": %q, "size": 1234, "annotations": {"x": "y"}}]}`,
		mediaType, configType, digest.Bytes(cb), len(cb), layerType, layer)
	return &Base{
		Ref:       "registry.example/library/base@" + digest.Bytes([]byte(manifest)).String(),
		MediaType: mediaType,
		Manifest:  []byte(manifest),
		Config:    cb,
	}
}

func configOf(t *testing.T, img *Image) map[string]any {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal(img.Config, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAssembleOnBase(t *testing.T) {
	base := makeBase(t, MediaTypeManifest, "amd64", "")
	layers := twoLayers(t, Gzip)
	cfg := Config{
		Entrypoint:   []string{"/usr/bin/tool"},
		Env:          []string{"LANG=C.UTF-8", "X=1"},
		ExposedPorts: []string{"8080/tcp", "80"},
		Labels:       map[string]string{"a": "mine", "b": "2"},
		User:         "nobody",
	}
	img, err := Assemble(base, layers, cfg, Platform{OS: "linux", Architecture: "amd64"}, created)
	if err != nil {
		t.Fatal(err)
	}
	c := configOf(t, img)
	want := `{"Entrypoint":["/usr/bin/tool"],"Env":["PATH=/usr/local/bin:/usr/bin","LANG=C.UTF-8","X=1"],"ExposedPorts":{"80/tcp":{},"8080/tcp":{}},"Healthcheck":{"Test":["CMD","true"]},"Labels":{"a":"mine","b":"2","keep":"yes"},"StopSignal":"SIGTERM","User":"nobody"}`
	if got := jsonString(t, c["config"]); got != want {
		t.Errorf("config.config\n%s\nwant\n%s (the base's Cmd dropped for the new Entrypoint)", got, want)
	}
	if got := jsonString(t, c["rootfs"]); !strings.Contains(got, digest.Bytes([]byte("base tar")).String()) || len(img.DiffIDs) != 3 || img.DiffIDs[2] != layers[1].DiffID {
		t.Errorf("rootfs %s, diff_ids %v", got, img.DiffIDs)
	}
	if h, ok := c["history"].([]any); !ok || len(h) != 3 || jsonString(t, h[0]) != `{"created":"2020-01-01T00:00:00Z","created_by":"base"}` {
		t.Errorf("history %v", c["history"])
	}
	if c["created"] != "2024-05-01T10:00:00Z" || c["architecture"] != "amd64" {
		t.Errorf("created %v, architecture %v", c["created"], c["architecture"])
	}
	if len(img.Layers) != 3 || img.Layers[0].Size != 1234 || img.Layers[1] != layers[0].Descriptor {
		t.Errorf("layers %+v", img.Layers)
	}
	if !strings.Contains(string(img.Manifest), `"annotations":{"x":"y"}`) || img.MediaType != MediaTypeManifest {
		t.Errorf("manifest %s keeps not the base's layer as it was", img.Manifest)
	}
	if want := int64(len(img.Manifest)+len(img.Config)) + 1234 + layers[0].Size + layers[1].Size; img.Size != want {
		t.Errorf("size %d, want %d", img.Size, want)
	}
	// Cmd set with Entrypoint keeps both; an empty Cmd removes the base's.
	img, err = Assemble(base, nil, Config{Cmd: []string{}}, Platform{OS: "linux", Architecture: "amd64"}, created)
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonString(t, configOf(t, img)["config"]); strings.Contains(got, "Cmd") {
		t.Errorf("an empty Cmd kept the base's: %s", got)
	}
}

func TestAssembleDockerBase(t *testing.T) {
	base := makeBase(t, MediaTypeDockerManifest, "arm64", "v8")
	p := Platform{OS: "linux", Architecture: "arm64"} // v8 is arm64's default
	img, err := Assemble(base, twoLayers(t, Gzip), Config{}, p, created)
	if err != nil {
		t.Fatal(err)
	}
	if img.MediaType != MediaTypeDockerManifest || img.Layers[1].MediaType != MediaTypeDockerLayerGzip ||
		!strings.Contains(string(img.Manifest), `"config":{"mediaType":"application/vnd.docker.container.image.v1+json"`) {
		t.Errorf("a Docker base gave %s", img.Manifest)
	}
	if img.Platform.Variant != "v8" {
		t.Errorf("platform %v, want the base's linux/arm64/v8", img.Platform)
	}
	// Its record agrees with its manifest: the layers' media types are
	// Docker's there (the record said OCI's, and every apply on a Docker
	// base failed to store it).
	layers := twoLayers(t, Gzip)
	img, err = Assemble(base, layers, Config{}, p, created)
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecord(img, base, layers)
	if err := rec.agrees(img.Manifest, img.Config); err != nil {
		t.Errorf("the record of an image on a Docker base: %v", err)
	}
	// Layers as the manifest typed them (a state's descriptors) assemble
	// the same image again, and an OCI one from scratch.
	docker := twoLayers(t, Gzip)
	for i := range docker {
		docker[i].MediaType = MediaTypeDockerLayerGzip
	}
	if again, err := Assemble(base, docker, Config{}, p, created); err != nil || again.Digest != img.Digest {
		t.Errorf("Docker-typed layers on the Docker base: %v", err)
	}
	oci, err := Assemble(nil, docker, Config{}, p, created)
	if err != nil || oci.Layers[0].MediaType != MediaTypeLayerGzip {
		t.Errorf("Docker-typed layers from scratch: %v, %+v", err, oci)
	}
	_, err = Assemble(base, twoLayers(t, Uncompressed), Config{}, p, created)
	if err == nil || !strings.Contains(err.Error(), "use gzip compression") {
		t.Errorf("uncompressed layers on a Docker base: %v", err)
	}
}

func TestAssembleBaseRefused(t *testing.T) {
	amd64 := Platform{OS: "linux", Architecture: "amd64"}
	for _, tc := range []struct {
		name string
		edit func(b *Base)
		p    Platform
		want string
	}{
		{"manifest digest", func(b *Base) { b.Manifest = append(b.Manifest, ' ') }, amd64, "not the digest of the reference"},
		{"no digest", func(b *Base) { b.Ref = "registry.example/base:latest" }, amd64, "has no digest"},
		{"config digest", func(b *Base) { b.Config = append(b.Config, ' ') }, amd64, "is not the one its manifest names"},
		{"platform", func(*Base) {}, Platform{OS: "linux", Architecture: "arm64"}, "its platform is linux/amd64, not linux/arm64"},
		{"media type", func(b *Base) { b.MediaType = MediaTypeDockerManifest }, amd64, "the registry said"},
		{"index", func(b *Base) {
			b.Manifest = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
			b.Ref = "r/b@" + digest.Bytes(b.Manifest).String()
		}, amd64, "is an index"},
		{"untyped index", func(b *Base) {
			b.Manifest = []byte(`{"schemaVersion":2,"manifests":[{}]}`)
			b.Ref, b.MediaType = "r/b@"+digest.Bytes(b.Manifest).String(), ""
		}, amd64, "is an index"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := makeBase(t, MediaTypeManifest, "amd64", "")
			tc.edit(b)
			_, err := Assemble(b, nil, Config{}, tc.p, created)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestMergeEnv(t *testing.T) {
	got, err := MergeEnv([]string{"A=1", "B=2", "C=3"}, []string{"D=4", "B=x=y", "A="})
	if want := "A= B=x=y C=3 D=4"; err != nil || strings.Join(got, " ") != want {
		t.Errorf("MergeEnv = %v, %v; want %s", got, err, want)
	}
	for _, bad := range [][]string{{"NOEQUALS"}, {"=v"}, {"A=1", "A=2"}} {
		if _, err := MergeEnv(nil, bad); err == nil {
			t.Errorf("MergeEnv(%q) passed", bad)
		}
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]string{"8080": "8080/tcp", "53/udp": "53/udp", "1/sctp": "1/sctp", "65535/tcp": "65535/tcp"} {
		if got, err := ParsePort(in); err != nil || got != want {
			t.Errorf("ParsePort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "65536", "080", "http", "80/icmp", "80/", "-1"} {
		if _, err := ParsePort(bad); err == nil {
			t.Errorf("ParsePort(%q) passed", bad)
		}
	}
}

// TestAssembleTakesTheBasePlatform: with a base and no platform, the
// image is for the base's platform.
func TestAssembleTakesTheBasePlatform(t *testing.T) {
	base := makeBase(t, MediaTypeManifest, "arm64", "v8")
	img, err := Assemble(base, nil, Config{}, Platform{}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if img.Platform.String() != "linux/arm64/v8" {
		t.Fatalf("platform %s, want the base's linux/arm64/v8", img.Platform)
	}
	if _, err := Assemble(nil, nil, Config{}, Platform{}, time.Unix(0, 0)); err == nil {
		t.Fatal("an image from scratch without a platform was assembled")
	}
}
