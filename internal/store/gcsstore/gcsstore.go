// Package gcsstore is the store backend on Google Cloud Storage
// (gs://bucket/prefix URLs), through Cloud Storage's JSON API over
// net/http, with credentials from Application Default Credentials
// (`gcloud auth application-default login`, GOOGLE_APPLICATION_CREDENTIALS,
// workload identity, the metadata server; golang.org/x/oauth2/google),
// never from Terraform state. Google's client library is not used: it
// brings gRPC, OpenTelemetry and Cloud Monitoring, about 30 MB of binary
// and 10 ms of init paid by every start of the provider, whatever its
// store.
//
// Every create is a conditional write (ifGenerationMatch=0): an object is
// never overwritten, and of two racing creators exactly one succeeds; the
// other is answered 412 Precondition Failed, which is store.ErrExists.
// Requests are retried with exponential backoff on 408, 429, 5xx answers
// and dropped connections, up to Settings.MaxAttempts tries: reads,
// listings, deletes (a delete that landed meets no object, which is no
// error) and conditional writes. Every create stores a random tag of its
// own in the object's metadata (immutable-write): a retried create that
// meets an object asks for its metadata, since the first try may have
// landed with its answer lost, and the object is this create's only if the
// tag is, never because its bytes are the same. Objects up to PartSize go
// in one multipart request; larger ones as a resumable upload in PartSize
// chunks, finalized with the same precondition, so memory stays flat
// whatever the size, and an upload abandoned before its last chunk leaves
// nothing visible. The object a create made is checked against what was
// sent (the CRC32C and size its answer states): bytes changed on the way
// that the server did not refuse make a write that fails, its object
// deleted (that generation only). A collection deletes in batches of
// MaxBatch (the JSON API's batch endpoint).
//
// STORAGE_EMULATOR_HOST (the variable Google's libraries read) points the
// backend at an emulator such as fake-gcs-server, with no authentication:
// tests use it.
package gcsstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// EnvEmulator is the variable, read by Google's libraries too, that
// points the backend at an emulator (host:port or http://host:port) and
// turns authentication off.
const EnvEmulator = "STORAGE_EMULATOR_HOST"

// PartSize is the largest object sent in one request, and the chunk of
// a resumable upload (a multiple of 256 KiB, as GCS requires). A Create
// holds one such buffer (pooled) while it holds a request slot, so it
// bounds memory: at most 256 MiB at the default 32 slots. Objects over it
// (large build artifacts: rare) pay one request more, the session's
// opening; 16 MiB, Google's library's default, would save that request
// on objects of 8-16 MiB and double the bound.
const PartSize = 8 << 20

// chunkUnit is what every chunk of a resumable upload but the last must
// be a multiple of.
const chunkUnit = 256 << 10

var _ = [1]struct{}{}[PartSize%chunkUnit] // PartSize is a multiple of chunkUnit

// apiHost is Cloud Storage's JSON API: /storage/v1, /upload/storage/v1
// and /batch/storage/v1 under it.
const apiHost = "https://storage.googleapis.com"

// universe is Google Cloud's default universe domain, the only one the
// backend supports: apiHost is in it.
const universe = "googleapis.com"

// The variables, read by Google's libraries too, that name the universe
// domain and the quota project (billed for requests to a requester-pays
// bucket, and counted against its quota).
const (
	EnvUniverse     = "GOOGLE_CLOUD_UNIVERSE_DOMAIN"
	EnvQuotaProject = "GOOGLE_CLOUD_QUOTA_PROJECT"
)

// scope is the OAuth scope of the backend's tokens: objects read and
// written (and deleted, which IAM grants separately).
const scope = "https://www.googleapis.com/auth/devstorage.read_write"

// pingAfter and pingTimeout are the health check of an HTTP/2
// connection: a ping after pingAfter without a frame received, the
// connection closed when it is not answered within pingTimeout. (Tests
// shorten them.)
var (
	pingAfter   = 30 * time.Second
	pingTimeout = 15 * time.Second
)

// Settings of a gs:// store. The zero value is the defaults.
type Settings struct {
	// MaxConcurrency bounds the requests this backend has in flight at
	// once, and sizes its connection pool to match; 0 means
	// store.DefaultConcurrency.
	MaxConcurrency int
	// MaxAttempts is how many times a request is tried (the first try
	// included); 0 means store.DefaultMaxAttempts.
	MaxAttempts int
	// Names are how messages name the settings; zero means ProviderNames.
	Names Names
}

// Names are how the messages of a store name what a user sets, so that
// each says which one to check: the provider's settings, or a command's.
type Names struct {
	Store string // where the store URL is given
	// Rerun says that running the operation again is safe, and what it
	// does then: a sentence.
	Rerun string
}

// ProviderNames are the provider's.
var ProviderNames = Names{
	Store: "the provider's `store` (or IMMUTABLE_STORE)",
	Rerun: "Re-running apply is safe: what was stored is kept, and only what is still missing is sent.",
}

// Or returns n, or ProviderNames when n is the zero value.
func (n Names) Or() Names {
	if n == (Names{}) {
		return ProviderNames
	}
	return n
}

// Backend is a store.Backend in a GCS bucket, under an optional prefix.
type Backend struct {
	bucket   string
	prefix   string // "" or ends in "/"
	url      string
	names    Names
	attempts int
	endpoint string // for messages
	host     string // scheme://host[:port] of the JSON API

	base      *http.Transport
	tokenBase http.RoundTripper // of the requests for tokens
	init      sync.Mutex
	client    *http.Client // made on first use (credentials are looked for then)
	bucketOK  atomic.Bool  // the bucket was seen to exist
	reached   atomic.Bool  // the endpoint answered a request
	// slots holds a token per request in flight: at most its capacity,
	// shared by everything that uses this backend (one per provider).
	slots chan struct{}
}

var (
	_ store.Backend = (*Backend)(nil)
	_ store.Deleter = (*Backend)(nil)
)

// New returns a backend for gs://bucket/prefix. It contacts nothing:
// credentials are looked for, and the bucket reached, on first use. With
// STORAGE_EMULATOR_HOST set, the backend is on the emulator the variable
// names now.
func New(bucket, prefix string, s Settings) (*Backend, error) {
	conc, attempts := store.RequestLimits(s.MaxConcurrency, s.MaxAttempts)
	// Timeouts bound connecting and waiting, never a long transfer; at
	// most one connection per request slot, kept between requests.
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxConnsPerHost:       conc,
		MaxIdleConnsPerHost:   conc,
		MaxIdleConns:          conc,
		// An HTTP/2 connection silent for pingAfter is pinged, and
		// closed if the ping is not answered within pingTimeout: a
		// connection gone dead (a NAT or proxy dropping it) fails the
		// requests on it, a streamed read too, instead of hanging them.
		HTTP2: &http.HTTP2Config{SendPingTimeout: pingAfter, PingTimeout: pingTimeout},
	}
	prefix = strings.Trim(prefix, "/")
	if len(prefix) > MaxPrefixLength {
		return nil, &PrefixError{Prefix: prefix, Names: s.Names.Or()}
	}
	u := "gs://" + bucket
	if prefix != "" {
		u += "/" + prefix
		prefix += "/"
	}
	endpoint, host := "Google Cloud Storage", apiHost
	h := os.Getenv(EnvEmulator)
	if d := os.Getenv(EnvUniverse); h == "" && d != "" && d != universe {
		return nil, &UniverseError{Source: EnvUniverse, Domain: d}
	}
	if h != "" {
		var err error
		if host, err = emulatorHost(h); err != nil {
			return nil, err
		}
		endpoint = "the emulator at " + h + " (" + EnvEmulator + ")"
	}
	b := &Backend{
		bucket: bucket, prefix: prefix, url: u, names: s.Names.Or(), attempts: attempts, endpoint: endpoint, host: host,
		base: base, tokenBase: http.DefaultTransport, slots: make(chan struct{}, conc),
	}
	if h != "" {
		// No credentials to look for: the client is made now, on the
		// emulator named now.
		b.client = b.newClient(&counting{b: b, next: base})
	}
	return b, nil
}

// EmulatorError is a STORAGE_EMULATOR_HOST that is neither host:port
// nor http(s)://host[:port]: refused at New, before anything is sent,
// instead of failing every request in a way that blames the network or
// the bucket.
type EmulatorError struct {
	Value string // "" when it must not be shown: it holds user info
	Why   string
}

func (e *EmulatorError) Error() string {
	v := "is set to a value that"
	if e.Value != "" {
		v = fmt.Sprintf("is %q, which", e.Value)
	}
	return fmt.Sprintf("%s %s %s, so nothing was sent. Set it to host:port (plain HTTP) or http://host[:port] or https://host[:port], "+
		"with no user info, path, query or spaces; or unset it to use Google Cloud Storage", EnvEmulator, v, e.Why)
}

// emulatorHost is the scheme://host[:port] of the emulator a
// STORAGE_EMULATOR_HOST value names: host:port (plain HTTP, as Google's
// libraries read it) or http(s)://host[:port], a trailing "/" allowed;
// anything else is an *EmulatorError, which never shows user info.
func emulatorHost(h string) (string, error) {
	shown := h
	if strings.Contains(h, "@") {
		shown = "" // it may hold a password: never shown
	}
	fail := func(why string) (string, error) { return "", &EmulatorError{Value: shown, Why: why} }
	if strings.IndexFunc(h, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return fail("holds spaces or control characters")
	}
	bare := !strings.Contains(h, "://")
	raw := h
	if bare {
		raw = "http://" + h
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fail("does not parse as host:port or a URL")
	case u.User != nil:
		return fail("holds user info (user:password@): the emulator takes no credentials, and none belong in this variable")
	case u.Scheme != "http" && u.Scheme != "https":
		return fail(fmt.Sprintf("has the scheme %q: only http and https are served", u.Scheme))
	case u.Opaque != "" || u.Hostname() == "":
		return fail("names no host")
	case u.Path != "" && u.Path != "/":
		return fail(fmt.Sprintf("has the path %q: the JSON API's paths (/storage/v1, /upload/storage/v1) are added to the host", u.Path))
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fail("has a query or fragment")
	case bare && u.Port() == "":
		return fail("names no port: write host:port, or a URL (http://host)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fail(fmt.Sprintf("has the port %q, not one of 1-65535", p))
		}
	}
	return u.Scheme + "://" + u.Host, nil
}

// MaxObjectName is the most bytes (UTF-8) of a Cloud Storage object's
// name.
const MaxObjectName = 1024

// MaxPrefixLength is the longest prefix a gs:// store takes: with its
// "/", and the store's longest key (store.MaxKeyLength) after it, an
// object's name is at most MaxObjectName bytes.
var MaxPrefixLength = MaxObjectName - store.MaxKeyLength - 1

// PrefixError is a prefix too long for the store's keys to fit in Cloud
// Storage's object names: refused at New, so that it fails at plan,
// not at the first long key an apply writes.
type PrefixError struct {
	Prefix string
	Names  Names
}

func (e *PrefixError) Error() string {
	return fmt.Sprintf("the gs:// store's prefix %.40q… is %d bytes long; at most %d are allowed: Cloud Storage names an object in at "+
		"most %d bytes (UTF-8), and the store's longest keys (releases/<name>/digests/<sha256>/<version>) take %d of them after the "+
		"prefix and its \"/\". Shorten the prefix in %s", e.Prefix, len(e.Prefix), MaxPrefixLength, MaxObjectName, store.MaxKeyLength, e.Names.Store)
}

// nameTooLong refuses a key whose object name is over MaxObjectName
// bytes, before anything is sent: Cloud Storage would refuse it with a
// bare 400.
func (b *Backend) nameTooLong(op, key string) error {
	name := b.ObjectKey(key)
	if len(name) <= MaxObjectName {
		return nil
	}
	return &Error{
		Op: op, Key: fmt.Sprintf("gs://%s/%.60s…", b.bucket, name), Err: errNameTooLong,
		Reason: fmt.Sprintf("the object's name is %d bytes long; Cloud Storage names an object in at most %d bytes (UTF-8), "+
			"so nothing was sent", len(name), MaxObjectName),
		Hint: fmt.Sprintf("Shorten the prefix in %s (the store's own keys take up to %d bytes after it and its \"/\").", b.names.Store, store.MaxKeyLength),
	}
}

// errNameTooLong is a key whose object name Cloud Storage would refuse.
var errNameTooLong = errors.New("object name too long")

// NoCredentialsError is the failure to find Application Default
// Credentials, before any request was sent.
type NoCredentialsError struct{ Err error }

func (e *NoCredentialsError) Error() string { return "no Google Cloud credentials: " + e.Err.Error() }

func (e *NoCredentialsError) Unwrap() error { return e.Err }

// UniverseError is credentials (or GOOGLE_CLOUD_UNIVERSE_DOMAIN) of a
// universe other than Google Cloud's default one (googleapis.com): the
// backend sends requests only to storage.googleapis.com, and never sends
// a token of another universe there.
type UniverseError struct {
	Source string // what names the universe
	Domain string
}

func (e *UniverseError) Error() string {
	fix := "Use credentials of the default universe"
	if e.Source == EnvUniverse {
		fix = "Unset " + EnvUniverse + ", or set it to " + universe
	}
	return fmt.Sprintf("%s names the universe domain %q; gs:// stores support only Google Cloud's default universe (%s), "+
		"so nothing was sent. %s", e.Source, e.Domain, universe, fix)
}

// EnvCredentials is the variable, read by Google's libraries too, that
// names a key file to take credentials from.
const EnvCredentials = "GOOGLE_APPLICATION_CREDENTIALS"

// KeyFileError is a key file GOOGLE_APPLICATION_CREDENTIALS names that
// is not one: missing, a directory, unreadable, not JSON, or not a key
// of a type Google's libraries know. It never shows the file's content.
type KeyFileError struct {
	Path string
	Why  string
}

func (e *KeyFileError) Error() string {
	return fmt.Sprintf("%s names the key file %q, which %s, so nothing was sent", EnvCredentials, e.Path, e.Why)
}

// maxKeyFile is the most of a key file read: keys are a few KiB.
const maxKeyFile = 1 << 20

// keyTypes are the types of key file Google's libraries know.
var keyTypes = map[string]bool{
	"service_account": true, "authorized_user": true, "external_account": true,
	"external_account_authorized_user": true, "impersonated_service_account": true, "gdch_service_account": true,
}

// keyFileCredentials makes the credentials of the key file path (what
// GOOGLE_APPLICATION_CREDENTIALS names), each way it can fail a
// *KeyFileError naming the file and what is wrong with it.
func keyFileCredentials(ctx context.Context, path string) (*google.Credentials, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, &KeyFileError{Path: path, Why: "does not exist"}
	case err != nil:
		return nil, &KeyFileError{Path: path, Why: fmt.Sprintf("cannot be read (%v)", pathCause(err))}
	case fi.IsDir():
		return nil, &KeyFileError{Path: path, Why: "is a directory, not a key file"}
	case fi.Size() > maxKeyFile:
		return nil, &KeyFileError{Path: path, Why: fmt.Sprintf("holds %d bytes: too many for a key file (a few KiB of JSON)", fi.Size())}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &KeyFileError{Path: path, Why: fmt.Sprintf("cannot be read (%v)", pathCause(err))}
	}
	var f struct {
		Type string `json:"type"`
	}
	if !json.Valid(b) || json.Unmarshal(b, &f) != nil {
		return nil, &KeyFileError{Path: path, Why: "is not JSON (a key file as Google Cloud gives it is a JSON object)"}
	}
	if !keyTypes[f.Type] {
		what := "no type"
		if f.Type != "" {
			what = "a type no Google library knows"
		}
		return nil, &KeyFileError{Path: path, Why: "is not a key of a known type: its \"type\" is " + what +
			" (service_account, authorized_user, external_account, external_account_authorized_user, impersonated_service_account, gdch_service_account)"}
	}
	// Any known type, as Google's libraries take from this variable: the
	// file is the user's own choice, not input from elsewhere.
	creds, err := google.CredentialsFromJSONWithTypeAndParams(ctx, b, google.CredentialsType(f.Type), google.CredentialsParams{Scopes: []string{scope}})
	if err != nil {
		return nil, &KeyFileError{Path: path, Why: fmt.Sprintf("is a %s key Google's library cannot use (%v)", f.Type, err)}
	}
	return creds, nil
}

// pathCause is what a failed file operation said, without the path
// (the message names it already).
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// credentialSource names where Application Default Credentials come
// from, for messages: the key file GOOGLE_APPLICATION_CREDENTIALS names
// (its path, never its content), else the chain.
func credentialSource() string {
	if p := os.Getenv(EnvCredentials); p != "" {
		return fmt.Sprintf("the key file %q (%s)", p, EnvCredentials)
	}
	return "Application Default Credentials (gcloud's application-default login, workload identity or the metadata server)"
}

// TokenError is the failure of the credentials to make an access token
// (a key that does not parse, a token endpoint that cannot be reached or
// refuses the key): before any request reached Cloud Storage. It is not
// retried.
type TokenError struct {
	Source string // credentialSource's
	Err    error
}

func (e *TokenError) Error() string {
	var u *url.Error
	var re *oauth2.RetrieveError
	switch {
	case errors.As(e.Err, &re) && re.Response != nil:
		return fmt.Sprintf("the token endpoint refused the credentials of %s (%s)", e.Source, re.Response.Status)
	case errors.As(e.Err, &u):
		endpoint := u.URL
		if i := strings.IndexAny(endpoint, "?#"); i >= 0 {
			endpoint = endpoint[:i]
		}
		return fmt.Sprintf("the token endpoint %s of %s cannot be reached (%v)", endpoint, e.Source, u.Err)
	case strings.HasPrefix(e.Source, "the key file"):
		return fmt.Sprintf("%s does not parse as a service-account key, so no token could be made (%v)", e.Source, e.Err)
	}
	return fmt.Sprintf("%s could not make a token (%v)", e.Source, e.Err)
}

func (e *TokenError) Unwrap() error { return e.Err }

// tokenSource marks its source's errors as *TokenError, and asks again
// when the token endpoint failed in a way worth it.
type tokenSource struct {
	source string
	ts     oauth2.TokenSource
	net    *tokenTransport // under ts's requests: their connection failures
}

// tokenTransport is the transport of the requests for tokens; it keeps
// the last one's connection failure, which x/oauth2 passes on only as
// text (oauth2: cannot fetch token: %v). Its tokenSource is asked for
// one token at a time (oauth2.ReuseTokenSource holds a lock).
type tokenTransport struct {
	next http.RoundTripper
	last atomic.Pointer[url.Error]
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(req)
	if err != nil {
		u := req.URL.Scheme + "://" + req.URL.Host + req.URL.Path // no query: nothing of a credential
		t.last.Store(&url.Error{Op: req.Method, URL: u, Err: err})
	}
	return res, err
}

// tokenAttempts is how many times a token is asked for while the token
// endpoint fails in a way worth another try.
const tokenAttempts = 3

// tokenTimeout bounds one request for a token (the client given the
// credentials in their context, oauth2.HTTPClient). (Tests shorten it.)
var tokenTimeout = 30 * time.Second

func (t *tokenSource) Token() (*oauth2.Token, error) {
	for attempt := 1; ; attempt++ {
		t.net.last.Store(nil)
		tok, err := t.ts.Token()
		if err == nil {
			return tok, nil
		}
		if u := t.net.last.Load(); u != nil {
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				err = u // the connection failed: x/oauth2 says so as text only
			}
		}
		if attempt >= tokenAttempts || !tokenRetriable(err) {
			return nil, &TokenError{Source: t.source, Err: err}
		}
		// Token has no context: the wait is a short backoff, and the
		// request it precedes is bounded by tokenTimeout.
		time.Sleep(store.Backoff(attempt))
	}
}

// tokenRetriable reports whether a failure to make a token is worth
// another try: the token endpoint failing (5xx), asking to slow down
// (429), or a connection failing; never a refusal (4xx: invalid_grant, a
// key revoked), nor a key that does not parse.
func tokenRetriable(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.Response != nil && (re.Response.StatusCode >= 500 || re.Response.StatusCode == http.StatusTooManyRequests)
	}
	var u *url.Error
	var n net.Error
	return errors.As(err, &u) || errors.As(err, &n)
}

// httpClient returns the backend's client, making it on first use: with
// STORAGE_EMULATOR_HOST set (New made it), unauthenticated; else
// authenticated with Application Default Credentials.
func (b *Backend) httpClient(ctx context.Context) (*http.Client, error) {
	b.init.Lock()
	defer b.init.Unlock()
	if b.client != nil {
		return b.client, nil
	}
	// Not the first operation's context: the credentials keep it to
	// refresh their tokens, long after that operation ended. Its client
	// bounds each request for a token.
	tt := &tokenTransport{next: b.tokenBase}
	tokenCtx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, &http.Client{Timeout: tokenTimeout, Transport: tt})
	var creds *google.Credentials
	var err error
	if p := os.Getenv(EnvCredentials); p != "" {
		// As Google's libraries read it, each way it fails said.
		if creds, err = keyFileCredentials(tokenCtx, p); err != nil {
			err = &NoCredentialsError{Err: err}
		}
	} else if creds, err = google.FindDefaultCredentials(tokenCtx, scope); err != nil {
		err = &NoCredentialsError{Err: err}
	}
	if err != nil {
		return nil, err
	}
	source := credentialSource()
	d, err := creds.GetUniverseDomain()
	if err != nil {
		return nil, &TokenError{Source: source, Err: fmt.Errorf("asking for the universe domain: %w", err)}
	}
	if d != universe {
		from := "the credentials of " + source
		if p := os.Getenv(EnvCredentials); p != "" {
			from = fmt.Sprintf("the key file %q (%s), in its universe_domain,", p, EnvCredentials)
		}
		return nil, &UniverseError{Source: from, Domain: d}
	}
	var rt http.RoundTripper = &oauth2.Transport{
		Source: oauth2.ReuseTokenSource(nil, &tokenSource{source: source, ts: creds.TokenSource, net: tt}),
		Base:   &counting{b: b, next: b.base},
	}
	if p := quotaProject(creds.JSON); p != "" {
		rt = &userProject{project: p, next: rt}
	}
	b.client = b.newClient(rt)
	return b.client, nil
}

// quotaProject is the project requests are billed and counted to, when
// one is named: GOOGLE_CLOUD_QUOTA_PROJECT, else the credentials' JSON
// (quota_project_id), as Google's libraries read them; "" for none.
func quotaProject(credsJSON []byte) string {
	if p := os.Getenv(EnvQuotaProject); p != "" {
		return p
	}
	var f struct {
		QuotaProjectID string `json:"quota_project_id"`
	}
	if len(credsJSON) > 0 && json.Unmarshal(credsJSON, &f) == nil {
		return f.QuotaProjectID
	}
	return ""
}

// userProject sends X-Goog-User-Project with every request: the quota
// project.
type userProject struct {
	project string
	next    http.RoundTripper
}

func (u *userProject) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("X-Goog-User-Project", u.project)
	return u.next.RoundTrip(r)
}

// newClient is a client on rt that follows no redirect: a 308 is a
// resumable upload's answer to a chunk, not a redirect.
func (b *Backend) newClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Attempts is how many times a request is tried before it fails.
func (b *Backend) Attempts() int { return b.attempts }

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

// counting is the transport under the auth layer: it counts each
// operation's tries (in its context: store.WithTries) and notes when the
// endpoint has answered.
type counting struct {
	b    *Backend
	next http.RoundTripper
}

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	if t := store.TriesOf(req.Context()); t != nil {
		t.Add()
	}
	res, err := c.next.RoundTrip(req)
	if err == nil {
		c.b.reached.Store(true)
	}
	return res, err
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// ObjectKey is the GCS object name of a store key.
func (b *Backend) ObjectKey(key string) string { return b.prefix + key }

// Bucket is the bucket name.
func (b *Backend) Bucket() string { return b.bucket }

func (b *Backend) String() string { return b.url }

// Error is a GCS failure explained for a user: what was done, what went
// wrong, and what to do.
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

// permission is the IAM permission an operation needs.
func permission(op string) string {
	switch {
	case strings.HasPrefix(op, "writing"):
		return "storage.objects.create"
	case strings.HasPrefix(op, "listing"):
		return "storage.objects.list"
	case strings.HasPrefix(op, "deleting"):
		return "storage.objects.delete"
	}
	return "storage.objects.get"
}

func (b *Backend) wrap(op, key string, err error) error { return b.wrapTried(op, key, err, b.attempts) }

// wrapTried is wrap for an operation that was tried n times.
func (b *Backend) wrapTried(op, key string, err error, n int) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	e := &Error{Op: op, Key: "gs://" + b.bucket + "/" + b.ObjectKey(key), Err: err, Reason: err.Error()}
	var api *APIError
	var noCreds *NoCredentialsError
	var tokErr *TokenError
	var universeErr *UniverseError
	var unreached *store.UnreachedError
	var keyErr *KeyFileError
	var proto *UploadProtocolError
	var netErr net.Error
	var urlErr *url.Error
	switch {
	case errors.As(err, &keyErr):
		e.Reason = "no Google Cloud credentials were found: " + keyErr.Error()
		e.Hint = "Point " + EnvCredentials + " at a key file as Google Cloud gives it (JSON: a service-account key, or " +
			"gcloud's application_default_credentials.json), or unset it and run `gcloud auth application-default login`, or run " +
			"where workload identity or the metadata server provides credentials. Credentials never go in the store URL or in a configuration."
	case errors.As(err, &noCreds):
		e.Reason = fmt.Sprintf("no Google Cloud credentials were found, so nothing was sent (%v)", noCreds.Err)
		e.Hint = "Run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, " +
			"or run where workload identity or the metadata server provides them. Credentials never go in the store URL or in a configuration."
	case errors.As(err, &universeErr):
		e.Reason = universeErr.Error()
		e.Hint = "The gs:// store sends requests only to storage.googleapis.com: other universes (sovereign clouds, " +
			"Google Distributed Cloud) and mTLS through the enterprise certificate proxy are not supported."
	case errors.As(err, &tokErr):
		e.Reason = tokErr.Error() + ", so nothing was sent to " + b.endpoint
		e.Hint = "Check the credentials: set " + EnvCredentials + " to a service-account key file as Google Cloud " +
			"gives it (JSON, with its private_key intact), or run `gcloud auth application-default login`."
		if os.Getenv(EnvCredentials) != "" {
			e.Hint = "Check the key file " + EnvCredentials + " names: a service-account key as Google Cloud gives it (JSON, " +
				"with its private_key intact), or unset it and run `gcloud auth application-default login`."
		}
		if errors.As(tokErr.Err, new(*url.Error)) {
			e.Hint += " A token endpoint that cannot be reached is the network's or a proxy's failure, not the store's."
		}
	case errors.As(err, &unreached) || !b.reached.Load() && (errors.As(err, &netErr) || errors.As(err, &urlErr)):
		e.Reason = fmt.Sprintf("cannot reach %s (%s)", b.endpoint, cause(err))
		e.Hint = "Check the network, and " + EnvEmulator + " if it is set (it points every request at an emulator); gave up having never reached it."
	case errors.As(err, &proto):
		e.Reason = proto.Error()
		e.Hint = "The endpoint, or a proxy between it and this machine, answered outside Cloud Storage's resumable upload protocol; " +
			"nothing was made visible. Check a proxy on the way (HTTPS_PROXY) and " + EnvEmulator + " if it is set. " + b.names.Rerun
	case errors.Is(err, errBucketNotExist):
		e.Reason = fmt.Sprintf("the bucket %q does not exist at %s", b.bucket, b.endpoint)
		e.Hint = "Check the bucket in " + b.names.Store + " (gs://BUCKET/PREFIX), and that it was created (gcloud storage buckets create gs://" + b.bucket + ")."
	case errors.As(err, &api) && api.Code == http.StatusUnauthorized:
		e.Reason = fmt.Sprintf("the credentials were rejected by %s (401: %s)", b.endpoint, api.Message)
		e.Hint = "Run `gcloud auth application-default login` again (the login may have expired), or check GOOGLE_APPLICATION_CREDENTIALS."
	case errors.As(err, &api) && api.Code == http.StatusForbidden:
		e.Reason = fmt.Sprintf("access denied by %s (403: %s)", b.endpoint, api.Message)
		e.Hint = fmt.Sprintf("Grant the principal %s on the bucket %q. Plans need storage.objects.get and storage.objects.list; "+
			"applies also storage.objects.create; only the collector storage.objects.delete (see the guide \"Sharing releases on Google Cloud and Azure\").",
			permission(op), b.bucket)
	case errors.As(err, &api):
		e.Reason = fmt.Sprintf("%s answered %d (%s)", b.endpoint, api.Code, api.Message)
		switch {
		case api.Code >= 500 || api.Code == http.StatusTooManyRequests:
			e.Hint = fmt.Sprintf("The server failed, not the settings; gave up after %s. %s", plural(n, "attempt"), b.names.Rerun)
		case api.Code == http.StatusBadRequest && strings.Contains(api.Message, "CRC32C"):
			e.Hint = "The content changed on its way to the server (the network, or a proxy on the way), which refused it; nothing was stored. " + b.names.Rerun
		default:
			e.Hint = "Check " + b.names.Store + "."
		}
	case errors.As(err, &netErr) || errors.As(err, &urlErr):
		e.Reason = fmt.Sprintf("the connection to %s failed (%s)", b.endpoint, cause(err))
		e.Hint = fmt.Sprintf("The network failed, not the settings: the endpoint answered other requests; gave up after %s. %s", plural(n, "attempt"), b.names.Rerun)
	default:
		e.Hint = "Check " + b.names.Store + "."
	}
	return e
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// cause is what a failed connection said, without the wrapping.
func cause(err error) string {
	var u *url.Error
	if errors.As(err, &u) {
		return u.Err.Error()
	}
	return err.Error()
}

var (
	smallPool = store.NewBufferPool(store.SmallPart)
	partPool  = store.NewBufferPool(PartSize)
)

// TagMetadata is the custom metadata key in which each Create stores a
// random tag of its own: the one thing that tells the object a write made
// from another writer's with the same bytes.
const TagMetadata = "immutable-write"

// Create implements store.Backend with a conditional write
// (ifGenerationMatch=0). It holds one request slot for the whole upload,
// so memory is bounded by the slots: at most MaxConcurrency part buffers.
func (b *Backend) Create(ctx context.Context, key string, r io.Reader) error {
	if err := b.nameTooLong("writing", key); err != nil {
		return err
	}
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
	first, whole := small[:n], n < len(small)
	if !whole {
		// Up to PartSize read before anything is sent: content that ends
		// there goes in one request, sent from this buffer (pooled) as
		// it is, never copied.
		pp := partPool.Get()
		defer partPool.Put(pp)
		buf := *pp
		copy(buf, small)
		m, err := store.ReadPart(r, buf[len(small):])
		if err != nil {
			return err
		}
		n = len(small) + m
		first, whole = buf[:n], n < len(buf)
	}
	c, err := b.httpClient(ctx)
	if err != nil {
		return b.wrap("writing", key, err)
	}
	ctx, t := store.WithTries(ctx)
	tag := store.NewWriteTag()
	vanished := false
	for {
		var err error
		var made *object // the object resource the upload's last answer holds
		var s sent
		lastSends := 0 // requests that carried a resumable upload's last chunk
		if whole {
			made, s, err = b.uploadMultipart(ctx, c, key, tag, first)
		} else {
			made, s, err = b.uploadResumable(ctx, c, key, tag, first, r, &lastSends)
		}
		var api *APIError
		isAPI := errors.As(err, &api)
		exists := isAPI && api.Code == http.StatusPreconditionFailed
		// A resumable upload whose last chunk is sent again after it landed
		// (its answer lost) meets a session that is gone once the object
		// is made: fake-gcs-server answers 404, GCS answers 200 or, for a
		// session expired or cancelled meanwhile, 404 or 410. Only when
		// the last chunk was sent more than once: a 404 to its first
		// send (or to an earlier chunk) made nothing.
		sessionGone := isAPI && (api.Code == http.StatusNotFound || api.Code == http.StatusGone) && !whole && lastSends > 1
		switch {
		case err == nil:
			return b.settle(ctx, c, key, tag, made, s)
		case errors.Is(err, errReader):
			return errors.Unwrap(err)
		case exists && t.Load() <= 1:
			return store.ErrExists
		case exists || sessionGone:
			// A retry met an object: this write's own first try, whose
			// answer was lost, or another writer's.
			o, found, rerr := b.tagged(ctx, c, key)
			own := found && o.Metadata[TagMetadata] == tag
			switch {
			case rerr != nil:
				return rerr
			case own:
				return b.settle(ctx, c, key, tag, o, s)
			case found:
				return store.ErrExists
			case !vanished && whole:
				vanished = true // deleted in between: the key is empty, write it again
				continue
			case sessionGone:
				return b.wrap("writing", key, err)
			}
			return &Error{
				Op: "writing", Key: "gs://" + b.bucket + "/" + b.ObjectKey(key), Err: err,
				Reason: "the key held an object when written (412 Precondition Failed) and none when asked for it right after: " +
					"something is deleting objects of the store as they are written",
				Hint: "Only the collector (gc) should delete objects under the store's prefix, and only old ones: check for a lifecycle " +
					"rule deleting objects there, or another tool deleting them. " + b.names.Rerun,
			}
		}
		if isAPI && api.Code == http.StatusNotFound {
			// GCS answers an upload to a missing bucket 404.
			if nf := b.notFound(ctx, c, "writing", key); !errors.Is(nf, store.ErrNotFound) {
				return nf
			}
		}
		return b.wrap("writing", key, err)
	}
}

// errReader marks a failure of the content being written.
var errReader = errors.New("reading the content")

type readerError struct{ err error }

func (e *readerError) Error() string        { return e.err.Error() }
func (e *readerError) Unwrap() error        { return e.err }
func (e *readerError) Is(target error) bool { return target == errReader }

// metadata is the object resource a create sends: its name, its type
// and the write's tag, and the content's CRC32C when known (crc32c: ""
// when not), which GCS checks before it makes the object.
func (b *Backend) metadata(key, tag, crc32c string) []byte {
	o := map[string]any{
		"name":        b.ObjectKey(key),
		"contentType": "application/octet-stream",
		"metadata":    map[string]string{TagMetadata: tag},
	}
	if crc32c != "" {
		o["crc32c"] = crc32c
	}
	m, _ := json.Marshal(o) // strings only: never fails
	return m
}

// castagnoli is the table of CRC32C, the checksum GCS checks uploads by.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeCRC32C is the form GCS takes a CRC32C in: base64 of its 4 bytes,
// big-endian.
func encodeCRC32C(sum uint32) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, sum))
}

// createQuery is the query of a conditional create of key.
func (b *Backend) createQuery(uploadType, key string) url.Values {
	return url.Values{
		"uploadType":        {uploadType},
		"name":              {b.ObjectKey(key)},
		"ifGenerationMatch": {"0"}, // only if no object is there: write-once
		// What settle checks the object made against.
		"fields": {objectFields},
	}
}

// uploadMultipart writes data, the whole content, to key in one request
// (uploadType=multipart: the object's metadata, then its bytes), the body
// sent from data itself: no copy, whatever its size. Its CRC32C goes in
// the metadata: GCS refuses content that does not match it. It returns
// the object resource answered (for settle) and what was sent.
func (b *Backend) uploadMultipart(ctx context.Context, c *http.Client, key, tag string, data []byte) (*object, sent, error) {
	boundary := store.NewWriteTag()
	for bytes.Contains(data, []byte(boundary)) {
		boundary = store.NewWriteTag()
	}
	s := sent{crc32c: crc32.Checksum(data, castagnoli), size: int64(len(data))}
	meta := b.metadata(key, tag, encodeCRC32C(s.crc32c))
	head := []byte("--" + boundary + "\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n" + string(meta) +
		"\r\n--" + boundary + "\r\nContent-Type: application/octet-stream\r\n\r\n")
	tail := []byte("\r\n--" + boundary + "--\r\n")
	res, err := b.do(ctx, c, request{
		method: http.MethodPost, url: b.bucketURL(true, b.createQuery("multipart", key)),
		header: http.Header{"Content-Type": {"multipart/related; boundary=" + boundary}},
		body: func() io.Reader {
			return io.MultiReader(bytes.NewReader(head), bytes.NewReader(data), bytes.NewReader(tail))
		},
		size: int64(len(head) + len(data) + len(tail)),
	})
	if err != nil {
		return nil, s, err
	}
	return readObject(res), s, nil
}

// uploadResumable writes the content to key as a resumable upload: a
// session opened with the create's precondition, then the content in
// chunks of len(buf) (PartSize, a multiple of 256 KiB), the first the
// full buf, the rest read from r into buf, the last stating the total,
// which finalizes the object, with the content's CRC32C (X-Goog-Hash),
// which GCS checks before it makes the object. An upload abandoned before its last chunk
// (the content failed, the context ended) leaves nothing visible; GCS
// drops the session within a week. lastSends counts the requests that
// carried the last chunk: more than one, and the object may be this
// upload's already. It returns the object resource the last chunk's
// answer holds (for settle) and what was sent, known once the last
// chunk is: also when that chunk failed.
func (b *Backend) uploadResumable(ctx context.Context, c *http.Client, key, tag string, buf []byte, r io.Reader, lastSends *int) (*object, sent, error) {
	meta := b.metadata(key, tag, "")
	res, err := b.do(ctx, c, request{
		method: http.MethodPost, url: b.bucketURL(true, b.createQuery("resumable", key)),
		header: http.Header{
			"Content-Type":          {"application/json; charset=UTF-8"},
			"X-Upload-Content-Type": {"application/octet-stream"},
		},
		body: func() io.Reader { return bytes.NewReader(meta) }, size: int64(len(meta)),
	})
	if err != nil {
		return nil, sent{}, err
	}
	drain(res.Body)
	session, err := b.sessionURL(res.Header.Get("Location"))
	if err != nil {
		return nil, sent{}, err
	}
	var off int64
	var sum uint32
	n := len(buf)
	for {
		// Whether this chunk is the last: the content ends in it, or
		// nothing follows it (one byte read ahead, carried over).
		var next [1]byte
		last := n < len(buf)
		more := 0
		if !last {
			m, err := io.ReadFull(r, next[:])
			if err != nil && err != io.EOF {
				return nil, sent{}, &readerError{err}
			}
			last, more = m == 0, m
		}
		total := int64(-1)
		sum = crc32.Update(sum, castagnoli, buf[:n])
		hash := ""
		var sends *int
		if last {
			total = off + int64(n)
			hash = "crc32c=" + encodeCRC32C(sum)
			sends = lastSends
		}
		made, err := b.sendChunk(ctx, c, session, buf[:n], off, total, hash, sends)
		switch {
		case last:
			// What was sent, known now: a last chunk's answer lost, the
			// object met then is checked against it.
			return made, sent{crc32c: sum, size: total}, err
		case err != nil:
			return nil, sent{}, err
		}
		off += int64(n)
		buf[0] = next[0]
		m, err := store.ReadPart(r, buf[more:])
		if err != nil {
			return nil, sent{}, &readerError{err}
		}
		n = more + m
	}
}

// sendChunk sends chunk, at off of the content, to the session; total is
// the content's length when chunk is its end (the chunk that finalizes
// the object, with hash, its X-Goog-Hash), else -1; sends counts the
// requests that carried it (every try). A chunk of which the server kept
// only the start (a 308 whose Range ends short of it) has its rest sent
// again; a 308 that keeps none of what was sent is a try like a failed
// one: sent again after a backoff, and, once the backend's attempts are
// spent, an *UploadProtocolError. The last chunk's answer is the object
// made: its resource, read (nil when it does not parse).
func (b *Backend) sendChunk(ctx context.Context, c *http.Client, session string, chunk []byte, off, total int64, hash string, sends *int) (*object, error) {
	end := off + int64(len(chunk))
	stalled := 0 // tries answered 308 keeping nothing more
	for sent := off; ; {
		rest := chunk[sent-off:]
		size := "*"
		if total >= 0 {
			size = strconv.FormatInt(total, 10)
		}
		rng := "bytes */" + size // an empty last chunk: the total only
		if len(rest) > 0 {
			rng = fmt.Sprintf("bytes %d-%d/%s", sent, end-1, size)
		}
		header := http.Header{"Content-Range": {rng}}
		if hash != "" {
			header.Set("X-Goog-Hash", hash)
		}
		res, err := b.do(ctx, c, request{
			method: http.MethodPut, url: session,
			header: header,
			body:   func() io.Reader { return bytes.NewReader(rest) }, size: int64(len(rest)),
			chunk: true, tries: sends,
		})
		if err != nil {
			return nil, err
		}
		if res.StatusCode != http.StatusPermanentRedirect {
			if total < 0 {
				drain(res.Body)
				return nil, b.protocolError(fmt.Sprintf("answered %s to a chunk that is not the last of its upload (it answers 308 Permanent Redirect there)", res.Status))
			}
			return readObject(res), nil // 200 or 201: the object is made
		}
		drain(res.Body)
		// 308: the upload goes on; Range says what the server holds.
		kept := int64(0)
		if r := res.Header.Get("Range"); r != "" {
			_, last, ok := strings.Cut(strings.TrimPrefix(r, "bytes="), "-")
			v, err := strconv.ParseInt(last, 10, 64)
			if !ok || err != nil {
				return nil, b.protocolError(fmt.Sprintf("answered a chunk with Range %q, which does not parse", r))
			}
			kept = v + 1
		}
		switch {
		case kept >= end && total < 0:
			return nil, nil
		case kept < sent || kept > end || total >= 0 && kept >= end:
			return nil, b.protocolError(fmt.Sprintf("holds %s of an upload after bytes %d-%d were sent", heldBytes(kept), sent, end-1))
		case kept == sent:
			stalled++
			if stalled >= b.attempts {
				return nil, b.protocolError(fmt.Sprintf("answered %s of bytes %d-%d of an upload with 308 holding %s: "+
					"it kept no more of the chunk (a proxy dropping the Range header?)", plural(stalled, "send"), sent, end-1, heldBytes(kept)))
			}
			if err := store.Sleep(ctx, store.Backoff(stalled)); err != nil {
				return nil, err
			}
		default:
			stalled = 0 // some kept: the rest goes on
		}
		sent = kept
	}
}

// heldBytes says which bytes of an upload a server holds, for messages.
func heldBytes(kept int64) string {
	if kept <= 0 {
		return "none of its bytes"
	}
	return fmt.Sprintf("bytes 0-%d", kept-1)
}

// UploadProtocolError is an answer of the endpoint (or of a proxy on the
// way to it) outside Cloud Storage's resumable upload protocol: no
// session URL, or one elsewhere than the endpoint, a chunk's answer that
// does not say what was kept, or that keeps nothing. Nothing was made
// visible.
type UploadProtocolError struct {
	Endpoint string
	What     string // what it answered
}

func (e *UploadProtocolError) Error() string { return e.Endpoint + " " + e.What }

func (b *Backend) protocolError(what string) error {
	return &UploadProtocolError{Endpoint: b.endpoint, What: what}
}

// sessionURL checks the session URL a resumable upload's opening gave
// (its Location) before the chunks, and the bearer token with them, go
// there: it must be on the endpoint itself, the same scheme and host.
func (b *Backend) sessionURL(location string) (string, error) {
	if location == "" {
		return "", b.protocolError("opened a resumable upload and gave no session URL (Location)")
	}
	u, err := url.Parse(location)
	if err != nil {
		return "", b.protocolError(fmt.Sprintf("opened a resumable upload with a session URL that does not parse (%v)", err))
	}
	h, err := url.Parse(b.host)
	if err != nil {
		return "", err // New made it: never fails
	}
	if !strings.EqualFold(u.Scheme, h.Scheme) || !strings.EqualFold(u.Host, h.Host) {
		return "", b.protocolError(fmt.Sprintf("opened a resumable upload with a session URL on %s://%s, not on the endpoint %s: "+
			"the chunks (and the credentials' token) are sent only to the endpoint", u.Scheme, u.Host, b.host))
	}
	return location, nil
}

// tagged asks for the object's resource (objectFields and its
// metadata) and reports whether it is found: its tag tells whether this
// write made it. The caller holds a request slot already (Create): it
// takes none.
func (b *Backend) tagged(ctx context.Context, c *http.Client, key string) (*object, bool, error) {
	res, err := b.do(ctx, c, request{method: http.MethodGet, url: b.objectURL(b.ObjectKey(key), url.Values{"fields": {"metadata," + objectFields}})})
	var api *APIError
	if errors.As(err, &api) && api.Code == http.StatusNotFound {
		return nil, false, nil
	}
	const op = "checking (to tell a lost answer from another writer's object)"
	if err != nil {
		return nil, false, b.wrap(op, key, err)
	}
	var o object
	if err := decode(res, &o); err != nil {
		return nil, false, b.wrap(op, key, err)
	}
	return &o, true, nil
}

// objectFields are the fields of an object resource a create asks for
// in its answer: what settle checks the object made against.
const objectFields = "generation,size,crc32c"

// object is what a create reads of the object resource it made.
type object struct {
	Generation string            `json:"generation"` // int64, as a string
	Size       string            `json:"size"`       // as above
	CRC32C     string            `json:"crc32c"`     // base64 of its 4 bytes, big-endian
	Metadata   map[string]string `json:"metadata"`
}

// readObject reads the object resource an upload's last answer holds,
// and closes it; nil when it does not parse.
func readObject(res *http.Response) *object {
	var o object
	if decode(res, &o) != nil {
		return nil
	}
	return &o
}

// sent is what a create sent: the content's CRC32C and length.
type sent struct {
	crc32c uint32
	size   int64
}

// settle checks the object a create made (made, the resource its last
// answer held: nil, or without its CRC32C, when it did not say, and
// then asked for) against the content sent: GCS checks a CRC32C stated
// with the content, but a server (or a proxy on the way) that checks
// none, or a resumable upload's chunk changed before its last one,
// leaves bytes other than those sent, which would pass for the content
// until read. An object whose CRC32C or size is not what was sent is
// this write's own (the answer to its conditional create, or its tag,
// says so): it is deleted, that generation only, and the write fails
// saying nothing was stored, or, when the delete fails, naming the
// object to delete.
func (b *Backend) settle(ctx context.Context, c *http.Client, key, tag string, made *object, s sent) error {
	if made == nil || made.CRC32C == "" || made.Size == "" || made.Generation == "" {
		o, found, err := b.tagged(ctx, c, key)
		switch {
		case err != nil:
			return err
		case !found:
			return &Error{
				Op: "writing", Key: "gs://" + b.bucket + "/" + b.ObjectKey(key), Err: store.ErrNotFound,
				Reason: b.endpoint + " made the object and had none under its name right after: something is deleting objects of the store as they are written",
				Hint: "Only the collector (gc) should delete objects under the store's prefix, and only old ones: check for a lifecycle " +
					"rule deleting objects there, or another tool deleting them. " + b.names.Rerun,
			}
		case o.Metadata[TagMetadata] != tag:
			return store.ErrExists // replaced in between: another writer's
		}
		made = o
	}
	var wrong string
	got, ok := decodeCRC32C(made.CRC32C)
	switch {
	case made.CRC32C == "":
		wrong = "states no CRC32C for it"
	case !ok:
		wrong = fmt.Sprintf("states a CRC32C for it that does not parse (%q)", made.CRC32C)
	case got != s.crc32c:
		wrong = fmt.Sprintf("holds bytes whose CRC32C is %s, not %s, the CRC32C of the %d bytes sent", made.CRC32C, encodeCRC32C(s.crc32c), s.size)
	case made.Size != strconv.FormatInt(s.size, 10):
		wrong = fmt.Sprintf("holds %s bytes, not the %d sent", made.Size, s.size)
	default:
		return nil
	}
	name := "gs://" + b.bucket + "/" + b.ObjectKey(key)
	e := &Error{
		Op: "writing", Key: name, Err: errChecksum,
		Reason: fmt.Sprintf("%s made the object but %s: the bytes changed on their way to it (the network, or a proxy on the way), "+
			"and it did not refuse them", b.endpoint, wrong),
	}
	gen, err := strconv.ParseInt(made.Generation, 10, 64)
	if err != nil || gen <= 0 {
		err = fmt.Errorf("its generation %q does not parse", made.Generation)
	} else {
		err = b.deleteGeneration(ctx, c, key, gen)
	}
	if err == nil {
		e.Hint = fmt.Sprintf("The object this write made (generation %d) was deleted: nothing was stored. %s", gen, b.names.Rerun)
		return e
	}
	e.Hint = fmt.Sprintf("Deleting the object this write made failed (%v), so it is still there, damaged, and every read of it fails its "+
		"checks: delete it (`gcloud storage rm %s#%s`: that generation only, which carries this write's tag %s=%s in its metadata), "+
		"then run again.", cause(err), name, made.Generation, TagMetadata, tag)
	return e
}

// deleteGeneration deletes generation gen of key, only while it is the
// object under the name (ifGenerationMatch): never another writer's. One
// gone already is no error. The caller holds a request slot already.
func (b *Backend) deleteGeneration(ctx context.Context, c *http.Client, key string, gen int64) error {
	g := strconv.FormatInt(gen, 10)
	return b.sendDelete(ctx, c, key, url.Values{"generation": {g}, "ifGenerationMatch": {g}})
}

// sendDelete deletes key with the query q; an object gone already (404)
// is no error.
func (b *Backend) sendDelete(ctx context.Context, c *http.Client, key string, q url.Values) error {
	res, err := b.do(ctx, c, request{method: http.MethodDelete, url: b.objectURL(b.ObjectKey(key), q)})
	var api *APIError
	switch {
	case err == nil:
		drain(res.Body)
		return nil
	case errors.As(err, &api) && api.Code == http.StatusNotFound:
		return nil
	}
	return err
}

// notFound turns a 404 into store.ErrNotFound, or into the bucket's
// absence: GCS answers both alike for an object, so a first 404 of a
// backend asks once (a one-object listing) whether the bucket exists, or a
// typo in the bucket would read as "empty".
func (b *Backend) notFound(ctx context.Context, c *http.Client, op, key string) error {
	if !b.bucketOK.Load() {
		_, _, err := b.listObjects(ctx, c, b.prefix, "", 1)
		switch {
		case errors.Is(err, errBucketNotExist):
			return b.wrap(op, key, err)
		case err == nil:
			b.bucketOK.Store(true)
		default:
			// A listing failed, not op itself: the permission it lacks
			// is storage.objects.list.
			return b.wrap("listing the bucket (to tell a missing bucket from a missing object) while "+op, key, err)
		}
	}
	return fmt.Errorf("%s: %w", key, store.ErrNotFound)
}

// Open implements store.Backend: the object's bytes (alt=media),
// streamed. The request slot is held until the response starts; the body
// keeps its connection until it is closed.
func (b *Backend) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	defer b.release()
	c, err := b.httpClient(ctx)
	if err != nil {
		return nil, b.wrap("reading", key, err)
	}
	res, err := b.do(ctx, c, request{method: http.MethodGet, url: b.objectURL(b.ObjectKey(key), url.Values{"alt": {"media"}})})
	var api *APIError
	if errors.As(err, &api) && api.Code == http.StatusNotFound {
		return nil, b.notFound(ctx, c, "reading", key)
	}
	if err != nil {
		return nil, b.wrap("reading", key, err)
	}
	b.bucketOK.Store(true) // an object was read: the bucket exists
	// The bytes as stored are checked against their CRC32C, which GCS
	// states (X-Goog-Hash) for the whole object; not when they come
	// decoded (Content-Encoding, or Go's transport undoing a gzip), as
	// the hash is of the bytes stored.
	if want, ok := crc32cHeader(res.Header); ok && res.Header.Get("Content-Encoding") == "" && !res.Uncompressed {
		return &checkedBody{body: res.Body, want: want, fail: func() error {
			name := "gs://" + b.bucket + "/" + b.ObjectKey(key)
			return &Error{
				Op: "reading", Key: name, Err: errChecksum,
				Reason: fmt.Sprintf("the bytes read from %s do not match the CRC32C it states for the object (X-Goog-Hash): "+
					"the object may be damaged where it is stored, or its bytes changed on the way (the network, or a proxy on the way)", b.endpoint),
				Hint: "Nothing read was kept. Run again: if the mismatch stays, the stored object is damaged, and the store never " +
					"overwrites objects: delete it (`gcloud storage rm " + name + "`) and, for a directory artifact, its listing " +
					"(trees/sha256/<first two hex digits>/<hex> of its digest: a stored listing promises its files, so publishing " +
					"again skips them while it is there); then apply again: the immutable_artifact's refresh finds it gone and " +
					"publishes it from its source.",
			}
		}}, nil
	}
	return res.Body, nil
}

// errChecksum is an object's bytes read not matching its CRC32C.
var errChecksum = errors.New("CRC32C mismatch")

// crc32cHeader is the CRC32C an X-Goog-Hash header states
// ("crc32c=<base64>,md5=<base64>", or one value each), if any.
func crc32cHeader(h http.Header) (uint32, bool) {
	for _, v := range h.Values("X-Goog-Hash") {
		for _, part := range strings.Split(v, ",") {
			enc, ok := strings.CutPrefix(strings.TrimSpace(part), "crc32c=")
			if !ok {
				continue
			}
			return decodeCRC32C(enc)
		}
	}
	return 0, false
}

// decodeCRC32C reads a CRC32C in the form GCS states it: base64 of its 4
// bytes, big-endian.
func decodeCRC32C(enc string) (uint32, bool) {
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(raw) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(raw), true
}

// checkedBody is an object's body whose CRC32C is checked at its end: a
// mismatch is the error of the read that meets the end, instead of
// io.EOF.
type checkedBody struct {
	body io.ReadCloser
	want uint32
	sum  uint32
	fail func() error
}

func (c *checkedBody) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	c.sum = crc32.Update(c.sum, castagnoli, p[:n])
	if err == io.EOF && c.sum != c.want {
		return n, c.fail()
	}
	return n, err
}

func (c *checkedBody) Close() error { return c.body.Close() }

// Exists implements store.Backend: the object's metadata (its name
// only), asked for.
func (b *Backend) Exists(ctx context.Context, key string) (bool, error) {
	if err := b.acquire(ctx); err != nil {
		return false, err
	}
	defer b.release()
	c, err := b.httpClient(ctx)
	if err != nil {
		return false, b.wrap("checking", key, err)
	}
	res, err := b.do(ctx, c, request{method: http.MethodGet, url: b.objectURL(b.ObjectKey(key), url.Values{"fields": {"name"}})})
	var api *APIError
	switch {
	case err == nil:
		drain(res.Body)
		b.bucketOK.Store(true)
		return true, nil
	case errors.As(err, &api) && api.Code == http.StatusNotFound:
		if err := b.notFound(ctx, c, "checking", key); !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
		return false, nil
	}
	return false, b.wrap("checking", key, err)
}

// listPage is how many objects one listing request returns (GCS's most).
const listPage = 1000

// listObjects lists one page of the objects whose names start with prefix
// (the whole name), from token (a previous page's), at most limit: each
// one's name, size and creation time, and the next page's token ("" at
// the end). A listing answered 404 is errBucketNotExist.
func (b *Backend) listObjects(ctx context.Context, c *http.Client, prefix, token string, limit int) ([]store.ObjectInfo, string, error) {
	q := url.Values{
		"prefix":     {prefix},
		"maxResults": {strconv.Itoa(limit)},
		"fields":     {"items(name,size,timeCreated),nextPageToken"},
	}
	if token != "" {
		q.Set("pageToken", token)
	}
	res, err := b.do(ctx, c, request{method: http.MethodGet, url: b.bucketURL(false, q)})
	var api *APIError
	if errors.As(err, &api) && api.Code == http.StatusNotFound {
		return nil, "", fmt.Errorf("%w (404: %s)", errBucketNotExist, api.Message)
	}
	if err != nil {
		return nil, "", err
	}
	var page struct {
		Items []struct {
			Name        string    `json:"name"`
			Size        int64     `json:"size,string"`
			TimeCreated time.Time `json:"timeCreated"`
		} `json:"items"`
		NextPageToken string `json:"nextPageToken"`
	}
	if err := decode(res, &page); err != nil {
		return nil, "", err
	}
	infos := make([]store.ObjectInfo, len(page.Items))
	for i, o := range page.Items {
		infos[i] = store.ObjectInfo{Key: strings.TrimPrefix(o.Name, b.prefix), Size: o.Size, ModTime: o.TimeCreated}
	}
	return infos, page.NextPageToken, nil
}

// ListInfo implements store.Deleter: the objects under prefix, with each
// one's size and creation time (the server's clock), one request per
// page, each holding a request slot.
func (b *Backend) ListInfo(ctx context.Context, prefix string) ([]store.ObjectInfo, error) {
	c, err := b.httpClient(ctx)
	if err != nil {
		return nil, b.wrap("listing", prefix, err)
	}
	var infos []store.ObjectInfo
	for token := ""; ; {
		if err := b.acquire(ctx); err != nil {
			return nil, err
		}
		page, next, err := b.listObjects(ctx, c, b.prefix+prefix, token, listPage)
		b.release()
		if err != nil {
			return nil, b.wrap("listing", prefix, err)
		}
		infos = append(infos, page...)
		if next == "" {
			break
		}
		token = next
	}
	b.bucketOK.Store(true)
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	return infos, nil
}

// List implements store.Backend.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	infos, err := b.ListInfo(ctx, prefix)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(infos))
	for i, o := range infos {
		keys[i] = o.Key
	}
	return keys, nil
}

// Delete implements store.Deleter. A missing object is no error. It needs
// storage.objects.delete, which only the collector's principal should have.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := b.acquire(ctx); err != nil {
		return err
	}
	defer b.release()
	c, err := b.httpClient(ctx)
	if err != nil {
		return b.wrap("deleting", key, err)
	}
	// Retried, though it names no generation: a delete whose first try
	// landed meets no object, which is no error.
	ctx, t := store.WithTries(ctx)
	if err := b.sendDelete(ctx, c, key, nil); err != nil {
		return b.deleteError(key, err, int(t.Load()))
	}
	return nil
}

// deleteError explains a failed delete of key, tried n times, naming the
// permission the collector needs when it was denied.
func (b *Backend) deleteError(key string, err error, n int) error {
	err = b.wrapTried("deleting", key, err, n)
	var e *Error
	if errors.As(err, &e) && strings.HasPrefix(e.Reason, "access denied") {
		e.Hint = "The collector's principal needs storage.objects.delete on the bucket (and storage.objects.get, storage.objects.create, " +
			"storage.objects.list); see the guide \"Sharing releases on Google Cloud and Azure\". Only the collector should have it, " +
			"never publishers or planners. An object under a retention policy cannot be deleted before its retention period ends."
	}
	return err
}
