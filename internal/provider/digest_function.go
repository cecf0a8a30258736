package provider

import (
	"context"
	"errors"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/immutable-infra/terraform-provider-immutable/internal/artifact"
	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/statcache"
)

var (
	_ function.Function = (*DigestFunction)(nil)
	_ function.Function = (*FileDigestsFunction)(nil)
)

// DigestFunction is provider::immutable::digest.
type DigestFunction struct{}

// FileDigestsFunction is provider::immutable::file_digests.
type FileDigestsFunction struct{}

// NewDigestFunction returns the function.
func NewDigestFunction() function.Function { return &DigestFunction{} }

// NewFileDigestsFunction returns the function.
func NewFileDigestsFunction() function.Function { return &FileDigestsFunction{} }

func pathParameters() ([]function.Parameter, function.Parameter) {
	return []function.Parameter{function.StringParameter{
			Name: "path",
			MarkdownDescription: "A file or directory. A relative path resolves against the directory Terraform runs in; " +
				"write `\"${path.module}/dist\"`.",
		}}, function.StringParameter{
			Name: "excludes",
			MarkdownDescription: "Globs of paths to leave out of a directory, as `excludes` of `immutable_artifact` " +
				"(`\"**/*.map\"`, `\".git\"`). Functions have no optional parameters: pass none, one or several.",
		}
}

// hashPath computes what immutable_artifact would for path: a listing for
// a directory, or for a file the one entry an archive of it would hold
// (its name, exec bit and digest). It runs on an unconfigured provider, so
// it depends on no provider setting, and hashes through a memo of its own.
func hashPath(ctx context.Context, p string, excludes []string) (*digest.Listing, digest.Sum, *function.FuncError) {
	c, err := artifact.Hash(ctx, statcache.NewMemo(statcache.Default()), artifact.Source{Path: p, Excludes: excludes})
	// Terraform ends an argument's message with a period of its own.
	argError := func(i int, msg string) *function.FuncError {
		return function.NewArgumentFuncError(int64(i), strings.TrimSuffix(msg, "."))
	}
	var exclude *artifact.ExcludeError
	var onFile *artifact.ExcludesOnFileError
	switch {
	case errors.As(err, &exclude):
		return nil, digest.Sum{}, argError(1+exclude.Index, "Invalid exclude glob: "+exclude.Err.Error())
	case errors.As(err, &onFile):
		return nil, digest.Sum{}, argError(1, onFile.Error()+". Pass no excludes, or a directory")
	case err != nil:
		return nil, digest.Sum{}, argError(0, sourceDiag(pathRoot, err).Detail())
	}
	return c.Listing, c.Sum, nil
}

func readPathArgs(ctx context.Context, req function.RunRequest) (string, []string, *function.FuncError) {
	var p string
	var excludes []string
	if err := req.Arguments.Get(ctx, &p, &excludes); err != nil {
		return "", nil, err
	}
	return p, excludes, nil
}

func (f *DigestFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "digest"
}

func (f *DigestFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	params, variadic := pathParameters()
	resp.Definition = function.Definition{
		Summary: "The content digest of a file or directory",
		MarkdownDescription: "Returns the digest `immutable_artifact` computes for a file or directory — `sha256:<hex>` of " +
			"a file's bytes (the hex of `filesha256()`), or of a directory's canonical listing (see the digest spec) — " +
			"without storing anything. Unchanged files are not read again on a re-plan (a stat cache in the user cache " +
			"directory).",
		Parameters:        params,
		VariadicParameter: variadic,
		Return:            function.StringReturn{},
	}
}

func (f *DigestFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	p, excludes, ferr := readPathArgs(ctx, req)
	if ferr != nil {
		resp.Error = ferr
		return
	}
	_, sum, ferr := hashPath(ctx, p, excludes)
	if ferr != nil {
		resp.Error = ferr
		return
	}
	resp.Error = resp.Result.Set(ctx, sum.String())
}

func (f *FileDigestsFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "file_digests"
}

func (f *FileDigestsFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	params, variadic := pathParameters()
	resp.Definition = function.Definition{
		Summary: "The digest of every file of a directory",
		MarkdownDescription: "Returns a map of each file and symlink of a directory (path relative to it, `/`-separated) " +
			"to `<kind> sha256:<hex>`, kind being `file`, `exec` or `symlink` — the entries of the listing whose digest " +
			"`provider::immutable::digest` returns. For a file, a map of its name to its entry.",
		Parameters:        params,
		VariadicParameter: variadic,
		Return:            function.MapReturn{ElementType: types.StringType},
	}
}

func (f *FileDigestsFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	p, excludes, ferr := readPathArgs(ctx, req)
	if ferr != nil {
		resp.Error = ferr
		return
	}
	m, _, ferr := hashPath(ctx, p, excludes)
	if ferr != nil {
		resp.Error = ferr
		return
	}
	elems := map[string]attr.Value{}
	for _, e := range m.Entries {
		elems[e.Path] = types.StringValue(string(e.Kind) + " " + e.SHA256.String())
	}
	resp.Error = resp.Result.Set(ctx, types.MapValueMust(types.StringType, elems))
}
