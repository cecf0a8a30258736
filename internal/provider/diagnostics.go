package provider

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// pathRoot names the path argument of functions in shared messages.
var pathRoot = path.Root("path")

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
