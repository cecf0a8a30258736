// Package storeurl opens a store from the URL a user writes in the
// provider's `store` setting.
package storeurl

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/azstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/gcsstore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/usertext"
)

// Default is the store used when none is configured: a directory beside
// the working directory Terraform runs in.
const Default = "file://.immutable"

// Schemes lists the URL schemes Open accepts.
var Schemes = []string{"file://", "s3://", "azblob://", "gs://"}

// Options carry backend settings that do not fit in a URL.
type Options struct {
	// File names the settings in a file:// store's messages
	// (filestore.ProviderNames when zero).
	File  filestore.Names
	S3    s3store.Settings
	Azure azstore.Settings
	GCS   gcsstore.Settings
}

// UserInfoError refuses a store URL with user info. Its message shows the
// URL redacted; a caller can also tell it apart and avoid pointing at (and
// so quoting) the configuration line that holds the secret.
type UserInfoError struct {
	URL   string // redacted
	Fixed string // the URL without user info
	// Names name the settings in the message (s3store.ProviderNames when
	// zero).
	Names s3store.Names
}

func (e *UserInfoError) Error() string {
	profile := e.Names.Or().Profile
	if e.Fixed == "" {
		return fmt.Sprintf("the store URL %q has an \"@\" after a \"/\": it either holds user info (credentials: AWS secret keys "+
			"may hold \"/\") or a prefix with \"@\", which a store URL cannot have, and the two cannot be told apart, so it is refused. "+
			"Use a prefix without \"@\"; credentials never go in the URL but through the standard AWS chain: AWS_ACCESS_KEY_ID "+
			"and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or %s, SSO, or an instance or task role", e.URL, profile)
	}
	return fmt.Sprintf("the store URL %q holds user info (the part before \"@\"), where credentials would go. A store URL is shown in plans, "+
		"logs and messages, so it must never hold a secret: write %q and give the credentials through the standard AWS chain: "+
		"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or %s, SSO (aws sso login), "+
		"or an instance or task role. If the secret was committed or shared, rotate it", e.URL, e.Fixed, profile)
}

// bucketRe is the S3 bucket naming rule (general purpose buckets).
var bucketRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`) })

// Redacted stands for the user info of a URL in messages.
const Redacted = "REDACTED"

// Open returns the store a URL names. It creates and contacts nothing.
//
//   - file://PATH is a directory; PATH may be relative (file://.immutable,
//     resolved against the working directory) or absolute (file:///var/lib/x).
//   - s3://BUCKET/OPTIONAL/PREFIX is a bucket of S3 or an S3-compatible store.
//   - gs://BUCKET/OPTIONAL/PREFIX is a Google Cloud Storage bucket.
//   - azblob://ACCOUNT/CONTAINER/OPTIONAL/PREFIX is an Azure Blob Storage
//     container.
//
// A URL never carries credentials: one with user info (user:secret@, or
// any "@" outside a file:// path) is refused, and no error Open returns
// repeats the user info.
func Open(ctx context.Context, raw string, opts Options) (*store.Store, error) {
	names := opts.S3.Names.Or()
	shown, userinfo := redact(raw)
	if err := oddText(raw, shown); err != nil {
		return nil, err
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || !validScheme(scheme) {
		return nil, fmt.Errorf("%q is not a store URL: write it as file://PATH (for example %q), s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or "+
			"azblob://ACCOUNT/CONTAINER/PREFIX", shown, Default)
	}
	switch scheme {
	case "file":
		if rest == "" {
			return nil, fmt.Errorf("%q names no directory: write file://PATH, for example %q or file:///var/lib/immutable", raw, Default)
		}
		if strings.HasPrefix(rest, "~") {
			return nil, tildeError(raw, rest)
		}
		first, _, _ := strings.Cut(rest, "/")
		if at := strings.LastIndex(rest, "@"); at >= 0 && (strings.Contains(rest[:at], ":") || strings.Contains(first, "@")) {
			// file://user:pass@host/path or file://user@host/path:
			// credentials, never a local path (the secret may hold "/", so
			// the whole part before "@" counts). A directory whose name holds
			// "@" is still reachable as file://./a@b.
			return nil, &UserInfoError{URL: "file://" + Redacted + rest[at:], Fixed: "file://" + strings.TrimPrefix(rest[at+1:], "localhost"), Names: names}
		}
		if strings.HasPrefix(rest, "localhost/") {
			rest = strings.TrimPrefix(rest, "localhost")
		}
		b, err := filestore.New(rest)
		if err != nil {
			return nil, err
		}
		b.SetNames(opts.File)
		return store.New(b), nil
	case "s3":
		if userinfo {
			e := &UserInfoError{URL: shown, Names: names}
			// Plainly user info when no "/" comes before the "@", or a ":"
			// (never in a bucket name) comes before the first "/": then the
			// rest is the bucket and prefix, and the fixed URL can be named.
			at := strings.LastIndex(rest, "@")
			if first, _, _ := strings.Cut(rest[:at], "/"); !strings.Contains(rest[:at], "/") || strings.Contains(first, ":") {
				e.Fixed = "s3://" + rest[at+1:]
			}
			return nil, e
		}
		if i := strings.IndexAny(rest, "?#%"); i >= 0 {
			// What follows is not shown: a query may be where someone put a secret.
			return nil, fmt.Errorf("%q has %q in it: an s3:// store URL takes no query, fragment or escapes, and the prefix is used as "+
				"written; write s3://BUCKET/PREFIX with plain characters, and settings in %s", "s3://"+rest[:i]+"…", rest[i:i+1], names.Options)
		}
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return nil, fmt.Errorf("%q names no bucket: write s3://BUCKET or s3://BUCKET/PREFIX", shown)
		}
		if !bucketRe().MatchString(bucket) {
			hint := ""
			if strings.Contains(bucket, ":") || bucket == "localhost" {
				hint = " It looks like a server address: put it in " + names.Endpoint + ", and only the bucket in the URL."
			}
			return nil, fmt.Errorf("%q names the bucket %q, which is not a valid bucket name: 3 to 63 lower-case letters, digits, '.' and '-', "+
				"starting and ending with a letter or digit.%s", shown, bucket, hint)
		}
		if strings.Contains(prefix, "//") || strings.Contains("/"+prefix+"/", "/../") || strings.Contains("/"+prefix+"/", "/./") {
			return nil, fmt.Errorf("%q has an unclean prefix %q: write segments separated by single slashes", shown, prefix)
		}
		b, err := s3store.New(ctx, bucket, prefix, opts.S3)
		if err != nil {
			return nil, err
		}
		return store.New(b), nil
	case "azblob":
		return openAzure(ctx, shown, rest, userinfo, opts.Azure)
	case "gs":
		return openGCS(raw, shown, rest, userinfo, opts.GCS)
	}
	if account, path, ok := azureBlobURL(scheme, rest); ok && !userinfo {
		if i := strings.IndexAny(rest, "?#"); i >= 0 {
			// A query there is a SAS token: a secret, never repeated.
			return nil, fmt.Errorf("%q is the web address of an Azure blob container, with a query: a store URL takes no query. Write "+
				"the store as azblob://%s/%s, and give a SAS token in %s (BlobEndpoint=…;SharedAccessSignature=…)",
				scheme+"://"+rest[:i]+"?…", account, path, azstore.ConnectionStringEnv)
		}
		return nil, fmt.Errorf("%q is the web address of an Azure blob container: write the store as azblob://%s/%s", shown, account, path)
	}
	return nil, fmt.Errorf("the store URL %q has the unknown scheme %q: supported schemes are %s", shown, scheme+"://", strings.Join(Schemes, ", "))
}

// oddText refuses a store URL (raw, shown as shown) that would not read
// as it is taken: white space at either end, which Open would keep as
// part of the path, bucket or prefix (store = "gs://rel/web " would name
// a new, empty store under "web /"); control and invisible characters
// anywhere (usertext's rule); and in a bucket or prefix (any scheme but
// file://, whose path may be a Windows one), a backslash, or white space
// at either end of a segment.
func oddText(raw, shown string) error {
	q := usertext.Quote(shown)
	if t := strings.TrimSpace(raw); t != raw {
		fixed, _ := redact(t)
		return fmt.Errorf("the store URL %s has white space at its start or end, which would be taken as part of the store's "+
			"path or prefix and so name another, empty store: remove it and write %s", q, usertext.Quote(fixed))
	}
	if err := usertext.Check("the store URL "+q, raw); err != nil {
		return err
	}
	// From here on only what is shown is looked at: user info is
	// refused later, and never repeated.
	scheme, rest, ok := strings.Cut(shown, "://")
	if !ok || scheme == "file" {
		return nil
	}
	if strings.Contains(rest, `\`) {
		fixed := strings.ReplaceAll(shown, `\`, "/")
		return fmt.Errorf("the store URL %s holds a backslash: a %s:// URL separates its bucket and the prefix's segments "+
			"with \"/\" only, and a backslash would be taken as part of a name. Write %s", q, scheme, usertext.Quote(fixed))
	}
	for _, seg := range strings.Split(rest, "/") {
		if strings.TrimSpace(seg) != seg {
			return fmt.Errorf("the store URL %s has the segment %s, which starts or ends with white space: it would be taken as "+
				"part of the name and so name another, empty store. Remove the white space", q, usertext.Quote(seg))
		}
	}
	return nil
}

// tildeError refuses a path that starts with "~": nothing expands it (not
// Terraform, not the shell inside a URL), so it would name a directory
// called "~" in the working directory.
func tildeError(raw, path string) error {
	var hint string
	if path == "~" || strings.HasPrefix(path, "~/") {
		hint = fmt.Sprintf(`In the configuration write store = "file://${pathexpand(%q)}"; in IMMUTABLE_STORE write file://$HOME%s`,
			path, strings.TrimPrefix(path, "~"))
	} else {
		hint = "Write the absolute path of that user's home directory instead"
	}
	return fmt.Errorf("%q starts with \"~\", which is not expanded in a store URL: the store would be a directory named %q "+
		"in the directory Terraform runs in. %s", raw, strings.SplitN(path, "/", 2)[0], hint)
}

// validScheme reports whether s is a URL scheme (RFC 3986: a letter, then
// letters, digits, "+", "-" or ".").
func validScheme(s string) bool {
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// redact returns raw as a message may show it, with any user info
// ("user:secret@" before the host or bucket) replaced by Redacted, and
// whether raw had user info. A file:// URL has a path, not user info, and
// is returned unchanged. In any other URL everything up to the last "@"
// counts as user info: a secret may hold a "/" (AWS secret keys do), which
// seems to end the authority early (s3://KEY:abc/def@bucket), so an "@"
// anywhere is taken to end user info.
func redact(raw string) (shown string, userinfo bool) {
	prefix, rest := "", raw
	if scheme, r, ok := strings.Cut(raw, "://"); ok && validScheme(scheme) {
		prefix, rest = scheme+"://", r
	}
	if prefix == "file://" {
		return raw, false
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw, false
	}
	return prefix + Redacted + "@" + rest[at+1:], true
}

// Azure's naming rules: a storage account is 3 to 24 lower-case letters
// and digits; a container 3 to 63 lower-case letters, digits and single
// hyphens, starting and ending with a letter or digit.
var (
	azureAccountRe   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]{3,24}$`) })
	azureContainerRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]([a-z0-9]|-[a-z0-9]){2,62}$`) })
)

// openAzure opens azblob://ACCOUNT/CONTAINER/PREFIX (rest is what follows
// the scheme).
func openAzure(ctx context.Context, shown, rest string, userinfo bool, s azstore.Settings) (*store.Store, error) {
	if userinfo {
		return nil, fmt.Errorf("the store URL %q holds user info (the part before \"@\"), where credentials would go. A store URL is "+
			"shown in plans, logs and messages, so it must never hold a secret: write azblob://ACCOUNT/CONTAINER/PREFIX and give "+
			"the credentials through `az login`, a managed identity, AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET or %s. "+
			"If the secret was committed or shared, rotate it", shown, azstore.ConnectionStringEnv)
	}
	if i := strings.IndexAny(rest, "?#%"); i >= 0 {
		// What follows is not shown: a SAS token would be a secret.
		return nil, fmt.Errorf("%q has %q in it: an azblob:// store URL takes no query (a SAS token goes in %s, as "+
			"SharedAccessSignature=…), fragment or escapes: write azblob://ACCOUNT/CONTAINER/PREFIX with plain characters",
			"azblob://"+rest[:i]+"…", rest[i:i+1], azstore.ConnectionStringEnv)
	}
	account, path, _ := strings.Cut(rest, "/")
	container, prefix, _ := strings.Cut(path, "/")
	if host, _, ok := strings.Cut(account, "."); ok && strings.Contains(account, ".blob.") {
		return nil, fmt.Errorf("%q names a host, not a storage account: write azblob://%s/%s", shown, host, path)
	}
	if !azureAccountRe().MatchString(account) {
		return nil, fmt.Errorf("%q names the storage account %q, which is not a valid account name: 3 to 24 lower-case letters and "+
			"digits. Write azblob://ACCOUNT/CONTAINER or azblob://ACCOUNT/CONTAINER/PREFIX", shown, account)
	}
	if !azureContainerRe().MatchString(container) {
		return nil, fmt.Errorf("%q names the container %q, which is not a valid container name: 3 to 63 lower-case letters, digits "+
			"and single hyphens, starting and ending with a letter or digit. Write azblob://ACCOUNT/CONTAINER or "+
			"azblob://ACCOUNT/CONTAINER/PREFIX", shown, container)
	}
	if strings.Contains(prefix, "//") || strings.Contains("/"+prefix+"/", "/../") || strings.Contains("/"+prefix+"/", "/./") {
		return nil, fmt.Errorf("%q has an unclean prefix %q: write segments separated by single slashes", shown, prefix)
	}
	b, err := azstore.New(ctx, account, container, prefix, s)
	if err != nil {
		return nil, err
	}
	return store.New(b), nil
}

// gcsBucketRe is the Cloud Storage bucket naming rule: 3 to 63 characters
// (up to 222 with dots), lower-case letters, digits, '-', '_' and '.',
// starting and ending with a letter or digit.
var gcsBucketRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$`) })

// openGCS opens gs://BUCKET/PREFIX. Credentials never go in the URL:
// they come from Application Default Credentials.
func openGCS(raw, shown, rest string, userinfo bool, s gcsstore.Settings) (*store.Store, error) {
	if userinfo {
		return nil, fmt.Errorf("the store URL %q holds an \"@\": a gs:// URL names a bucket and a prefix only, and cannot hold "+
			"credentials (they come from Application Default Credentials: gcloud auth application-default login, "+
			"GOOGLE_APPLICATION_CREDENTIALS, workload identity). If a secret was committed or shared, rotate it", shown)
	}
	if i := strings.IndexAny(rest, "?#%"); i >= 0 {
		return nil, fmt.Errorf("%q has %q in it: a gs:// store URL takes no query, fragment or escapes; write gs://BUCKET/PREFIX "+
			"with plain characters", "gs://"+rest[:i]+"…", rest[i:i+1])
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return nil, fmt.Errorf("%q names no bucket: write gs://BUCKET or gs://BUCKET/PREFIX", raw)
	}
	long := len(bucket) > 63 && !strings.Contains(bucket, ".")
	if !gcsBucketRe().MatchString(bucket) || long || strings.Contains(bucket, "..") {
		return nil, fmt.Errorf("%q names the bucket %q, which is not a valid Cloud Storage bucket name: 3 to 63 lower-case letters, "+
			"digits, '-', '_' and '.' (up to 222 with dots), starting and ending with a letter or digit", raw, bucket)
	}
	if strings.Contains(prefix, "//") || strings.Contains("/"+prefix+"/", "/../") || strings.Contains("/"+prefix+"/", "/./") {
		return nil, fmt.Errorf("%q has an unclean prefix %q: write segments separated by single slashes", raw, prefix)
	}
	b, err := gcsstore.New(bucket, prefix, s)
	if err != nil {
		return nil, err
	}
	return store.New(b), nil
}

// azureBlobURL recognises https://ACCOUNT.blob.core.windows.net/PATH (or
// a sovereign cloud's blob host), the address users copy from the portal.
func azureBlobURL(scheme, rest string) (account, path string, ok bool) {
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	host, path, _ := strings.Cut(rest, "/")
	account, domain, _ := strings.Cut(host, ".")
	if !strings.EqualFold(scheme, "https") || !strings.HasPrefix(domain, "blob.core.") || path == "" {
		return "", "", false
	}
	return account, strings.TrimSuffix(path, "/"), true
}

// CLIHelp is how the binary's commands (gc, verify, sign, envelope) say
// in their help where the store comes from and its credentials.
const CLIHelp = `The store is --store, else $IMMUTABLE_STORE: file://DIR, s3://BUCKET/PREFIX,
gs://BUCKET/PREFIX or azblob://ACCOUNT/CONTAINER/PREFIX. Credentials come from
  s3://      the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
             AWS_PROFILE, SSO, roles);
  gs://      Application Default Credentials (gcloud auth application-default
             login, GOOGLE_APPLICATION_CREDENTIALS, workload identity);
  azblob://  DefaultAzureCredential (az login, a managed identity,
             AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET), or
             AZURE_STORAGE_CONNECTION_STRING when set.
`
