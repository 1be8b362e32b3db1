package echo

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// The greeting (Server.Greeting): one line written to every stream
// connection when it opens, before any echo, so that a client behind a
// load balancer can tell which backend answered. It is an open stage
// (stage.go) that reads nothing and writes the line, so both engines run
// it alike. This file holds every decision about it: the template's
// syntax, what each field expands to, the bounds, and why UDP never
// greets.

// MaxGreeting is the most bytes a greeting line may have, its newline
// included: what Server writes and what ReadGreeting reads. A template whose fixed part (its text, {hostname} and
// {env:NAME}) is longer is an error; a line made longer by the fields
// that vary by connection is cut to fit.
const MaxGreeting = 1024

// greetField is what a part of a greeting template stands for.
type greetField uint8

const (
	greetText     greetField = iota // text, written as it is
	greetHostname                   // {hostname}: os.Hostname, read once
	greetEnv                        // {env:NAME}: the variable, read once
	greetListener                   // {listener}: the listener's address
	greetPeer                       // {peer}: the client as this server sees it
	greetPeerIP                     // {peer-ip}: its address without the port
	greetVia                        // {via}: the balancer, empty without PROXY
	greetProxy                      // {proxy}: the PROXY header, or "none"
)

// greetFields are the fields a template may name, as written between
// braces; {env:NAME} is apart.
var greetFields = map[string]greetField{
	"hostname": greetHostname,
	"listener": greetListener,
	"peer":     greetPeer,
	"peer-ip":  greetPeerIP,
	"via":      greetVia,
	"proxy":    greetProxy,
}

// greetFieldList is how an error lists the fields.
const greetFieldList = "{hostname}, {listener}, {peer}, {peer-ip}, {via}, {proxy}, {env:NAME}"

// A greetPart is a piece of a parsed template: text, or a field (and for
// greetEnv the variable's name, in text).
type greetPart struct {
	field greetField
	text  string
}

// parseGreeting parses a greeting template into its parts: text, with
// "{{" and "}}" standing for a brace, and fields between braces. A final
// newline is dropped (the line always ends with one); any other line
// break is an error, as are an unknown field, an unclosed "{" and a lone
// "}". Adjacent text is merged into one part.
func parseGreeting(tmpl string) ([]greetPart, error) {
	body := strings.TrimSuffix(tmpl, "\n")
	var parts []greetPart
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			parts = append(parts, greetPart{text: text.String()})
			text.Reset()
		}
	}
	for i := 0; i < len(body); {
		switch c := body[i]; {
		case c == '{' && strings.HasPrefix(body[i:], "{{"):
			text.WriteByte('{')
			i += 2
		case c == '}' && strings.HasPrefix(body[i:], "}}"):
			text.WriteByte('}')
			i += 2
		case c == '}':
			return nil, greetingError("a lone } at byte %d (write }} for a brace)", i)
		case c == '{':
			end := strings.IndexByte(body[i:], '}')
			if end < 0 {
				return nil, greetingError("unclosed { at byte %d (write {{ for a brace)", i)
			}
			name := body[i+1 : i+end]
			if j := strings.IndexAny(name, "\r\n"); j >= 0 {
				return nil, greetingError("a line break at byte %d: a greeting is one line", i+1+j)
			}
			p, err := greetFieldNamed(name, i)
			if err != nil {
				return nil, err
			}
			flush()
			parts = append(parts, p)
			i += end + 1
		case c == '\n' || c == '\r':
			return nil, greetingError("a line break at byte %d: a greeting is one line", i)
		default:
			text.WriteByte(c)
			i++
		}
	}
	flush()
	return parts, nil
}

// greetFieldNamed returns the field written {name} at byte at.
func greetFieldNamed(name string, at int) (greetPart, error) {
	if f, ok := greetFields[name]; ok {
		return greetPart{field: f}, nil
	}
	if v, ok := strings.CutPrefix(name, "env:"); ok {
		if !isEnvName(v) {
			return greetPart{}, greetingError("{%s} at byte %d: %q is not a variable name (letters, digits and _, not starting with a digit)", name, at, v)
		}
		return greetPart{field: greetEnv, text: v}, nil
	}
	return greetPart{}, greetingError("unknown field {%s} at byte %d (fields: %s; {{ and }} for braces)", name, at, greetFieldList)
}

// isEnvName reports whether s is a portable environment variable name.
func isEnvName(s string) bool {
	for i, c := range []byte(s) {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

func greetingError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidGreeting, fmt.Sprintf(format, args...))
}

// envUnset is a greeting error that is this machine's, not the template's:
// it matches ErrGreetingEnvironment as well as ErrInvalidGreeting.
type envUnset struct{ error }

func (e envUnset) Unwrap() error        { return e.error }
func (e envUnset) Is(target error) bool { return target == ErrGreetingEnvironment }

// greetingEnv is where the fixed fields come from: the host name and the
// environment, read once when a Server starts.
type greetingEnv struct {
	hostname  func() (string, error)
	lookupEnv func(string) (string, bool)
}

// osGreetingEnv reads the process's own host name and environment.
var osGreetingEnv = greetingEnv{hostname: os.Hostname, lookupEnv: os.LookupEnv}

// A greetingStage is a parsed template with its fixed fields expanded:
// text parts and the fields that vary by connection. It is the open
// stage that writes the greeting.
type greetingStage struct {
	parts []greetPart
	fixed int // bytes of text, newline included
}

// newGreetingStage parses tmpl and expands its fixed fields from env. A
// host name or variable that holds a line break, an unset variable and a
// fixed part longer than MaxGreeting are errors.
func newGreetingStage(tmpl string, env greetingEnv) (*greetingStage, error) {
	parts, err := parseGreeting(tmpl)
	if err != nil {
		return nil, err
	}
	g := &greetingStage{fixed: 1}
	for _, p := range parts {
		var text string
		switch p.field {
		case greetText:
			text = p.text
		case greetHostname:
			if text, err = env.hostname(); err != nil {
				return nil, envUnset{greetingError("{hostname}: %v", err)}
			}
		case greetEnv:
			v, ok := env.lookupEnv(p.text)
			if !ok {
				return nil, envUnset{greetingError("{env:%s}: %s is not set", p.text, p.text)}
			}
			text = v
		default:
			g.parts = append(g.parts, p)
			continue
		}
		if p.field != greetText && strings.ContainsAny(text, "\r\n") {
			return nil, greetingError("{%s} holds a line break: a greeting is one line", fieldName(p))
		}
		g.fixed += len(text)
		if n := len(g.parts); n > 0 && g.parts[n-1].field == greetText {
			g.parts[n-1].text += text
		} else if text != "" {
			g.parts = append(g.parts, greetPart{text: text})
		}
	}
	if g.fixed > MaxGreeting {
		return nil, greetingError("%d bytes with its newline, more than %d", g.fixed, MaxGreeting)
	}
	return g, nil
}

// fieldName returns p's field as a template writes it, without braces.
func fieldName(p greetPart) string {
	if p.field == greetEnv {
		return "env:" + p.text
	}
	for name, f := range greetFields {
		if f == p.field {
			return name
		}
	}
	return "text"
}

// ValidateGreeting reports whether tmpl is a greeting template that a
// Server started now would accept as Server.Greeting: its syntax, and its
// fixed part once {hostname} and {env:NAME} are read. The error wraps
// ErrInvalidGreeting and says what is wrong in one line.
func ValidateGreeting(tmpl string) error {
	if tmpl == "" {
		return nil
	}
	_, err := newGreetingStage(tmpl, osGreetingEnv)
	return err
}

// line returns the greeting for c: the template with c's fields, cut to
// MaxGreeting, ending with a newline.
func (g *greetingStage) line(c *conn) []byte {
	b := make([]byte, 0, g.fixed+64)
	for _, p := range g.parts {
		switch p.field {
		case greetText:
			b = append(b, p.text...)
		case greetListener:
			b = appendOneLine(b, c.lconf.name)
		case greetPeer:
			b = appendOneLine(b, c.peer)
		case greetPeerIP:
			b = appendOneLine(b, peerHost(c.peer))
		case greetVia:
			b = appendOneLine(b, c.via())
		case greetProxy:
			b = appendOneLine(b, c.proxySummary())
		}
	}
	if len(b) > MaxGreeting-1 {
		cut := MaxGreeting - 1
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
		b = b[:cut]
	}
	return append(b, '\n')
}

// peerHost is a peer's address without its port: the IP address, or a
// Unix socket's path as it is. One line per client IP, whatever its port,
// is what send --count's table then groups ({peer-ip}).
func peerHost(peer string) string {
	if host, _, err := net.SplitHostPort(peer); err == nil {
		return host
	}
	return peer
}

// open implements openStage: every connection is greeted.
func (g *greetingStage) open(c *conn) opener { return &greetingOpener{g: g, c: c} }

// greetingOpener is the greeting's state for one connection.
type greetingOpener struct {
	g *greetingStage
	c *conn
}

// greeting is made when the open stages before it are done, so that
// {peer}, {via} and {proxy} say what a PROXY header said. It is logged
// as one debug line, not as echoed data.
func (o *greetingOpener) greeting() []byte {
	line := o.g.line(o.c)
	if e := o.c.log(zerolog.DebugLevel); e != nil {
		e.Int("bytes", len(line)).Msg("sending greeting")
	}
	return line
}

func (*greetingOpener) reading() (int, time.Duration) { return 0, 0 }
func (*greetingOpener) take([]byte) (int, error)      { return 0, nil }

// greetingStart is a Server's greeting, set up once when it starts.
type greetingStart struct {
	once sync.Once
	err  error
	env  *greetingEnv // nil: the process's (osGreetingEnv); set by tests
}

// startGreeting parses s.Greeting and, if it is set, appends its stage to
// s.stages, once for all of s's listeners, before any of them serves. It
// returns the template's error, every time it is called.
func (s *Server) startGreeting() error {
	st := &s.greeting
	st.once.Do(func() {
		if s.Greeting == "" {
			return
		}
		env := osGreetingEnv
		if st.env != nil {
			env = *st.env
		}
		g, err := newGreetingStage(s.Greeting, env)
		if err != nil {
			st.err = err
			return
		}
		if s.stages == nil {
			s.stages = &stages{}
		}
		s.stages.open = append(s.stages.open, g)
	})
	return st.err
}

// noGreetingOnUDP logs, as a UDP socket starts to serve, that the
// Server's greeting is not sent on addr, that socket: an answer to a
// datagram is never larger than the datagram, or a sender forging a
// victim's address could use the server to send the victim more than it
// sent (amplification).
func (s *Server) noGreetingOnUDP(addr net.Addr) {
	if s.Greeting == "" {
		return
	}
	s.Logger.Info().Str("logger", "main").Str("listener", addr.String()).
		Msgf("no greeting on udp://%s: an answer is never larger than the datagram it answers (no amplification)", addr)
}
