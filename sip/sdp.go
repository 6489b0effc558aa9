package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cq12345/hotline/prompts"
	"github.com/pion/sdp/v3"
)

// SDP offer/answer (RFC 3264) for one audio stream of G.711 with optional
// RFC 4733 telephone-events. The parsing goes through pion/sdp; the answer is
// written by hand because it is tiny and on the call-setup path.

var (
	// errNoCommonCodec means no audio stream of the offer carries PCMA or
	// PCMU over RTP/AVP: the INVITE gets 488 (RFC 3261 §13.3.1.1).
	errNoCommonCodec = errors.New("no common codec (want PCMA or PCMU over RTP/AVP)")
	// errBadSDP means the body is not an SDP session description we can read.
	errBadSDP = errors.New("malformed SDP")
)

// Direction is an SDP media direction attribute (RFC 3264 §5.1).
type Direction string

const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// reverse is the direction an answerer puts against the offerer's.
func (d Direction) reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

// Offer is the result of negotiating a peer's SDP (offer or answer) against
// what we support.
type Offer struct {
	// Remote is where the peer wants our RTP. Its address is unspecified
	// (0.0.0.0) for an RFC 2543 hold.
	Remote netip.AddrPort
	// Codec and PayloadType are the chosen audio codec and the peer's
	// payload type number for it.
	Codec       prompts.Codec
	PayloadType uint8
	// DTMFPayloadType is the peer's telephone-event/8000 payload type, valid
	// when HasDTMF.
	DTMFPayloadType uint8
	HasDTMF         bool
	// Direction is the peer's direction for the stream.
	Direction Direction
	// media lists each m= line's media type and protocol, so the answer can
	// mirror them: RFC 3264 §6 wants as many m= lines in the answer as in
	// the offer, rejected ones with port 0.
	media []mediaLine
	// chosen is the index in media of the accepted audio stream.
	chosen int
}

type mediaLine struct {
	media, proto, formats string
}

// Hold reports whether the peer put the call on hold: a=sendonly or
// a=inactive (RFC 3264 §8.4), or the RFC 2543 c=0.0.0.0.
func (o *Offer) Hold() bool {
	return o.Direction == SendOnly || o.Direction == Inactive || !o.Remote.Addr().IsValid() || o.Remote.Addr().IsUnspecified()
}

// ParseSDPOffer reads a peer's SDP and picks the stream, codec (PCMA first,
// then PCMU) and telephone-event payload type we will use. It returns
// errNoCommonCodec when no stream is acceptable and errBadSDP (wrapped) when
// the body does not parse.
func ParseSDPOffer(body []byte) (*Offer, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadSDP, err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no m= line", errBadSDP)
	}
	sessDir := directionOf(sd.Attributes, SendRecv)
	var sessAddr string
	if sd.ConnectionInformation != nil && sd.ConnectionInformation.Address != nil {
		sessAddr = sd.ConnectionInformation.Address.Address
	}

	out := &Offer{chosen: -1}
	for i, md := range sd.MediaDescriptions {
		out.media = append(out.media, mediaLine{
			media:   md.MediaName.Media,
			proto:   strings.Join(md.MediaName.Protos, "/"),
			formats: strings.Join(md.MediaName.Formats, " "),
		})
		if out.chosen >= 0 || md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		if !strings.EqualFold(strings.Join(md.MediaName.Protos, "/"), "RTP/AVP") {
			continue
		}
		codec, pt, dtmf, hasDTMF, ok := pickFormats(md)
		if !ok {
			continue
		}
		addr := sessAddr
		if md.ConnectionInformation != nil && md.ConnectionInformation.Address != nil {
			addr = md.ConnectionInformation.Address.Address
		}
		ip, err := netip.ParseAddr(strings.TrimSpace(addr))
		if err != nil {
			// An FQDN in c= is legal but we do not resolve names on the
			// call path (and must not send RTP off the network we know).
			return nil, fmt.Errorf("%w: connection address %q", errBadSDP, addr)
		}
		port := md.MediaName.Port.Value
		if port < 0 || port > 65535 {
			return nil, fmt.Errorf("%w: port %d", errBadSDP, port)
		}
		out.Remote = netip.AddrPortFrom(ip.Unmap(), uint16(port))
		out.Codec, out.PayloadType = codec, pt
		out.DTMFPayloadType, out.HasDTMF = dtmf, hasDTMF
		out.Direction = directionOf(md.Attributes, sessDir)
		out.chosen = i
	}
	if out.chosen < 0 {
		return nil, errNoCommonCodec
	}
	return out, nil
}

// pickFormats chooses PCMA, else PCMU, among the stream's formats, and finds
// telephone-event/8000. Static payload types 0 and 8 need no rtpmap (RFC
// 3551 §6); an rtpmap, when present, wins over the static meaning.
func pickFormats(md *sdp.MediaDescription) (codec prompts.Codec, pt, dtmf uint8, hasDTMF, ok bool) {
	rtpmap := map[int]string{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		num, name, found := strings.Cut(a.Value, " ")
		if !found {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			continue
		}
		rtpmap[n] = strings.ToLower(strings.TrimSpace(name))
	}
	havePCMA, havePCMU := -1, -1
	for _, f := range md.MediaName.Formats {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 127 {
			continue
		}
		name, mapped := rtpmap[n]
		if !mapped {
			switch n {
			case 0:
				name = "pcmu/8000"
			case 8:
				name = "pcma/8000"
			}
		}
		switch {
		case strings.HasPrefix(name, "pcma/8000") && havePCMA < 0:
			havePCMA = n
		case strings.HasPrefix(name, "pcmu/8000") && havePCMU < 0:
			havePCMU = n
		case strings.HasPrefix(name, "telephone-event/8000") && !hasDTMF:
			dtmf, hasDTMF = uint8(n), true
		}
	}
	switch {
	case havePCMA >= 0:
		return prompts.PCMA, uint8(havePCMA), dtmf, hasDTMF, true
	case havePCMU >= 0:
		return prompts.PCMU, uint8(havePCMU), dtmf, hasDTMF, true
	}
	return 0, 0, 0, false, false
}

func directionOf(attrs []sdp.Attribute, def Direction) Direction {
	for _, a := range attrs {
		switch Direction(a.Key) {
		case SendRecv, SendOnly, RecvOnly, Inactive:
			return Direction(a.Key)
		}
	}
	return def
}

// localSDP describes our side of a call's session: the o= line identity and
// version (RFC 3264 §8: the version grows by one whenever the description
// changes).
type localSDP struct {
	sessID  uint64
	version uint64
	addr    netip.Addr
	port    uint16
	last    string // body part after o=, to detect changes
}

// dtmfOfferPT is the telephone-event payload type we put in our own offers.
const dtmfOfferPT = 101

// answer writes the SDP answer to o, with our RTP address.
func (l *localSDP) answer(o *Offer) []byte {
	var b strings.Builder
	for i, m := range o.media {
		if i != o.chosen {
			// Rejected stream: same media and proto, port 0 (RFC 3264 §6).
			fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", m.media, m.proto, m.formats)
			continue
		}
		name := "PCMA"
		if o.Codec == prompts.PCMU {
			name = "PCMU"
		}
		fmts := strconv.Itoa(int(o.PayloadType))
		if o.HasDTMF {
			fmts += " " + strconv.Itoa(int(o.DTMFPayloadType))
		}
		fmt.Fprintf(&b, "m=audio %d RTP/AVP %s\r\n", l.port, fmts)
		fmt.Fprintf(&b, "a=rtpmap:%d %s/8000\r\n", o.PayloadType, name)
		if o.HasDTMF {
			fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", o.DTMFPayloadType, o.DTMFPayloadType)
		}
		b.WriteString("a=ptime:20\r\n")
		fmt.Fprintf(&b, "a=%s\r\n", o.Direction.reverse())
	}
	return l.wrap(b.String())
}

// offer writes our own offer (late-offer INVITE, or a re-INVITE without
// SDP): PCMA, PCMU and telephone-event.
func (l *localSDP) offer(dir Direction) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "m=audio %d RTP/AVP 8 0 %d\r\n", l.port, dtmfOfferPT)
	b.WriteString("a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n")
	fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", dtmfOfferPT, dtmfOfferPT)
	fmt.Fprintf(&b, "a=ptime:20\r\na=%s\r\n", dir)
	return l.wrap(b.String())
}

func (l *localSDP) wrap(media string) []byte {
	ipv := "IP4"
	if l.addr.Is6() {
		ipv = "IP6"
	}
	if media != l.last {
		if l.last != "" {
			l.version++
		}
		l.last = media
	}
	return fmt.Appendf(nil, "v=0\r\no=hotline %d %d IN %s %s\r\ns=hotline\r\nc=IN %s %s\r\nt=0 0\r\n%s",
		l.sessID, l.version, ipv, l.addr, ipv, l.addr, media)
}
