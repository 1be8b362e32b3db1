package bench_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo"
)

// Run loads an echo server, here with two connections in lock step for a
// short window, verifying every byte echoed.
func ExampleRun() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &echo.Server{}
	go srv.Serve(ln)
	defer srv.Close()

	res, err := bench.Run(context.Background(), bench.Config{
		Addr:     ln.Addr().String(),
		Mode:     bench.ModePingPong,
		Conns:    2,
		Size:     128,
		Warmup:   500 * time.Millisecond,
		Duration: 300 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("echoed:", res.Messages > 0, "errors:", res.Errors.Total())
	// Output:
	// echoed: true errors: 0
}
