package image

import (
	"fmt"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

func entry(p string, mediaType string) IndexEntry {
	plat, err := ParsePlatform(p)
	if err != nil {
		panic(err)
	}
	return IndexEntry{Descriptor: Descriptor{MediaType: mediaType, Digest: digest.Bytes([]byte(p)), Size: int64(len(p))}, Platform: plat}
}

func TestAssembleIndex(t *testing.T) {
	in := []IndexEntry{entry("linux/arm64", MediaTypeManifest), entry("linux/amd64", MediaTypeDockerManifest), entry("linux/arm/v7", MediaTypeManifest)}
	idx, err := AssembleIndex(in)
	if err != nil {
		t.Fatal(err)
	}
	d := func(p string) string { return digest.Bytes([]byte(p)).String() }
	want := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`+
		`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"%s","size":11,"platform":{"architecture":"amd64","os":"linux"}},`+
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":12,"platform":{"architecture":"arm","os":"linux","variant":"v7"}},`+
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":11,"platform":{"architecture":"arm64","os":"linux"}}]}`,
		d("linux/amd64"), d("linux/arm/v7"), d("linux/arm64"))
	if string(idx.Manifest) != want {
		t.Errorf("index\n%s\nwant\n%s", idx.Manifest, want)
	}
	if idx.Digest != digest.Bytes(idx.Manifest) || idx.MediaType != MediaTypeIndex || idx.Manifests[0].Platform.String() != "linux/amd64" {
		t.Errorf("index %+v does not describe its bytes in platform order", idx)
	}
	if in[0].Platform.String() != "linux/arm64" {
		t.Error("AssembleIndex reordered its argument")
	}
	// Another order of the same entries: the same index.
	again, err := AssembleIndex([]IndexEntry{in[2], in[0], in[1]})
	if err != nil || again.Digest != idx.Digest {
		t.Errorf("another order gave %v, %v", again, err)
	}
}

func TestAssembleIndexRefuses(t *testing.T) {
	for _, tc := range []struct {
		entries []IndexEntry
		want    string
	}{
		{nil, "at least one"},
		{[]IndexEntry{entry("linux/amd64", MediaTypeManifest), entry("linux/amd64", MediaTypeManifest)}, "linux/amd64 is given twice"},
		{[]IndexEntry{entry("linux/arm64", MediaTypeManifest), entry("linux/arm64/v7", MediaTypeManifest), entry("linux/arm64/v8", MediaTypeManifest)}, "given twice"},
		{[]IndexEntry{entry("linux/amd64", MediaTypeIndex)}, "lists image manifests"},
		{[]IndexEntry{{Descriptor: Descriptor{MediaType: MediaTypeManifest, Size: 1}, Platform: Platform{OS: "Linux", Architecture: "amd64"}}}, "not lower-case"},
		{[]IndexEntry{{Descriptor: Descriptor{MediaType: MediaTypeManifest}, Platform: Platform{OS: "linux", Architecture: "amd64"}}}, "has size 0"},
	} {
		_, err := AssembleIndex(tc.entries)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.entries, err, tc.want)
		}
	}
}
