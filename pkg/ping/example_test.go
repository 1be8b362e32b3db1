package ping_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/echoctl/echoctl/pkg/echo"
	"github.com/echoctl/echoctl/pkg/ping"
)

// Run probes an echo server as tcping probes a port: here three probes, a
// new connection each, against a server on loopback.
func ExampleRun() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &echo.Server{}
	go srv.Serve(ln)
	defer srv.Close()

	s, err := ping.Run(context.Background(), ping.Config{
		Client:   &echo.Client{Addr: ln.Addr().String()},
		Count:    3,
		Interval: 10 * time.Millisecond,
		OnProbe:  func(p ping.Probe) { fmt.Println("probe", p.Seq, "ok:", p.Err == nil) },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d sent, %d received, %.0f%% loss\n", s.Sent, s.Received, s.Loss)
	// Output:
	// probe 1 ok: true
	// probe 2 ok: true
	// probe 3 ok: true
	// 3 sent, 3 received, 0% loss
}
