package phone

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cq12345/hotline/prompts"
	"github.com/pion/sdp/v3"
)

// SDP offer/answer for a G.711 phone (RFC 3264, RFC 4566): one audio stream,
// PCMA and/or PCMU, and telephone-event for RFC 4733 DTMF.

// DefaultDTMFPayloadType is the dynamic payload type we offer for
// telephone-event.
const DefaultDTMFPayloadType = 101

// MediaDesc is what a phone needs from an SDP body.
type MediaDesc struct {
	Addr      netip.AddrPort  // where to send RTP
	Codecs    []prompts.Codec // G.711 payload types, in the SDP's order
	DTMF      uint8           // telephone-event payload type; 0 when absent
	Direction string          // sendrecv, sendonly, recvonly or inactive
}

// BuildSDP returns an SDP body offering (or answering with) codecs and, when
// dtmfPT is not 0, telephone-event/8000 with events 0-16.
func BuildSDP(sessionID, version uint64, local netip.AddrPort, codecs []prompts.Codec, dtmfPT uint8, direction string) ([]byte, error) {
	ip := local.Addr().Unmap()
	addrType := "IP4"
	if ip.Is6() {
		addrType = "IP6"
	}
	if direction == "" {
		direction = "sendrecv"
	}
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media:  "audio",
			Port:   sdp.RangedPort{Value: int(local.Port())},
			Protos: []string{"RTP", "AVP"},
		},
	}
	for _, c := range codecs {
		pt := strconv.Itoa(int(c))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", pt+" "+c.String()+"/8000"))
	}
	if dtmfPT != 0 {
		pt := strconv.Itoa(int(dtmfPT))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes,
			sdp.NewAttribute("rtpmap", pt+" telephone-event/8000"),
			sdp.NewAttribute("fmtp", pt+" 0-16"))
	}
	md.Attributes = append(md.Attributes, sdp.NewAttribute("ptime", "20"), sdp.NewPropertyAttribute(direction))
	s := &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "callsim", SessionID: sessionID, SessionVersion: version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: ip.String(),
		},
		SessionName: "callsim",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: ip.String()},
		},
		TimeDescriptions:  []sdp.TimeDescription{{Timing: sdp.Timing{}}},
		MediaDescriptions: []*sdp.MediaDescription{md},
	}
	b, err := s.Marshal()
	if err != nil {
		return nil, fmt.Errorf("sdp: marshal: %w", err)
	}
	return b, nil
}

// ParseSDP reads the first audio stream of an SDP body. A stream with port 0
// (rejected) or without PCMA/PCMU is an error.
func ParseSDP(body []byte) (MediaDesc, error) {
	var s sdp.SessionDescription
	if err := s.Unmarshal(body); err != nil {
		return MediaDesc{}, fmt.Errorf("sdp: %w", err)
	}
	var md *sdp.MediaDescription
	for _, m := range s.MediaDescriptions {
		if m.MediaName.Media == "audio" {
			md = m
			break
		}
	}
	if md == nil {
		return MediaDesc{}, errors.New("sdp: no audio stream")
	}
	if md.MediaName.Port.Value == 0 {
		return MediaDesc{}, errors.New("sdp: audio stream rejected (port 0)")
	}
	ci := md.ConnectionInformation
	if ci == nil {
		ci = s.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return MediaDesc{}, errors.New("sdp: no connection address")
	}
	ip, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		return MediaDesc{}, fmt.Errorf("sdp: connection address %q: %w", ci.Address.Address, err)
	}
	if md.MediaName.Port.Value < 0 || md.MediaName.Port.Value > 65535 {
		return MediaDesc{}, fmt.Errorf("sdp: bad port %d", md.MediaName.Port.Value)
	}
	out := MediaDesc{Addr: netip.AddrPortFrom(ip, uint16(md.MediaName.Port.Value)), Direction: "sendrecv"}
	names := map[string]string{} // payload type -> lower-case encoding name
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			pt, enc, ok := strings.Cut(a.Value, " ")
			if ok {
				names[pt] = strings.ToLower(enc)
			}
		case "sendrecv", "sendonly", "recvonly", "inactive":
			out.Direction = a.Key
		}
	}
	for _, f := range md.MediaName.Formats {
		enc, mapped := names[f]
		switch {
		case f == "8" && (!mapped || strings.HasPrefix(enc, "pcma/8000")):
			out.Codecs = append(out.Codecs, prompts.PCMA)
		case f == "0" && (!mapped || strings.HasPrefix(enc, "pcmu/8000")):
			out.Codecs = append(out.Codecs, prompts.PCMU)
		case strings.HasPrefix(enc, "telephone-event/8000"):
			if pt, err := strconv.ParseUint(f, 10, 8); err == nil && out.DTMF == 0 {
				out.DTMF = uint8(pt)
			}
		}
	}
	if len(out.Codecs) == 0 {
		return MediaDesc{}, errors.New("sdp: no PCMA or PCMU in the audio stream")
	}
	return out, nil
}

// ParseCodec reads "PCMA" or "PCMU" (any case).
func ParseCodec(s string) (prompts.Codec, error) {
	switch strings.ToUpper(s) {
	case "PCMA", "8":
		return prompts.PCMA, nil
	case "PCMU", "0":
		return prompts.PCMU, nil
	}
	return 0, fmt.Errorf("unknown codec %q (want PCMA or PCMU)", s)
}
