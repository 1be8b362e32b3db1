// Command gnetecho is a github.com/panjf2000/gnet/v2 echo server, the
// event-loop design `make bench` measures echoctl against: no goroutine
// per connection, one event loop per CPU it may run on, each reading into
// a shared buffer and writing straight back. gnet closes a connection when
// its peer half-closes, after flushing what is left to write.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
)

// echoServer writes back whatever arrives.
type echoServer struct {
	gnet.BuiltinEventEngine
}

// OnTraffic echoes the bytes read.
func (*echoServer) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	c.Write(buf)
	return gnet.None
}

func main() {
	addr := flag.String("addr", "127.0.0.1:10000", "address to listen on")
	flag.Parse()
	err := gnet.Run(&echoServer{}, "tcp://"+*addr,
		gnet.WithMulticore(true),
		gnet.WithReuseAddr(true),
		gnet.WithLogLevel(logging.ErrorLevel))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gnetecho:", err)
		os.Exit(1)
	}
}
