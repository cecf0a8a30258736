package gcsstore

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// APIError is an answer of Cloud Storage other than a success: its
// status, and the message of its JSON error body
// ({"error": {"code": 403, "message": "…", "errors": […]}}), or the
// status's text when the body has none.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

// retriable reports whether the answer is worth another try: a timeout,
// a server asking to slow down, a server failing.
func (e *APIError) retriable() bool {
	return e.Code == http.StatusRequestTimeout || e.Code == http.StatusTooManyRequests || e.Code >= 500
}

// errBucketNotExist is a listing answered 404: the bucket is not there.
var errBucketNotExist = errors.New("the bucket does not exist")

// maxErrorBody is the most of an error answer read for its message.
const maxErrorBody = 64 << 10

// apiError reads res's error body and closes it.
func apiError(res *http.Response) *APIError {
	defer func() { _ = res.Body.Close() }() // read to its end or limit; nothing to lose
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	var doc struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := ""
	if json.Unmarshal(body, &doc) == nil {
		msg = doc.Error.Message
	}
	if msg == "" {
		msg = http.StatusText(res.StatusCode)
	}
	return &APIError{Code: res.StatusCode, Message: msg}
}

// escape is s as one segment of a URL's path: every byte but RFC 3986's
// unreserved characters (letters, digits, '-', '.', '_', '~') as %XX, as
// Google's library escapes object names. url.PathEscape leaves
// "+:@=&$" and others as they are, which a server (or a proxy) may read
// otherwise: a '+' as a space.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// objectURL is the JSON API's URL of the object name (escaped whole:
// a "/" in it is %2F), with query.
func (b *Backend) objectURL(name string, query url.Values) string {
	u := b.host + "/storage/v1/b/" + escape(b.bucket) + "/o/" + escape(name)
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// bucketURL is the JSON API's URL of the bucket's objects (a listing,
// uploads when upload), with query.
func (b *Backend) bucketURL(upload bool, query url.Values) string {
	u := b.host + "/storage/v1/b/" + escape(b.bucket) + "/o"
	if upload {
		u = b.host + "/upload/storage/v1/b/" + escape(b.bucket) + "/o"
	}
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// userAgent names the provider and its version (the module's, from the
// binary's build info; "dev" for a build that has none), as Google asks
// of a client, so that its requests can be told apart in audit logs.
var userAgent = "terraform-provider-immutable/" + buildVersion()

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// request is how to make one request, anew for each try.
type request struct {
	method, url string
	header      http.Header
	body        func() io.Reader // nil: none
	size        int64            // body's length
	// chunk marks a chunk of a resumable upload, which a 308 answers
	// when the upload goes on.
	chunk bool
	// tries, when not nil, counts the requests sent (every try).
	tries *int
}

// do sends req with c, tried up to b.attempts times while it fails in a
// way worth another try (a dropped connection, 408, 429, 5xx). Every
// request the backend makes is safe to repeat: a read, a listing, a
// delete (one that landed meets no object, which is no error), a write
// conditional on ifGenerationMatch=0 (a retry meeting its own object is
// told apart by its tag), the opening of a resumable upload (a session
// left unused expires) and a chunk (sent again at its offset, as Google's
// library does; the 308 answering it says how much of the upload GCS
// holds, and sendChunk goes on from there). Answers below
// 300 (and a 308 to a chunk: the client follows no redirect) are
// returned with their body open; the others are an *APIError. A connection that
// has never reached the endpoint is tried store.UnreachedAttempts times,
// not the whole budget: a mistyped emulator fails in a second.
func (b *Backend) do(ctx context.Context, c *http.Client, req request) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		var body io.Reader
		if req.body != nil {
			body = req.body()
		}
		hr, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
		if err != nil {
			return nil, err
		}
		for k, v := range req.header {
			hr.Header[k] = v
		}
		if req.body != nil {
			hr.ContentLength = req.size
			if req.size == 0 {
				hr.Body = http.NoBody
			}
		}
		hr.Header.Set("User-Agent", userAgent)
		if req.tries != nil {
			*req.tries++
		}
		res, err := c.Do(hr)
		if err == nil && (res.StatusCode < 300 || req.chunk && res.StatusCode == http.StatusPermanentRedirect) {
			return res, nil
		}
		var api *APIError
		if err == nil {
			api = apiError(res)
			err = api
		}
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case api != nil && !api.retriable(),
			errors.As(err, new(*TokenError)),
			errors.As(err, new(*tls.CertificateVerificationError)):
			return nil, err
		case api == nil && isDialError(err) && !b.reached.Load() && attempt >= store.UnreachedAttempts:
			return nil, &store.UnreachedError{Err: err}
		case attempt >= b.attempts:
			return nil, err
		}
		if err := store.Sleep(ctx, store.Backoff(attempt)); err != nil {
			return nil, err
		}
	}
}

// drain reads what is left of a body (at most a little, so that its
// connection is kept) and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10)) // a failure only loses the connection
	_ = body.Close()                                         // as above
}

// decode reads res's JSON body into v and closes it.
func decode(res *http.Response, v any) error {
	defer drain(res.Body)
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		return fmt.Errorf("reading the answer of %s: %w", strings.SplitN(res.Request.URL.String(), "?", 2)[0], err)
	}
	return nil
}
