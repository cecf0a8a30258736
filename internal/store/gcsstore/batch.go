package gcsstore

import (
	"bufio"
	"bytes"
	"context"
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
// slot (so several run at once for a long list). Each delete has its own
// answer in the batch's: 2xx or 404 (missing: as good as deleted) is
// done; 408, 429 and 5xx are sent again in a later batch, with backoff,
// up to Settings.MaxAttempts batches; any other is that key's error. A
// batch request that fails as a whole (after its own retries) is the
// error of each of its keys.
func (b *Backend) DeleteMany(ctx context.Context, keys []string) []error {
	errs := make([]error, len(keys))
	for i := range errs {
		errs[i] = errNotSent // until its delete is answered
	}
	if len(keys) == 0 {
		return errs
	}
	c, err := b.httpClient(ctx)
	if err != nil {
		for i, k := range keys {
			errs[i] = b.deleteError(k, err, 0)
		}
		return errs
	}
	chunks := (len(keys) + MaxBatch - 1) / MaxBatch
	_ = store.ForEach(ctx, chunks, chunks, func(ctx context.Context, i int) error {
		lo, hi := i*MaxBatch, min(len(keys), (i+1)*MaxBatch)
		b.deleteBatch(ctx, c, keys[lo:hi], errs[lo:hi])
		return nil // each key has its result
	})
	return errs
}

// errNotSent is the result of a key whose delete was never sent (the
// context ended first).
var errNotSent = errors.New("not deleted: the collection was stopped before this delete was sent")

// deleteBatch deletes at most MaxBatch keys, setting errs[i] for each
// keys[i] that may still be there.
func (b *Backend) deleteBatch(ctx context.Context, c *http.Client, keys []string, errs []error) {
	pending := make([]int, len(keys))
	for i := range pending {
		pending[i] = i
	}
	for attempt := 1; ; attempt++ {
		answers, err := b.sendBatch(ctx, c, keys, pending)
		if err != nil {
			for _, i := range pending {
				errs[i] = b.deleteError(keys[i], err, b.attempts)
			}
			return
		}
		var again []int
		for _, i := range pending {
			a, ok := answers[i]
			switch {
			case !ok:
				a = &APIError{Code: http.StatusBadGateway, Message: "the batch's answer has none for this delete"}
			case a == nil || a.Code == http.StatusNotFound:
				errs[i] = nil
				continue
			}
			errs[i] = b.deleteError(keys[i], a, attempt)
			if a.retriable() {
				again = append(again, i)
			}
		}
		if len(again) == 0 || attempt >= b.attempts {
			return
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return // each key keeps its last error
		}
		pending = again
	}
}

// sendBatch sends the deletes of keys[i], i in which, as one batch
// request, holding a request slot, and returns each one's answer: nil
// for a success, else its *APIError; a delete the answer says nothing of
// is missing from the map.
func (b *Backend) sendBatch(ctx context.Context, c *http.Client, keys []string, which []int) (map[int]*APIError, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, i := range which {
		pw, err := mw.CreatePart(map[string][]string{
			"Content-Type": {"application/http"},
			"Content-Id":   {"<" + strconv.Itoa(i) + ">"},
		})
		if err != nil {
			return nil, err
		}
		path := strings.TrimPrefix(b.objectURL(b.ObjectKey(keys[i]), nil), b.host)
		if _, err := fmt.Fprintf(pw, "DELETE %s HTTP/1.1\r\n\r\n", path); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	if err := b.acquire(ctx); err != nil {
		return nil, err
	}
	defer b.release()
	data := body.Bytes()
	res, err := b.do(ctx, c, request{
		method: http.MethodPost, url: b.host + "/batch/storage/v1",
		header: http.Header{"Content-Type": {"multipart/mixed; boundary=" + mw.Boundary()}},
		body:   func() io.Reader { return bytes.NewReader(data) }, size: int64(len(data)),
	})
	if err != nil {
		return nil, err
	}
	defer drain(res.Body)
	mt, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return nil, fmt.Errorf("%s answered a batch with %q, not a multipart answer", b.endpoint, res.Header.Get("Content-Type"))
	}
	answers := make(map[int]*APIError, len(which))
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
