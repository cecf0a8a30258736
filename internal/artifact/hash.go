// Package artifact turns a source — a file, a directory or inline
// content — into content in the store: it hashes the source (through the
// operation's stat-cache memo), refuses what the store could not keep or
// would be inside of, publishes it against the listings this operation
// knows to be stored, and ensures and writes its archive.
// immutable_artifact, immutable_build's input_paths and the digest
// functions all hash through it, so a source means one thing everywhere.
//
// The package has no dependency on Terraform.
package artifact

import (
	"context"
	"io/fs"
	"os"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
)

// Source is a path to hash, and how.
type Source struct {
	// Path is a file or a directory; a symlink given here is followed.
	Path string
	// Excludes are globs left out of a directory. Refused for a file.
	Excludes []string
	// Progress, when set, counts what a directory's walk has hashed.
	Progress *digest.Progress
}

func (s Source) options() digest.Options {
	return digest.Options{Excludes: s.Excludes, Progress: s.Progress}
}

// Content is a hashed source.
type Content struct {
	Sum   digest.Sum
	Size  int64
	Count int64 // files and symlinks: 1 for a file or inline content
	// Tree is a directory's listing; nil for a file or inline content.
	Tree *digest.Listing
	// Listing is what an archive of the content holds: the tree, or a
	// file's one-entry listing (its name and exec bit, which Sum does not
	// cover). Nil for inline content. CheckArchive says whether an
	// archive can hold it.
	Listing *digest.Listing
}

// Inline is the content of inline bytes.
func Inline(b []byte) *Content {
	return &Content{Sum: digest.Bytes(b), Size: int64(len(b)), Count: 1}
}

func fileContent(fi fs.FileInfo, sum digest.Sum, size int64) *Content {
	return &Content{Sum: sum, Size: size, Count: 1, Listing: digest.FileListing(fi.Name(), fi.Mode(), sum, size)}
}

func treeContent(m *digest.Listing) *Content {
	return &Content{Sum: m.Digest(), Size: m.Size(), Count: int64(len(m.Entries)), Tree: m, Listing: m}
}

// resolve checks src's excludes and stats it, from a single stat, so that
// a file that vanishes meanwhile is an error, never a crash.
func resolve(src Source) (fs.FileInfo, error) {
	for i, ex := range src.Excludes {
		if err := digest.CheckExclude(ex); err != nil {
			return nil, &ExcludeError{Index: i, Glob: ex, Err: err}
		}
	}
	fi, err := os.Stat(src.Path)
	if err != nil {
		return nil, &SourceError{Path: src.Path, Err: err}
	}
	if fi.IsDir() {
		return fi, nil
	}
	if len(src.Excludes) > 0 {
		return nil, &ExcludesOnFileError{Path: src.Path}
	}
	if !fi.Mode().IsRegular() {
		return nil, &NotRegularError{Path: src.Path, Type: fi.Mode().Type()}
	}
	return fi, nil
}

// Hash hashes src through memo, refusing only what the digest spec cannot
// record: it stores nothing and knows no store (the digest functions,
// which run on an unconfigured provider). Sources.Hash also refuses what
// the store could not keep.
func Hash(ctx context.Context, memo *statcache.Memo, src Source) (*Content, error) {
	fi, err := resolve(src)
	if err != nil {
		return nil, err
	}
	return hash(ctx, memo, src, fi)
}

func hash(ctx context.Context, memo *statcache.Memo, src Source, fi fs.FileInfo) (*Content, error) {
	if !fi.IsDir() {
		sum, size, err := memo.File(ctx, src.Path)
		if err != nil {
			return nil, &ContentError{Path: src.Path, Err: err}
		}
		return fileContent(fi, sum, size), nil
	}
	m, err := memo.Tree(ctx, src.Path, src.options())
	if err != nil {
		return nil, &ContentError{Path: src.Path, Err: err}
	}
	return treeContent(m), nil
}
