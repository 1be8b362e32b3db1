package main_test

// nginx's stream module both ways (docs/load-balancers.md): in front of two
// `echoctl serve --greeting` backends that expect PROXY v1 headers
// (`proxy_protocol on`, nginx's only sender), round robin, connecting from
// 127.0.0.4 (its `proxy_bind`), and before a TLS one (`proxy_ssl on`: the
// header before the handshake); and as a backend that expects PROXY
// headers itself (`listen ... proxy_protocol`), before a plain echoctl,
// which `echoctl send --proxy-protocol` tests without a balancer.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/echoctl/echoctl/internal/testtool"
)

// nginxVia is the address nginx connects to the backends from.
const nginxVia = "127.0.0.4"

// nginxConfig is the configuration the test runs nginx with, in the
// foreground, one process, logging to stderr: %s is the load_module line
// (nginxStreamModule), then the pid file, the two PROXY backends' ports,
// the front port, the PROXY-expecting listener's port and the plain
// backend's, and the TLS front's port and its TLS backend's (nginx sends
// the header before the handshake, as for HAProxy's send-proxy-v2-ssl).
// proxy_half_close passes the client's FIN on, as echoctl send
// half-closes once it has sent: without it nginx ends the session there
// and the echo is lost.
const nginxConfig = `%s
daemon off;
master_process off;
worker_processes 1;
pid %s;
error_log stderr notice;
events { worker_connections 256; }
stream {
    log_format proxied 'session from $remote_addr:$remote_port PROXY $proxy_protocol_addr:$proxy_protocol_port';
    access_log /dev/stderr proxied;
    upstream echoctl {
        server 127.0.0.1:%d;
        server 127.0.0.1:%d;
    }
    server {
        listen 127.0.0.1:%d;
        proxy_pass echoctl;
        proxy_protocol on;
        proxy_half_close on;
        proxy_bind ` + nginxVia + `;
    }
    server {
        listen 127.0.0.1:%d proxy_protocol;
        proxy_pass 127.0.0.1:%d;
        proxy_half_close on;
    }
    server {
        listen 127.0.0.1:%d;
        proxy_pass 127.0.0.1:%d;
        proxy_protocol on;
        proxy_ssl on;
        proxy_half_close on;
        proxy_bind ` + nginxVia + `;
    }
}
`

// nginxStreamModule returns the line nginx's configuration needs for its
// stream module: none when it is built in, a load_module line when it is a
// dynamic module (Debian's libnginx-mod-stream, which make test-deps
// installs). Without one the test ends as for a missing tool.
func nginxStreamModule(t *testing.T, nginx string) string {
	t.Helper()
	out, err := exec.Command(nginx, "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -V: %v\n%s", err, out)
	}
	v := string(out)
	if regexp.MustCompile(`--with-stream(\s|$)`).MatchString(v) {
		return ""
	}
	if !strings.Contains(v, "--with-stream=dynamic") {
		testtool.Missing(t, "nginx's stream module (nginx -V shows no --with-stream)")
	}
	dir := "/usr/lib/nginx/modules"
	if m := regexp.MustCompile(`--modules-path=(\S+)`).FindStringSubmatch(v); m != nil {
		dir = m[1]
	}
	so := filepath.Join(dir, "ngx_stream_module.so")
	if _, err := os.Stat(so); err != nil {
		testtool.Missing(t, "nginx's stream module "+so+" (Debian: libnginx-mod-stream)")
	}
	return "load_module " + so + ";"
}

// nginxReady matches the line nginx logs once it listens: its version, at
// notice level, which it logs after opening its listening sockets.
var nginxReady = regexp.MustCompile(`nginx/\d`)

func TestNginxBothWays(t *testing.T) {
	nginx := testtool.Need(t, "nginx", "the load-balancer tests")
	module := nginxStreamModule(t, nginx)
	backends := []lbBackend{
		startBackend(t, "nginx-b1", "tcp://127.0.0.1:0?proxy-protocol=on"),
		startBackend(t, "nginx-b2", "tcp://127.0.0.1:0?proxy-protocol=on"),
	}
	plain := startBackend(t, "plain", "tcp://127.0.0.1:0")
	tlsBackend := startBackend(t, "nginx-tls", "tls://127.0.0.1:0?proxy-protocol=on", "--tls-self-signed")
	front, expects, tlsFront := unusedPort(t), unusedPort(t), unusedPort(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "nginx.conf", fmt.Sprintf(nginxConfig, module, filepath.Join(dir, "nginx.pid"),
		backends[0].Port, backends[1].Port, front, expects, plain.Port, tlsFront, tlsBackend.Port))
	args := []string{"-e", "stderr", "-p", dir, "-c", cfg}
	if out, err := exec.Command(nginx, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	ng, _ := launchProc(t, spec{}.command(t, context.Background(), nginx, args...), syscall.SIGTERM, nginxReady)

	// Twenty exchanges through nginx: ten to each backend, each of which
	// sees the send process (127.0.0.1) as the client and nginx as via.
	r := echoctl(t, spec{}, "send", "--addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(front)), "--greeting", "--count", "20", "hello")
	if r.Code != 0 {
		t.Fatalf("send --count 20 through nginx: %s\nnginx:\n%s", r, ng.Stderr)
	}
	checkSpread(t, string(r.Stdout)+string(r.Stderr), backends, nginxVia, 10)

	// The header before TLS: the TLS backend sees the client too.
	r = echoctl(t, spec{}, "send", "--addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsFront)), "--greeting", "--count", "2", "hello")
	if r.Code != 0 {
		t.Fatalf("send --count 2 through nginx to the TLS backend: %s\nnginx:\n%s", r, ng.Stderr)
	}
	checkSpread(t, string(r.Stdout)+string(r.Stderr), []lbBackend{tlsBackend}, nginxVia, 2)

	// nginx expecting PROXY headers: echoctl send's, v1 and v2, get the
	// echo through, and nginx takes the forged source as the client's.
	behind := net.JoinHostPort("127.0.0.1", strconv.Itoa(expects))
	for i, v := range []string{"v1", "v2"} {
		source := fmt.Sprintf("203.0.113.%d:4100%d", 7+i, i)
		r := echoctl(t, spec{}, "send", "--addr", behind, "--greeting", "--proxy-protocol", v, "--proxy-source", source, "forged "+v)
		if r.Code != 0 || string(r.Stdout) != "forged "+v {
			t.Fatalf("send --proxy-protocol %s to nginx: %s\nnginx:\n%s", v, r, ng.Stderr)
		}
		ng.WaitLine(regexp.MustCompile(`PROXY `+regexp.QuoteMeta(source)+`$`), readyTimeout)
	}

	// A client without a header is refused: nginx closes the connection.
	r = echoctl(t, spec{}, "send", "--addr", behind, "no header")
	if r.Code != 1 {
		t.Errorf("send without a PROXY header to nginx expecting one: %s; want exit 1, the connection closed", r)
	}
	ng.WaitLine(regexp.MustCompile(`broken header`), readyTimeout)
}
