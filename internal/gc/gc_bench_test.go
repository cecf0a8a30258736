package gc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
	"github.com/immutable-infra/terraform-provider-immutable/internal/release"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/filestore"
	"github.com/immutable-infra/terraform-provider-immutable/internal/store/s3store"
	"github.com/immutable-infra/terraform-provider-immutable/internal/testserver"
)

// BenchmarkGC is the collector's table of `make bench` (scripts/bench-gc.sh):
// a store of BENCH_GC_OBJECTS objects (default 200,000: 20 versions of a
// release, each a tree of its own blobs), of which the policy (keep the 10
// highest) deletes half.
//
//   - S3, on versitygw behind a proxy adding BENCH_S3_RTT (default 20ms)
//     to every request: a dry run, the real collection, and, as the peer,
//     `mc rm --recursive --force` through the same proxy of a bucket
//     holding as many objects as the collection deleted (MC_PATH; without
//     it that row is skipped, saying so). Each row reports its requests.
//
//   - The local store: a dry run, the collection, and `rm -rf` + `sync`
//     of a folder of as many files in the same layout.
//
//   - The collector's live heap (the most the runtime found live after
//     any collection during a dry run, above what was live before) on the
//     local store at a quarter of the objects and at all of them: the
//     slope between the two, per million objects, is reported by the
//     script.
//
//     BENCH_GC_OBJECTS=20000 go test -run '^$' -bench GC -benchtime 1x ./internal/gc/
//
// BENCH_GC_S3=0 skips the S3 rows.
func BenchmarkGC(b *testing.B) {
	n := 200_000
	if v := os.Getenv("BENCH_GC_OBJECTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("BENCH_GC_OBJECTS=%q: give a number of objects, at least 100", v)
		}
	}
	rtt := 20 * time.Millisecond
	if v := os.Getenv("BENCH_S3_RTT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("BENCH_S3_RTT=%q: %v", v, err)
		}
		rtt = d
	}
	policy := Policy{KeepLast: 10, KeepChannelMoves: 1, Grace: store.LeaseTTL}
	opts := func(dry bool) Options { return Options{DryRun: dry, Now: time.Now().Add(30 * 24 * time.Hour)} }
	var deleted int // what the S3 collection deleted: the peers delete as many

	if os.Getenv("BENCH_GC_S3") != "0" {
		srv := testserver.StartS3(b)
		proxy := srv.Proxy(b, rtt)
		bucket := srv.NewBucket(b)
		direct, err := s3store.New(ctx, bucket, "", srv.Settings())
		if err != nil {
			b.Fatal(err)
		}
		total := benchStore(b, direct, n)
		settings := srv.Settings()
		settings.Endpoint = proxy.Endpoint
		be, err := s3store.New(ctx, bucket, "", settings)
		if err != nil {
			b.Fatal(err)
		}
		st := store.New(be)
		b.Logf("S3: %d objects in s3://%s, %v added to every request", total, bucket, rtt)
		b.Run(fmt.Sprintf("objects=%d/s3/dry-run", total), func(b *testing.B) {
			for range b.N {
				proxy.Reset()
				var report *Report
				heap := liveHeapDuring(func() {
					var err error
					if report, err = Collect(ctx, st, policy, opts(true)); err != nil {
						b.Fatal(err)
					}
				})
				b.ReportMetric(float64(report.Total().Objects), "objects")
				b.ReportMetric(float64(len(proxy.Calls("", ""))), "req/op")
				b.ReportMetric(float64(heap)/(1<<20), "MiB-heap")
			}
		})
		b.Run(fmt.Sprintf("objects=%d/s3/collect", total), func(b *testing.B) {
			for range b.N {
				proxy.Reset()
				report, err := Collect(ctx, st, policy, opts(false))
				if err != nil {
					b.Fatal(err)
				}
				deleted = report.Total().Objects
				var dels int
				for _, c := range proxy.Calls("POST", "") {
					if strings.HasPrefix(c.Query, "delete") {
						dels++
					}
				}
				b.ReportMetric(float64(deleted), "objects")
				b.ReportMetric(float64(len(proxy.Calls("", ""))), "req/op")
				b.ReportMetric(float64(dels), "DeleteObjects")
				b.ReportMetric(float64(len(proxy.Calls("DELETE", ""))), "DELETE")
			}
		})
		mc := os.Getenv("MC_PATH")
		b.Run(fmt.Sprintf("objects=%d/s3/mc-rm", deleted), func(b *testing.B) {
			if mc == "" {
				b.Skip("MC_PATH is not set: scripts/mc.sh builds mc from the Go module proxy; it could not here")
			}
			for range b.N {
				b.StopTimer()
				peer := srv.NewBucket(b)
				pb, err := s3store.New(ctx, peer, "", srv.Settings())
				if err != nil {
					b.Fatal(err)
				}
				benchBlobs(b, pb, "peer", deleted)
				proxy.Reset()
				cmd := exec.Command(mc, "--config-dir", b.TempDir(), "rm", "--recursive", "--force", "--quiet", "bench/"+peer)
				host := strings.Replace(proxy.Endpoint, "http://", "http://"+srv.AccessKey+":"+srv.SecretKey+"@", 1)
				cmd.Env = append(os.Environ(), "MC_HOST_bench="+host)
				b.StartTimer()
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("mc rm: %v\n%s", err, out)
				}
				b.StopTimer()
				left, err := pb.List(ctx, "")
				if err != nil || len(left) != 0 {
					b.Fatalf("mc rm left %d objects (%v)", len(left), err)
				}
				b.ReportMetric(float64(deleted), "objects")
				b.ReportMetric(float64(len(proxy.Calls("", ""))), "req/op")
			}
		})
	}

	// The local store: the heap at a quarter of the objects, then the
	// dry run, the collection and the peer at all of them.
	local := func(n int) (*store.Store, int) {
		be, err := filestore.New(filepath.Join(b.TempDir(), "store"))
		if err != nil {
			b.Fatal(err)
		}
		total := benchStore(b, be, n)
		return store.New(be), total
	}
	st, total := local(n / 4)
	b.Run(fmt.Sprintf("objects=%d/local/dry-run", total), func(b *testing.B) {
		for range b.N {
			var report *Report
			heap := liveHeapDuring(func() {
				var err error
				if report, err = Collect(ctx, st, policy, opts(true)); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(report.Total().Objects), "objects")
			b.ReportMetric(float64(heap)/(1<<20), "MiB-heap")
		}
	})
	must(b, os.RemoveAll(filepath.Dir(st.LocalRoot())))
	st, total = local(n)
	b.Run(fmt.Sprintf("objects=%d/local/dry-run", total), func(b *testing.B) {
		for range b.N {
			var report *Report
			heap := liveHeapDuring(func() {
				var err error
				if report, err = Collect(ctx, st, policy, opts(true)); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(report.Total().Objects), "objects")
			b.ReportMetric(float64(heap)/(1<<20), "MiB-heap")
		}
	})
	b.Run(fmt.Sprintf("objects=%d/local/collect", total), func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			syncAll(b)
			b.StartTimer()
			report, err := Collect(ctx, st, policy, opts(false))
			if err != nil {
				b.Fatal(err)
			}
			deleted = report.Total().Objects
			b.ReportMetric(float64(deleted), "objects")
		}
	})
	b.Run(fmt.Sprintf("objects=%d/local/rm-rf+sync", deleted), func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			be, err := filestore.New(filepath.Join(b.TempDir(), "peer"))
			if err != nil {
				b.Fatal(err)
			}
			benchBlobs(b, be, "peer", deleted)
			syncAll(b)
			b.StartTimer()
			start := time.Now()
			if out, err := exec.Command("rm", "-rf", be.Root()).CombinedOutput(); err != nil {
				b.Fatalf("rm -rf: %v\n%s", err, out)
			}
			rm := time.Since(start)
			syncAll(b)
			b.ReportMetric(float64(deleted), "objects")
			b.ReportMetric(rm.Seconds(), "s-rm") // the rest is sync's: the whole machine's writes
		}
	})
}

func syncAll(b *testing.B) {
	if out, err := exec.Command("sync").CombinedOutput(); err != nil {
		b.Fatalf("sync: %v\n%s", err, out)
	}
}

// liveHeapDuring runs f and returns the most heap the runtime found live
// after any garbage collection while f ran, above what was live before.
func liveHeapDuring(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	live := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := live()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, live())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	f()
	close(stop)
	wg.Wait()
	if peak < base {
		return 0
	}
	return peak - base
}

// benchStore fills be with about n objects: 20 versions of the release
// "app", each naming a tree of its own blobs, written straight to the
// backend (a local store's files without an fsync each: the benchmark
// syncs before it times), and returns how many objects it holds.
func benchStore(b *testing.B, be store.Backend, n int) int {
	b.Helper()
	must(b, store.WriteIdentity(ctx, be))
	const versions = 20
	per := n/versions - 3 // each version: its blobs, a listing, a record, an index entry
	total := 1
	for v := 1; v <= versions; v++ {
		m := &digest.Listing{Entries: make([]digest.Entry, per)}
		for i := range m.Entries {
			data := []byte(fmt.Sprintf("version %d file %d\n", v, i))
			m.Entries[i] = digest.Entry{Path: fmt.Sprintf("f%07d", i), Kind: digest.KindFile, SHA256: digest.Bytes(data), Size: int64(len(data))}
		}
		must(b, store.ForEach(ctx, 64, per, func(ctx context.Context, i int) error {
			return benchPut(ctx, be, store.BlobKey(m.Entries[i].SHA256), []byte(fmt.Sprintf("version %d file %d\n", v, i)))
		}))
		must(b, benchPut(ctx, be, store.ListingKey(m.Digest()), m.Encode()))
		_, err := release.WriteRecord(ctx, be, &release.Record{Name: "app", Version: fmt.Sprintf("1.%d.0", v),
			Artifacts: map[string]string{"site": m.Digest().String()}}, time.Now())
		must(b, err)
		total += per + 3
	}
	return total
}

// benchBlobs fills be with n blobs of about the size of benchStore's.
func benchBlobs(b *testing.B, be store.Backend, tag string, n int) {
	b.Helper()
	must(b, store.ForEach(ctx, 64, n, func(ctx context.Context, i int) error {
		data := []byte(fmt.Sprintf("%s file %d\n", tag, i))
		return benchPut(ctx, be, store.BlobKey(digest.Bytes(data)), data)
	}))
}

// benchPut writes an object: on a local store as a plain file (no fsync:
// the benchmark syncs once), elsewhere through the backend.
func benchPut(ctx context.Context, be store.Backend, key string, data []byte) error {
	if fb, ok := be.(*filestore.Backend); ok {
		p := filepath.Join(fb.Root(), filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o444)
	}
	return be.Create(ctx, key, bytes.NewReader(data))
}
