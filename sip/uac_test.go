package sip

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
)

// uac is a minimal SIP phone for the tests: it writes requests by hand (so
// a test controls every header and every body) and parses what comes back
// with sipgo's parser. One call at a time.
type uac struct {
	t      testing.TB
	conn   net.Conn // UDP (connected) or TCP
	tcp    *bufio.Reader
	target netip.AddrPort
	local  string

	callID  string
	fromTag string
	toTag   string
	cseq    uint32
	from    string

	// answered INVITE's remote target and SDP
	lastRes *sip.Response

	mu      sync.Mutex
	pending []sip.Message // read but not yet consumed
	// autoBye answers server BYEs with 200 OK and reports them here.
	byes chan *sip.Request

	rtp *net.UDPConn
}

func newUAC(t testing.TB, target netip.AddrPort, network string) *uac {
	t.Helper()
	c, err := net.Dial(network, target.String())
	if err != nil {
		t.Fatal(err)
	}
	r, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u := &uac{
		t: t, conn: c, target: target, local: c.LocalAddr().String(),
		callID:  fmt.Sprintf("test-%d@127.0.0.1", time.Now().UnixNano()),
		fromTag: fmt.Sprintf("ft%d", time.Now().UnixNano()%1e9),
		from:    "13800138000",
		byes:    make(chan *sip.Request, 4),
		rtp:     r,
	}
	if network == "tcp" {
		u.tcp = bufio.NewReader(c)
	}
	t.Cleanup(func() { c.Close(); r.Close() })
	return u
}

func (u *uac) transport() string {
	if u.tcp != nil {
		return "TCP"
	}
	return "UDP"
}

func (u *uac) rtpPort() int { return u.rtp.LocalAddr().(*net.UDPAddr).Port }

// offerSDP is an early offer: PCMA, PCMU and telephone-event 101.
func (u *uac) offerSDP(dir string) string {
	return sdpBody(u.rtpPort(), "8 0 101", "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"+dir)
}

func sdpBody(port int, fmts, attrs string) string {
	if attrs != "" && !strings.HasSuffix(attrs, "\r\n") {
		attrs += "\r\n"
	}
	return fmt.Sprintf("v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP %s\r\n%s", port, fmts, attrs)
}

// request writes a request of the current call.
func (u *uac) request(method, ruri string, cseq uint32, cseqMethod, branch string, extra []string, ctype, body string) {
	u.t.Helper()
	to := fmt.Sprintf("<%s>", ruri)
	if u.toTag != "" {
		to += ";tag=" + u.toTag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=%s;rport\r\n", u.transport(), u.local, branch)
	fmt.Fprintf(&b, "Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: \"Citizen\" <sip:%s@127.0.0.1>;tag=%s\r\n", u.from, u.fromTag)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", u.callID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", cseq, cseqMethod)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s;transport=%s>\r\n", u.from, u.local, strings.ToLower(u.transport()))
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	if ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	u.send([]byte(b.String()))
}

func (u *uac) send(b []byte) {
	u.t.Helper()
	if _, err := u.conn.Write(b); err != nil {
		u.t.Fatalf("send: %v", err)
	}
}

func newBranch() string { return sip.GenerateBranchN(12) }

// read returns the next message, answering server BYEs on the way.
func (u *uac) read(timeout time.Duration) (sip.Message, error) {
	_ = u.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		var data []byte
		if u.tcp != nil {
			m, err := readStreamMessage(u.tcp)
			if err != nil {
				return nil, err
			}
			data = m
		} else {
			buf := make([]byte, 65535)
			n, err := u.conn.Read(buf)
			if err != nil {
				return nil, err
			}
			data = buf[:n]
		}
		if len(strings.TrimSpace(string(data))) == 0 {
			continue
		}
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return nil, fmt.Errorf("parse %q: %w", data, err)
		}
		if req, ok := msg.(*sip.Request); ok && req.Method == sip.BYE {
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			u.send([]byte(res.String()))
			u.byes <- req
			continue
		}
		return msg, nil
	}
}

// readStreamMessage frames one message from a TCP stream by Content-Length.
func readStreamMessage(r *bufio.Reader) ([]byte, error) {
	var head strings.Builder
	cl := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		head.WriteString(line)
		l := strings.TrimRight(line, "\r\n")
		if l == "" {
			if head.Len() <= 2 {
				head.Reset()
				continue
			}
			break
		}
		if k, v, ok := strings.Cut(l, ":"); ok {
			k = strings.ToLower(strings.TrimSpace(k))
			if k == "content-length" || k == "l" {
				fmt.Sscanf(strings.TrimSpace(v), "%d", &cl)
			}
		}
	}
	body := make([]byte, cl)
	if _, err := ioReadFull(r, body); err != nil {
		return nil, err
	}
	return append([]byte(head.String()), body...), nil
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// response waits for a response to cseq/method with a status >= min.
func (u *uac) response(cseqMethod string, minStatus int, timeout time.Duration) *sip.Response {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			u.t.Fatalf("no %s response >= %d within %v", cseqMethod, minStatus, timeout)
		}
		msg, err := u.read(left)
		if err != nil {
			u.t.Fatalf("waiting for %s response: %v", cseqMethod, err)
		}
		res, ok := msg.(*sip.Response)
		if !ok {
			u.t.Logf("ignoring request %s", msg.(*sip.Request).Method)
			continue
		}
		if string(res.CSeq().MethodName) != cseqMethod || res.StatusCode < minStatus {
			continue
		}
		return res
	}
}

// invite sends an INVITE and returns its final response; it ACKs it.
func (u *uac) invite(ruri string, extra []string, ctype, body string) *sip.Response {
	u.t.Helper()
	u.cseq++
	branch := newBranch()
	u.request("INVITE", ruri, u.cseq, "INVITE", branch, extra, ctype, body)
	res := u.response("INVITE", 200, 5*time.Second)
	if res.StatusCode >= 300 {
		// ACK for a non-2xx: same branch, hop by hop (RFC 3261 §17.1.1.3).
		tag, _ := res.To().Params.Get("tag")
		saved := u.toTag
		u.toTag = tag
		u.request("ACK", ruri, u.cseq, "ACK", branch, nil, "", "")
		u.toTag = saved
		return res
	}
	u.lastRes = res
	if u.toTag == "" {
		u.toTag, _ = res.To().Params.Get("tag")
	}
	return res
}

func (u *uac) ack(ruri, ctype, body string) {
	u.request("ACK", ruri, u.cseq, "ACK", newBranch(), nil, ctype, body)
}

func (u *uac) bye(ruri string) *sip.Response {
	u.t.Helper()
	u.cseq++
	u.request("BYE", ruri, u.cseq, "BYE", newBranch(), nil, "", "")
	return u.response("BYE", 200, 5*time.Second)
}

func (u *uac) info(ruri, ctype, body string) *sip.Response {
	u.t.Helper()
	u.cseq++
	u.request("INFO", ruri, u.cseq, "INFO", newBranch(), nil, ctype, body)
	return u.response("INFO", 200, 5*time.Second)
}

// sdpRemote is the RTP address in an SDP body.
func sdpRemote(t testing.TB, body []byte) (*Offer, netip.AddrPort) {
	t.Helper()
	o, err := ParseSDPOffer(body)
	if err != nil {
		t.Fatalf("SDP %q: %v", body, err)
	}
	return o, o.Remote
}

// rtpPacket is one received RTP packet.
type rtpPacket struct {
	h       rtp.Header
	payload []byte
	at      time.Time
}

// readRTP collects packets until stop returns true or timeout passes.
func (u *uac) readRTP(timeout time.Duration, stop func(p rtpPacket) bool) []rtpPacket {
	var out []rtpPacket
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		_ = u.rtp.SetReadDeadline(deadline)
		n, _, err := u.rtp.ReadFromUDP(buf)
		if err != nil {
			break
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			continue
		}
		rp := rtpPacket{h: p.Header, payload: append([]byte(nil), p.Payload...), at: time.Now()}
		out = append(out, rp)
		if stop != nil && stop(rp) {
			break
		}
	}
	return out
}

// sendRTP sends one RTP packet to the server's media address.
func (u *uac) sendRTP(to netip.AddrPort, h rtp.Header, payload []byte) {
	u.t.Helper()
	p := rtp.Packet{Header: h, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		u.t.Fatal(err)
	}
	if _, err := u.rtp.WriteToUDPAddrPort(b, to); err != nil {
		u.t.Fatal(err)
	}
}
