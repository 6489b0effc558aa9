package media_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/cq12345/hotline/media"
)

// Two engines on loopback: an answering side (a server) plays a prompt
// and barges in on the first DTMF packet; the offering side (a phone)
// learns the server's address from the answer and sends a digit.
func Example() {
	server, err := media.NewEngine(media.Config{IP: netip.MustParseAddr("127.0.0.1"), Sockets: 2})
	if err != nil {
		panic(err)
	}
	defer server.Close()
	phone, err := media.NewEngine(media.Config{IP: netip.MustParseAddr("127.0.0.1"), Sockets: 2})
	if err != nil {
		panic(err)
	}
	defer phone.Close()

	// Offer: the phone's session exists before the remote is known.
	ps, _ := phone.NewSession(media.SessionConfig{PayloadType: 8, DTMFPayloadType: 101})

	// Answer: the server's session expects the address from the offer.
	digits := make(chan byte, 1)
	var ss *media.Session
	ss, _ = server.NewSession(media.SessionConfig{
		Remote: ps.LocalAddr(), PayloadType: 8, DTMFPayloadType: 101,
		OnDigit: func(d byte) { ss.Stop(); digits <- d }, // barge-in on the first packet
	})
	prompt := make([][]byte, 50) // 1 s of A-law silence
	for i := range prompt {
		prompt[i] = make([]byte, 160)
		for j := range prompt[i] {
			prompt[i][j] = 0xd5
		}
	}
	ss.Play(prompt, media.PlayOptions{Loop: true})

	// The phone applies the answer and presses 1.
	ps.SetRemote(ss.LocalAddr())
	ps.SendDTMF('1', 100*time.Millisecond)
	fmt.Printf("digit %c\n", <-digits)
	// Output: digit 1
}
