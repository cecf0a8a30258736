// Command gentree writes a benchmark tree: -files files of -kib KiB each,
// 100 to a directory, with pseudo-random (but reproducible) content.
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("dir", "", "directory to create")
	files := flag.Int("files", 10000, "number of files")
	kib := flag.Int("kib", 100, "size of each file in KiB")
	flag.Parse()
	if *dir == "" {
		log.Fatal("-dir is required")
	}
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, *kib*1024)
	for i := range *files {
		for j := 0; j+8 <= len(buf); j += 8 {
			v := r.Uint64()
			for k := range 8 {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		p := filepath.Join(*dir, fmt.Sprintf("d%03d", i/100), fmt.Sprintf("f%05d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
