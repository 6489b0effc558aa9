package sip

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzParseSDPOffer: any body, no panic; an accepted offer always yields an
// answer that parses back to the same codec.
func FuzzParseSDPOffer(f *testing.F) {
	f.Add([]byte(sdpBody(4000, "8 0 101", "a=rtpmap:101 telephone-event/8000\r\na=sendonly")))
	f.Add([]byte(sdpBody(4000, "18", "a=rtpmap:18 G729/8000")))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=video 0 RTP/AVP 31\r\nm=audio 1 RTP/AVP 0\r\n"))
	f.Add([]byte("v=0\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := ParseSDPOffer(body)
		if err != nil {
			return
		}
		l := localSDP{sessID: 1, version: 1, port: 4000}
		l.addr = o.Remote.Addr()
		if !l.addr.IsValid() {
			return
		}
		back, err := ParseSDPOffer(l.answer(o))
		if err != nil {
			t.Fatalf("our answer to %q does not parse: %v", body, err)
		}
		if back.Codec != o.Codec || back.PayloadType != o.PayloadType {
			t.Fatalf("answer codec %v/%d, offer %v/%d", back.Codec, back.PayloadType, o.Codec, o.PayloadType)
		}
	})
}

// FuzzParseInfoDTMF: any content type and body, no panic; a digit is
// always one of the 16 DTMF symbols.
func FuzzParseInfoDTMF(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf-relay", []byte("Signal= #\nDuration= 100"))
	f.Add("application/dtmf", []byte("11"))
	f.Add("application/dtmf; charset=x", []byte("A"))
	f.Add("text/plain", []byte("5"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		d, dur, err := ParseInfoDTMF(ct, body)
		if err != nil {
			return
		}
		if !isDTMFSymbol(d) || dur < 0 {
			t.Fatalf("digit %q duration %v from %q %q", d, dur, ct, body)
		}
	})
}

// FuzzGuard: the raw-message guard never panics and never lets through a
// request that sipgo's parser rejects.
func FuzzGuard(f *testing.F) {
	f.Add([]byte("OPTIONS sip:12345@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:12345@h>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("INVITE sip:12345@h SIP/7.0\r\n\r\n"))
	f.Add([]byte("SIP/2.0 200 OK\r\n\r\n"))
	g := &guard{parser: sip.NewParser()}
	f.Fuzz(func(t *testing.T, msg []byte) {
		v := g.check(msg)
		if !v.drop && len(msg) > 0 {
			if _, err := sip.ParseMessage(msg); err != nil && len(trimCRLF(msg)) > 0 {
				t.Fatalf("passed an unparsable message %q: %v", msg, err)
			}
		}
		if v.rewrite != nil {
			if _, err := sip.ParseMessage(v.rewrite); err != nil {
				t.Fatalf("rewrite of %q does not parse: %v", msg, err)
			}
		}
		_, _, _, _ = frameMessage(msg)
		if m, ok := forceRport(msg, 65535); ok && !v.drop {
			if _, err := sip.ParseMessage(m); err != nil {
				t.Fatalf("forceRport broke %q: %v", msg, err)
			}
		}
	})
}

func isDTMFSymbol(d byte) bool {
	return d >= '0' && d <= '9' || d == '*' || d == '#' || d >= 'A' && d <= 'D'
}

func trimCRLF(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}
