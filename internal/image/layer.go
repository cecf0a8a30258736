package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

// Media types of layers, as OCI and Docker name them.
const (
	MediaTypeLayerGzip       = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeLayer           = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// MaxID is the largest uid or gid a layer may give its entries.
const MaxID = 1<<31 - 1

// Default permissions (digest spec guide, "Image layers").
const (
	defaultFileMode fs.FileMode = 0o644
	defaultExecMode fs.FileMode = 0o755
	defaultDirMode  fs.FileMode = 0o755
	symlinkMode     fs.FileMode = 0o777
)

// epoch is every entry's modification time.
var epoch = time.Unix(0, 0)

// CheckPath reports whether p can be a layer's path, with a message that
// says what is wrong. "/" is a tree's path only (a file needs a name):
// CheckFilePath adds that.
func CheckPath(p string) error {
	fail := func(why, todo string) error {
		return fmt.Errorf("the path %q %s: %s", p, why, todo)
	}
	switch {
	case p == "":
		return fail("is empty", `give the absolute path in the image where the content lands, such as "/app"`)
	case !utf8.ValidString(p):
		return fail("is not valid UTF-8", "use a UTF-8 path")
	case strings.ContainsAny(p, "\x00\n"):
		return fail("contains a NUL or newline character", "remove it")
	case !strings.HasPrefix(p, "/"):
		return fail("is not absolute", fmt.Sprintf("start it with \"/\", such as %q", "/"+p))
	}
	for _, part := range strings.Split(p[1:], "/") {
		if part == "." || part == ".." {
			return fail(fmt.Sprintf("has a %q component", part), "write the path without it")
		}
	}
	if path.Clean(p) != p {
		return fail("is not clean", fmt.Sprintf("write it as %q (no trailing or doubled \"/\")", path.Clean(p)))
	}
	return nil
}

// ErrFileAtRoot is a single file given the path "/".
var ErrFileAtRoot = errors.New(`the path "/" is the root directory`)

// CheckFilePath is CheckPath for a single file's path, which may not be "/".
func CheckFilePath(p string) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	if p == "/" {
		return fmt.Errorf(`%w: a single file needs its own path, such as "/app/server"`, ErrFileAtRoot)
	}
	return nil
}

// Check reports whether the spec's path, owner, modes and compression are
// valid; the message names the field.
func (s LayerSpec) Check() error {
	if err := CheckPath(s.Path); err != nil {
		return err
	}
	if s.UID < 0 || s.UID > MaxID {
		return fmt.Errorf("uid %d is out of range: use 0 to %d", s.UID, MaxID)
	}
	if s.GID < 0 || s.GID > MaxID {
		return fmt.Errorf("gid %d is out of range: use 0 to %d", s.GID, MaxID)
	}
	if s.FileMode&^fs.ModePerm != 0 {
		return fmt.Errorf("file mode %v has bits besides the permission bits 0777 (setuid, setgid, sticky or a type): use a mode from 0000 to 0777", s.FileMode)
	}
	if s.DirMode&^fs.ModePerm != 0 {
		return fmt.Errorf("directory mode %v has bits besides the permission bits 0777 (setuid, setgid, sticky or a type): use a mode from 0000 to 0777", s.DirMode)
	}
	switch s.Compression {
	case Gzip, Uncompressed:
	default:
		return fmt.Errorf("compression %q is not known: use %q or %q", s.Compression, Gzip, Uncompressed)
	}
	return nil
}

// ContentError is a file whose bytes, as a Source gave them, are not what
// the listing says: the layer is not written.
type ContentError struct {
	// Name is the entry's name in the layer ("app/bin/server").
	Name string
	// What went wrong, in words.
	Reason string
	Err    error
}

func (e *ContentError) Error() string {
	msg := fmt.Sprintf("the content of %q in the layer %s", e.Name, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + "; nothing was published. Verify the store (a damaged blob must be stored again) or, for a tree on disk, make sure nothing changes it during plan and apply"
}

func (e *ContentError) Unwrap() error { return e.Err }

// NameError is an entry the layer cannot hold.
type NameError struct {
	Name   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("the layer cannot hold %q: %s", e.Name, e.Reason)
}

// hashCounter hashes and counts what passes to w (nil: nowhere).
type hashCounter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newHashCounter(w io.Writer) *hashCounter { return &hashCounter{w: w, h: sha256.New()} }

func (c *hashCounter) Write(p []byte) (int, error) {
	if c.w != nil {
		n, err := c.w.Write(p)
		c.h.Write(p[:n])
		c.n += int64(n)
		return n, err
	}
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

func (c *hashCounter) sum() digest.Sum {
	var s digest.Sum
	c.h.Sum(s[:0])
	return s
}

// WriteLayer writes the encoded layer of spec (encoding immutable-layer-v1,
// specified in the digest spec guide), reading its tree or file from src,
// to w, streaming: memory does not grow with the layer's size. Every
// file's bytes are checked against the listing's sha256 and size as they
// pass; on any error what was written to w is not a layer and must be
// discarded.
func WriteLayer(ctx context.Context, src Source, spec LayerSpec, w io.Writer) (Layer, error) {
	if err := spec.Check(); err != nil {
		return Layer{}, err
	}
	l, isFile, err := src.Listing(ctx, spec.Tree)
	if err != nil {
		return Layer{}, err
	}
	if isFile {
		if err := CheckFilePath(spec.Path); err != nil {
			return Layer{}, err
		}
		if l == nil || len(l.Entries) != 1 || l.Entries[0].Path != "" || l.Entries[0].SHA256 != spec.Tree || l.Entries[0].Size < 0 {
			return Layer{}, fmt.Errorf("source %T described the file %s without its size: a Source must return a one-entry listing for a file", src, spec.Tree)
		}
	} else if err := l.Validate(); err != nil {
		return Layer{}, fmt.Errorf("the tree %s cannot be a layer: %w", spec.Tree, err)
	}

	bw := bufio.NewWriterSize(w, 64<<10)
	diff := newHashCounter(bw)
	var blob *hashCounter
	var gz *gzip.Writer
	if spec.Compression == Gzip {
		blob = newHashCounter(bw)
		gz, err = gzip.NewWriterLevel(blob, gzip.BestSpeed)
		if err != nil {
			return Layer{}, err
		}
		gz.OS = 255 // unknown: the spec's value, whatever the default becomes
		diff.w = gz
	}
	lw := &layerWriter{
		ctx:  ctx,
		src:  src,
		spec: spec,
		tw:   tar.NewWriter(diff),
		base: strings.TrimPrefix(spec.Path, "/"),
		seen: map[string]bool{},
		dirs: map[string]bool{},
	}
	if isFile {
		err = lw.writeFile(l.Entries[0])
	} else {
		err = lw.writeTree(l)
	}
	if err != nil {
		return Layer{}, err
	}
	if err := lw.tw.Close(); err != nil {
		return Layer{}, err
	}
	layer := Layer{DiffID: diff.sum(), Spec: spec}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return Layer{}, err
		}
		layer.Descriptor = Descriptor{MediaType: MediaTypeLayerGzip, Digest: blob.sum(), Size: blob.n}
	} else {
		layer.Descriptor = Descriptor{MediaType: MediaTypeLayer, Digest: layer.DiffID, Size: diff.n}
	}
	if err := bw.Flush(); err != nil {
		return Layer{}, err
	}
	return layer, nil
}

// DescribeLayer is WriteLayer to nowhere: the descriptor alone.
func DescribeLayer(ctx context.Context, src Source, spec LayerSpec) (Layer, error) {
	return WriteLayer(ctx, src, spec, io.Discard)
}

type layerWriter struct {
	ctx  context.Context
	src  Source
	spec LayerSpec
	tw   *tar.Writer
	// base is spec.Path without its leading "/": "" for the root.
	base string
	// seen holds every name written, directories without their "/", so
	// that a name is never written twice nor as a file and a directory.
	seen map[string]bool
	// dirs counts the directory entries that name itself: a directory
	// seen as a file is a conflict.
	dirs map[string]bool
}

func (lw *layerWriter) join(rel string) string {
	if lw.base == "" {
		return rel
	}
	return lw.base + "/" + rel
}

// inTree reports whether directory name is the tree's root or below it
// (written, owned as the spec says) rather than above it (not written).
func (lw *layerWriter) inTree(name string) bool {
	return lw.base == "" || name == lw.base || strings.HasPrefix(name, lw.base+"/")
}

func (lw *layerWriter) writeTree(l *digest.Listing) error {
	if lw.base != "" {
		if err := lw.parents(lw.base); err != nil {
			return err
		}
		if err := lw.dir(lw.base); err != nil {
			return err
		}
	}
	for _, e := range l.Entries {
		name := lw.join(e.Path)
		if err := lw.parents(name); err != nil {
			return err
		}
		if err := lw.entry(name, e); err != nil {
			return err
		}
	}
	return nil
}

func (lw *layerWriter) writeFile(e digest.Entry) error {
	if err := lw.parents(lw.base); err != nil {
		return err
	}
	e.Kind = digest.KindFile // a blob has no execute bit: FileMode or 0644
	return lw.entry(lw.base, e)
}

// parents writes the directory entries of name's parent directories not
// written yet, outermost first.
func (lw *layerWriter) parents(name string) error {
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		if err := lw.dir(name[:i]); err != nil {
			return err
		}
	}
	return nil
}

func (lw *layerWriter) checkName(name string) error {
	if strings.ContainsRune(name, 0) {
		return &NameError{Name: name, Reason: "it contains a NUL byte, which tar cannot encode"}
	}
	if lw.seen[name] {
		if lw.dirs[name] {
			return &NameError{Name: name, Reason: "the tree holds it both as a directory and as a file"}
		}
		return &NameError{Name: name, Reason: "the tree holds it both as a file and as a directory"}
	}
	return nil
}

func (lw *layerWriter) dir(name string) error {
	if lw.dirs[name] {
		return nil
	}
	if err := lw.checkName(name); err != nil {
		return err
	}
	lw.seen[name], lw.dirs[name] = true, true
	if !lw.inTree(name) {
		// Above the layer's path: no entry, so the layer never changes
		// the owner or mode of a directory it does not bring (a base's
		// /tmp stays 1777); runtimes make a missing one 0755 root:root.
		return nil
	}
	mode := lw.spec.DirMode
	if mode == 0 {
		mode = defaultDirMode
	}
	return lw.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", ModTime: epoch, Mode: int64(mode), Uid: lw.spec.UID, Gid: lw.spec.GID})
}

func (lw *layerWriter) entry(name string, e digest.Entry) error {
	if err := lw.checkName(name); err != nil {
		return err
	}
	lw.seen[name] = true
	hdr := &tar.Header{Name: name, ModTime: epoch, Uid: lw.spec.UID, Gid: lw.spec.GID}
	if e.Kind == digest.KindSymlink {
		target, err := lw.readTarget(name, e)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, int64(symlinkMode)
		return lw.tw.WriteHeader(hdr)
	}
	mode := lw.spec.FileMode
	if mode == 0 {
		mode = defaultFileMode
		if e.Kind == digest.KindExec {
			mode = defaultExecMode
		}
	}
	hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, int64(mode), e.Size
	if err := lw.tw.WriteHeader(hdr); err != nil {
		return err
	}
	return lw.copyVerified(lw.tw, name, e)
}

// readTarget reads a symlink's target, whose blob is its bytes.
func (lw *layerWriter) readTarget(name string, e digest.Entry) (string, error) {
	var b strings.Builder
	if err := lw.copyVerified(&b, name, e); err != nil {
		return "", err
	}
	target := b.String()
	if strings.ContainsRune(target, 0) {
		return "", &NameError{Name: name, Reason: "its symlink target contains a NUL byte, which tar cannot encode"}
	}
	return target, nil
}

// copyVerified copies the bytes of entry e to w: exactly e.Size of them,
// hashing to e.SHA256, or a *ContentError naming name. The Source checks
// too; this check does not depend on it.
func (lw *layerWriter) copyVerified(w io.Writer, name string, e digest.Entry) error {
	rc, err := lw.src.Open(lw.ctx, e.SHA256)
	if err != nil {
		return &ContentError{Name: name, Reason: "could not be opened", Err: err}
	}
	defer func() { _ = rc.Close() }() // read-only: what was read is checked
	v := digest.VerifyingReader(rc, name, e.SHA256, e.Size)
	v.OnMismatch = func(m *digest.MismatchError) error {
		switch {
		case m.Size > e.Size:
			return &ContentError{Name: name, Reason: fmt.Sprintf("is longer than the %d bytes its listing says", e.Size)}
		case m.Size < e.Size:
			return &ContentError{Name: name, Reason: fmt.Sprintf("is %d bytes long, not the %d its listing says", m.Size, e.Size)}
		}
		return &ContentError{Name: name, Reason: fmt.Sprintf("hashes to %s, not %s as its listing says", m.Got, e.SHA256)}
	}
	if _, err := digest.Copy(lw.ctx, w, v); err != nil {
		if lw.ctx.Err() != nil {
			return err
		}
		var ce *ContentError
		if errors.As(err, &ce) {
			return err
		}
		return &ContentError{Name: name, Reason: "could not be read", Err: err}
	}
	return nil
}
