package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// LinkError is a listing for a deleter (ListInfo) that met symbolic links
// in the store's folders: what lies behind them is not listed, and is
// never deleted through them (it may be outside the store, or another
// store's). Links are their keys (the first few: see Error).
type LinkError struct {
	Store string
	Links []string
}

func (e *LinkError) Error() string {
	shown := e.Links
	if len(shown) > 8 {
		shown = shown[:8]
	}
	more := ""
	if len(e.Links) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(e.Links)-len(shown))
	}
	return fmt.Sprintf("the store %s holds symbolic links where its layout has folders and files: %s%s. Nothing behind a "+
		"link is listed or deleted through it (it may be outside the store, or in another one), and what the store's "+
		"records reference cannot be known without it. Replace each link by the folder or file it points to (move it "+
		"back into the store), then run again", e.Store, strings.Join(shown, ", "), more)
}

// FirstPager is a Deleter that lists a large family folder by folder, in
// parallel (ListFamily). One whose listings come in pages (S3: 1,000 keys
// a request) lists the first page of a prefix alone: a small family is
// then listed in one request, a large one by its folders. One for which a
// folder costs no request (the local store) answers nothing and false:
// always by its folders. A Deleter that is no FirstPager is listed a
// family at a time.
type FirstPager interface {
	// ListInfoFirst is ListInfo's first page: complete reports whether it
	// holds every key under prefix.
	ListInfoFirst(ctx context.Context, prefix string) (infos []ObjectInfo, complete bool, err error)
}

// Shards are the folders a family's keys fan out over, one per two
// leading hex digits of their digest (blobs/sha256/00/ … blobs/sha256/ff/),
// or nil for a family whose keys do not fan out under a fixed prefix
// (releases, channels, archive references: their format comes first).
func (f Family) Shards() []string {
	if f <= FamilyUnknown || int(f) >= len(patterns) {
		return nil
	}
	seg := segments[f]
	i := strings.Count(f.Prefix(), "/")
	if i >= len(seg) || seg[i] != "<hh>" {
		return nil
	}
	shards := make([]string, 256)
	for n := range shards {
		shards[n] = fmt.Sprintf("%s%02x/", f.Prefix(), n)
	}
	return shards
}

// ListFamily lists the keys of family f with their sizes and times, as
// ListInfo(f.Dir()) does, n requests at once: on a FirstPager, a family
// that fans out over two-hex-digit folders (Shards) is listed folder by
// folder in parallel — after one request, on a paged backend, that says
// it is larger than a page. Listed by its folders, a family leaves out keys outside them
// (blobs/README: no key of the layout, which nothing reads or deletes).
// The result is sorted by key.
func ListFamily(ctx context.Context, d Deleter, f Family, n int) ([]ObjectInfo, error) {
	shards := f.Shards()
	p, ok := d.(FirstPager)
	if shards == nil || !ok {
		return d.ListInfo(ctx, f.Dir())
	}
	if infos, complete, err := p.ListInfoFirst(ctx, f.Dir()); err != nil || complete {
		return infos, err
	}
	parts := make([][]ObjectInfo, len(shards))
	var (
		linksMu sync.Mutex
		links   *LinkError
	)
	err := ForEach(ctx, n, len(shards), func(ctx context.Context, i int) error {
		var err error
		parts[i], err = d.ListInfo(ctx, shards[i])
		if le := (*LinkError)(nil); errors.As(err, &le) {
			// Every folder is listed, so that the error names every link.
			linksMu.Lock()
			defer linksMu.Unlock()
			if links == nil {
				links = &LinkError{Store: le.Store}
			}
			links.Links = append(links.Links, le.Links...)
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if links != nil {
		sort.Strings(links.Links)
		return nil, links
	}
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	infos := make([]ObjectInfo, 0, total)
	for _, p := range parts {
		infos = append(infos, p...)
	}
	return infos, nil
}
