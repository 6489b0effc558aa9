package media

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/pion/rtp"
)

// Config configures an Engine.
type Config struct {
	IP                netip.Addr    // local address to bind, e.g. 127.0.0.1
	Sockets           int           // shared UDP sockets (ports) in the pool; default 16
	PortMin, PortMax  int           // optional port range for the pool; 0 = OS-chosen ports
	Shards            int           // pacer goroutines; default runtime.GOMAXPROCS(0)
	InactivityTimeout time.Duration // no inbound RTP this long => SessionConfig.OnInactive; default 30s; <0 disables
	Logger            *slog.Logger
	// MaxSockets bounds the pool when it grows: a session whose remote
	// address is already served by every pool socket gets a new socket, so
	// that (pool socket, remote address) stays unique. Default
	// max(Sockets, 1024).
	MaxSockets int
}

// EngineStats are cumulative counters of an Engine.
type EngineStats struct {
	PacketsSent          uint64
	PacketsReceived      uint64
	BytesSent            uint64
	BytesReceived        uint64
	DroppedUnknownSource uint64
	DroppedMalformed     uint64
	SendErrors           uint64
	SendCalls            uint64 // sendmmsg calls (PacketsSent/SendCalls = mean batch)
	RecvCalls            uint64 // recvmmsg calls
	RTCPIgnored          uint64 // RTCP packets multiplexed on our ports (RFC 5761), not used
	Sessions             int64  // currently open
	Sockets              int    // sockets in the pool
	Ticks                uint64
	Late                 uint64        // pacer ticks that started more than 5 ms after their deadline
	MaxLag               time.Duration // worst pacer tick start lag seen
}

// SessionConfig configures one RTP session (one call leg).
type SessionConfig struct {
	Remote          netip.AddrPort // from SDP; may be invalid (zero) until known
	PayloadType     uint8          // 8 PCMA or 0 PCMU (what we send)
	DTMFPayloadType uint8          // negotiated telephone-event PT (e.g. 101); 0 = none
	// OnDigit is called on the FIRST packet of each RFC 4733 event.
	OnDigit func(digit byte)
	// OnInactive is called when inbound RTP is missing for InactivityTimeout.
	OnInactive func()
	// OnPacket is called for every inbound packet on the receive goroutine;
	// it must not retain h or payload.
	OnPacket func(h *rtp.Header, payload []byte, arrival time.Time)
	// AwaitRemote: Remote is unknown now and will come from signalling
	// (an outbound leg: the SDP answer, then SetRemote). Until then the
	// session does not latch to an unknown source, so it need not have a
	// pool socket without other such sessions: ringing legs share the
	// pool instead of growing it by one socket each. Packets before
	// SetRemote are dropped (DroppedUnknownSource).
	AwaitRemote bool
}

// PlayOptions controls a playback.
type PlayOptions struct {
	Loop   bool
	OnDone func(completed bool) // OnDone(false) when stopped/replaced/closed
}

// SessionStats are counters of one session.
type SessionStats struct {
	PacketsSent     uint64
	PacketsReceived uint64
	Lost            uint64 // from sequence gaps
	LastArrival     time.Time
	RemoteLatched   bool
	Remote          netip.AddrPort
	Local           netip.AddrPort
	DigitsReceived  uint64
	// LastDTMFStart is when the pacer sent the first packet of the most
	// recent SendDTMF event (zero if none): the start of a
	// DTMF-to-next-prompt measurement.
	LastDTMFStart time.Time
}
