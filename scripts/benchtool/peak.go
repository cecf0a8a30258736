package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// peak runs argv and writes to out the peak resident set size, in KiB,
// of argv itself (its rusage), or with provider, of that provider binary:
// started first in debug mode, argv (tofu) attached to it through
// TF_REATTACH_PROVIDERS, its VmHWM read from /proc after argv ends and
// before it is stopped. It exits with argv's status.
func peak(provider, out string, argv []string) {
	if len(argv) == 0 {
		log.Fatal("peak: no command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	var p *exec.Cmd
	if provider != "" {
		var reattach string
		p, reattach = startDebugProvider(provider, out+".provider.log")
		cmd.Env = append(os.Environ(), "TF_REATTACH_PROVIDERS="+reattach)
	}
	runErr := cmd.Run()
	var kib int64
	if p != nil {
		kib = vmHWM(p.Process.Pid)
		_ = p.Process.Signal(os.Interrupt) // it exits on interrupt; fails only if it exited already
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	} else if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			kib = int64(ru.Maxrss) //nolint:unconvert // KiB on Linux; int32 on 32-bit Linux
		}
	}
	if err := os.WriteFile(out, []byte(strconv.FormatInt(kib, 10)+"\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	var ee *exec.ExitError
	if errors.As(runErr, &ee) {
		os.Exit(ee.ExitCode())
	}
	if runErr != nil {
		log.Fatal(runErr)
	}
}

// startDebugProvider starts the provider binary with -debug and returns
// it and its reattach configuration, keyed by the addresses both
// OpenTofu and Terraform resolve "immutable-infra/immutable" to. Its log
// (at trace level in debug mode) goes to logFile.
func startDebugProvider(bin, logFile string) (*exec.Cmd, string) {
	p := exec.Command(bin, "-debug")
	lf, err := os.Create(logFile)
	if err != nil {
		log.Fatal(err)
	}
	p.Stderr = lf
	stdout, err := p.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatalf("starting the provider: %v", err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, v, ok := strings.Cut(sc.Text(), "TF_REATTACH_PROVIDERS='"); ok {
				found <- strings.TrimSuffix(v, "'")
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout) // keep the provider from blocking on a full pipe
	}()
	var line string
	select {
	case line = <-found:
	case <-time.After(30 * time.Second):
		_ = p.Process.Kill()
		log.Fatal("the provider printed no reattach configuration within 30s")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &m); err != nil || len(m) != 1 {
		log.Fatalf("the provider's reattach configuration %q: %v", line, err)
	}
	var cfg json.RawMessage
	for _, v := range m {
		cfg = v
	}
	b, err := json.Marshal(map[string]json.RawMessage{
		"registry.opentofu.org/immutable-infra/immutable": cfg,
		"registry.terraform.io/immutable-infra/immutable": cfg,
	})
	if err != nil {
		log.Fatal(err)
	}
	return p, string(b)
}

// vmHWM is the peak resident set size of process pid, in KiB.
func vmHWM(pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				log.Fatalf("VmHWM %q: %v", v, err)
			}
			return n
		}
	}
	log.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
