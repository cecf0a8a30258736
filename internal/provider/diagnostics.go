package provider

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/immutable-infra/terraform-provider-immutable/internal/archive"
	"github.com/immutable-infra/terraform-provider-immutable/internal/artifact"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/fsguard"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// pathRoot names the path argument of functions in shared messages.
var pathRoot = path.Root("path")

// sourceDiag explains why the source at `at` (an artifact's source, a
// build's input path, a function's path) could not be hashed or stored:
// the errors of internal/artifact, each with one wording.
func sourceDiag(at path.Path, err error) diag.Diagnostic {
	var (
		unreadable *artifact.SourceError
		content    *artifact.ContentError
		exclude    *artifact.ExcludeError
		onFile     *artifact.ExcludesOnFileError
		notRegular *artifact.NotRegularError
		inside     *artifact.StoreInsideSourceError
		tooLarge   *artifact.TooLargeError
		changed    *artifact.ChangedError
	)
	switch {
	case errors.As(err, &unreadable):
		return sourceError(at, unreadable.Path, unreadable.Err)
	case errors.As(err, &exclude):
		return diag.NewAttributeErrorDiagnostic(excludesOf(at).AtListIndex(exclude.Index), "Invalid glob", exclude.Error()+".")
	case errors.As(err, &onFile):
		return diag.NewAttributeErrorDiagnostic(excludesOf(at), "Excludes need a directory source",
			onFile.Error()+". Pass no excludes, or point it at a directory.")
	case errors.As(err, &notRegular):
		return diag.NewAttributeErrorDiagnostic(at, "Source is not a regular file or a directory",
			notRegular.Error()+". Point it at a regular file or a directory.")
	case errors.As(err, &inside):
		hint := fmt.Sprintf("Leave it out with excludes = [%q]", inside.Rel)
		if excludesOf(at).Equal(at) { // no excludes beside it
			hint = fmt.Sprintf("Use an immutable_artifact with excludes = [%q] for it", inside.Rel)
		}
		return diag.NewAttributeErrorDiagnostic(at, "The store is inside the source",
			fmt.Sprintf("The store %s is inside the source directory %q (at %q): every apply would add to the content it "+
				"hashes, and every plan would change its digest. %s, or move the store (the provider's `store` setting). "+
				"Nothing was written.", inside.Store, inside.Source, inside.Rel, hint))
	case errors.As(err, &tooLarge):
		return diag.NewAttributeErrorDiagnostic(at, "Source too large for one artifact",
			fmt.Sprintf("In %q: %v. Nothing was written.", tooLarge.Path, tooLarge.Err))
	case errors.As(err, &changed):
		return diag.NewAttributeErrorDiagnostic(at, "Content changed since plan",
			fmt.Sprintf("The plan was made for %s, but the content now hashes to %s: it changed between plan and apply. "+
				"Nothing was recorded under %s. Run plan again and review the new digest.", changed.Planned, changed.Now, changed.Planned))
	case errors.As(err, &content):
		return contentError(at, content.Path, content.Err)
	}
	return diag.NewAttributeErrorDiagnostic(at, "Cannot read source", err.Error())
}

// excludesOf is the attribute holding the excludes of the source at at:
// immutable_artifact's `excludes` beside its `source`, else at itself.
func excludesOf(at path.Path) path.Path {
	if at.Equal(path.Root("source")) {
		return path.Root("excludes")
	}
	return at
}

// sourceError explains why a source path cannot be read at all.
func sourceError(p path.Path, src string, err error) diag.Diagnostic {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return diag.NewAttributeErrorDiagnostic(p, "Source not found",
			fmt.Sprintf("%q does not exist. Relative paths resolve against the directory Terraform runs in; "+
				"write \"${path.module}/...\" for a path next to the configuration.", src))
	case errors.Is(err, syscall.ENOTDIR):
		return diag.NewAttributeErrorDiagnostic(p, "Source not found",
			fmt.Sprintf("%q cannot exist: a part of the path before the last is a file, not a directory. Check the path.", src))
	case errors.Is(err, context.Canceled):
		return diag.NewAttributeErrorDiagnostic(p, "Interrupted",
			fmt.Sprintf("Storing %q was interrupted; nothing was recorded for it. What was already sent stays in the store, "+
				"unreferenced, and is reused by the next apply. Apply again.", src))
	case errors.Is(err, fs.ErrPermission):
		return diag.NewAttributeErrorDiagnostic(p, "Source not readable",
			fmt.Sprintf("%q cannot be read: %v. Give the user running Terraform read access to it.", src, err))
	}
	return diag.NewAttributeErrorDiagnostic(p, "Cannot read source", fmt.Sprintf("%q: %v", src, err))
}

// contentError explains a failure while hashing (and, at apply, storing)
// the content of source.
func contentError(p path.Path, src string, err error) diag.Diagnostic {
	var nameErr *digest.NameError
	var typeErr *digest.TypeError
	var changed *digest.ChangedError
	var backendErr store.BackendError
	var mismatch *store.MismatchError
	switch {
	case errors.As(err, &nameErr):
		return diag.NewAttributeErrorDiagnostic(p, "Unsupported file name", fmt.Sprintf("In %q: %v (an `excludes` glob can leave it out).", src, err))
	case errors.As(err, &changed):
		return diag.NewAttributeErrorDiagnostic(p, "Source changed while it was read",
			fmt.Sprintf("In %q: %v. Nothing was stored for it.", src, err))
	case errors.As(err, &typeErr):
		return diag.NewAttributeErrorDiagnostic(p, "Unsupported file type", fmt.Sprintf("In %q: %v (an `excludes` glob can leave it out).", src, err))
	case errors.As(err, &backendErr):
		return storeWriteError(err)
	case errors.As(err, &mismatch):
		return diag.NewAttributeErrorDiagnostic(p, "Content changed while it was stored",
			fmt.Sprintf("A file of %q changed while it was being read into the store (%v). Nothing was stored for it. "+
				"Make sure no build writes to it during apply, then plan again.", src, err))
	case errors.Is(err, context.Canceled):
		return diag.NewAttributeErrorDiagnostic(p, "Interrupted",
			fmt.Sprintf("Storing %q was interrupted; nothing was recorded for it. What was already sent stays in the store, "+
				"unreferenced, and is reused by the next apply. Apply again.", src))
	case errors.Is(err, fs.ErrPermission):
		return diag.NewAttributeErrorDiagnostic(p, "Source not readable",
			fmt.Sprintf("In %q: %v. Give the user running Terraform read access, or exclude the path.", src, err))
	}
	return diag.NewAttributeErrorDiagnostic(p, "Cannot read source", fmt.Sprintf("In %q: %v", src, err))
}

func storeWriteError(err error) diag.Diagnostic {
	hint := fmt.Sprintf("Check the provider's `store` setting (or %s): the user running Terraform must be able to write to it. ", EnvStore)
	if hasHint(err) {
		hint = ""
	}
	return diag.NewErrorDiagnostic("Cannot write to the store", fmt.Sprintf("%v\n\n%sNothing was recorded.", err, hint))
}

func storeReadError(st *store.Store, err error) diag.Diagnostic {
	hint := fmt.Sprintf("\n\nCheck the provider's `store` setting (or %s).", EnvStore)
	if hasHint(err) {
		hint = ""
	}
	return diag.NewErrorDiagnostic("Cannot read the store", fmt.Sprintf("Reading %s failed: %v%s", st, err, hint))
}

// hasHint reports whether err already says which setting to check.
func hasHint(err error) bool {
	var be store.BackendError
	return errors.As(err, &be)
}

// corruptError reports an artifact whose stored content fails verification.
func corruptError(st *store.Store, sum digest.Sum, err error) diag.Diagnostic {
	return diag.NewAttributeErrorDiagnostic(path.Root("digest"), "Stored artifact is corrupt",
		fmt.Sprintf("Verifying %s in %s failed: %v. A stored object was altered or damaged; the store never "+
			"overwrites objects, so restore it from a backup, or remove the damaged object and apply again.", sum, st, err))
}

// storedError explains why artifact.Sources.Stored could not describe the
// artifact sum: its listing unreadable, or its content damaged.
func storedError(st *store.Store, sum digest.Sum, err error) diag.Diagnostic {
	var unreadable *artifact.ListingUnreadableError
	var damaged *artifact.DamagedError
	switch {
	case errors.As(err, &unreadable):
		return storeReadError(st, unreadable.Err)
	case errors.As(err, &damaged):
		return corruptError(st, sum, damaged.Err)
	}
	return storeReadError(st, err)
}

// lookupArtifact parses an artifact digest and finds what the store holds
// under it. On a diagnostic the caller returns.
func lookupArtifact(ctx context.Context, st *store.Store, s string) (digest.Sum, store.Kind, diag.Diagnostics) {
	var diags diag.Diagnostics
	sum, err := digest.Parse(s)
	if err != nil {
		diags.AddAttributeError(path.Root("digest"), "Invalid digest", err.Error())
		return sum, store.Missing, diags
	}
	kind, err := st.Lookup(ctx, sum)
	if err != nil {
		diags.Append(storeReadError(st, err))
	}
	return sum, kind, diags
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
