// Package s3store is the store backend on S3 and S3-compatible object
// storage (s3://bucket/prefix URLs), through aws-sdk-go-v2 — the client
// HashiCorp's own S3 state backend uses — with credentials from the
// standard AWS chain, never from Terraform state.
//
// Every create is a conditional write (If-None-Match: *): an object is
// never overwritten, and of two racing creators exactly one succeeds.
// Requests are retried with exponential backoff and jitter (the SDK's
// standard retryer) on 5xx answers, 503 SlowDown and dropped connections,
// up to Settings.MaxAttempts tries. Every create tags its object with a
// random value of its own (user metadata, x-amz-meta-immutable-write): a
// retried create that meets an object asks for its tag (a HEAD), since
// the first try may have landed with its answer lost, and the object is
// this create's only if the tag is, never because its bytes are the same.
// Content is streamed in bounded parts: up to PartSize in one PutObject,
// larger objects as a multipart upload completed with If-None-Match: *, so
// memory stays flat whatever the size, and a failure before completion
// leaves nothing visible.
package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// PartSize is the size of each multipart part, and the largest object
// sent in one PutObject. S3 allows 10,000 parts: objects up to 80 GiB.
const PartSize = 8 << 20

// Settings are the provider's `s3` block. Empty fields fall back to the
// standard AWS environment (AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_PROFILE,
// shared config files, SSO, web identity, instance roles).
type Settings struct {
	Region       string
	Endpoint     string
	UsePathStyle bool
	Profile      string
	// MaxConcurrency bounds the requests this backend has in flight at
	// once, whatever the number of resources or workers using it, and
	// sizes its connection pool to match; 0 means store.DefaultConcurrency.
	MaxConcurrency int
	// Names are how messages name these settings; the zero value means
	// ProviderNames.
	Names Names
	// MaxAttempts is how many times a request is tried (the first try
	// included) when the server answers 5xx or asks to slow down, or the
	// connection fails; 0 means AWS_MAX_ATTEMPTS, the profile's
	// max_attempts, then store.DefaultMaxAttempts.
	MaxAttempts int
}

// Names are how the messages of a store name the settings a user gives,
// so that each says which one to check: the provider's attributes, or the
// flags of a command (gc) that opens a store.
type Names struct {
	Store    string // where the store URL is given
	Endpoint string
	Profile  string
	Options  string // the S3 settings as a whole
	Settings string // every setting of the store
	Needs    string // the permissions the user's operations need
	Attempts string // the retry budget
	// Rerun says that running the operation again is safe, and what it
	// does then: a sentence.
	Rerun string
}

// ProviderNames are the provider's: its `store` and `s3` settings.
var ProviderNames = Names{
	Store:    "the provider's `store` (or IMMUTABLE_STORE)",
	Endpoint: "the provider's `s3.endpoint` (or AWS_ENDPOINT_URL_S3)",
	Profile:  "the provider's `s3.profile`",
	Options:  "the provider's `s3` block",
	Settings: "the provider's `store` and `s3` settings",
	Needs:    "Plans need s3:GetObject and s3:ListBucket on the store's prefix; applies also s3:PutObject (see the S3 guide).",
	Attempts: "`s3.max_attempts` (or AWS_MAX_ATTEMPTS)",
	Rerun:    "Re-running apply is safe: what was stored is kept, and only what is still missing is sent.",
}

// Or returns n, or ProviderNames when n is the zero value.
func (n Names) Or() Names {
	if n == (Names{}) {
		return ProviderNames
	}
	return n
}

// EndpointSource returns the endpoint a store will be reached at, and
// the name of where it comes from, as the AWS SDK settles it from the
// environment: the setting (named name) when given, else
// AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, unless
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true. value is "" for AWS's own
// endpoint. (An endpoint_url in ~/.aws/config is not read here: the
// SDK's first request reports a bad one.)
func EndpointSource(name, setting string) (string, string) {
	if setting != "" {
		return name, setting
	}
	if strings.EqualFold(os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		return "", ""
	}
	for _, env := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(env); v != "" {
			return env, v
		}
	}
	return "", ""
}

// CheckEndpoint checks an endpoint given by name (a setting, a flag or an
// environment variable): an http:// or https:// URL of a server. Without
// it the AWS SDK fails only at the first request, and then as a network
// error.
func CheckEndpoint(name, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil &&
		!strings.ContainsAny(endpoint, "?#") {
		return nil
	}
	// What precedes an "@", and a query (a signature, a token), may be a
	// secret: never repeated.
	shown := endpoint
	if q := strings.IndexAny(shown, "?#"); q >= 0 {
		shown = shown[:q+1] + "REDACTED"
	}
	if at := strings.LastIndex(shown, "@"); at >= 0 {
		scheme, _, ok := strings.Cut(shown[:at], "://")
		shown = "REDACTED" + shown[at:]
		if ok {
			shown = scheme + "://" + shown
		}
	}
	if !strings.Contains(endpoint, "://") {
		return fmt.Errorf("%s %q has no scheme: write the URL of the server, http://%s or https://%s", name, shown, shown, shown)
	}
	return fmt.Errorf("%s %q is not the URL of a server: write http://HOST[:PORT] or https://HOST[:PORT], without credentials "+
		"or a query (credentials come from the standard AWS chain)", name, shown)
}

// Backend is a store.Backend in an S3 bucket, under an optional prefix.
type Backend struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ends in "/"
	endpoint string // for messages
	names    Names
	url      string
	bucketOK atomic.Bool // the bucket was seen to exist
	reached  atomic.Bool // the endpoint answered a request
	attempts int         // tries per request
	// slots holds a token per request in flight: at most its capacity,
	// shared by everything that uses this backend (one per provider).
	slots chan struct{}
}

// Concurrency implements the store's optional Concurrency: how many
// objects a publish writes at once.
func (b *Backend) Concurrency() int { return cap(b.slots) }

// acquire takes a request slot, or fails when ctx ends first.
func (b *Backend) acquire(ctx context.Context) error {
	select {
	case b.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Backend) release() { <-b.slots }

var _ store.Backend = (*Backend)(nil)

var bufPool = store.NewBufferPool(PartSize)

// New returns a backend for s3://bucket/prefix. It contacts nothing:
// credentials are resolved, and the bucket reached, on first use.
func New(ctx context.Context, bucket, prefix string, s Settings) (*Backend, error) {
	conc := s.MaxConcurrency
	if conc <= 0 {
		conc = store.DefaultConcurrency
	}
	conc = min(conc, store.MaxConcurrency)
	b := &Backend{bucket: bucket, slots: make(chan struct{}, conc)}
	opts := []func(*config.LoadOptions) error{
		// The SDK's buildable client, so that AWS_CA_BUNDLE still applies;
		// timeouts bound connecting and waiting, never a long transfer.
		config.WithHTTPClient(awshttp.NewBuildableClient().
			WithDialerOptions(func(d *net.Dialer) { d.Timeout = 5 * time.Second }).
			WithTransportOptions(func(t *http.Transport) {
				t.TLSHandshakeTimeout = 10 * time.Second
				t.ResponseHeaderTimeout = 60 * time.Second
				// At most one connection per request slot, kept between
				// requests: a request whose slot's connection is not back in
				// the pool yet waits for it instead of opening another.
				t.MaxConnsPerHost = conc
				t.MaxIdleConnsPerHost = conc
				t.MaxIdleConns = conc
			})),
	}
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	b.attempts = s.MaxAttempts
	if b.attempts <= 0 {
		b.attempts = cfg.RetryMaxAttempts // AWS_MAX_ATTEMPTS, the profile's max_attempts
	}
	if b.attempts <= 0 {
		b.attempts = store.DefaultMaxAttempts
	}
	b.attempts = min(b.attempts, store.MaxAttempts)
	cfg.RetryMaxAttempts = 0 // set on the retryer itself, not wrapped around it again
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = b.attempts
			o.MaxBackoff = store.MaxBackoff
			// No retry quota: the slots bound what is in flight, and a
			// quota spent by one bulk upload's retries would fail it
			// while the server takes every request.
			o.RateLimiter = ratelimit.None
			o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(notRetried)}, o.Retryables...)
		})
	}
	if cfg.Credentials != nil {
		cfg.Credentials = &credentialsProvider{cfg.Credentials}
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // S3-compatible servers mostly ignore it; AWS needs one
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if s.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.Endpoint)
		}
		o.UsePathStyle = s.UsePathStyle
		o.APIOptions = append(o.APIOptions, b.countAttempts)
		// Checksums only where S3 requires them: every object is verified
		// against its sha256 digest by the store, and trailing checksums
		// would need aws-chunked encoding that not every server speaks.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	endpoint := s.Endpoint
	if endpoint == "" && client.Options().BaseEndpoint != nil {
		endpoint = *client.Options().BaseEndpoint
	}
	if endpoint == "" {
		endpoint = "AWS S3 (" + cfg.Region + ")"
	}
	prefix = strings.Trim(prefix, "/")
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + prefix
		prefix += "/"
	}
	b.client, b.prefix, b.endpoint, b.names, b.url = client, prefix, endpoint, s.Names.Or(), u
	return b, nil
}

// Attempts is how many times a request is tried before it fails.
func (b *Backend) Attempts() int { return b.attempts }

func notRetried(err error) aws.Ternary {
	if errors.As(err, new(*store.UnreachedError)) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// countAttempts counts each operation's tries (in its context: see
// store.WithTries) and notes when the endpoint has answered; a connection that
// fails store.UnreachedAttempts times to an endpoint that never answered is not
// tried again.
func (b *Backend) countAttempts(st *middleware.Stack) error {
	err := st.Initialize.Add(middleware.InitializeMiddlewareFunc("immutableTries", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		if store.TriesOf(ctx) == nil {
			ctx, _ = store.WithTries(ctx)
		}
		return next.HandleInitialize(ctx, in)
	}), middleware.Before)
	if err != nil {
		return err
	}
	return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("immutableTry", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		n := int32(1)
		if t := store.TriesOf(ctx); t != nil {
			n = t.Add()
		}
		out, md, err := next.HandleFinalize(ctx, in)
		// A failure to send is a ResponseError too, of status 0.
		var status interface{ HTTPStatusCode() int }
		switch {
		case err == nil || errors.As(err, &status) && status.HTTPStatusCode() > 0:
			b.reached.Store(true)
		case n >= store.UnreachedAttempts && !b.reached.Load() && ctx.Err() == nil && errors.As(err, new(*smithyhttp.RequestSendError)):
			err = &store.UnreachedError{Err: err}
		}
		return out, md, err
	}), "Retry", middleware.After)
}

// NoCredentialsError is the failure to find AWS credentials anywhere in
// the standard chain, before any request was sent.
type NoCredentialsError struct{ Err error }

func (e *NoCredentialsError) Error() string { return "no AWS credentials: " + e.Err.Error() }

func (e *NoCredentialsError) Unwrap() error { return e.Err }

// credentialsProvider marks a failure of the credential chain, so that it
// is told apart from a request the server refused.
type credentialsProvider struct{ aws.CredentialsProvider }

func (p *credentialsProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.CredentialsProvider.Retrieve(ctx)
	if err != nil && ctx.Err() == nil {
		return c, &NoCredentialsError{Err: err}
	}
	return c, err
}

// IsCredentialsProvider lets the SDK see through the wrapper (it checks
// for anonymous credentials).
func (p *credentialsProvider) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(p.CredentialsProvider, target)
}

// ProviderSources passes on where the credentials came from, which the SDK
// reports in its user agent.
func (p *credentialsProvider) ProviderSources() []aws.CredentialSource {
	if s, ok := p.CredentialsProvider.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}

// Client is the S3 client, for tests that act behind the store's back.
func (b *Backend) Client() *s3.Client { return b.client }

// Locate implements store.Locator: the bucket, the object key and its
// s3:// URL.
func (b *Backend) Locate(key string) (store.Location, error) {
	k := b.ObjectKey(key)
	return store.Location{Bucket: b.bucket, Key: k, URL: "s3://" + b.bucket + "/" + k}, nil
}

// Bucket is the bucket name.
func (b *Backend) Bucket() string { return b.bucket }

// ObjectKey is the S3 key of a store key.
func (b *Backend) ObjectKey(key string) string { return b.prefix + key }

func (b *Backend) String() string { return b.url }

// Error is an S3 failure explained for a user: what was done, what went
// wrong, and which setting to check.
type Error struct {
	Op, Key string
	Reason  string
	Hint    string
	Err     error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %s. %s", e.Op, e.Key, e.Reason, e.Hint)
}

func (e *Error) Unwrap() error { return e.Err }

// BackendError marks it as a store.BackendError.
func (e *Error) BackendError() {}

func (b *Backend) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	target := fmt.Sprintf("s3://%s/%s", b.bucket, b.ObjectKey(key))
	e := &Error{Op: op, Key: target, Err: err, Reason: err.Error()}
	var api smithy.APIError
	var netErr net.Error
	var opErr *net.OpError
	var noCreds *NoCredentialsError
	var gaveUp *retry.MaxAttemptsError
	var unreached *store.UnreachedError
	switch {
	case errors.As(err, &unreached) || !b.reached.Load() && (errors.As(err, &opErr) || errors.As(err, &netErr)):
		e.Reason = fmt.Sprintf("cannot reach %s (%s)", b.endpoint, connCause(err))
		e.Hint = fmt.Sprintf("Check %s and that the server is up; gave up after %s, having never reached it.", b.names.Endpoint, times(b.tried(err)))
	case errors.As(err, &gaveUp) && !errors.As(err, &noCreds):
		last, n := gaveUp.Err, gaveUp.Attempt
		inARow := fmt.Sprintf("%d times in a row", n)
		if n == 1 {
			inARow = "and retries are off"
		}
		switch {
		case errors.As(last, &api):
			e.Reason = fmt.Sprintf("%s answered %s (%s), %s", b.endpoint, api.ErrorCode(), api.ErrorMessage(), inARow)
		case errors.As(last, &opErr) && opErr.Op == "dial":
			e.Reason = fmt.Sprintf("cannot reach %s any more (%v), %s", b.endpoint, opErr, inARow)
		default:
			e.Reason = fmt.Sprintf("the connection to %s failed (%s), %s", b.endpoint, connCause(last), inARow)
		}
		failed := "failed repeatedly"
		if n == 1 {
			failed = "failed"
		}
		e.Hint = fmt.Sprintf("The network or the server %s; the settings are not the cause (%s answers). "+
			"%s If it keeps failing, raise %s; it is %d now.", failed, b.endpoint, b.names.Rerun, b.names.Attempts, b.attempts)
	case errors.As(err, &noCreds):
		e.Reason = fmt.Sprintf("no AWS credentials were found, so nothing was sent to %s (the AWS SDK said: %v)", b.endpoint, noCreds.Err)
		e.Hint = "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE or " + b.names.Profile + " to a profile of " +
			"~/.aws/config (after `aws sso login` for an SSO profile), or run where an instance, task or web-identity role " +
			"provides them. Credentials never go in the store URL or in a configuration."
	case errors.As(err, &api):
		switch api.ErrorCode() {
		case "NoSuchBucket":
			e.Reason = fmt.Sprintf("the bucket %q does not exist at %s", b.bucket, b.endpoint)
			e.Hint = "Check the bucket in " + b.names.Store + ", and " + b.names.Endpoint + "."
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidClientTokenId":
			e.Reason = fmt.Sprintf("the credentials were rejected by %s (%s)", b.endpoint, api.ErrorCode())
			e.Hint = "Check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or " + b.names.Profile + ", and that the session is not expired."
		case "AccessDenied", "Forbidden":
			e.Reason, e.Hint = b.denied()
		default:
			e.Reason = fmt.Sprintf("%s: %s", api.ErrorCode(), api.ErrorMessage())
			e.Hint = "Check " + b.names.Settings + "."
		}
	case errors.As(err, &opErr), errors.As(err, &netErr):
		e.Reason = fmt.Sprintf("the connection to %s failed (%s)", b.endpoint, connCause(err))
		e.Hint = "The network failed, not the settings: the endpoint answered other requests. " + b.names.Rerun
	default:
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden {
			e.Reason, e.Hint = b.denied()
		} else {
			e.Hint = "Check " + b.names.Settings + "."
		}
	}
	return e
}

// tried is how many times the request of err was tried.
func (b *Backend) tried(err error) int {
	var gaveUp *retry.MaxAttemptsError
	if errors.As(err, &gaveUp) {
		return gaveUp.Attempt
	}
	return min(store.UnreachedAttempts, b.attempts)
}

// connCause is what a failed connection said, without the SDK's wrapping:
// "EOF", "read tcp …: connection reset by peer".
func connCause(err error) string {
	var u *url.Error
	if errors.As(err, &u) {
		return u.Err.Error()
	}
	return err.Error()
}

func times(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// denied explains a 403, which S3 gives both for wrong credentials (on a
// HEAD, with no body to tell) and for missing permissions.
func (b *Backend) denied() (reason, hint string) {
	return fmt.Sprintf("access denied by %s: the credentials are wrong or lack permission", b.endpoint),
		"Check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or " + b.names.Profile + ". " + b.names.Needs
}

func isCode(err error, codes ...string) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		for _, c := range codes {
			if api.ErrorCode() == c {
				return true
			}
		}
	}
	return false
}

func statusIs(err error, code int) bool {
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == code
}

var smallPool = store.NewBufferPool(store.SmallPart)

// Create implements store.Backend with a conditional write. It holds one
// request slot for the whole upload, so memory is bounded by the slots:
// at most MaxConcurrency part buffers.
func (b *Backend) Create(ctx context.Context, key string, r io.Reader) error {
	// The slot first: a writer waiting for one holds no buffer.
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
	bp := bufPool.Get()
	defer bufPool.Put(bp)
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
	return b.putMultipart(ctx, key, buf, r)
}

// conflictRetries bounds retries of 409 ConditionalRequestConflict, which
// S3 returns while another conditional write of the key is in flight.
const conflictRetries = 5

// TagMetadata is the user metadata (x-amz-meta-immutable-write) in which
// each Create stores a random tag of its own: the one thing that tells
// the object a write made from another writer's with the same bytes.
const TagMetadata = "immutable-write"

func (b *Backend) putOnce(ctx context.Context, key string, data []byte) error {
	ctx, t := store.WithTries(ctx)
	tag := store.NewWriteTag()
	return b.conditional(ctx, "writing", key, t, tag, func() error {
		_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(b.bucket),
			Key:           aws.String(b.ObjectKey(key)),
			Body:          bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data))),
			IfNoneMatch:   aws.String("*"),
			Metadata:      map[string]string{TagMetadata: tag},
		})
		return err
	})
}

// conditional runs a write made with If-None-Match: * (tried as often as
// t counts) whose object carries tag, retrying, a few times, the 409 that
// S3 returns while another conditional write of the same key is in
// flight. A 412 (the key holds an object) is store.ErrExists on a first
// try; on a later one it may be this write's own first try, which landed
// and whose answer was lost, so the object's tag is asked for (a HEAD,
// never a download): the object is this write's, and the write succeeded,
// only if it carries tag. A retried completion answered NoSuchUpload
// (completed already) is checked alike.
//
// A 412 whose object is gone when asked for (deleted in between) is
// tried again, once: the key is empty, so writing it is an ordinary
// create, and whichever object then stands is the one its writer is told
// it wrote. ErrExists instead would tell a publish that a blob is stored
// while none is, and a channel move that another apply moved the channel
// when no move stands. An object vanishing twice is an error that says so.
func (b *Backend) conditional(ctx context.Context, op, key string, t *store.Tries, tag string, write func() error) error {
	vanished := false
	for attempt := 0; ; attempt++ {
		err := write()
		exists := isCode(err, "PreconditionFailed") || statusIs(err, http.StatusPreconditionFailed)
		switch {
		case err == nil:
			return nil
		case exists && t.Load() <= 1:
			return store.ErrExists
		case exists || (isCode(err, "NoSuchUpload") && t.Load() > 1):
			own, found, rerr := b.tagged(ctx, key, tag)
			switch {
			case rerr != nil:
				return rerr
			case own:
				return nil
			case found:
				return store.ErrExists
			case exists && !vanished:
				vanished = true
				continue
			case exists:
				return &Error{
					Op: op, Key: fmt.Sprintf("s3://%s/%s", b.bucket, b.ObjectKey(key)), Err: err,
					Reason: "the key held an object when written (412 Precondition Failed) and none when asked for it right after, twice: " +
						"something is deleting objects of the store as they are written",
					Hint: "Only the collector (gc) should delete objects under the store's prefix, and only old ones: check for a lifecycle " +
						"rule expiring objects there, or another tool deleting them. " + b.names.Rerun,
				}
			}
		case (isCode(err, "ConditionalRequestConflict") || statusIs(err, http.StatusConflict)) && attempt < conflictRetries:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
			}
			continue
		}
		return b.wrap(op, key, err)
	}
}

// tagged asks for the object at key (a HEAD) and reports whether it is
// found, and whether it carries tag: whether this write made it. The
// caller holds a request slot already (Create): it takes none.
func (b *Backend) tagged(ctx context.Context, key, tag string) (own, found bool, err error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.ObjectKey(key))})
	if notFound(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, b.wrap("checking (to tell a lost answer from another writer's object)", key, err)
	}
	for k, v := range out.Metadata {
		if strings.EqualFold(k, TagMetadata) {
			return v == tag, true, nil
		}
	}
	return false, true, nil
}

func (b *Backend) putMultipart(ctx context.Context, key string, first []byte, r io.Reader) (err error) {
	okey := b.ObjectKey(key)
	tag := store.NewWriteTag()
	up, err := b.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(b.bucket), Key: aws.String(okey), Metadata: map[string]string{TagMetadata: tag},
	})
	if err != nil {
		return b.wrap("starting an upload of", key, err)
	}
	defer func() {
		if err != nil {
			// Nothing of an aborted upload is ever visible. Abort with a
			// fresh context: the apply's may be the one cancelled.
			actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, aerr := b.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: aws.String(b.bucket), Key: aws.String(okey), UploadId: up.UploadId}); aerr != nil {
				// Still nothing visible, but the parts are kept (and billed)
				// until a lifecycle rule removes them: say so.
				err = fmt.Errorf("%w; aborting the incomplete upload %s also failed (%v): an AbortIncompleteMultipartUpload lifecycle rule on the bucket removes it", err, aws.ToString(up.UploadId), aerr)
			}
		}
	}()
	var parts []s3types.CompletedPart
	buf, n := first, len(first)
	for num := int32(1); ; num++ {
		out, perr := b.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(b.bucket), Key: aws.String(okey), UploadId: up.UploadId,
			PartNumber: aws.Int32(num), Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)),
		})
		if perr != nil {
			return b.wrap("uploading", key, perr)
		}
		parts = append(parts, s3types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		if n < len(buf) {
			break
		}
		if n, err = store.ReadPart(r, buf); err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	cctx, t := store.WithTries(ctx)
	err = b.conditional(cctx, "completing the upload of", key, t, tag, func() error {
		_, err := b.client.CompleteMultipartUpload(cctx, &s3.CompleteMultipartUploadInput{
			Bucket: aws.String(b.bucket), Key: aws.String(okey), UploadId: up.UploadId,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts},
			IfNoneMatch:     aws.String("*"),
		})
		return err
	})
	return err
}

func notFound(err error) bool {
	return isCode(err, "NoSuchKey", "NotFound") || (statusIs(err, http.StatusNotFound) && !isCode(err, "NoSuchBucket"))
}

// Open implements store.Backend.
// The request slot is held until the response starts; the body keeps its
// connection (at most MaxConcurrency of them) until it is closed, so a
// caller must close one object before it opens the next.
func (b *Backend) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.ObjectKey(key))})
	b.release()
	if notFound(err) {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, b.wrap("reading", key, err)
	}
	b.bucketOK.Store(true) // an object was read: the bucket exists
	return out.Body, nil
}

// Exists implements store.Backend.
func (b *Backend) Exists(ctx context.Context, key string) (bool, error) {
	if err := b.acquire(ctx); err != nil {
		return false, err
	}
	defer b.release()
	_, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.ObjectKey(key))})
	switch {
	case err == nil:
		b.bucketOK.Store(true)
		return true, nil
	case notFound(err):
		// A HEAD has no body, so a missing bucket also looks like a 404;
		// tell them apart once, or a typo in the bucket would read as
		// "empty" — unless a request of this backend has already found an
		// object in it (bucketOK): then no extra request.
		if !b.bucketOK.Load() {
			_, berr := b.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.bucket)})
			if berr != nil && (notFound(berr) || isCode(berr, "NoSuchBucket")) {
				return false, b.wrap("reading", key, &smithy.GenericAPIError{Code: "NoSuchBucket", Message: "The specified bucket does not exist"})
			}
			b.bucketOK.Store(berr == nil)
		}
		return false, nil
	}
	return false, b.wrap("checking", key, err)
}

// List implements store.Backend, following ListObjectsV2 pagination.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: aws.String(b.bucket), Prefix: aws.String(b.prefix + prefix)})
	for p.HasMorePages() {
		if err := b.acquire(ctx); err != nil {
			return nil, err
		}
		page, err := p.NextPage(ctx)
		b.release()
		if err != nil {
			return nil, b.wrap("listing", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, strings.TrimPrefix(aws.ToString(o.Key), b.prefix))
		}
	}
	sort.Strings(keys)
	return keys, nil
}

var _ store.Deleter = (*Backend)(nil)

// Delete implements store.Deleter with DeleteObject, which S3 answers the
// same whether or not the key held an object. It needs s3:DeleteObject,
// which only the collector's credentials should have.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := b.acquire(ctx); err != nil {
		return err
	}
	defer b.release()
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.ObjectKey(key))})
	if err != nil && !notFound(err) {
		return b.deleteError(key, err)
	}
	return nil
}

var _ store.BatchDeleter = (*Backend)(nil)

// DeleteMany implements store.BatchDeleter with DeleteObjects: up to
// store.MaxBatchDelete keys a request, each request holding one slot (so
// several run at once for a long list), in quiet mode, so that the answer
// lists only the keys S3 could not delete — each of which gets its own
// error; a missing key is deleted as far as S3 is concerned. A request
// that fails as a whole is the error of each of its keys.
func (b *Backend) DeleteMany(ctx context.Context, keys []string) []error {
	return store.BatchDelete{
		Size: store.MaxBatchDelete, Attempts: 1, // the SDK retries a request
		Acquire: b.acquire, Release: b.release, Send: b.deleteChunk,
	}.Run(ctx, keys)
}

// deleteChunk deletes keys (todo is all of them: a chunk is sent once, the
// SDK retrying it) in one DeleteObjects request, setting errs[i] for each
// keys[i].
func (b *Backend) deleteChunk(ctx context.Context, keys []string, todo []int, errs []error) ([]int, error) {
	fail := func(err error) {
		for _, i := range todo {
			errs[i] = err
		}
	}
	objs := make([]s3types.ObjectIdentifier, len(keys))
	index := make(map[string]int, len(keys))
	for i, k := range keys {
		objs[i] = s3types.ObjectIdentifier{Key: aws.String(b.ObjectKey(k))}
		index[b.ObjectKey(k)] = i
	}
	out, err := b.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(b.bucket),
		Delete: &s3types.Delete{Objects: objs, Quiet: aws.Bool(true)},
	})
	if err != nil {
		fail(b.deleteError(keys[0], err))
		return nil, nil
	}
	clear(errs)
	for _, e := range out.Errors {
		i, ok := index[aws.ToString(e.Key)]
		if !ok {
			continue // a key not asked about: nothing to report it against
		}
		if code := aws.ToString(e.Code); code == "NoSuchKey" {
			continue // missing: as good as deleted
		}
		errs[i] = b.deleteError(keys[i], &smithy.GenericAPIError{Code: aws.ToString(e.Code), Message: aws.ToString(e.Message)})
	}
	return nil, nil
}

// deleteError explains a failed delete of key, naming the permission the
// collector needs when it was denied.
func (b *Backend) deleteError(key string, err error) error {
	err = b.wrap("deleting", key, err)
	var e *Error
	if errors.As(err, &e) && strings.HasPrefix(e.Reason, "access denied") {
		e.Hint = "The collector's credentials need s3:DeleteObject on the store's prefix (and s3:GetObject, s3:PutObject, " +
			"s3:ListBucket); see the S3 guide. Only the collector should have it, never publishers or planners."
	}
	return err
}

var _ store.FirstPager = (*Backend)(nil)

// ListInfoFirst implements store.FirstPager: one ListObjectsV2 request.
func (b *Backend) ListInfoFirst(ctx context.Context, prefix string) ([]store.ObjectInfo, bool, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, false, err
	}
	page, err := b.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b.bucket), Prefix: aws.String(b.prefix + prefix)})
	b.release()
	if err != nil {
		return nil, false, b.wrap("listing", prefix, err)
	}
	infos := b.infos(nil, page.Contents)
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	return infos, !aws.ToBool(page.IsTruncated), nil
}

// infos appends the objects of a listing's page to infos.
func (b *Backend) infos(infos []store.ObjectInfo, objs []s3types.Object) []store.ObjectInfo {
	for _, o := range objs {
		infos = append(infos, store.ObjectInfo{
			Key:     strings.TrimPrefix(aws.ToString(o.Key), b.prefix),
			Size:    aws.ToInt64(o.Size),
			ModTime: aws.ToTime(o.LastModified),
		})
	}
	return infos
}

// ListInfo implements store.Deleter: List with each object's size and
// LastModified (the server's clock).
func (b *Backend) ListInfo(ctx context.Context, prefix string) ([]store.ObjectInfo, error) {
	var infos []store.ObjectInfo
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: aws.String(b.bucket), Prefix: aws.String(b.prefix + prefix)})
	for p.HasMorePages() {
		if err := b.acquire(ctx); err != nil {
			return nil, err
		}
		page, err := p.NextPage(ctx)
		b.release()
		if err != nil {
			return nil, b.wrap("listing", prefix, err)
		}
		infos = b.infos(infos, page.Contents)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	return infos, nil
}
