package gcsstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
)

// MaxBatch is the most calls one batch request of the JSON API carries
// (POST /batch/storage/v1, multipart/mixed, a request per part).
const MaxBatch = 100

var _ store.BatchDeleter = (*Backend)(nil)

// DeleteMany implements store.BatchDeleter with the JSON API's batch
// requests: up to MaxBatch deletes each, each batch holding one request
// slot (store.BatchDelete: so several run at once for a long list). Each
// delete has its own answer in the batch's: 2xx or 404 (missing: as good
// as deleted) is done; 408, 429, 5xx and no answer at all are sent again
// in a later batch, with backoff; any other is that key's error. A batch
// request that fails as a whole is the error of each of its keys, and is
// sent again as a busy answer is. A key is in at most Settings.MaxAttempts
// requests in all, and its error says how many.
func (b *Backend) DeleteMany(ctx context.Context, keys []string) []error {
	if len(keys) == 0 {
		return nil
	}
	c, err := b.httpClient(ctx)
	if err != nil {
		errs := make([]error, len(keys))
		for i, k := range keys {
			errs[i] = b.deleteError(k, err, 0)
		}
		return errs
	}
	return store.BatchDelete{
		Size: MaxBatch, Attempts: b.attempts, Acquire: b.acquire, Release: b.release,
		Send: func(ctx context.Context, keys []string, todo []int, errs []error) ([]int, error) {
			return b.sendBatch(ctx, c, keys, todo, errs), nil
		},
	}.Run(ctx, keys)
}

// sendBatch sends the deletes of keys[i], i in which, as one batch
// request tried once (store.BatchDelete tries again: a request b.do
// retried would multiply the tries), and sets errs[i] for each. It
// returns those to send again: all when the request failed as a busy
// server or a dropped connection makes it fail, else those answered so or
// not at all.
func (b *Backend) sendBatch(ctx context.Context, c *http.Client, keys []string, which []int, errs []error) (again []int) {
	tried := func() int { // the requests this chunk's keys have been in
		if t := store.TriesOf(ctx); t != nil {
			return max(int(t.Load()), 1)
		}
		return 1
	}
	fail := func(err error, retry bool) []int {
		for _, i := range which {
			errs[i] = b.deleteError(keys[i], err, tried())
		}
		if retry {
			return which
		}
		return nil
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, i := range which {
		pw, err := mw.CreatePart(map[string][]string{
			"Content-Type": {"application/http"},
			"Content-Id":   {"<" + strconv.Itoa(i) + ">"},
		})
		if err != nil {
			return fail(err, false)
		}
		path := strings.TrimPrefix(b.objectURL(b.ObjectKey(keys[i]), nil), b.host)
		if _, err := fmt.Fprintf(pw, "DELETE %s HTTP/1.1\r\n\r\n", path); err != nil {
			return fail(err, false)
		}
	}
	if err := mw.Close(); err != nil {
		return fail(err, false)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.host+"/batch/storage/v1", &body)
	if err != nil {
		return fail(err, false)
	}
	req.Header.Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	req.Header.Set("User-Agent", "terraform-provider-immutable")
	res, err := c.Do(req)
	switch {
	case err != nil && ctx.Err() != nil:
		return fail(ctx.Err(), false)
	case errors.As(err, new(*TokenError)), errors.As(err, new(*tls.CertificateVerificationError)):
		return fail(err, false)
	case err != nil && isDialError(err) && !b.reached.Load() && tried() >= store.UnreachedAttempts:
		return fail(&store.UnreachedError{Err: err}, false)
	case err != nil:
		return fail(err, true) // a dropped connection: the deletes are safe to repeat
	case res.StatusCode >= 300:
		api := apiError(res)
		return fail(api, api.retriable())
	}
	defer drain(res.Body)
	answers, err := b.batchAnswers(res)
	if err != nil {
		return fail(err, true) // an answer cut short: the deletes are safe to repeat
	}
	for _, i := range which {
		a, ok := answers[i]
		switch {
		case !ok:
			a = &APIError{Code: http.StatusBadGateway, Message: "the batch's answer has none for this delete"}
		case a == nil || a.Code == http.StatusNotFound:
			errs[i] = nil
			continue
		}
		errs[i] = b.deleteError(keys[i], a, tried())
		if a.retriable() {
			again = append(again, i)
		}
	}
	return again
}

// batchAnswers reads the answer res to a batch request: each delete's,
// by its index in keys, nil for a success, else its *APIError; a delete
// the answer says nothing of is missing from the map.
func (b *Backend) batchAnswers(res *http.Response) (map[int]*APIError, error) {
	mt, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return nil, fmt.Errorf("%s answered a batch with %q, not a multipart answer", b.endpoint, res.Header.Get("Content-Type"))
	}
	answers := map[int]*APIError{}
	mr := multipart.NewReader(res.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return answers, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the answer of a batch from %s: %w", b.endpoint, err)
		}
		// Content-ID: <response-N>, N the request's.
		id := strings.Trim(part.Header.Get("Content-Id"), "<>")
		i, err := strconv.Atoi(strings.TrimPrefix(id, "response-"))
		if err != nil || !strings.HasPrefix(id, "response-") {
			continue // not an answer to a request of this batch
		}
		pr, err := http.ReadResponse(bufio.NewReader(part), nil)
		if err != nil {
			return nil, fmt.Errorf("reading the answer of a batch from %s: %w", b.endpoint, err)
		}
		if pr.StatusCode < 300 {
			drain(pr.Body)
			answers[i] = nil
		} else {
			answers[i] = apiError(pr)
		}
	}
}
