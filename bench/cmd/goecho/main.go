// Command goecho is the plain Go echo server that `make bench` measures
// echoctl against: a goroutine per connection, reading at most 128 bytes
// at a time (the seed's reader.read(128)) and writing them back, closing
// when the peer half-closes. It is what most people would write.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:10000", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goecho:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "goecho:", err)
			continue
		}
		go echo(c)
	}
}

// echo copies what c reads back to c, 128 bytes at a time.
func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 128)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
