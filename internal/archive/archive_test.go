package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

var content = map[string]string{
	"index.js":    "exports.handler = async () => 'ok'\n",
	"bin/run":     "#!/bin/sh\n",
	"lib/util.js": strings.Repeat("module.exports = 1\n", 100),
	"current":     "lib/util.js", // a symlink's target
}

func listing() *digest.Listing {
	m := &digest.Listing{}
	for p, c := range content {
		k := digest.KindFile
		switch p {
		case "bin/run":
			k = digest.KindExec
		case "current":
			k = digest.KindSymlink
		}
		m.Entries = append(m.Entries, digest.Entry{Path: p, Kind: k, SHA256: digest.Bytes([]byte(c)), Size: int64(len(c))})
	}
	m.Sort()
	return m
}

func open(_ context.Context, e digest.Entry) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(content[e.Path])), nil
}

func build(t *testing.T, format Format) []byte {
	var b bytes.Buffer
	if err := Write(context.Background(), &b, format, listing(), open); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestGoldenArchives pins the bytes of format v1. If it fails after a Go
// upgrade, the compressor changed: keep v1's bytes (vendor the old
// compressor) or add a v2; never let an existing archive change silently.
func TestGoldenArchives(t *testing.T) {
	for format, want := range map[Format]string{
		Zip:   "41cd66625e38e8e14554a3666ac710cf49dd558f081d7a5828d3622a2683dd54",
		TarGz: "148cc716f2eed3b5cd5f96f7dfaa4e73528990b341b241cc9f3cdb157c2d55c3",
	} {
		sum := sha256.Sum256(build(t, format))
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s-v1 archive sha256 = %s, want %s", format, got, want)
		}
	}
}

func TestZipContent(t *testing.T) {
	data := build(t, Zip)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		wantMode := fs.FileMode(0o644)
		switch f.Name {
		case "bin/run":
			wantMode = 0o755
		case "current":
			wantMode = fs.ModeSymlink | 0o777
		}
		if f.Mode() != wantMode {
			t.Errorf("%s: mode %v, want %v", f.Name, f.Mode(), wantMode)
		}
		if !f.Modified.Equal(epoch) {
			t.Errorf("%s: modified %v", f.Name, f.Modified)
		}
		rc, _ := f.Open()
		got, _ := io.ReadAll(rc)
		if string(got) != content[f.Name] {
			t.Errorf("%s: content %q", f.Name, got)
		}
	}
	if strings.Join(names, ",") != "bin/run,current,index.js,lib/util.js" {
		t.Errorf("order %v", names)
	}
}

func TestTarGzContent(t *testing.T) {
	gz, err := gzip.NewReader(bytes.NewReader(build(t, TarGz)))
	if err != nil {
		t.Fatal(err)
	}
	if !gz.ModTime.IsZero() || gz.Name != "" {
		t.Errorf("gzip header carries time %v or name %q", gz.ModTime, gz.Name)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "current" {
			if h.Typeflag != tar.TypeSymlink || h.Linkname != "lib/util.js" {
				t.Errorf("symlink header %+v", h)
			}
			continue
		}
		got, _ := io.ReadAll(tr)
		if string(got) != content[h.Name] || h.Uid != 0 || h.Uname != "" || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: %+v content %q", h.Name, h, got)
		}
		if (h.Name == "bin/run") != (h.Mode == 0o755) {
			t.Errorf("%s: mode %o", h.Name, h.Mode)
		}
	}
}

func TestDeterministic(t *testing.T) {
	for _, f := range Formats {
		if !bytes.Equal(build(t, f), build(t, f)) {
			t.Errorf("%s differs between two builds", f)
		}
	}
}
