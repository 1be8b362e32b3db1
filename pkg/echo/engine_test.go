package echo

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestEngineFor checks engineFor's table: on Linux the event loops serve
// every listener whose sockets the server owns as descriptors (TCP, Unix),
// whatever the timeouts and logging; TLS, wrapped listeners, the noLoops
// knob and other systems get goroutines.
func TestEngineFor(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close() })
	dir, err := os.MkdirTemp("", "engine")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	made, err := (&Server{}).bindUnix(t.Context(), filepath.Join(dir, "made.sock"), DefaultUnixMode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { made.Close() })
	plainUnix, err := net.Listen("unix", filepath.Join(dir, "plain.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plainUnix.Close() })
	tlsLn := tls.NewListener(tcp, &tls.Config{})
	wrapped := struct{ net.Listener }{tcp}

	debug := zerolog.New(io.Discard).Level(zerolog.DebugLevel)
	loops := engineGoroutines
	if runtime.GOOS == "linux" {
		loops = engineLoops
	}
	tests := []struct {
		name string
		srv  *Server
		ln   net.Listener
		want engine
	}{
		{"TCP", &Server{}, tcp, loops},
		{"TCP, idle timeout", &Server{IdleTimeout: time.Minute}, tcp, loops},
		{"TCP, write timeout", &Server{WriteTimeout: time.Minute}, tcp, loops},
		{"TCP, data logged", &Server{Logger: debug, BufferSize: 7}, tcp, loops},
		{"TCP, timeouts, data logged, limits", &Server{IdleTimeout: time.Minute, WriteTimeout: time.Second,
			Logger: debug, MaxConns: 10, MaxConnsPerIP: 1}, tcp, loops},
		{"unix:// (bindUnix)", &Server{}, made, loops},
		{"unix:// (bindUnix), timeouts, data logged", &Server{IdleTimeout: time.Minute, WriteTimeout: time.Minute, Logger: debug}, made, loops},
		{"*net.UnixListener", &Server{}, plainUnix, loops},
		{"TLS", &Server{}, tlsLn, engineGoroutines},
		{"wrapped listener", &Server{}, wrapped, engineGoroutines},
		{"noLoops (tests)", &Server{noLoops: true}, tcp, engineGoroutines},
		{"noLoops, unix", &Server{noLoops: true}, made, engineGoroutines},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.srv.engineFor(tt.ln); got != tt.want {
				t.Errorf("engineFor(%T) = %v, want %v", tt.ln, got, tt.want)
			}
		})
	}
}
