package media

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// peer is a raw UDP endpoint on loopback standing for a phone.
func peer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

func sendRTP(t *testing.T, from *net.UDPConn, to netip.AddrPort, h rtp.Header, payload []byte) {
	t.Helper()
	b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := from.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
}

func readRTP(t *testing.T, c *net.UDPConn, wait time.Duration) (*rtp.Packet, bool) {
	t.Helper()
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		return nil, false
	}
	var p rtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil {
		t.Fatal(err)
	}
	return &p, true
}

func TestRelayRewritesAndTranslates(t *testing.T) {
	e := newEngine(t, Config{Sockets: 2, InactivityTimeout: -1})
	pa, pb := peer(t), peer(t)
	a, err := e.NewSession(SessionConfig{Remote: addrOf(pa), PayloadType: 8, DTMFPayloadType: 101})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.NewSession(SessionConfig{Remote: addrOf(pb), PayloadType: 0, DTMFPayloadType: 96})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	a.RelayTo(b, &ALawToULaw)

	payload := bytes.Repeat([]byte{0xd5}, 160) // A-law near zero
	var prev *rtp.Packet
	for i := range 5 {
		sendRTP(t, pa, a.LocalAddr(), rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(1000 + i), Timestamp: uint32(5000 + 160*i), SSRC: 0xabcdef}, payload)
		p, ok := readRTP(t, pb, 2*time.Second)
		if !ok {
			t.Fatalf("packet %d not relayed", i)
		}
		if p.SSRC == 0xabcdef || p.SSRC != b.ssrc {
			t.Fatalf("SSRC %x: want the B leg's own %x", p.SSRC, b.ssrc)
		}
		if p.PayloadType != 0 {
			t.Fatalf("payload type %d, want B's 0 (PCMU)", p.PayloadType)
		}
		if p.Payload[0] != ALawToULaw[0xd5] || len(p.Payload) != 160 {
			t.Fatalf("payload not translated: %x", p.Payload[:4])
		}
		if prev != nil {
			if p.SequenceNumber != prev.SequenceNumber+1 || p.Timestamp-prev.Timestamp != 160 {
				t.Fatalf("seq/ts not continuous: %d/%d after %d/%d", p.SequenceNumber, p.Timestamp, prev.SequenceNumber, prev.Timestamp)
			}
		} else if !p.Marker {
			t.Fatal("first relayed packet has no marker")
		}
		prev = p
	}

	// A telephone-event is not relayed (the bridge regenerates digits).
	sendRTP(t, pa, a.LocalAddr(), rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 2000, Timestamp: 9000, SSRC: 0xabcdef}, []byte{1, 0x0a, 0, 160})
	if p, ok := readRTP(t, pb, 200*time.Millisecond); ok {
		t.Fatalf("telephone-event relayed: pt %d", p.PayloadType)
	}

	// A held leg gets nothing.
	b.SetHold(true)
	sendRTP(t, pa, a.LocalAddr(), rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: 1006, Timestamp: 6000, SSRC: 0xabcdef}, payload)
	if _, ok := readRTP(t, pb, 200*time.Millisecond); ok {
		t.Fatal("held leg got a relayed packet")
	}
	b.SetHold(false)
	a.RelayTo(nil, nil)
	sendRTP(t, pa, a.LocalAddr(), rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: 1007, Timestamp: 6160, SSRC: 0xabcdef}, payload)
	if _, ok := readRTP(t, pb, 200*time.Millisecond); ok {
		t.Fatal("relay stopped but a packet went through")
	}
}

func TestG711(t *testing.T) {
	for _, v := range []int16{0, 1, -1, 100, -100, 1000, -1000, 8000, -8000, 30000, -30000, 32767, -32768} {
		for name, rt := range map[string]int16{"alaw": DecodeALaw(EncodeALaw(v)), "ulaw": DecodeULaw(EncodeULaw(v))} {
			d := int32(rt) - int32(v)
			tol := max(int32(v), -int32(v))/16 + 16 // G.711 keeps ~4 bits of mantissa
			if d > tol || d < -tol {
				t.Errorf("%s(%d) round trip %d", name, v, rt)
			}
		}
	}
	for i := range 256 {
		// A-law -> µ-law -> A-law is stable within one step.
		a := byte(i)
		back := ULawToALaw[ALawToULaw[a]]
		if d := int32(DecodeALaw(back)) - int32(DecodeALaw(a)); d > 1100 || d < -1100 {
			t.Errorf("A-law %#x -> %#x", a, back)
		}
	}
}
