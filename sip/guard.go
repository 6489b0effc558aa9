package sip

import (
	"bytes"
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The guard sits between the sockets and sipgo. sipgo drops a message it
// cannot parse (and logs the raw bytes, caller numbers included); RFC 3261
// §8.2 and RFC 4475 want a 400 (or 505, 416, 420) for a broken request, and
// our logs must never carry a caller's number. So every datagram, and every
// message framed out of a TCP stream, is checked here first: requests that
// fail get a stateless response written straight to the socket and never
// reach sipgo; broken responses are dropped; the rest pass unchanged.

// verdict is the guard's decision on one message.
type verdict struct {
	// resp is the stateless response to send back (nil: none).
	resp []byte
	// drop keeps the message away from sipgo.
	drop bool
	// fatal closes a stream connection: its framing is lost (RFC 3261
	// §18.3, RFC 4475 §3.1.2.3).
	fatal bool
	// rewrite, when set, replaces the message: a well-formed request that
	// sipgo reads wrongly, re-serialised after the fix.
	rewrite []byte
}

// tagParam finds a tag parameter written with LWS around ';' and '='
// (legal, RFC 3261 §25.1; RFC 4475 §3.1.1.1), which sipgo misses.
var tagParam = regexp.MustCompile(`(?i);\s*tag\s*=\s*([^\s;,]+)`)

// allowedMethods is our Allow header value.
const allowedMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"

// singleHeaders may appear once only (RFC 3261 §7.3.1, RFC 4475 §3.3.8).
var singleHeaders = []string{"call-id", "cseq", "from", "to", "max-forwards", "content-length", "content-type"}

// compactNames maps compact header forms (RFC 3261 §7.3.3) to full names.
var compactNames = map[string]string{
	"v": "via", "f": "from", "t": "to", "i": "call-id", "l": "content-length",
	"c": "content-type", "m": "contact", "k": "supported", "e": "content-encoding", "s": "subject",
}

// rawHeader is one header field as received, unfolded.
type rawHeader struct {
	name  string // lower case, compact forms expanded
	line  string // the whole field as received, unfolded, without CRLF
	value string
}

// splitMessage separates the start line and the header fields of a message.
// It accepts LF as well as CRLF line ends.
func splitMessage(raw []byte) (start string, hdrs []rawHeader, body []byte) {
	head := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		head, body = raw[:i], raw[i+4:]
	} else if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		head, body = raw[:i], raw[i+2:]
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	if len(lines) == 0 {
		return "", nil, body
	}
	start = lines[0]
	for _, l := range lines[1:] {
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(hdrs) > 0 {
			h := &hdrs[len(hdrs)-1]
			h.line += " " + strings.TrimSpace(l)
			h.value += " " + strings.TrimSpace(l)
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n := strings.ToLower(strings.TrimSpace(name))
		if full, ok := compactNames[n]; ok {
			n = full
		}
		hdrs = append(hdrs, rawHeader{name: n, line: l, value: strings.TrimSpace(value)})
	}
	return start, hdrs, body
}

// guard checks raw messages. It is safe for concurrent use.
type guard struct {
	parser *sip.Parser
	// onReject is told about each rejected request (for logs/metrics).
	onReject func(status int, why string)
}

// check decides about one whole message (a datagram, or one message framed
// out of a stream).
func (g *guard) check(raw []byte) verdict {
	if len(bytes.Trim(raw, "\r\n")) == 0 {
		return verdict{} // keep-alive (RFC 5626 §3.5.1): sipgo handles it
	}
	start, hdrs, _ := splitMessage(bytes.TrimLeft(raw, "\r\n"))
	if strings.HasPrefix(start, "SIP/") {
		// A response: never answered. Let sipgo see it only if it parses.
		if _, err := g.parser.ParseSIP(raw); err != nil {
			return verdict{drop: true}
		}
		return verdict{}
	}
	reject := func(status int, reason, why string, extra ...string) verdict {
		if g.onReject != nil {
			g.onReject(status, why)
		}
		return verdict{resp: statelessResponse(hdrs, status, reason, extra...), drop: true}
	}

	// Request-Line = Method SP Request-URI SP SIP-Version (RFC 3261 §25.1):
	// exactly two single spaces.
	parts := strings.Split(start, " ")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return reject(400, "Bad Request", "malformed request line")
	}
	method, uri, version := parts[0], parts[1], parts[2]
	if version != "SIP/2.0" {
		if v, ok := strings.CutPrefix(strings.ToUpper(version), "SIP/"); ok && isVersion(v) {
			return reject(505, "Version Not Supported", "SIP version "+version)
		}
		return reject(400, "Bad Request", "malformed SIP version")
	}
	scheme, _, ok := strings.Cut(uri, ":")
	if !ok {
		return reject(400, "Bad Request", "malformed Request-URI")
	}
	switch strings.ToLower(scheme) {
	case "sip", "sips", "tel":
	default:
		if isToken(scheme) {
			return reject(416, "Unsupported URI Scheme", "Request-URI scheme")
		}
		return reject(400, "Bad Request", "malformed Request-URI")
	}
	hostPart := uri
	if i := strings.LastIndexByte(uri, '@'); i >= 0 {
		hostPart = uri[i+1:] // '?' is legal in the user part
	}
	if strings.ContainsAny(uri, "<>") || strings.ContainsRune(hostPart, '?') {
		// Headers are not allowed in a Request-URI (RFC 3261 §19.1.1,
		// RFC 4475 §3.1.2.11), nor are angle brackets (§3.1.2.7).
		return reject(400, "Bad Request", "Request-URI with headers or brackets")
	}

	msg, err := g.parser.ParseSIP(raw)
	if err != nil {
		return reject(400, "Bad Request", "unparsable request")
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return reject(400, "Bad Request", "not a request")
	}

	counts := map[string]int{}
	for _, h := range hdrs {
		counts[h.name]++
	}
	for _, n := range []string{"via", "from", "to", "call-id", "cseq"} {
		if counts[n] == 0 {
			return reject(400, "Bad Request", "missing "+n)
		}
	}
	for _, n := range singleHeaders {
		if counts[n] > 1 {
			return reject(400, "Bad Request", "repeated "+n)
		}
	}
	cseq := req.CSeq()
	if cseq == nil || !strings.EqualFold(string(cseq.MethodName), method) {
		// RFC 4475 §3.1.2.17/18.
		return reject(400, "Bad Request", "CSeq method does not match")
	}
	if via := req.Via(); via == nil {
		return reject(400, "Bad Request", "missing Via")
	} else if b, _ := via.Params.Get("branch"); b == sip.RFC3261BranchMagicCookie {
		// A branch of only the magic cookie (RFC 4475 §3.2.1).
		return reject(400, "Bad Request", "Via branch is only the magic cookie")
	}
	for _, h := range hdrs {
		switch h.name {
		case "from", "to", "contact", "reply-to":
			// An addr-spec outside <> must not hold ',', '?' or ';' in the
			// URI (RFC 3261 §20; RFC 4475 §3.1.2.13).
			if !strings.Contains(h.value, "<") && h.value != "*" {
				uriPart, _, _ := strings.Cut(h.value, ";")
				if strings.ContainsAny(uriPart, "?,") {
					return reject(400, "Bad Request", "unbracketed URI with '?' or ',' in "+h.name)
				}
			}
		}
	}
	// Require applies to every request but ACK and CANCEL (RFC 3261
	// §8.2.2.3). We support no extension.
	if method != "ACK" && method != "CANCEL" {
		var unsupported []string
		for _, h := range req.GetHeaders("Require") {
			for _, tag := range strings.Split(h.Value(), ",") {
				if tag = strings.TrimSpace(tag); tag != "" {
					unsupported = append(unsupported, tag)
				}
			}
		}
		if len(unsupported) > 0 {
			return reject(420, "Bad Extension", "unsupported Require", "Unsupported: "+strings.Join(unsupported, ", "))
		}
	}
	// Tags sipgo missed (a To tag makes the request part of a dialog, a
	// From tag is in every transaction and dialog key).
	var fixed bool
	for _, h := range hdrs {
		var params *sip.HeaderParams
		switch h.name {
		case "from":
			if f := req.From(); f != nil {
				params = &f.Params
			}
		case "to":
			if t := req.To(); t != nil {
				params = &t.Params
			}
		default:
			continue
		}
		if params == nil || params.Has("tag") {
			continue
		}
		after := h.value
		if i := strings.LastIndexByte(after, '>'); i >= 0 {
			after = after[i+1:]
		}
		if m := tagParam.FindStringSubmatch(after); m != nil {
			if *params == nil {
				*params = sip.NewParams()
			}
			params.Add("tag", m[1])
			fixed = true
		}
	}
	if fixed {
		return verdict{rewrite: []byte(req.String())}
	}
	return verdict{}
}

func isVersion(s string) bool {
	a, b, ok := strings.Cut(s, ".")
	return ok && isDigits(a) && isDigits(b)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isToken reports whether s is a URI scheme token (RFC 3986 §3.1).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// statelessResponse builds a response from the raw header fields of a
// request that sipgo could not (or must not) handle: Via, From, To, Call-ID
// and CSeq are copied as received (RFC 3261 §8.2.6.2), a To tag is added.
func statelessResponse(hdrs []rawHeader, status int, reason string, extra ...string) []byte {
	var b bytes.Buffer
	b.WriteString("SIP/2.0 ")
	b.WriteString(strconv.Itoa(status))
	b.WriteByte(' ')
	b.WriteString(reason)
	b.WriteString("\r\n")
	for _, want := range []string{"via", "from", "to", "call-id", "cseq"} {
		for _, h := range hdrs {
			if h.name != want {
				continue
			}
			b.WriteString(h.line)
			if h.name == "to" && !strings.Contains(strings.ToLower(h.value), "tag=") {
				b.WriteString(";tag=")
				b.WriteString(sip.GenerateTagN(16))
			}
			b.WriteString("\r\n")
			if want != "via" {
				break // one each; repeated ones made the request bad
			}
		}
	}
	if status == 405 || status == 501 {
		b.WriteString("Allow: " + allowedMethods + "\r\n")
	}
	for _, e := range extra {
		b.WriteString(e)
		b.WriteString("\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}

// guardedPacketConn filters the datagrams sipgo reads.
type guardedPacketConn struct {
	net.PacketConn
	g *guard
}

func (c *guardedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		v := c.g.check(b[:n])
		if v.resp != nil {
			_, _ = c.PacketConn.WriteTo(v.resp, addr)
		}
		if !v.drop {
			if v.rewrite != nil && len(v.rewrite) <= len(b) {
				n = copy(b, v.rewrite)
			}
			if m, ok := forceRport(b[:n], len(b)); ok {
				n = copy(b, m)
			}
			return n, addr, nil
		}
	}
}

// guardedListener frames each accepted TCP stream into messages and filters
// them.
type guardedListener struct {
	net.Listener
	g *guard
}

func (l *guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: c, g: l.g}, nil
}

// streamLinger is how long a stream whose framing broke stays open for the
// answers to the requests before the break.
const streamLinger = 250 * time.Millisecond

// maxStreamMessage bounds one message on a stream (headers and body).
const maxStreamMessage = 64 << 10

// guardedConn hands sipgo whole, checked messages out of a TCP stream. Only
// sipgo's reader goroutine calls Read.
type guardedConn struct {
	net.Conn
	g   *guard
	in  []byte // received, not yet framed
	out []byte // checked, not yet given to sipgo
	eof bool

	closeOnce sync.Once
}

func (c *guardedConn) Read(b []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(b, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if c.eof {
			return 0, io.EOF
		}
		msg, rest, fatal, ok := frameMessage(c.in)
		if fatal != nil {
			// Framing is lost: answer what we can and close (RFC 4475
			// §3.1.2.3 and §3.3.9).
			v := c.g.check(fatal)
			if v.resp == nil {
				_, hdrs, _ := splitMessage(fatal)
				v.resp = statelessResponse(hdrs, 400, "Bad Request")
			}
			if !strings.HasPrefix(string(fatal), "SIP/") {
				_, _ = c.Conn.Write(v.resp)
			}
			c.in, c.eof = nil, true
			// Let sipgo finish answering the messages before this one:
			// it closes the connection as soon as Read reports EOF.
			time.Sleep(streamLinger)
			continue
		}
		if ok {
			c.in = rest
			v := c.g.check(msg)
			if v.resp != nil {
				_, _ = c.Conn.Write(v.resp)
			}
			if !v.drop {
				c.out = msg
				if v.rewrite != nil {
					c.out = v.rewrite
				}
			}
			continue
		}
		if len(c.in) > maxStreamMessage {
			c.in, c.eof = nil, true
			continue
		}
		buf := make([]byte, 4096)
		n, err := c.Conn.Read(buf)
		c.in = append(c.in, buf[:n]...)
		if err != nil {
			if n > 0 {
				continue
			}
			if len(bytes.Trim(c.in, "\r\n")) > 0 {
				// The peer closed its side inside a message: answer what
				// can be answered (RFC 4475 §3.1.2.2 on a stream).
				if v := c.g.check(c.in); v.resp != nil {
					_, _ = c.Conn.Write(v.resp)
				}
				c.in = nil
			}
			return 0, err
		}
	}
}

func (c *guardedConn) Close() error {
	var err error
	c.closeOnce.Do(func() { err = c.Conn.Close() })
	return err
}

var errFraming = errors.New("bad Content-Length")

// frameMessage cuts the first message out of a stream buffer. A double CRLF
// keep-alive comes out as its own message (sipgo answers it with a CRLF
// pong); lone CRLFs between messages are skipped. fatal is set to the
// message head when its Content-Length is missing a valid single value.
func frameMessage(in []byte) (msg, rest, fatal []byte, ok bool) {
	if bytes.HasPrefix(in, []byte("\r\n\r\n")) {
		return in[:4], in[4:], nil, true
	}
	i := 0
	for i < len(in) && (in[i] == '\r' || in[i] == '\n') {
		i++
	}
	if i > 0 && i == len(in) && i < 4 {
		return nil, in, nil, false // maybe the start of a keep-alive
	}
	in = in[i:]
	end := bytes.Index(in, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, in, nil, false
	}
	headEnd := end + 4
	_, hdrs, _ := splitMessage(in[:headEnd])
	cl, err := contentLength(hdrs)
	if err != nil {
		return nil, nil, in[:headEnd], false
	}
	if len(in)-headEnd < cl {
		return nil, in, nil, false
	}
	return in[:headEnd+cl], in[headEnd+cl:], nil, true
}

// contentLength reads the Content-Length of a stream message: RFC 3261
// §18.3 makes it mandatory on streams, and without it the message's end is
// unknown (RFC 4475 §3.4.1's RFC 2543-style INVITE gets 400 on TCP).
func contentLength(hdrs []rawHeader) (int, error) {
	cl := -1
	for _, h := range hdrs {
		if h.name != "content-length" {
			continue
		}
		n, err := strconv.Atoi(h.value)
		if err != nil || n < 0 || n > maxStreamMessage || (cl >= 0 && n != cl) {
			return 0, errFraming
		}
		cl = n
	}
	if cl < 0 {
		return 0, errFraming
	}
	return cl, nil
}

// forceRport adds an empty rport parameter to the top Via of a UDP request
// that has none, so that responses go back to the source port (RFC 3581
// §4), as Asterisk's force_rport and Kamailio's force_rport() do: callers
// behind NAT, and any peer whose Via names a port it does not listen on,
// still get their answers. It returns false when nothing changed or the
// result would not fit in limit bytes.
func forceRport(msg []byte, limit int) ([]byte, bool) {
	if bytes.HasPrefix(msg, []byte("SIP/")) {
		return nil, false
	}
	i := 0
	for i < len(msg) {
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			return nil, false
		}
		line := msg[i : i+j]
		i += j + 1
		if len(bytes.TrimRight(line, "\r")) == 0 {
			return nil, false // end of headers, no Via
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		n := strings.ToLower(strings.TrimSpace(string(name)))
		if n != "via" && n != "v" {
			continue
		}
		valStart := i - j - 1 + len(name) + 1
		end := bytes.IndexByte(value, ',')
		if end < 0 {
			end = len(bytes.TrimRight(value, "\r"))
		}
		first := value[:end]
		if bytes.Contains(bytes.ToLower(first), []byte("rport")) {
			return nil, false
		}
		if i < len(msg) && (msg[i] == ' ' || msg[i] == '\t') {
			return nil, false // folded over lines: leave it alone
		}
		at := valStart + len(bytes.TrimRight(first, " \t"))
		if len(msg)+6 > limit {
			return nil, false
		}
		out := make([]byte, 0, len(msg)+6)
		out = append(out, msg[:at]...)
		out = append(out, ";rport"...)
		out = append(out, msg[at:]...)
		return out, true
	}
	return nil, false
}
