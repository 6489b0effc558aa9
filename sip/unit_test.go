package sip

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cq12345/hotline/prompts"
	"github.com/emiago/sipgo/sip"
)

func TestParseSDPOffer(t *testing.T) {
	te := "a=rtpmap:101 telephone-event/8000\r\n"
	cases := []struct {
		name    string
		body    string
		err     error
		codec   prompts.Codec
		pt      uint8
		dtmf    int // -1: none
		hold    bool
		remote  string
		answerM string // the answer's m= line(s), joined by |
	}{
		{"PCMA first even when PCMU is listed first", sdpBody(4000, "0 8 101", te+"a=sendrecv"), nil, prompts.PCMA, 8, 101, false, "127.0.0.1:4000", "m=audio 5000 RTP/AVP 8 101"},
		{"PCMU only, no rtpmap (static)", sdpBody(4000, "0", ""), nil, prompts.PCMU, 0, -1, false, "127.0.0.1:4000", "m=audio 5000 RTP/AVP 0"},
		{"dynamic PT for PCMA", sdpBody(4000, "96 97", "a=rtpmap:96 PCMA/8000\r\na=rtpmap:97 telephone-event/8000"), nil, prompts.PCMA, 96, 97, false, "127.0.0.1:4000", "m=audio 5000 RTP/AVP 96 97"},
		{"telephone-event keeps the offerer's PT", sdpBody(4000, "8 110", "a=rtpmap:110 telephone-event/8000"), nil, prompts.PCMA, 8, 110, false, "127.0.0.1:4000", "m=audio 5000 RTP/AVP 8 110"},
		{"sendonly is hold", sdpBody(4000, "8", "a=sendonly"), nil, prompts.PCMA, 8, -1, true, "127.0.0.1:4000", "m=audio 5000 RTP/AVP 8"},
		{"inactive is hold", sdpBody(4000, "8", "a=inactive"), nil, prompts.PCMA, 8, -1, true, "127.0.0.1:4000", "m=audio 5000 RTP/AVP 8"},
		{"c=0.0.0.0 is hold", strings.Replace(sdpBody(4000, "8", ""), "127.0.0.1", "0.0.0.0", 2), nil, prompts.PCMA, 8, -1, true, "0.0.0.0:4000", "m=audio 5000 RTP/AVP 8"},
		{"video rejected, audio kept", strings.Replace(sdpBody(4000, "8", ""), "m=audio", "m=video 3000 RTP/AVP 31\r\nm=audio", 1), nil, prompts.PCMA, 8, -1, false, "127.0.0.1:4000", "m=video 0 RTP/AVP 31|m=audio 5000 RTP/AVP 8"},
		{"G.729 only", sdpBody(4000, "18", "a=rtpmap:18 G729/8000"), errNoCommonCodec, 0, 0, 0, false, "", ""},
		{"SAVP", strings.Replace(sdpBody(4000, "8", ""), "RTP/AVP", "RTP/SAVP", 1), errNoCommonCodec, 0, 0, 0, false, "", ""},
		{"port 0 stream", sdpBody(0, "8", ""), errNoCommonCodec, 0, 0, 0, false, "", ""},
		{"not SDP", "hello", errBadSDP, 0, 0, 0, false, "", ""},
		{"FQDN in c=", strings.Replace(sdpBody(4000, "8", ""), "c=IN IP4 127.0.0.1", "c=IN IP4 media.example.com", 1), errBadSDP, 0, 0, 0, false, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseSDPOffer([]byte(tc.body))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Codec != tc.codec || o.PayloadType != tc.pt || o.Hold() != tc.hold || o.Remote.String() != tc.remote {
				t.Fatalf("got codec %v pt %d hold %v remote %v", o.Codec, o.PayloadType, o.Hold(), o.Remote)
			}
			if (tc.dtmf < 0) == o.HasDTMF || (o.HasDTMF && int(o.DTMFPayloadType) != tc.dtmf) {
				t.Fatalf("dtmf %v/%d, want %d", o.HasDTMF, o.DTMFPayloadType, tc.dtmf)
			}
			l := localSDP{sessID: 7, version: 1, addr: netip.MustParseAddr("127.0.0.1"), port: 5000}
			ans := string(l.answer(o))
			var ms []string
			for _, line := range strings.Split(ans, "\r\n") {
				if strings.HasPrefix(line, "m=") {
					ms = append(ms, line)
				}
			}
			if got := strings.Join(ms, "|"); got != tc.answerM {
				t.Fatalf("answer m= lines %q, want %q\n%s", got, tc.answerM, ans)
			}
		})
	}
}

func TestLocalSDPVersion(t *testing.T) {
	l := localSDP{sessID: 7, version: 1, addr: netip.MustParseAddr("127.0.0.1"), port: 5000}
	o, _ := ParseSDPOffer([]byte(sdpBody(4000, "8", "")))
	h, _ := ParseSDPOffer([]byte(sdpBody(4000, "8", "a=sendonly")))
	first := string(l.answer(o))
	same := string(l.answer(o))
	changed := string(l.answer(h))
	// RFC 3264 §8: the o= version changes exactly when the description does.
	if !strings.Contains(first, "o=hotline 7 1 ") || !strings.Contains(same, "o=hotline 7 1 ") || !strings.Contains(changed, "o=hotline 7 2 ") {
		t.Fatalf("versions:\n%s\n%s\n%s", first, same, changed)
	}
}

func TestParseInfoDTMF(t *testing.T) {
	cases := []struct {
		ct, body string
		digit    byte
		dur      time.Duration
		ok       bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', 160 * time.Millisecond, true},
		{"application/dtmf-relay", "Signal= *\nDuration= 250", '*', 250 * time.Millisecond, true},
		{"application/dtmf-relay", "signal=11\r\n", '#', 0, true},
		{"Application/DTMF-Relay; charset=utf-8", "Signal=d", 'D', 0, true},
		{"application/dtmf", "7", '7', 0, true},
		{"application/dtmf", "10\r\n", '*', 0, true},
		{"application/dtmf-relay", "Duration=160", 0, 0, false},
		{"application/dtmf-relay", "Signal=X", 0, 0, false},
		{"application/dtmf", "", 0, 0, false},
		{"text/plain", "Signal=5", 0, 0, false},
		{"", "Signal=5", 0, 0, false},
	}
	for _, tc := range cases {
		d, dur, err := ParseInfoDTMF(tc.ct, []byte(tc.body))
		if (err == nil) != tc.ok || d != tc.digit || dur != tc.dur {
			t.Errorf("%q %q: got %q %v %v", tc.ct, tc.body, d, dur, err)
		}
	}
}

func TestForceRport(t *testing.T) {
	cases := []struct{ in, want string }{
		{"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n", "OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1;rport\r\n\r\n"},
		{"OPTIONS sip:a SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1 , SIP/2.0/UDP g\r\n\r\n", "OPTIONS sip:a SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1;rport , SIP/2.0/UDP g\r\n\r\n"},
		{"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;rport;branch=z9hG4bK1\r\n\r\n", ""},
		{"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n", ""},
		{"OPTIONS sip:a SIP/2.0\r\nVia: SIP / 2.0\r\n /UDP h;branch=z9hG4bK1\r\n\r\n", ""},
	}
	for _, tc := range cases {
		got, ok := forceRport([]byte(tc.in), 65535)
		if tc.want == "" {
			if ok {
				t.Errorf("%q changed to %q", tc.in, got)
			}
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestFrameMessage(t *testing.T) {
	msg := "OPTIONS sip:a SIP/2.0\r\nContent-Length: 5\r\n\r\nhello"
	cases := []struct {
		name      string
		in        string
		msg, rest string
		ok, fatal bool
	}{
		{"whole", msg + "NEXT", msg, "NEXT", true, false},
		{"partial body", msg[:len(msg)-2], "", "", false, false},
		{"partial head", "OPTIONS sip:a SIP/2.0\r\nCont", "", "", false, false},
		{"keep-alive", "\r\n\r\n" + msg, "\r\n\r\n", msg, true, false},
		{"leading CRLF skipped", "\r\n" + msg, msg, "", true, false},
		{"conflicting lengths", "OPTIONS sip:a SIP/2.0\r\nContent-Length: 5\r\nl: 3\r\n\r\nhello", "", "", false, true},
		{"negative length", "OPTIONS sip:a SIP/2.0\r\nContent-Length: -9\r\n\r\n", "", "", false, true},
		{"no length", "OPTIONS sip:a SIP/2.0\r\n\r\n", "", "", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, rest, fatal, ok := frameMessage([]byte(tc.in))
			if ok != tc.ok || (fatal != nil) != tc.fatal {
				t.Fatalf("ok %v fatal %q", ok, fatal)
			}
			if ok && (string(m) != tc.msg || string(rest) != tc.rest) {
				t.Fatalf("msg %q rest %q", m, rest)
			}
		})
	}
}

func TestGuardCheck(t *testing.T) {
	g := &guard{parser: sip.NewParser()}
	base := "OPTIONS sip:12345@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:12345@h>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n%sContent-Length: 0\r\n\r\n"
	cases := []struct {
		name   string
		msg    string
		status int // 0: passes
	}{
		{"fine", strings.Replace(base, "%s", "", 1), 0},
		{"version", strings.Replace(strings.Replace(base, "%s", "", 1), "SIP/2.0\r\nVia", "SIP/3.0\r\nVia", 1), 505},
		{"scheme", strings.Replace(strings.Replace(base, "%s", "", 1), "OPTIONS sip:12345@h", "OPTIONS im:12345@h", 1), 416},
		{"cseq method", strings.Replace(strings.Replace(base, "%s", "", 1), "CSeq: 1 OPTIONS", "CSeq: 1 INVITE", 1), 400},
		{"require", strings.Replace(base, "%s", "Require: foo\r\n", 1), 420},
		{"two Call-IDs", strings.Replace(base, "%s", "Call-ID: y\r\n", 1), 400},
		{"bare cookie branch", strings.Replace(strings.Replace(base, "%s", "", 1), "branch=z9hG4bK1", "branch=z9hG4bK", 1), 400},
		{"unbracketed ?", strings.Replace(base, "%s", "Contact: sip:a@h?Route=x\r\n", 1), 400},
		{"'?' in the user part is fine", strings.Replace(strings.Replace(base, "%s", "", 1), "OPTIONS sip:12345@h", "OPTIONS sip:a?b@h", 1), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := g.check([]byte(tc.msg))
			if tc.status == 0 {
				if v.drop || v.resp != nil {
					t.Fatalf("rejected: %q", v.resp)
				}
				return
			}
			if !v.drop || !strings.HasPrefix(string(v.resp), "SIP/2.0 "+strconv.Itoa(tc.status)+" ") {
				t.Fatalf("got %q, want %d", v.resp, tc.status)
			}
			if !strings.Contains(string(v.resp), "Call-ID: x\r\n") || !strings.Contains(string(v.resp), ";tag=") {
				t.Fatalf("response lacks the request's headers: %q", v.resp)
			}
		})
	}
}
