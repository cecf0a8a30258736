// Package azstore is the store backend on Azure Blob Storage
// (azblob://ACCOUNT/CONTAINER/PREFIX URLs), through the Azure SDK for Go,
// with credentials from the Azure default credential chain (environment,
// workload identity, managed identity, Azure CLI login) or a connection
// string in AZURE_STORAGE_CONNECTION_STRING, never from Terraform state.
//
// Every create is a conditional write (If-None-Match: *): a blob is never
// overwritten, and of two racing creators exactly one succeeds; Azure
// answers the other 409 BlobAlreadyExists. Requests are retried with
// exponential backoff and jitter (the SDK's retry policy) on 408, 429,
// 5xx answers and dropped connections, up to Settings.MaxAttempts tries.
// Every create stores a random tag of its own in the blob's metadata
// (immutable_write): a retried create that meets a blob asks for its tag
// (Get Blob Properties, a HEAD), since the first try may have landed with
// its answer lost, and the blob is this create's only if the tag is, never
// because its bytes are the same. Content is streamed in bounded blocks:
// up to BlockSize in one Put Blob, larger blobs as staged blocks committed
// with If-None-Match: * (Put Block List), so memory stays flat whatever the
// size, and a failure before the commit leaves nothing visible (Azure
// discards uncommitted blocks after a week). The collector deletes in Blob
// Batch requests of up to 256 blobs (DeleteMany), or one blob a request
// where the account refuses Blob Batch.
package azstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// ConnectionStringEnv names the variable holding a connection string (an
// account key or a SAS, and optionally the blob endpoint: Azurite's), used
// instead of the default credential chain when set.
const ConnectionStringEnv = "AZURE_STORAGE_CONNECTION_STRING"

// BlockSize is the size of each staged block, and the largest blob sent
// in one Put Blob. Azure allows 50,000 blocks: blobs up to 390 GiB.
const BlockSize = 8 << 20

// TagMetadata is the metadata name under which each Create stores a
// random tag of its own (Azure metadata names are C# identifiers: no "-").
const TagMetadata = "immutable_write"

// Settings tune a backend; the zero value is the default.
type Settings struct {
	// MaxConcurrency bounds the requests in flight at once and sizes the
	// connection pool; 0 means store.DefaultConcurrency.
	MaxConcurrency int
	// MaxAttempts is how many times a request is tried; 0 means
	// store.DefaultMaxAttempts.
	MaxAttempts int
	// Names are how messages name the user's settings; the zero value
	// means ProviderNames.
	Names Names
}

// Names are how the messages of a store name the settings a user gives.
type Names struct {
	Store string // where the store URL is given
	// Needs says which roles the user's operations need: a sentence.
	Needs string
	// Rerun says that running the operation again is safe: a sentence.
	Rerun string
}

// ProviderNames are the provider's.
var ProviderNames = Names{
	Store: "the provider's `store` (or IMMUTABLE_STORE)",
	Needs: "Plans need the role Storage Blob Data Reader on the container; applies need Storage Blob Data Contributor " +
		"(or a custom role with read, write and list but no delete; see the guide \"Sharing releases on Google Cloud and Azure\").",
	Rerun: "Re-running apply is safe: what was stored is kept, and only what is still missing is sent.",
}

// Or returns n, or ProviderNames when n is the zero value.
func (n Names) Or() Names {
	if n == (Names{}) {
		return ProviderNames
	}
	return n
}

// Backend is a store.Backend in an Azure Blob Storage container, under an
// optional prefix.
type Backend struct {
	container   *container.Client
	account     string
	name        string // the container
	prefix      string // "" or ends in "/"
	endpoint    string // for messages: the blob service's URL
	names       Names
	url         string
	credSource  string // where credentials come from, for messages
	containerOK atomic.Bool
	reached     atomic.Bool
	attempts    int
	retry       policy.RetryOptions // the SDK's, but for MaxRetries when a batch sets its own
	slots       chan struct{}
	noBatch     atomic.Bool // the endpoint refused a Blob Batch: delete one blob at a time
}

var _ store.Backend = (*Backend)(nil)

// Concurrency implements the store's optional Concurrency.
func (b *Backend) Concurrency() int { return cap(b.slots) }

func (b *Backend) acquire(ctx context.Context) error {
	select {
	case b.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Backend) release() { <-b.slots }

// accountName returns the AccountName of a connection string, or "".
func accountName(cs string) string {
	for _, kv := range strings.Split(cs, ";") {
		k, v, _ := strings.Cut(kv, "=")
		if strings.EqualFold(strings.TrimSpace(k), "AccountName") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// New returns a backend for azblob://account/containerName/prefix. It
// contacts nothing: credentials are resolved, and the container reached,
// on first use.
func New(_ context.Context, account, containerName, prefix string, s Settings) (*Backend, error) {
	conc, attempts := store.RequestLimits(s.MaxConcurrency, s.MaxAttempts)
	b := &Backend{account: account, name: containerName, names: s.Names.Or(), slots: make(chan struct{}, conc), attempts: attempts}
	// Timeouts bound connecting and waiting, never a long transfer; at
	// most one connection per request slot, kept between requests.
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxConnsPerHost:       conc,
		MaxIdleConnsPerHost:   conc,
		MaxIdleConns:          conc,
	}
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: &http.Client{Transport: transport},
		Retry: policy.RetryOptions{
			MaxRetries:    int32(b.attempts - 1),
			RetryDelay:    200 * time.Millisecond,
			MaxRetryDelay: store.MaxBackoff,
		},
		PerRetryPolicies: []policy.Policy{triesPolicy{b}},
		// The SDK's telemetry header only: nothing is logged unless a
		// listener is set (azcore/log), and then with secrets redacted.
		Telemetry: policy.TelemetryOptions{ApplicationID: "terraform-provider-immutable"},
	}}
	if b.attempts == 1 {
		opts.Retry.MaxRetries = -1 // 0 would mean the SDK's default
	}
	b.retry = opts.Retry
	prefix = strings.Trim(prefix, "/")
	b.url = "azblob://" + account + "/" + containerName
	if prefix != "" {
		b.url += "/" + prefix
		prefix += "/"
	}
	b.prefix = prefix
	cs := os.Getenv(ConnectionStringEnv)
	if cs != "" {
		c, err := container.NewClientFromConnectionString(cs, containerName, opts)
		if err != nil {
			// The SDK's message may quote the string: never repeated.
			return nil, fmt.Errorf("%s is not a valid connection string: write it as Azure shows it (DefaultEndpointsProtocol=https;"+
				"AccountName=…;AccountKey=…;EndpointSuffix=core.windows.net, or BlobEndpoint=…;SharedAccessSignature=…)", ConnectionStringEnv)
		}
		b.container, b.credSource = c, ConnectionStringEnv
	} else {
		cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: azcore.ClientOptions{Transport: &http.Client{Transport: transport}},
		})
		if err != nil {
			return nil, fmt.Errorf("setting up the Azure default credentials: %w", err)
		}
		c, err := container.NewClient(fmt.Sprintf("https://%s.blob.core.windows.net/%s", account, containerName),
			&credential{cred}, opts)
		if err != nil {
			return nil, err
		}
		b.container, b.credSource = c, "the Azure default credentials"
	}
	u, err := url.Parse(b.container.URL())
	if err != nil {
		// Its query may be a SAS: never repeated.
		return nil, fmt.Errorf("the blob endpoint of %s is not a URL: check its BlobEndpoint", ConnectionStringEnv)
	}
	u.RawQuery = "" // a SAS
	b.endpoint = strings.TrimSuffix(strings.TrimSuffix(u.String(), "/"), "/"+containerName)
	if cs != "" {
		if err := b.checkAccount(cs); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// blobDomains are the blob service domains of Azure's clouds (public,
// China, US Government, Germany, and the DNS-zone endpoints
// ACCOUNT.zNN.blob.storage.azure.net), under which the first DNS label
// of a host is the storage account.
var blobDomains = []string{
	".blob.core.windows.net", ".blob.core.chinacloudapi.cn", ".blob.core.usgovcloudapi.net",
	".blob.core.cloudapi.de", ".blob.storage.azure.net",
}

// endpointAccount returns the storage account a blob endpoint serves, or
// "" when it cannot be told (a custom domain): the first DNS label of an
// Azure blob host (https://ACCOUNT.blob.core.windows.net), or the first
// path segment of an IP or localhost endpoint (http://127.0.0.1:10000/ACCOUNT,
// as Azurite serves).
func endpointAccount(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || net.ParseIP(host) != nil {
		seg, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		return seg
	}
	for _, d := range blobDomains {
		if strings.HasSuffix(host, d) {
			label, _, _ := strings.Cut(host, ".")
			return label
		}
	}
	return ""
}

// checkAccount refuses a connection string that would send the store's
// requests to, or sign them for, another storage account than the one
// its URL names: plans, state and messages name the URL's account, so
// writing anywhere else would publish where no one looks. The blob
// endpoint decides where requests go; AccountName, whose key signs them,
// must agree. An endpoint whose account cannot be told (a custom domain)
// is accepted only with a matching AccountName.
func (b *Backend) checkAccount(cs string) error {
	fix := fmt.Sprintf("set the connection string of %q, or unset %s to use the Azure default credentials (az login, a managed identity)",
		b.account, ConnectionStringEnv)
	ep, n := endpointAccount(b.endpoint), accountName(cs)
	switch {
	case ep != "" && !strings.EqualFold(ep, b.account):
		return fmt.Errorf("%s points at the storage account %q (its blob endpoint is %s), but the store %s is in the account %q: %s",
			ConnectionStringEnv, ep, b.endpoint, b.url, b.account, fix)
	case n != "" && !strings.EqualFold(n, b.account):
		return fmt.Errorf("%s is a connection string of the storage account %q, but the store %s is in the account %q: %s",
			ConnectionStringEnv, n, b.url, b.account, fix)
	case ep == "" && n == "":
		return fmt.Errorf("%s has the blob endpoint %s, from which the storage account cannot be told (it is neither an Azure blob "+
			"host such as ACCOUNT.blob.core.windows.net nor an IP or localhost address with the account as its first path segment), "+
			"and it names no AccountName: add AccountName=%s to it, so that the store %s cannot be written into another account",
			ConnectionStringEnv, b.endpoint, b.account, b.url)
	}
	return nil
}

// credential marks a failure to get a token, so that it is told apart
// from a request the server refused.
type credential struct{ azcore.TokenCredential }

func (c *credential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.TokenCredential.GetToken(ctx, o)
	if err != nil && ctx.Err() == nil {
		return tok, &NoCredentialsError{Err: err}
	}
	return tok, err
}

// NoCredentialsError is the failure to get a token from the Azure default
// credential chain, before any request was sent.
type NoCredentialsError struct{ Err error }

func (e *NoCredentialsError) Error() string { return "no Azure credentials: " + e.Err.Error() }

func (e *NoCredentialsError) Unwrap() error { return e.Err }

// NonRetriable tells the SDK not to try again.
func (e *NoCredentialsError) NonRetriable() {}

// triesPolicy runs once per try: it counts the operation's tries, notes
// when the endpoint answered, and stops retrying an endpoint that never
// has (at once when its name does not resolve: no such account).
type triesPolicy struct{ b *Backend }

func (p triesPolicy) Do(req *policy.Request) (*http.Response, error) {
	ctx := req.Raw().Context()
	n := int32(1)
	if t := store.TriesOf(ctx); t != nil {
		n = t.Add()
	}
	resp, err := req.Next()
	var dns *net.DNSError
	var nc *NoCredentialsError
	switch {
	case err == nil:
		p.b.reached.Store(true)
	case ctx.Err() != nil || errors.As(err, &nc) || p.b.reached.Load():
	case errors.As(err, &dns) && dns.IsNotFound, n >= store.UnreachedAttempts:
		err = &store.UnreachedError{Err: err}
	}
	return resp, err
}

// Error is an Azure failure explained for a user: what was done, what
// went wrong, and what to do.
type Error struct {
	Op, Key string
	Reason  string
	Hint    string
	Err     error
}

func (e *Error) Error() string { return fmt.Sprintf("%s %s: %s. %s", e.Op, e.Key, e.Reason, e.Hint) }

func (e *Error) Unwrap() error { return e.Err }

// BackendError marks it as a store.BackendError.
func (e *Error) BackendError() {}

func (b *Backend) target(key string) string {
	return fmt.Sprintf("azblob://%s/%s/%s", b.account, b.name, b.BlobName(key))
}

func times(n int32) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func (b *Backend) wrap(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	n := int32(1)
	if t := store.TriesOf(ctx); t != nil {
		n = max(t.Load(), 1)
	}
	e := &Error{Op: op, Key: b.target(key), Err: err, Reason: err.Error(), Hint: "Check " + b.names.Store + "."}
	var noCreds *NoCredentialsError
	var resp *azcore.ResponseError
	var dns *net.DNSError
	var unreached *store.UnreachedError
	switch {
	case errors.As(err, &noCreds):
		e.Reason = fmt.Sprintf("no Azure credentials could be obtained, so nothing was sent to %s (the Azure SDK said: %s)",
			b.endpoint, strings.Join(strings.Fields(rules.ReplaceAllString(noCreds.Err.Error(), " ")), " "))
		e.Hint = "Run `az login`, or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE), " +
			"or run where a managed identity is assigned, or set " + ConnectionStringEnv + ". Credentials never go in the store URL " +
			"or in a configuration."
	case errors.As(err, &dns) && !b.reached.Load():
		e.Reason = fmt.Sprintf("the storage account %q was not found: %s does not resolve (%s)", b.account, dns.Name, dns.Err)
		e.Hint = "Check the account in " + b.names.Store + " (azblob://ACCOUNT/CONTAINER/PREFIX)"
		if b.credSource == ConnectionStringEnv {
			e.Hint += ", and the BlobEndpoint or EndpointSuffix of " + ConnectionStringEnv
		}
		e.Hint += "; if the account is right, check the network's DNS."
	case errors.As(err, &unreached) || !b.reached.Load() && resp == nil && isConnError(err):
		e.Reason = fmt.Sprintf("cannot reach %s (%s)", b.endpoint, connCause(err))
		e.Hint = fmt.Sprintf("Check the account in %s and that the network reaches Azure; gave up after %s, having never reached it.",
			b.names.Store, times(n))
	case errors.As(err, &resp):
		switch code := bloberror.Code(resp.ErrorCode); {
		case code == bloberror.ContainerNotFound:
			e.Reason = fmt.Sprintf("the container %q does not exist in the storage account %q", b.name, b.account)
			e.Hint = fmt.Sprintf("Check the container in %s, or create it (az storage container create --account-name %s --name %s "+
				"--auth-mode login): the provider never creates one.", b.names.Store, b.account, b.name)
		case code == bloberror.AuthorizationPermissionMismatch,
			code == "" && resp.StatusCode == http.StatusForbidden && b.credSource != ConnectionStringEnv:
			e.Reason = fmt.Sprintf("access denied by %s (%s): the credentials lack the permission for this on the container", b.endpoint, orStatus(code, resp))
			e.Hint = "Assign the identity a role on the container (`az role assignment create --role \"Storage Blob Data Contributor\" " +
				"--assignee ID --scope …/storageAccounts/" + b.account + "/blobServices/default/containers/" + b.name + "`). " + b.names.Needs +
				" Owner or Contributor on the account grants no access to data; a new assignment takes some minutes to apply."
			if b.credSource == ConnectionStringEnv {
				e.Hint += " A SAS in " + ConnectionStringEnv + " needs the permissions r and l for plans, c and w for applies, and d for the collector only."
			}
		case code == bloberror.AuthenticationFailed, code == bloberror.AuthorizationFailure, code == "" && resp.StatusCode == http.StatusForbidden:
			e.Reason = fmt.Sprintf("the credentials were rejected by %s (%s)", b.endpoint, orStatus(code, resp))
			if b.credSource == ConnectionStringEnv {
				e.Hint = "Check the AccountKey or SharedAccessSignature of " + ConnectionStringEnv + " (a SAS must not be expired), " +
					"or unset it to use `az login` or a managed identity."
			} else {
				e.Hint = "Check that `az login` (or the managed identity, or AZURE_CLIENT_ID/AZURE_TENANT_ID) is in the storage account's tenant."
			}
			if code == bloberror.AuthorizationFailure {
				e.Hint += " Azure also answers AuthorizationFailure when the account's network rules (Networking: firewall, private " +
					"endpoints) do not admit this machine, or when shared-key access is disabled on the account."
			}
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
			e.Reason = fmt.Sprintf("%s answered %s, %s", b.endpoint, orStatus(code, resp), inARow(n))
			e.Hint = fmt.Sprintf("The network or the server failed; the settings are not the cause. %s", b.names.Rerun)
		default:
			e.Reason = fmt.Sprintf("%s answered %s", b.endpoint, orStatus(code, resp))
		}
	case isConnError(err):
		e.Reason = fmt.Sprintf("the connection to %s failed (%s), %s", b.endpoint, connCause(err), inARow(n))
		e.Hint = "The network failed, not the settings: the endpoint answered other requests. " + b.names.Rerun
	}
	return e
}

// rules are the lines of dashes the Azure SDK frames a response with.
var rules = regexp.MustCompile(`-{3,}`)

func inARow(n int32) string {
	if n == 1 {
		return "and retries are off"
	}
	return fmt.Sprintf("%d times in a row", n)
}

func orStatus(code bloberror.Code, resp *azcore.ResponseError) string {
	if code != "" {
		return fmt.Sprintf("%d %s", resp.StatusCode, code)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
}

func isConnError(err error) bool {
	var opErr *net.OpError
	var netErr net.Error
	return errors.As(err, &opErr) || errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// connCause is what a failed connection said, without the wrapping.
func connCause(err error) string {
	var u *url.Error
	if errors.As(err, &u) {
		return u.Err.Error()
	}
	return err.Error()
}

// BlobName is the blob name of a store key.
func (b *Backend) BlobName(key string) string { return b.prefix + key }

// Container is the container's client, for tests that act behind the
// store's back.
func (b *Backend) Container() *container.Client { return b.container }

func (b *Backend) String() string { return b.url }

var (
	smallPool = store.NewBufferPool(store.SmallPart)
	blockPool = store.NewBufferPool(BlockSize)
)

// ifNoneMatch is the condition of every write: no blob at the name.
func ifNoneMatch() *blob.AccessConditions {
	etag := azcore.ETagAny
	return &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &etag}}
}

// Create implements store.Backend with a conditional write. It holds one
// request slot for the whole upload: at most MaxConcurrency block buffers.
func (b *Backend) Create(ctx context.Context, key string, r io.Reader) error {
	if err := b.acquire(ctx); err != nil {
		return err
	}
	defer b.release()
	sp := smallPool.Get()
	defer smallPool.Put(sp)
	small := *sp
	n, err := store.ReadPart(r, small)
	if err != nil {
		return err // the content failed (a digest mismatch, say): nothing was sent
	}
	if n < len(small) {
		return b.putOnce(ctx, key, small[:n])
	}
	bp := blockPool.Get()
	defer blockPool.Put(bp)
	buf := *bp
	copy(buf, small)
	m, err := store.ReadPart(r, buf[len(small):])
	if err != nil {
		return err
	}
	n = len(small) + m
	if n < len(buf) {
		return b.putOnce(ctx, key, buf[:n])
	}
	return b.putBlocks(ctx, key, buf, r)
}

func (b *Backend) putOnce(ctx context.Context, key string, data []byte) error {
	ctx, t := store.WithTries(ctx)
	tag := store.NewWriteTag()
	bb := b.container.NewBlockBlobClient(b.BlobName(key))
	return b.conditional(ctx, "writing", key, t, tag, func() error {
		_, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
			Metadata:         map[string]*string{TagMetadata: &tag},
			AccessConditions: ifNoneMatch(),
		})
		return err
	})
}

// putBlocks stages the content as blocks named after this write's tag
// (so no other writer's staged blocks mix in), then commits them with
// If-None-Match: *.
func (b *Backend) putBlocks(ctx context.Context, key string, first []byte, r io.Reader) error {
	tag := store.NewWriteTag()
	bb := b.container.NewBlockBlobClient(b.BlobName(key))
	var ids []string
	buf, n := first, len(first)
	for num := 0; ; num++ {
		id := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s-%06d", tag, num))
		sctx, _ := store.WithTries(ctx)
		if _, err := bb.StageBlock(sctx, id, streaming.NopCloser(bytes.NewReader(buf[:n])), nil); err != nil {
			return b.wrap(sctx, "uploading", key, err)
		}
		ids = append(ids, id)
		if n < len(buf) {
			break
		}
		var err error
		if n, err = store.ReadPart(r, buf); err != nil {
			return err // staged blocks are never visible, and Azure discards them
		}
		if n == 0 {
			break
		}
	}
	cctx, t := store.WithTries(ctx)
	return b.conditional(cctx, "committing the upload of", key, t, tag, func() error {
		_, err := bb.CommitBlockList(cctx, ids, &blockblob.CommitBlockListOptions{
			Metadata:         map[string]*string{TagMetadata: &tag},
			AccessConditions: ifNoneMatch(),
		})
		return err
	})
}

// exists reports whether err says the name holds a blob: 409
// BlobAlreadyExists, or 412 where a condition was not met.
func exists(err error) bool {
	var resp *azcore.ResponseError
	return bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet) ||
		errors.As(err, &resp) && resp.StatusCode == http.StatusPreconditionFailed
}

// conditional runs a write made with If-None-Match: * (tried as often as
// t counts) whose blob carries tag. A blob met on the first try is
// store.ErrExists; on a later try it may be this write's own first try,
// which landed and whose answer was lost, so the blob's tag is asked for
// (a HEAD, never a download): the blob is this write's only if it carries
// tag. A blob met and gone when asked for (deleted in between) is written
// again, once, as the S3 store does.
func (b *Backend) conditional(ctx context.Context, op, key string, t *store.Tries, tag string, write func() error) error {
	vanished := false
	for {
		err := write()
		switch {
		case err == nil:
			return nil
		case exists(err) && t.Load() <= 1:
			return store.ErrExists
		case exists(err):
			own, found, rerr := b.tagged(ctx, key, tag)
			switch {
			case rerr != nil:
				return rerr
			case own:
				return nil
			case found:
				return store.ErrExists
			case !vanished:
				vanished = true
				continue
			}
			return &Error{
				Op: op, Key: b.target(key), Err: err,
				Reason: "the name held a blob when written (409 BlobAlreadyExists) and none when asked for it right after, twice: " +
					"something is deleting blobs of the store as they are written",
				Hint: "Only the collector (gc) should delete blobs under the store's prefix, and only old ones: check for a lifecycle " +
					"management rule deleting blobs there, or another tool deleting them. " + b.names.Rerun,
			}
		}
		return b.wrap(ctx, op, key, err)
	}
}

// tagged asks for the blob's properties and reports whether it is found,
// and whether it carries tag. The caller holds a request slot already.
func (b *Backend) tagged(ctx context.Context, key, tag string) (own, found bool, err error) {
	hctx, _ := store.WithTries(ctx)
	props, err := b.container.NewBlobClient(b.BlobName(key)).GetProperties(hctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) || isStatus(err, http.StatusNotFound) && !bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, b.wrap(hctx, "checking (to tell a lost answer from another writer's blob)", key, err)
	}
	for k, v := range props.Metadata {
		if strings.EqualFold(k, TagMetadata) && v != nil {
			return *v == tag, true, nil
		}
	}
	return false, true, nil
}

func isStatus(err error, code int) bool {
	var resp *azcore.ResponseError
	return errors.As(err, &resp) && resp.StatusCode == code
}

// notFound reports whether err is a missing blob (not a missing container).
func notFound(err error) bool {
	return bloberror.HasCode(err, bloberror.BlobNotFound) ||
		isStatus(err, http.StatusNotFound) && !bloberror.HasCode(err, bloberror.ContainerNotFound)
}

// Open implements store.Backend. The request slot is held until the
// response starts; the body keeps its connection until it is closed.
func (b *Backend) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	ctx, _ = store.WithTries(ctx)
	out, err := b.container.NewBlobClient(b.BlobName(key)).DownloadStream(ctx, nil)
	b.release()
	if notFound(err) && !bloberror.HasCode(err, bloberror.ContainerNotFound) {
		if cerr := b.checkContainer(ctx, key); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, b.wrap(ctx, "reading", key, err)
	}
	b.containerOK.Store(true) // a blob was read: the container exists
	return out.Body, nil
}

// checkContainer tells a missing container from a missing blob, once: a
// HEAD answered 404 has no body, and a typo in the container must not
// read as an empty store — unless a request of this backend has already
// found a blob in it (containerOK): then no extra request.
func (b *Backend) checkContainer(ctx context.Context, key string) error {
	if b.containerOK.Load() {
		return nil
	}
	cctx, _ := store.WithTries(ctx)
	_, err := b.container.GetProperties(cctx, nil)
	switch {
	case err == nil:
		b.containerOK.Store(true)
		return nil
	case isStatus(err, http.StatusNotFound):
		return b.wrap(cctx, "reading", key, &azcore.ResponseError{ErrorCode: string(bloberror.ContainerNotFound), StatusCode: http.StatusNotFound})
	}
	return nil // another failure (a role that may read blobs but not the container's properties): the blob's answer stands
}

// Exists implements store.Backend.
func (b *Backend) Exists(ctx context.Context, key string) (bool, error) {
	if err := b.acquire(ctx); err != nil {
		return false, err
	}
	defer b.release()
	ctx, _ = store.WithTries(ctx)
	_, err := b.container.NewBlobClient(b.BlobName(key)).GetProperties(ctx, nil)
	switch {
	case err == nil:
		b.containerOK.Store(true)
		return true, nil
	case notFound(err):
		if cerr := b.checkContainer(ctx, key); cerr != nil {
			return false, cerr
		}
		return false, nil
	}
	return false, b.wrap(ctx, "checking", key, err)
}

// List implements store.Backend, following List Blobs pagination.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	infos, err := b.ListInfo(ctx, prefix)
	keys := make([]string, len(infos))
	for i, o := range infos {
		keys[i] = o.Key
	}
	return keys, err
}

var _ store.Deleter = (*Backend)(nil)

// ListInfo implements store.Deleter: List with each blob's size and
// Last-Modified (the server's clock).
func (b *Backend) ListInfo(ctx context.Context, prefix string) ([]store.ObjectInfo, error) {
	var infos []store.ObjectInfo
	full := b.prefix + prefix
	p := b.container.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &full, Include: container.ListBlobsInclude{Metadata: true}})
	for p.More() {
		if err := b.acquire(ctx); err != nil {
			return nil, err
		}
		pctx, _ := store.WithTries(ctx)
		page, err := p.NextPage(pctx)
		b.release()
		if err != nil {
			return nil, b.wrap(pctx, "listing", prefix, err)
		}
		if page.Segment == nil {
			continue
		}
		for _, o := range page.Segment.BlobItems {
			if o.Name == nil || isDirectory(o) {
				continue
			}
			info := store.ObjectInfo{Key: strings.TrimPrefix(*o.Name, b.prefix)}
			if o.Properties != nil {
				if o.Properties.ContentLength != nil {
					info.Size = *o.Properties.ContentLength
				}
				if o.Properties.LastModified != nil {
					info.ModTime = *o.Properties.LastModified
				}
			}
			infos = append(infos, info)
		}
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	return infos, nil
}

// isDirectory reports whether a listed blob is a directory, not an object
// of the store: an account with a hierarchical namespace (Data Lake Gen2)
// lists its directories as zero-length blobs of ResourceType "directory",
// and tools that fake directories on a flat account (Storage Explorer,
// BlobFuse, Data Lake clients) write zero-length blobs with the metadata
// hdi_isfolder=true.
func isDirectory(o *container.BlobItem) bool {
	if o.Properties != nil && o.Properties.ResourceType != nil && strings.EqualFold(*o.Properties.ResourceType, "directory") {
		return true
	}
	for k, v := range o.Metadata {
		if strings.EqualFold(k, "hdi_isfolder") && v != nil && strings.EqualFold(*v, "true") {
			return true
		}
	}
	return false
}

// Delete implements store.Deleter with Delete Blob, a missing blob
// counting as deleted. It needs the delete permission
// (Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete),
// which only the collector's identity should have.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := b.acquire(ctx); err != nil {
		return err
	}
	defer b.release()
	ctx, _ = store.WithTries(ctx)
	_, err := b.container.NewBlobClient(b.BlobName(key)).Delete(ctx, nil)
	if err == nil || notFound(err) {
		return nil
	}
	return b.deleteError(ctx, key, err)
}

// deleteError explains a failed delete of key: the permission the
// collector needs when it was denied, the policy or lease that protects
// the blob.
func (b *Backend) deleteError(ctx context.Context, key string, err error) error {
	err = b.wrap(ctx, "deleting", key, err)
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	switch {
	case strings.HasPrefix(e.Reason, "access denied"):
		e.Hint = deletePermission
	case bloberror.HasCode(err, bloberror.BlobImmutableDueToPolicy):
		e.Reason = "the blob is under an immutability policy or a legal hold (" + e.Reason + ")"
		e.Hint = "The collector cannot delete what Azure immutable storage protects: make the policy's retention shorter than " +
			"the collector's grace period, or leave such blobs to expire."
	case bloberror.HasCode(err, bloberror.LeaseIDMissing):
		e.Reason = "the blob has an active lease, which Azure keeps it under until the lease is broken or expires (" + e.Reason + ")"
		e.Hint = "The provider never leases blobs: find the tool that took the lease, or break it (az storage blob lease break " +
			"--account-name " + b.account + " --container-name " + b.name + " --blob-name " + b.BlobName(key) + ") if nothing needs it. " +
			"The blob is garbage: run the collection again once it is free."
	}
	return err
}

// deletePermission is what a delete denied calls for.
const deletePermission = "The collector's identity needs the delete permission on the container's blobs: Storage Blob Data Contributor, " +
	"or a custom role with blobs/delete (a SAS: the permission d); see the guide \"Sharing releases on Google Cloud and Azure\". " +
	"Only the collector should have it, never publishers or planners."

// batchForbidden explains a Blob Batch request refused as a whole (403,
// but for credentials Azure could not authenticate): for each of its
// keys, that the batch was refused, and the permission deleting needs.
func (b *Backend) batchForbidden(key string, re *azcore.ResponseError) error {
	return &Error{
		Op: "deleting", Key: b.target(key), Err: re,
		Reason: fmt.Sprintf("%s refused the Blob Batch request deleting it (%s): the credentials may not delete blobs of the container",
			b.endpoint, orStatus(bloberror.Code(re.ErrorCode), re)),
		Hint: deletePermission + " A new role assignment takes some minutes to apply.",
	}
}

// MaxBatch is the most sub-requests one Blob Batch request takes.
const MaxBatch = 256

var _ store.BatchDeleter = (*Backend)(nil)

// DeleteMany implements store.BatchDeleter with Blob Batch: up to
// MaxBatch Delete Blob sub-requests a request, each request holding one
// slot (store.BatchDelete: so several run at once for a long list). Each
// sub-request's answer is its key's result: a missing blob is deleted, a
// busy server's answer or none at all is tried again, in a batch of the
// keys left, any other failure is that key's error. A request that fails
// as a whole is retried by the SDK (a delete is idempotent: a retry of a
// batch that landed finds its blobs gone, which counts as deleted), and
// is then the error of each of its keys. A key is in at most
// Settings.MaxAttempts requests in all, the SDK's retries counted. When
// the endpoint refuses Blob Batch itself (400, 405 or 501: an account or
// an emulator without it), the keys are deleted one Delete Blob each, as
// are those of every later call. It needs the delete permission, as
// Delete does.
func (b *Backend) DeleteMany(ctx context.Context, keys []string) []error {
	return store.BatchDelete{
		Size: MaxBatch, Attempts: b.attempts, Acquire: b.acquire, Release: b.release,
		Send: b.sendBatch, Fallback: b.deleteEach,
	}.Run(ctx, keys)
}

// deleteEach deletes keys one Delete Blob each, as many at once as the
// backend sends requests, setting errs[i] for each keys[i] that may still
// be there.
func (b *Backend) deleteEach(ctx context.Context, keys []string, errs []error) {
	_ = store.ForEach(ctx, cap(b.slots), len(keys), func(ctx context.Context, i int) error {
		errs[i] = b.Delete(ctx, keys[i])
		return nil // each key has its result
	})
}

// batchRefused reports whether err is the endpoint refusing Blob Batch
// itself, not the deletes in it.
func batchRefused(err error) bool {
	var resp *azcore.ResponseError
	if !errors.As(err, &resp) {
		return false
	}
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	}
	return false
}

// errBatchRefused stops a batch delete whose endpoint refuses Blob Batch:
// its keys are deleted one at a time (deleteEach).
var errBatchRefused = errors.New("the endpoint refuses Blob Batch")

// errNoAnswer is the result of a key whose batch was answered without a
// word of it.
var errNoAnswer = errors.New("not known to be deleted: the answer to its batch said nothing of it")

// sendBatch sends one Blob Batch request deleting keys[i] for each i in
// todo, its SDK retries limited to the tries the keys have left (ctx's
// store.Tries), and sets errs[i]. It returns the indices to try again:
// those whose delete failed as a busy server's does, and those the answer
// said nothing of (all, when the SDK could not read it); errBatchRefused
// when the endpoint refuses Blob Batch.
func (b *Backend) sendBatch(ctx context.Context, keys []string, todo []int, errs []error) (again []int, err error) {
	if b.noBatch.Load() {
		return nil, errBatchRefused
	}
	// fail sets each key's error, and returns those to send again.
	fail := func(err error, retry bool) ([]int, error) {
		for _, i := range todo {
			errs[i] = b.deleteError(ctx, keys[i], err)
		}
		if retry {
			return todo, nil
		}
		return nil, nil
	}
	bb, err := b.container.NewBatchBuilder()
	if err != nil {
		return fail(err, false)
	}
	for _, i := range todo {
		if err := bb.Delete(b.BlobName(keys[i]), nil); err != nil {
			return fail(err, false)
		}
	}
	retry := b.retry
	if t := store.TriesOf(ctx); t != nil {
		retry.MaxRetries = int32(b.attempts) - t.Load() - 1
		if retry.MaxRetries <= 0 {
			retry.MaxRetries = -1 // 0 would mean the SDK's default
		}
	}
	resp, err := b.container.SubmitBatch(policy.WithRetryOptions(ctx, retry), bb, nil)
	var re *azcore.ResponseError
	var stop interface{ NonRetriable() }
	switch {
	case batchRefused(err):
		b.noBatch.Store(true)
		return nil, errBatchRefused
	case err == nil:
	case errors.As(err, &re) && re.StatusCode == http.StatusForbidden && bloberror.Code(re.ErrorCode) != bloberror.AuthenticationFailed:
		for _, i := range todo {
			errs[i] = b.batchForbidden(keys[i], re)
		}
		return nil, nil
	case errors.As(err, &re) && !retriable(re.StatusCode), errors.As(err, &stop), ctx.Err() != nil:
		return fail(err, false)
	default:
		// Failed as a busy server or a dropped connection makes it fail
		// (the SDK's retries spent the keys' budget, which ends the
		// tries), or an answer the SDK could not read: a batch that
		// says nothing of its keys. Each is sent again.
		return fail(err, true)
	}
	answered := make([]bool, len(todo))
	for _, r := range resp.Responses {
		if r == nil || r.ContentID == nil || *r.ContentID < 0 || *r.ContentID >= len(todo) {
			continue // not a key's answer: nothing to report it against
		}
		answered[*r.ContentID] = true
		i := todo[*r.ContentID]
		switch {
		case r.Error == nil, notFound(r.Error):
			errs[i] = nil // a missing blob: as good as deleted
		default:
			errs[i] = b.deleteError(ctx, keys[i], r.Error)
			if errors.As(r.Error, &re) && retriable(re.StatusCode) {
				again = append(again, i)
			}
		}
	}
	for j, ok := range answered {
		if !ok {
			errs[todo[j]] = b.deleteError(ctx, keys[todo[j]], errNoAnswer)
			again = append(again, todo[j])
		}
	}
	return again, nil
}

// retriable reports whether an answer of status is one the SDK retries: a
// busy or failing server.
func retriable(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
