//go:build linux

// Command spliceecho is the experiment behind docs/profile.md's answer to
// "would splice(2) make echoctl's bulk echo cheaper?". It is not in
// `make bench`. It echoes each connection in its own goroutine, on a
// blocking socket, in one of three ways (-mode):
//
//   - splice: splice(2) from the socket into a pipe of -pipe bytes and
//     from the pipe back into the socket, so the bytes never enter the
//     process;
//   - copy: io.Copy from the connection to itself, which Go does with
//     splice(2) through a pipe of its own (up to 1 MiB at a time);
//   - rw: read(2) into a buffer of -pipe bytes and write(2) it back, as
//     echoctl's event loops do.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// fSetPipeSize is F_SETPIPE_SZ, which package syscall does not name.
const fSetPipeSize = 1031

func main() {
	addr := flag.String("addr", "127.0.0.1:10000", "address to listen on")
	mode := flag.String("mode", "splice", "splice, copy or rw")
	size := flag.Int("pipe", 64<<10, "pipe size (splice) or buffer size (rw), in bytes")
	flag.Parse()
	echo := map[string]func(fd int, size int) error{"splice": spliceEcho, "rw": readWriteEcho}[*mode]
	if echo == nil && *mode != "copy" {
		fmt.Fprintf(os.Stderr, "spliceecho: unknown -mode %q: want splice, copy or rw\n", *mode)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "spliceecho:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "spliceecho:", err)
			continue
		}
		if echo == nil {
			go func() {
				defer c.Close()
				io.Copy(c, c.(*net.TCPConn))
			}()
			continue
		}
		f, err := c.(*net.TCPConn).File() // a blocking duplicate
		c.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "spliceecho:", err)
			continue
		}
		go func() {
			defer f.Close()
			if err := echo(int(f.Fd()), *size); err != nil {
				fmt.Fprintln(os.Stderr, "spliceecho:", err)
			}
		}()
	}
}

// spliceEcho echoes fd through a pipe of size bytes until the peer
// half-closes.
func spliceEcho(fd, size int) error {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return fmt.Errorf("pipe2: %w", err)
	}
	defer syscall.Close(p[0])
	defer syscall.Close(p[1])
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(p[1]), fSetPipeSize, uintptr(size)); errno != 0 {
		return fmt.Errorf("F_SETPIPE_SZ %d: %w", size, errno)
	}
	for {
		n, err := syscall.Splice(fd, nil, p[1], nil, size, spliceMove)
		if err != nil {
			return fmt.Errorf("splice from the socket: %w", err)
		}
		if n == 0 {
			return nil
		}
		for n > 0 {
			m, err := syscall.Splice(p[0], nil, fd, nil, int(n), spliceMove)
			if err != nil {
				return fmt.Errorf("splice to the socket: %w", err)
			}
			n -= m
		}
	}
}

// spliceMove is SPLICE_F_MOVE.
const spliceMove = 1

// readWriteEcho echoes fd through a buffer of size bytes until the peer
// half-closes.
func readWriteEcho(fd, size int) error {
	buf := make([]byte, size)
	for {
		n, err := syscall.Read(fd, buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return nil
		}
		for off := 0; off < n; {
			m, err := syscall.Write(fd, buf[off:n])
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
			off += m
		}
	}
}
