package sip

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cq12345/hotline/ivr"
	"github.com/emiago/sipgo/sip"
)

// tortureExpect is what we answer to each RFC 4475 message (testdata/
// rfc4475/INDEX.tsv holds the RFC's words). nil means no reply at all.
//
// We are an endpoint (UAS) that only answers calls to 12345, so "process
// normally" means: OPTIONS -> 200, an INVITE to another user -> 404,
// REGISTER/MESSAGE -> 405 (we are not a registrar), an unknown method ->
// 501, an INVITE with a To tag of no dialog of ours -> 481. Rows where
// our answer is one of the RFC's permitted alternatives:
//   - escruri (§3.1.2.11): 400; the RFC allows 400 or ignoring the escaped
//     headers (which would give 404 here).
//   - baddate (§3.1.2.12): we ignore the Date, so the INVITE is processed
//     (404); the RFC allows 400 only when the Date matters.
//   - mismatch02 (§3.1.2.18): 400 (CSeq method differs), which the RFC
//     accepts besides 501.
//   - novelsc (§3.3.3): 416, one of the two allowed answers.
//   - unksm2, regaut01, cparam01, cparam02, regescrt, escnull, dblreq
//     (REGISTER): 405, since we are no registrar (the RFC's registrar
//     answers are 400 or 200; regaut01 names 405 for a non-registrar).
//   - sdp01 (§3.3.15): 406 with a Warning; 400 is also allowed.
//   - inv2543 (§3.4.1): processed (404 for its user), RFC 2543
//     compatibility kept.
//   - clerr and baddn over TCP: a message shorter than its Content-Length
//     (or without the blank line) is, on a stream, still arriving; the 400
//     goes out when the peer ends its side of the stream, which the test
//     does after these two.
//   - wsinv (§3.1.1.1): processed normally, which for an INVITE with a To
//     tag naming no dialog of ours is 481. sipgo misses tags written with
//     LWS ("; tag = 98asjd8"); the guard finds them and hands sipgo the
//     request re-serialised.
var tortureExpect = map[string][]int{
	// valid
	"wsinv.dat": {481}, "intmeth.dat": {501}, "esc01.dat": {404}, "escnull.dat": {405},
	"esc02.dat": {501}, "lwsdisp.dat": {200}, "longreq.dat": {404}, "dblreq.dat": {405},
	"semiuri.dat": {200}, "transports.dat": {200}, "mpart01.dat": {405},
	"unreason.dat": nil, "noreason.dat": nil,
	// invalid
	"badinv01.dat": {400}, "clerr.dat": {400}, "ncl.dat": {400}, "scalar02.dat": {400},
	"scalarlg.dat": nil, "quotbal.dat": {400}, "ltgtruri.dat": {400}, "lwsruri.dat": {400},
	"lwsstart.dat": {400}, "trws.dat": {400}, "escruri.dat": {400, 404}, "baddate.dat": {400, 404},
	"regbadct.dat": {400}, "badaspec.dat": {400}, "baddn.dat": {400}, "badvers.dat": {505},
	"mismatch01.dat": {400}, "mismatch02.dat": {501, 400}, "bigcode.dat": nil,
	// semantic
	"badbranch.dat": {400}, "insuf.dat": {400}, "unkscm.dat": {416}, "novelsc.dat": {416, 404},
	"unksm2.dat": {400, 405}, "bext01.dat": {420}, "invut.dat": {415}, "regaut01.dat": {405},
	"multi01.dat": {400}, "mcl01.dat": {400}, "bcast.dat": nil, "zeromf.dat": {200},
	"cparam01.dat": {405}, "cparam02.dat": {405}, "regescrt.dat": {405}, "sdp01.dat": {406, 400},
	"inv2543.dat": {404, 400},
}

// tortureTCPExpect overrides tortureExpect on TCP.
var tortureTCPExpect = map[string][]int{}

// tortureTruncated are the messages that end inside their header or body;
// on TCP the test ends its side of the stream after them.
var tortureTruncated = map[string]bool{"clerr.dat": true, "baddn.dat": true}

func TestRFC4475Torture(t *testing.T) {
	files, err := filepath.Glob("testdata/rfc4475/*.dat")
	if err != nil || len(files) != 49 {
		t.Fatalf("want the 49 RFC 4475 messages, got %d (%v)", len(files), err)
	}
	index, err := os.ReadFile("testdata/rfc4475/INDEX.tsv")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if !strings.Contains(string(index), name+"\t") {
			t.Errorf("%s is not in INDEX.tsv", name)
		}
		if _, ok := tortureExpect[name]; !ok {
			t.Errorf("%s has no expectation", name)
		}
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, f := range files {
			name := filepath.Base(f)
			t.Run(network+"/"+name, func(t *testing.T) {
				// A server per message: several messages share a Via
				// branch and sent-by, and would otherwise match each
				// other's transaction (RFC 3261 §17.2.3) as retransmissions.
				srv := startServer(t, func(ctx context.Context, c ivr.Call) {})
				msg, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				want := tortureExpect[name]
				if o, ok := tortureTCPExpect[name]; ok && network == "tcp" {
					want = o
				}
				codes := sendRaw(t, srv.Addr().String(), network, msg, want, tortureTruncated[name])
				switch {
				case want == nil && len(codes) > 0:
					t.Errorf("got %v, want no reply", codes)
				case want != nil && !slices.ContainsFunc(codes, func(c int) bool { return slices.Contains(want, c) }):
					t.Errorf("got %v, want one of %v", codes, want)
				}
				if !optionsAlive(t, srv.Addr().String()) {
					t.Fatal("server does not answer OPTIONS any more")
				}
			})
		}
	}
}

// sendRaw sends msg on a new connection and collects the final response
// codes until one in want arrives (or, with want nil, for a short while).
// A stream may carry a second message after the first (dblreq), so more
// than one answer can come.
func sendRaw(t *testing.T, addr, network string, msg []byte, want []int, halfClose bool) []int {
	t.Helper()
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok && halfClose {
		// End of stream after a truncated message: it is then known to
		// be truncated.
		_ = tc.CloseWrite()
	}
	wait := 2 * time.Second
	if want == nil {
		wait = 300 * time.Millisecond
	}
	deadline := time.Now().Add(wait)
	_ = conn.SetReadDeadline(deadline)
	var br *bufio.Reader
	if network == "tcp" {
		br = bufio.NewReader(conn)
	}
	var codes []int
	for time.Now().Before(deadline) {
		var data []byte
		if br != nil {
			data, err = readStreamMessage(br)
		} else {
			buf := make([]byte, 65535)
			var n int
			n, err = conn.Read(buf)
			data = buf[:n]
		}
		if err != nil {
			return codes
		}
		// Our 400s copy the request's broken headers (RFC 3261 §8.2.6.2),
		// so read the status line only.
		var code int
		if _, err := fmt.Sscanf(string(data), "SIP/2.0 %d ", &code); err != nil {
			t.Fatalf("not a response: %q", data)
		}
		if code < 200 {
			continue
		}
		codes = append(codes, code)
		if slices.Contains(want, code) {
			return codes
		}
	}
	return codes
}

// optionsAlive reports whether the server answers an OPTIONS over UDP.
func optionsAlive(t *testing.T, addr string) bool {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "OPTIONS sip:12345@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=" + sip.GenerateBranchN(10) + "\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:12345@127.0.0.1>\r\n" +
		"Call-ID: " + sip.GenerateTagN(12) + "\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	return err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 200")
}
