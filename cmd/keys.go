package cmd

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/echoctl/echoctl/internal/logging"
	"github.com/echoctl/echoctl/pkg/bench"
	"github.com/echoctl/echoctl/pkg/echo"
)

// Configuration keys: the same names serve as flags (--buffer-size), config
// file keys (buffer-size:) and, upper-cased with "_", environment variables
// (ECHOCTL_BUFFER_SIZE). The keys table says what each one is.
const (
	keyAddr            = "addr"
	keyBufferSize      = "buffer-size"
	keyMessages        = "messages"
	keyLogLevel        = "log-level"
	keyLogFormat       = "log-format"
	keyShutdownTimeout = "shutdown-timeout"
	keyTimeout         = "timeout"
	keyLogMaxBytes     = "log-max-bytes"

	// serve's limits, timeouts, access list and metrics.
	keyMaxConns      = "max-conns"
	keyMaxConnsPerIP = "max-conns-per-ip"
	keyIdleTimeout   = "idle-timeout"
	keyWriteTimeout  = "write-timeout"
	keyBusyPoll      = "busy-poll"
	keyAllow         = "allow"
	keyDeny          = "deny"
	keyMetricsAddr   = "metrics-addr"

	// serve's greeting, which tells a client which backend answered.
	keyGreeting = "greeting"

	// The transports: TLS, Unix sockets and UDP; see docs/tls.md,
	// docs/unix.md and docs/udp.md. tls-cert and tls-key are the server's
	// certificate for serve and the client certificate for send.
	keyTLSCert          = "tls-cert"
	keyTLSKey           = "tls-key"
	keyTLSClientCA      = "tls-client-ca"
	keyTLSSelfSigned    = "tls-self-signed"
	keyTLSCA            = "tls-ca"
	keyTLSServerName    = "tls-server-name"
	keyTLSInsecure      = "tls-insecure"
	keyUnixMode         = "unix-mode"
	keyRetries          = "retries"
	keyUDPAllowLowPorts = "udp-allow-low-ports"
	keyUDPRatePerSource = "udp-rate-per-source"

	// The PROXY protocol header send and bench write first; see
	// docs/usage.md#proxy-protocol.
	keyProxyProtocol = "proxy-protocol"
	keyProxySource   = "proxy-source"
	keyProxyDest     = "proxy-dest"
	keyProxyTLV      = "proxy-tlv"
)

// The commands a key's flag may be on; cmdEvery is the root, whose flags
// every command has.
const (
	cmdEvery = "echoctl"
	cmdServe = "serve"
	cmdSend  = "send"
	cmdBench = "bench"
	cmdPing  = "ping"
)

// A key is one setting of the configuration: a config file key, an
// ECHOCTL_* variable and, on the commands its flags name, a flag. Its
// default is written once, here, and is both the flag's default and
// viper's, so that --help shows the default that is used.
type key struct {
	name string
	// def is the default, of the type its flags hold: string, int, bool,
	// time.Duration or []string.
	def any
	// flags are the key's flags, at most one a command; a key without
	// flags is set in the environment or the config file only.
	flags []keyFlag
	// decode converts the merged value of the key into its field of cfg,
	// reporting an invalid one through d.
	decode func(d *decoder, name string, cfg *Config)
}

// A keyFlag is a key's flag on one command.
type keyFlag struct {
	// on is the command that has the flag (cmdServe...), or cmdEvery.
	on    string
	usage string
	// add, if not nil, adds a flag whose type differs from the default's;
	// without it, def's type decides (a []string is a comma-separated
	// list that may be repeated).
	add func(fs *pflag.FlagSet, name string, def any, usage string)
}

// keys are every configuration key, in the order the docs list them; they
// are decoded in this order, and the first invalid one is reported.
var keys = withListenerKeys([]key{
	{
		name: keyAddr, def: echo.DefaultAddr,
		flags: []keyFlag{
			{on: cmdServe, add: addRepeatable, usage: "address to listen on, repeatable: host:port (TCP), tcp://, udp://, tls://host:port or unix:///path; a host name is listened on at every address it resolves to"},
			{on: cmdSend, add: addOnce, usage: "address: host:port (TCP), or tcp://, udp://, tls://host:port or unix:///path; a host name's addresses are tried in turn"},
			{on: cmdPing, add: addOnce, usage: "address to probe: host:port (TCP), or tcp://, udp://, tls://host:port or unix:///path"},
			{on: cmdBench, add: addOnce, usage: "address of the echo server: host:port (TCP), or tcp://, udp://, tls://host:port or unix:///path"},
		},
		decode: func(d *decoder, name string, cfg *Config) {
			cfg.Addrs = d.addrs(name)
			if len(cfg.Addrs) > 0 {
				cfg.Addr = cfg.Addrs[0]
			}
		},
	},
	{
		name: keyBufferSize, def: echo.DefaultBufferSize,
		flags: []keyFlag{
			{on: cmdServe, usage: "most bytes read at once when data is logged (1 to 16777216); without -v serve moves up to 64 KiB at a time"},
			{on: cmdSend, usage: `most bytes read from the connection at once, which is also what one "received" log line shows (1 to 16777216; udp:// reads each datagram whole)`},
		},
		decode: func(d *decoder, name string, cfg *Config) { cfg.BufferSize = d.intRange(name, 1, echo.MaxBufferSize) },
	},
	{
		// No flag: send's arguments replace it.
		name: keyMessages, def: bench.SeedParts, // the seed client's MESSAGES
		decode: func(d *decoder, name string, cfg *Config) { cfg.Messages = d.strings(name) },
	},
	{
		name: keyLogLevel, def: "info",
		flags:  []keyFlag{{on: cmdEvery, usage: "log level: trace, debug, info, warn, error or disabled"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.LogLevel = d.level(name) },
	},
	{
		name: keyLogFormat, def: "text",
		flags:  []keyFlag{{on: cmdEvery, usage: "log format: text (the seed's name: message), console or json"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.LogFormat = d.oneOf(name, logging.Formats) },
	},
	{
		name: keyShutdownTimeout, def: 5 * time.Second,
		flags:  []keyFlag{{on: cmdServe, usage: "how long open connections may finish after SIGINT/SIGTERM"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.ShutdownTimeout = d.duration(name) },
	},
	{
		name: keyTimeout, def: 10 * time.Second,
		flags: []keyFlag{
			{on: cmdSend, usage: "bound on connecting and the whole exchange; over UDP, on each datagram's echo, retries included (0: no limit)"},
			{on: cmdPing, usage: "bound on each probe, connecting included, as ping's -W (more than 0)"},
		},
		decode: func(d *decoder, name string, cfg *Config) { cfg.Timeout = d.connTimeout(name) },
	},
	{
		name: keyLogMaxBytes, def: echo.DefaultLogMaxBytes,
		flags:  []keyFlag{{on: cmdEvery, usage: `most bytes of data one log line shows; the rest is cut as "... (N more bytes)" (0: no limit)`}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.LogMaxBytes = d.logMaxBytes(name) },
	},
	{
		name: keyMaxConns, def: 0,
		flags:  []keyFlag{{on: cmdServe, usage: "most connections served at once; past it new ones are closed at once (0: no limit)"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.MaxConns = d.intRange(name, 0, maxConnsLimit) },
	},
	{
		name: keyMaxConnsPerIP, def: 0,
		flags:  []keyFlag{{on: cmdServe, usage: "most connections served at once from one IP address (0: no limit)"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.MaxConnsPerIP = d.intRange(name, 0, maxConnsLimit) },
	},
	{
		name: keyIdleTimeout, def: time.Duration(0),
		flags:  []keyFlag{{on: cmdServe, usage: "close a connection when no byte has moved either way for this long (0: never)"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.IdleTimeout = d.connTimeout(name) },
	},
	{
		name: keyWriteTimeout, def: time.Duration(0),
		flags:  []keyFlag{{on: cmdServe, usage: "close a connection whose peer has read none of the echo for this long (0: never)"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.WriteTimeout = d.connTimeout(name) },
	},
	{
		name: keyBusyPoll, def: time.Duration(0),
		flags: []keyFlag{
			{on: cmdServe, usage: "keep polling for this long after each event before sleeping: less latency for more CPU (0: off; at most 100ms)"},
			{on: cmdBench, usage: "look for each echo for this long before waiting to be woken: takes the load generator's wake-up out of the latencies, for a CPU (0: off; at most 100ms)"},
		},
		decode: func(d *decoder, name string, cfg *Config) { cfg.BusyPoll = d.busyPoll(name) },
	},
	{
		name: keyAllow, def: []string{},
		flags:  []keyFlag{{on: cmdServe, usage: "serve only peers in these CIDR prefixes or IP addresses (comma-separated or repeated; default: all)"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.Allow = d.prefixes(name) },
	},
	{
		name: keyDeny, def: []string{},
		flags:  []keyFlag{{on: cmdServe, usage: "refuse peers in these CIDR prefixes or IP addresses (comma-separated or repeated); deny wins over allow"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.Deny = d.prefixes(name) },
	},
	{
		name: keyMetricsAddr, def: "",
		flags:  []keyFlag{{on: cmdServe, usage: "serve Prometheus /metrics, /healthz and /readyz on this host:port, to the peers --allow/--deny admit; :PORT listens on every interface, so prefer 127.0.0.1:PORT (default: off)"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.MetricsAddr = d.optionalHostPort(name) },
	},
	{
		name: keyGreeting, def: "",
		flags: []keyFlag{{on: cmdServe, usage: "write one line from this `template` to each TCP, TLS and Unix connection when it opens, before any echo, to tell which backend answered: " +
			"{hostname}, {env:NAME}, {listener}, {peer}, {peer-ip}, {via}, {proxy}; {{ and }} for braces; never on UDP (default: off)"}},
		decode: func(d *decoder, name string, cfg *Config) {
			cfg.Greeting = d.optionalString(name)
			// A variable only the server's environment has is no error
			// for the clients that share its config file (as its TLS
			// files are read only where used).
			if err := echo.ValidateGreeting(cfg.Greeting); err != nil && (d.serving() || !errors.Is(err, echo.ErrGreetingEnvironment)) {
				d.fail(name, cfg.Greeting, strings.TrimPrefix(err.Error(), echo.ErrInvalidGreeting.Error()+": "))
			}
		},
	},
	{
		name: keyTLSCert, def: "",
		flags: append([]keyFlag{{on: cmdServe, usage: "tls:// addresses: PEM certificate chain file (reloaded on SIGHUP)"}},
			clientFlags("tls:// address: client certificate PEM file, for mutual TLS")...),
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.TLSCert = d.optionalString(name) },
	},
	{
		name: keyTLSKey, def: "",
		flags: append([]keyFlag{{on: cmdServe, usage: "tls:// addresses: PEM private key file (reloaded on SIGHUP)"}},
			clientFlags("tls:// address: client private key PEM file, for mutual TLS")...),
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.TLSKey = d.optionalString(name) },
	},
	{
		name: keyTLSClientCA, def: "",
		flags:  []keyFlag{{on: cmdServe, usage: "tls:// addresses: require client certificates signed by a CA in this PEM file (mutual TLS)"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.TLSClientCA = d.optionalString(name) },
	},
	{
		name: keyTLSSelfSigned, def: false,
		flags:  []keyFlag{{on: cmdServe, usage: "tls:// addresses: serve an in-memory self-signed certificate (for tests; its SHA-256 fingerprint is logged)"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.TLSSelfSigned = d.boolean(name) },
	},
	{
		name: keyTLSCA, def: "",
		flags:  clientFlags("tls:// address: verify the server with the CAs in this PEM file (default: the system's roots)"),
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.TLSCA = d.optionalString(name) },
	},
	{
		name: keyTLSServerName, def: "",
		flags:  clientFlags("tls:// address: name the server's certificate must hold (default: the host of --addr)"),
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.TLSServerName = d.optionalString(name) },
	},
	{
		name: keyTLSInsecure, def: false,
		flags:  clientFlags("tls:// address: do not verify the server's certificate (logged as a warning)"),
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.TLSInsecure = d.boolean(name) },
	},
	{
		name: keyUnixMode, def: "0660",
		flags:  []keyFlag{{on: cmdServe, usage: "unix:// addresses: permission of the socket file, in octal"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.UnixMode = d.fileMode(name) },
	},
	{
		name: keyRetries, def: echo.DefaultRetries,
		flags:  []keyFlag{{on: cmdSend, usage: "udp:// address: resend a datagram whose echo has not come back this many times"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.Retries = d.intRange(name, 0, maxRetries) },
	},
	{
		name: keyUDPAllowLowPorts, def: false,
		flags:  []keyFlag{{on: cmdServe, usage: "udp:// addresses: answer datagrams from source ports below 1024 too, for a lab (port 0, the reflector ports such as 7, 19, 53, 123 and the server's own ports stay refused)"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.UDPAllowLowPorts = d.boolean(name) },
	},
	{
		name:   keyUDPRatePerSource,
		def:    echo.PacketRate{Datagrams: echo.DefaultUDPDatagramsPerSource, Bytes: echo.DefaultUDPBytesPerSource}.String(),
		flags:  []keyFlag{{on: cmdServe, usage: "udp:// addresses: the `rate` of datagrams and bytes answered to one source IP address, DATAGRAMS/s,BYTES/s, each with a burst of one second's worth (0: no limit, for benchmarks on a lab network)"}},
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.UDPRatePerSource = d.packetRate(name) },
	},
	{
		name: keyProxyProtocol, def: "",
		flags:  proxyFlags("write a PROXY protocol header first on each connection, as a load balancer does (before the TLS handshake on tls://): v1 (text) or v2 (binary) (default: off)"),
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.ProxyProtocol = d.optionalString(name) },
	},
	{
		name: keyProxySource, def: "",
		flags:  proxyFlags("the client `IP:PORT` the PROXY header announces (default: the connection's own local address)"),
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.ProxySource = d.optionalString(name) },
	},
	{
		name: keyProxyDest, def: "",
		flags:  proxyFlags("the destination `IP:PORT` the PROXY header announces (default: the address connected to)"),
		decode: func(d *decoder, name string, cfg *Config) { cfg.Transport.ProxyDest = d.optionalString(name) },
	},
	{
		name: keyProxyTLV, def: []string{},
		flags: proxyFlags("a v2 TLV, repeatable: `TYPE=VALUE`, TYPE a number 0x01 to 0xFF or alpn, authority, crc32c (empty: computed), noop, unique-id, netns, aws-vpce; VALUE text, or hex after 0x"),
		decode: func(d *decoder, name string, cfg *Config) {
			cfg.Transport.ProxyTLVs = nil // decoded again from the default where not taken
			if tlvs := d.strings(name); len(tlvs) > 0 {
				cfg.Transport.ProxyTLVs = tlvs
			}
		},
	},
})

// clientFlags are the flags of a key that send, ping and bench share,
// with one usage: how a client reaches and trusts a server.
func clientFlags(usage string) []keyFlag {
	return []keyFlag{{on: cmdSend, usage: usage}, {on: cmdPing, usage: usage}, {on: cmdBench, usage: usage}}
}

// proxyFlags are the flags of a PROXY header key: on send and bench, with
// one usage; a list is repeated rather than split at commas, which a
// TLV's value may hold.
func proxyFlags(usage string) []keyFlag {
	return []keyFlag{{on: cmdSend, usage: usage, add: addStrings}, {on: cmdBench, usage: usage, add: addStrings}}
}

// addStrings adds a string flag, or for a list a repeatable one whose
// values are never split.
func addStrings(fs *pflag.FlagSet, name string, def any, usage string) {
	if list, ok := def.([]string); ok {
		fs.StringArray(name, list, usage)
		return
	}
	fs.String(name, def.(string), usage)
}

// withListenerKeys adds to table serve's per-listener keys (the PROXY
// protocol, the faults): each flag sets the default of every address,
// whose query may override it (ADDR?proxy-protocol=on,
// ADDR?fault-delay=50ms). echo.ListenerKeys declares them, with their
// defaults and help, and parses them for both. The fault keys' flags set
// the Server's faults (faultKey), the default that a SIGHUP reloads from
// the config file, and an address query's fault keys stay over them. A key that send
// and bench have already (proxy-protocol: the header they write, v1 or
// v2) gets serve's flag too, and means on serve what serve reads (off or
// on); its default is the same, empty (off).
func withListenerKeys(table []key) []key {
	for _, lk := range echo.ListenerKeys() {
		if name, ok := strings.CutPrefix(lk.Name, echo.FaultKeyPrefix); ok {
			table = append(table, faultKey(name, lk.Default.(string), lk.Usage))
			continue
		}
		decode := func(d *decoder, name string, cfg *Config) {
			raw := d.v.Get(name)
			s, ok := keyText(raw)
			if !ok {
				d.fail(name, raw, "must be a string")
				return
			}
			if err := lk.Set(&cfg.Listener, s); err != nil {
				d.fail(name, raw, err.Error())
			}
		}
		serve := keyFlag{on: cmdServe, usage: lk.Usage}
		i := slices.IndexFunc(table, func(k key) bool { return k.name == lk.Name })
		if i < 0 {
			table = append(table, key{name: lk.Name, def: lk.Default, flags: []keyFlag{serve}, decode: decode})
			continue
		}
		k := &table[i]
		if k.def != lk.Default {
			panic(fmt.Sprintf("key %s: default %#v, but serve's per-listener key has %#v", k.name, k.def, lk.Default))
		}
		client := k.decode
		k.flags = append(k.flags, serve)
		k.decode = func(d *decoder, name string, cfg *Config) {
			if d.serving() {
				decode(d, name, cfg)
				return
			}
			client(d, name, cfg)
		}
	}
	return table
}

// keyText is a merged value as the text a per-listener key parses: lists
// joined by commas, booleans as on and off.
func keyText(raw any) (string, bool) {
	switch x := raw.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case bool:
		if x {
			return "on", true
		}
		return "off", true
	case time.Duration:
		return x.String(), true
	case []string:
		return strings.Join(x, ","), true
	case []any:
		items, ok := stringItems(x)
		return strings.Join(items, ","), ok
	}
	return fmt.Sprint(raw), true
}

// Bounds of the integer keys.
const (
	// maxConnsLimit bounds max-conns and max-conns-per-ip.
	maxConnsLimit = math.MaxInt32
	// maxRetries bounds retries.
	maxRetries = 100
)

// knownKeys are the names of keys, in their order.
var knownKeys = keyNames()

func keyNames() []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	return names
}

// addKeyFlags adds to fs the flags that keys have on command.
func addKeyFlags(fs *pflag.FlagSet, command string) {
	for _, k := range keys {
		for _, f := range k.flags {
			if f.on == command {
				k.addFlag(fs, f)
			}
		}
	}
}

// keyAnnotation marks the flags the keys table made (addFlag): only those
// set their key. A command may have a flag of its own that shares a key's
// name without being that key: send's and bench's --greeting, a switch to
// read the greeting that serve's --greeting (a key: the template) writes.
const keyAnnotation = "echoctl-key"

// isKeyFlag reports whether f is a key's flag, made by addFlag.
func isKeyFlag(f *pflag.Flag) bool { return f.Annotations[keyAnnotation] != nil }

// addFlag adds k's flag f to fs, with k's default.
func (k key) addFlag(fs *pflag.FlagSet, f keyFlag) {
	defer func() { _ = fs.SetAnnotation(k.name, keyAnnotation, []string{k.name}) }()
	if f.add != nil {
		f.add(fs, k.name, k.def, f.usage)
		return
	}
	switch def := k.def.(type) {
	case string:
		fs.String(k.name, def, f.usage)
	case int:
		fs.Int(k.name, def, f.usage)
	case bool:
		fs.Bool(k.name, def, f.usage)
	case time.Duration:
		fs.Duration(k.name, def, f.usage)
	case []string:
		fs.StringSlice(k.name, def, f.usage)
	default:
		panic(fmt.Sprintf("key %s: no flag type for a default of type %T", k.name, def))
	}
}

// addRepeatable adds serve's --addr, which may be repeated to serve
// several addresses.
func addRepeatable(fs *pflag.FlagSet, name string, def any, usage string) {
	fs.StringArray(name, []string{def.(string)}, usage)
}

// addOnce adds the --addr of send, ping or bench, one address that may be
// given once.
func addOnce(fs *pflag.FlagSet, name string, def any, usage string) {
	fs.Var(&oneAddr{value: def.(string), command: fs.Name()}, name, usage)
}

// oneAddr is the value of a client's --addr: a string flag that refuses to
// be given twice, where a plain one would keep the last silently.
type oneAddr struct {
	value   string
	set     bool
	command string // whose flag it is (cobra names a command's flags after it)
}

func (a *oneAddr) String() string { return a.value }
func (a *oneAddr) Type() string   { return "string" }

func (a *oneAddr) Set(s string) error {
	if a.set {
		return fmt.Errorf("%s connects to one address; --addr is given twice (first %q)", a.command, a.value)
	}
	a.value, a.set = s, true
	return nil
}
