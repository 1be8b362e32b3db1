package echo_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
)

// A Server serves a listener until Shutdown, as net/http's does; a Client
// sends the seed's messages, half-closes and verifies the echo.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &echo.Server{} // the seed's defaults; the zero Logger logs nothing
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	c := &echo.Client{Addr: ln.Addr().String(), Timeout: 5 * time.Second}
	messages := [][]byte{[]byte("This is the message. "), []byte("It will be sent "), []byte("in parts.")}
	res, err := c.Send(context.Background(), messages, os.Stdout)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("\n%d bytes sent, %d echoed\n", res.Sent, res.Received)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(errors.Is(<-served, echo.ErrServerClosed))
	// Output:
	// This is the message. It will be sent in parts.
	// 46 bytes sent, 46 echoed
	// true
}

// A greeting names the backend that answered, before the echo; the
// Client reads it first (ClientTrace.Greeted) and verifies the echo after
// it.
func ExampleServer_greeting() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &echo.Server{Greeting: "backend-a"}
	go srv.Serve(ln)
	defer srv.Close()

	c := &echo.Client{Addr: ln.Addr().String(), Timeout: 5 * time.Second, Greeting: true,
		Trace: &echo.ClientTrace{Greeted: func(line string) { fmt.Println("greeted by", line) }}}
	if _, err := c.Send(context.Background(), [][]byte{[]byte("hello")}, os.Stdout); err != nil {
		log.Fatal(err)
	}
	fmt.Println()
	// Output:
	// greeted by backend-a
	// hello
}

// SendProxy makes the PROXY protocol header a load balancer would send
// before a connection's bytes, here for a client it names.
func ExampleParseSendProxy() {
	p, err := echo.ParseSendProxy("v1", "203.0.113.7:41000", "10.0.0.5:9000", nil)
	if err != nil {
		log.Fatal(err)
	}
	h, err := p.Header(nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", h)
	// Output:
	// "PROXY TCP4 203.0.113.7 10.0.0.5 41000 9000\r\n"
}
