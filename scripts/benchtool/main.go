// Command benchtool is the helper of `make bench`:
//
//	benchtool gen -dir D -files N -kib K [-seed S]  write a tree of N files of K KiB (reproducible content, per seed)
//	benchtool limit -dir D                  seconds to sha256 as many bytes as the tree holds, on all cores
//	benchtool rss -path P                   hash a file or tree as a plan does; print seconds and peak RSS
//	benchtool registry -bin R -dir D        start the registry R on 127.0.0.1 behind a proxy logging
//	                                        requests to D/requests.log; print the proxy's host:port
//	benchtool peak -o F [-provider P] -- CMD...  run CMD; write the peak RSS (KiB) of CMD, or of the
//	                                        provider P started in debug mode and attached to CMD, to F
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/immutable-infra/terraform-provider-immutable/internal/digest"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: benchtool gen|limit|rss|registry|peak ...")
	}
	fl := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fl.String("dir", "", "tree directory")
	files := fl.Int("files", 10000, "number of files")
	kib := fl.Int("kib", 100, "size of each file in KiB")
	path := fl.String("path", "", "file or directory")
	seed := fl.Uint64("seed", 1, "seed of the generated content")
	bin := fl.String("bin", "", "the registry binary")
	out := fl.String("o", "", "file the peak RSS is written to")
	provider := fl.String("provider", "", "the provider binary, to measure instead of the command")
	if err := fl.Parse(os.Args[2:]); err != nil {
		log.Fatal(err) // not reached: ExitOnError exits first
	}
	switch os.Args[1] {
	case "gen":
		gen(*dir, *files, *kib, *seed)
	case "limit":
		limit(*dir)
	case "rss":
		rss(*path)
	case "registry":
		registry(*bin, *dir)
	case "peak":
		peak(*provider, *out, fl.Args())
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

func gen(dir string, files, kib int, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 2))
	buf := make([]byte, kib*1024)
	for i := range files {
		for j := 0; j+8 <= len(buf); j += 8 {
			v := r.Uint64()
			for k := range 8 {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i/100%1000), fmt.Sprintf("f%06d.bin", i))
		if files == 1 {
			p = filepath.Join(dir, "big.bin")
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	// Files older than the stat cache's racy window, as in any checkout.
	old := time.Now().Add(-time.Hour)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		log.Fatal(err)
	}
}

// limit is the compute bound: sha256 over as many bytes as the tree holds,
// file by file (a file is one sequential hash), spread over GOMAXPROCS
// goroutines, from one hot 256 KiB buffer each (the provider's buffer
// size). No file I/O: no hashing of this tree can beat it on this machine.
func limit(dir string) {
	var sizes []int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sizes = append(sizes, fi.Size())
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	work := make(chan int64, 1024)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for size := range work {
				h := sha256.New()
				for size > 0 {
					n := min(size, int64(len(buf)))
					h.Write(buf[:n])
					size -= n
				}
				h.Sum(nil)
			}
		}()
	}
	for _, n := range sizes {
		work <- n
	}
	close(work)
	wg.Wait()
	fmt.Printf("%.3f\n", time.Since(start).Seconds())
}

func rss(path string) {
	ctx := context.Background()
	fi, err := os.Stat(path)
	if err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	var n int
	if fi.IsDir() {
		m, err := digest.HashTree(ctx, path, digest.Options{})
		if err != nil {
			log.Fatal(err)
		}
		n = len(m.Entries)
	} else {
		if _, _, err := digest.HashFile(ctx, path); err != nil {
			log.Fatal(err)
		}
		n = 1
	}
	elapsed := time.Since(start)
	status, _ := os.ReadFile("/proc/self/status")
	hwm := "?"
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			hwm = strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	fmt.Printf("%s: %d files, %.2f s, peak RSS %s\n", path, n, elapsed.Seconds(), hwm)
}
