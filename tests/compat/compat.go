// Go's side of the compatibility matrix (tests/compat.rs), built static (CGO_ENABLED=0) and
// dynamic (cgo, linked against glibc): one line per feature, `NAME ok`, `NAME ERRNO` or
// `NAME error TEXT`.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func feature(name string, body func() error) {
	err := body()
	var errno syscall.Errno
	switch {
	case err == nil:
		fmt.Println(name, "ok")
	case errors.As(err, &errno):
		fmt.Println(name, errnoName(errno))
	default:
		fmt.Println(name, "error", strings.ReplaceAll(err.Error(), "\n", " "))
	}
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EPERM:
		return "EPERM"
	case syscall.EACCES:
		return "EACCES"
	case syscall.ENOSYS:
		return "ENOSYS"
	case syscall.EAFNOSUPPORT:
		return "EAFNOSUPPORT"
	}
	return fmt.Sprintf("errno %d", int(e))
}

func main() {
	feature("goroutines", func() error {
		var wg sync.WaitGroup
		var mu sync.Mutex
		sum := 0
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func(i int) { defer wg.Done(); mu.Lock(); sum += i; mu.Unlock() }(i)
		}
		wg.Wait()
		if sum != 2016 {
			return fmt.Errorf("sum %d", sum)
		}
		return nil
	})
	feature("signals", func() error {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGUSR1)
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			return err
		}
		select {
		case <-c:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("no SIGUSR1")
		}
	})
	feature("exec", func() error {
		out, err := exec.Command("sh", "-c", "echo hi").Output()
		if err == nil && string(out) != "hi\n" {
			return fmt.Errorf("output %q", out)
		}
		return err
	})
	feature("files", func() error {
		d, err := os.MkdirTemp("", "compat")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		return os.WriteFile(d+"/a", []byte("hello"), 0o644)
	})
	feature("loopback-tcp", func() error {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		go func() {
			if c, err := l.Accept(); err == nil {
				c.Write([]byte("ping"))
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		b := make([]byte, 4)
		_, err = c.Read(b)
		return err
	})
}
