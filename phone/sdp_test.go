package phone

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/cq12345/hotline/prompts"
)

func TestSDPRoundTrip(t *testing.T) {
	local := netip.MustParseAddrPort("127.0.0.1:40000")
	b, err := BuildSDP(1, 2, local, []prompts.Codec{prompts.PCMU, prompts.PCMA}, 101, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m=audio 40000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000", "c=IN IP4 127.0.0.1", "a=sendrecv"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("SDP lacks %q:\n%s", want, b)
		}
	}
	md, err := ParseSDP(b)
	if err != nil {
		t.Fatal(err)
	}
	if md.Addr != local || !slices.Equal(md.Codecs, []prompts.Codec{prompts.PCMU, prompts.PCMA}) || md.DTMF != 101 || md.Direction != "sendrecv" {
		t.Errorf("parsed %+v", md)
	}
}

func TestParseSDP(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
	tests := []struct {
		name    string
		body    string
		wantErr string
		addr    string
		codecs  []prompts.Codec
		dtmf    uint8
		dir     string
	}{
		{"static types without rtpmap", head + "m=audio 5000 RTP/AVP 8 0\r\n", "", "10.0.0.1:5000", []prompts.Codec{prompts.PCMA, prompts.PCMU}, 0, "sendrecv"},
		{"media-level c= wins, sendonly", head + "m=audio 5000 RTP/AVP 0 96\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:96 telephone-event/8000\r\na=sendonly\r\n", "", "10.0.0.2:5000", []prompts.Codec{prompts.PCMU}, 96, "sendonly"},
		{"no G.711", head + "m=audio 5000 RTP/AVP 18\r\n", "no PCMA or PCMU", "", nil, 0, ""},
		{"rejected", head + "m=audio 0 RTP/AVP 8\r\n", "port 0", "", nil, 0, ""},
		{"no audio", head + "m=video 5000 RTP/AVP 96\r\n", "no audio", "", nil, 0, ""},
		{"garbage", "hello", "sdp:", "", nil, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md, err := ParseSDP([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if md.Addr.String() != tc.addr || !slices.Equal(md.Codecs, tc.codecs) || md.DTMF != tc.dtmf || md.Direction != tc.dir {
				t.Errorf("got %+v", md)
			}
		})
	}
}
