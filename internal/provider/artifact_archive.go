package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/fsguard"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// privateArchiveListing is the private-state key holding the digest of
// the listing whose archive archive_sha256 is: the tree itself, or the
// one-entry listing of a file source (its name and exec bit, which the
// content digest does not cover). A prior archive hash is reused at plan
// only for the same listing.
const privateArchiveListing = "archive_listing"

// privateMissingSource marks the plan of an artifact whose source is gone,
// for the second PlanResourceChange core makes to plan a replacement.
const privateMissingSource = "missing_source"

// privateValue reads a private-state key; nil when unset or unreadable.
func privateValue(ctx context.Context, p privateGetter, key string) []byte {
	if p == nil {
		return nil
	}
	b, diags := p.GetKey(ctx, key)
	if diags.HasError() {
		return nil
	}
	return b
}

type privateGetter interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
}

type privateSetter interface {
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

func priorArchiveListing(ctx context.Context, p privateGetter) string {
	var s string
	if b := privateValue(ctx, p, privateArchiveListing); len(b) == 0 || json.Unmarshal(b, &s) != nil {
		return ""
	}
	return s
}

func setArchiveListing(ctx context.Context, p privateSetter, listing string) diag.Diagnostics {
	b, _ := json.Marshal(listing) // a string always encodes
	return p.SetKey(ctx, privateArchiveListing, b)
}

// sourceOpener reads archive entries from the source just stored, not back
// from the store (for S3 that would download everything just uploaded).
// Each entry is verified against the manifest as it is read, so the
// archive holds exactly the stored content or its build fails (that is the
// guarantee); a file of a tree is also opened without following a symlink
// put in its place, so nothing outside the tree is even read.
func sourceOpener(src string, isDir bool) archive.Opener {
	return func(_ context.Context, e digest.Entry) (io.ReadCloser, error) {
		p := src
		if isDir {
			p = filepath.Join(src, filepath.FromSlash(e.Path))
		}
		if e.Kind == digest.KindSymlink {
			target, err := os.Readlink(p)
			if errors.Is(err, syscall.EINVAL) {
				return nil, &digest.ChangedError{Path: e.Path, Now: "not a symlink"}
			}
			if err != nil {
				return nil, err
			}
			return io.NopCloser(store.Verified(strings.NewReader(target), e.Path, e.SHA256)), nil
		}
		var info os.FileInfo
		if isDir {
			fi, err := os.Lstat(p)
			if err != nil {
				return nil, err
			}
			info = fi
		}
		f, err := digest.OpenListed(p, info)
		if err != nil {
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{store.Verified(f, e.Path, e.SHA256), f}, nil
	}
}

// checkLinks refuses, at plan, an archive of a tree holding a name that
// is unsafe in an archive or a symlink that leaves the tree. The targets
// are read from disk: listings keep only their hash.
func checkLinks(src string, m *digest.Manifest) error {
	links := archive.Links(m)
	for _, e := range m.Entries {
		if err := archive.CheckEntryName(e.Path); err != nil {
			return err
		}
		if e.Kind != digest.KindSymlink {
			continue
		}
		target, err := os.Readlink(filepath.Join(src, filepath.FromSlash(e.Path)))
		if err != nil {
			return err
		}
		if err := archive.CheckLink(e.Path, target, links); err != nil {
			return err
		}
	}
	return nil
}

// localRoot is the directory of a file:// store, or "".
func localRoot(st *store.Store) string {
	if b, ok := st.Backend().(interface{ Root() string }); ok {
		return b.Root()
	}
	return ""
}

// checkOutputPath refuses an output_path the provider must not write:
// inside the store, the source itself or inside it (unless the source's
// excludes leave it out, so it cannot change the digest), or an existing
// path that is not a regular file.
func checkOutputPath(st *store.Store, out, src string, srcIsDir bool, excludes []string) diag.Diagnostics {
	return outputPathDiags(outputGuard(st, src, srcIsDir, excludes)(out))
}

// outputGuard is the check of a target path behind checkOutputPath, also
// run by archive.Refs.WriteFile on the resolved target just before the
// rename.
func outputGuard(st *store.Store, src string, srcIsDir bool, excludes []string) func(string) error {
	var areas []fsguard.Area
	if root := localRoot(st); root != "" {
		areas = append(areas, fsguard.Area{Root: root, What: "the store " + st.String()})
	}
	if src != "" {
		a := fsguard.Area{Root: src, What: fmt.Sprintf("the source %q", src)}
		if srcIsDir {
			a.What = fmt.Sprintf("the source directory %q", src)
			a.Allow = func(rel string) bool { return digest.Excluded(rel, excludes) }
		}
		areas = append(areas, a)
	}
	return func(target string) error { return fsguard.CheckTarget(target, areas...) }
}

// outputPathDiags explains an output_path that was refused or could not
// be checked.
func outputPathDiags(err error) diag.Diagnostics {
	var diags diag.Diagnostics
	var refused *fsguard.RefusedError
	switch {
	case errors.As(err, &refused):
		hint := "Choose a new path, or an existing regular file, outside the store and outside the source."
		if strings.Contains(refused.Reason, "source directory") {
			hint = "Writing it there would change the content being archived, and replace the artifact on every plan. " +
				"Choose a path outside the source, or leave its directory out with `excludes` (for example \"build/**\")."
		}
		diags.AddAttributeError(path.Root("output_path"), "Refusing to write output_path",
			fmt.Sprintf("output_path %s; the provider only ever writes a new file or replaces a regular file, and never "+
				"writes into the store or over its source. %s Nothing was written.", refused.Reason, hint))
	case err != nil:
		diags.AddAttributeError(path.Root("output_path"), "Cannot check output_path", err.Error())
	}
	return diags
}

// archiveError explains a failure to find, build or write an archive.
func archiveError(st *store.Store, attr string, what string, err error) diag.Diagnostic {
	var corrupt *archive.CorruptError
	var mismatch *store.MismatchError
	var link *archive.LinkError
	var unsafeName *archive.UnsafeNameError
	var changed *digest.ChangedError
	var notRegular *archive.NotRegularError
	switch {
	case errors.As(err, &corrupt):
		return diag.NewAttributeErrorDiagnostic(path.Root(attr), "Stored archive does not match its reference",
			fmt.Sprintf("In %s, %v. Someone replaced or edited an object behind the store's back; the store never overwrites "+
				"objects, so delete the reference object %s (and nothing else): the next apply builds the archive again "+
				"from the source. Nothing was written.", st, err, corrupt.Key))
	case errors.As(err, &mismatch):
		return diag.NewAttributeErrorDiagnostic(path.Root(attr), "Stored archive is corrupt",
			fmt.Sprintf("In %s, %v. The stored object was altered or damaged; delete it (and nothing else) and apply again: "+
				"it is rebuilt from the source. Nothing was written.", st, err))
	case errors.As(err, &link):
		return diag.NewAttributeErrorDiagnostic(path.Root("archive"), "Cannot archive a link that leaves the tree", err.Error()+".")
	case errors.As(err, &unsafeName):
		return diag.NewAttributeErrorDiagnostic(path.Root("archive"), "Cannot archive this file name", err.Error()+".")
	case errors.As(err, &changed):
		return diag.NewAttributeErrorDiagnostic(path.Root("source"), "Source changed while it was read", err.Error()+".")
	case errors.As(err, &notRegular):
		return diag.NewAttributeErrorDiagnostic(path.Root("output_path"), "Refusing to write output_path",
			fmt.Sprintf("%v. Nothing was written.", err))
	}
	var backendErr store.BackendError
	if errors.As(err, &backendErr) {
		return storeWriteError(err)
	}
	return diag.NewAttributeErrorDiagnostic(path.Root(attr), "Cannot "+what, fmt.Sprintf("%v", err))
}
