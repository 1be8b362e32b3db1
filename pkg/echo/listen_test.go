package echo_test

import (
	"strings"
	"testing"

	"github.com/echoctl/echoctl/pkg/echo"
)

func TestSplitAddr(t *testing.T) {
	tests := []struct {
		addr    string
		host    string
		port    uint16
		wantErr bool
	}{
		{addr: "localhost:10000", host: "localhost", port: 10000},
		{addr: "127.0.0.1:0", host: "127.0.0.1", port: 0},
		{addr: ":0", host: "", port: 0},
		{addr: "[::1]:65535", host: "::1", port: 65535},
		{addr: "[fe80::1%lo]:7", host: "fe80::1%lo", port: 7},
		{addr: "127.0.0.1:65536", wantErr: true},
		{addr: "127.0.0.1:70000", wantErr: true},
		{addr: "127.0.0.1:-1", wantErr: true},
		{addr: "127.0.0.1:http", wantErr: true},
		{addr: "127.0.0.1:", wantErr: true},
		{addr: "127.0.0.1", wantErr: true},
		{addr: "::1:80", wantErr: true},
		{addr: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			host, port, err := echo.SplitAddr(tt.addr)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("SplitAddr(%q) = %q, %d; want an error", tt.addr, host, port)
				}
				if !strings.HasPrefix(err.Error(), "echo: address ") {
					t.Errorf("error %q does not name the address", err)
				}
				return
			}
			if err != nil || host != tt.host || port != tt.port {
				t.Errorf("SplitAddr(%q) = %q, %d, %v; want %q, %d", tt.addr, host, port, err, tt.host, tt.port)
			}
		})
	}
}
