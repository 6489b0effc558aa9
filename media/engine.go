package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

const (
	// ptime is the packet time of every stream we send (G.711, 20 ms).
	ptime = 20 * time.Millisecond
	// samplesPerPacket is the RTP timestamp step of one 20 ms packet at 8 kHz.
	samplesPerPacket = 160
	// defaultSlots splits the 20 ms grid into sub-slots so one shard does
	// not send all its packets in one burst.
	defaultSlots = 4
	// lateThreshold: a pacer tick that starts later than this after its
	// deadline is counted in EngineStats.Late (a quarter of a packet time).
	lateThreshold = 5 * time.Millisecond
	// resyncLag: if a pacer falls further behind than this (suspended
	// machine, debugger) it skips whole cycles instead of bursting them;
	// timestamps still follow wall time.
	resyncLag = time.Second
	// recvBatch is the number of datagrams read per recvmmsg.
	recvBatch = 32
	// maxDatagram is the receive buffer size per datagram.
	maxDatagram = 1500
	// maxSendBatch caps one sendmmsg call (Linux UIO_MAXIOV is 1024).
	maxSendBatch = 512
	// socketBuffer is the SO_RCVBUF/SO_SNDBUF we ask for (the kernel may cap it).
	socketBuffer = 4 << 20
)

// ErrClosed is returned when the engine is closed.
var ErrClosed = errors.New("media: engine closed")

// batchConn is the batch I/O of ipv4.PacketConn and ipv6.PacketConn (both
// use socket.Message).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// Engine is the RTP engine: a pool of shared UDP sockets, one receive
// goroutine per socket and a few pacer goroutines (shards).
type Engine struct {
	cfg     Config
	log     *slog.Logger
	slots   int
	slotDur time.Duration
	epoch   time.Time
	sweep   int64 // inactivity sweep period in cycles; 0 = disabled
	done    chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex // guards socks, sessions, closed, rr, nextPort
	socks    []*poolSock
	sessions map[*Session]struct{}
	closed   bool
	rr       int
	nextPort int
	shards   []*shard

	pktSent, bytesSent, pktRecv, bytesRecv atomic.Uint64
	unknown, malformed, sendErr            atomic.Uint64
	ticks, late                            atomic.Uint64
	sendCalls, recvCalls, rtcp             atomic.Uint64
	maxLag                                 atomic.Int64
	nSessions                              atomic.Int64
	nSocks                                 atomic.Int64
}

// poolSock is one shared UDP socket of the pool.
type poolSock struct {
	idx   int
	conn  *net.UDPConn
	pc    batchConn
	local netip.AddrPort

	mu       sync.RWMutex // guards byRemote, all and Session.key
	byRemote map[netip.AddrPort][]*Session
	all      []*Session   // creation order, for latching
	unheard  atomic.Int64 // sessions that have received nothing yet

	// out holds the packets relayed (relay.go) during one receive batch;
	// only this socket's receive goroutine touches it.
	out outbox
}

// NewEngine binds the socket pool and starts the receive loops and pacers.
func NewEngine(cfg Config) (*Engine, error) {
	if !cfg.IP.IsValid() {
		cfg.IP = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	cfg.IP = cfg.IP.Unmap()
	if cfg.Sockets <= 0 {
		cfg.Sockets = 16
	}
	if cfg.MaxSockets < cfg.Sockets {
		cfg.MaxSockets = max(cfg.Sockets, 1024)
	}
	if cfg.Shards <= 0 {
		cfg.Shards = runtime.GOMAXPROCS(0)
	}
	if cfg.InactivityTimeout == 0 {
		cfg.InactivityTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PortMin > 0 && cfg.PortMax < cfg.PortMin {
		return nil, fmt.Errorf("media: port range %d-%d is empty", cfg.PortMin, cfg.PortMax)
	}
	e := &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		slots:    defaultSlots,
		slotDur:  ptime / defaultSlots,
		epoch:    time.Now(),
		done:     make(chan struct{}),
		sessions: make(map[*Session]struct{}),
		nextPort: cfg.PortMin,
	}
	if cfg.InactivityTimeout > 0 {
		// Sweep a few times per timeout, at most once a second.
		e.sweep = int64(min(max(cfg.InactivityTimeout/4, ptime), time.Second) / ptime)
	}
	e.mu.Lock()
	for range cfg.Sockets {
		if _, err := e.addSocketLocked(); err != nil {
			e.mu.Unlock()
			_ = e.Close()
			return nil, err
		}
	}
	for i := range cfg.Shards {
		sh := &shard{e: e, idx: i, slots: make([][]*Session, e.slots)}
		e.shards = append(e.shards, sh)
	}
	e.mu.Unlock()
	for _, sh := range e.shards {
		e.wg.Add(1)
		go sh.run()
	}
	return e, nil
}

// addSocketLocked binds one more pool socket and starts its receive loop.
// Called with e.mu held.
func (e *Engine) addSocketLocked() (*poolSock, error) {
	conn, err := e.listenLocked()
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(socketBuffer)
	_ = conn.SetWriteBuffer(socketBuffer)
	ps := &poolSock{
		idx:      len(e.socks),
		conn:     conn,
		local:    conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		byRemote: make(map[netip.AddrPort][]*Session),
	}
	ps.local = netip.AddrPortFrom(ps.local.Addr().Unmap(), ps.local.Port())
	if e.cfg.IP.Is4() {
		ps.pc = ipv4.NewPacketConn(conn)
	} else {
		ps.pc = ipv6.NewPacketConn(conn)
	}
	e.socks = append(e.socks, ps)
	e.nSocks.Store(int64(len(e.socks)))
	e.wg.Add(1)
	go e.recvLoop(ps)
	return ps, nil
}

// listenLocked binds a UDP socket on cfg.IP, in [PortMin, PortMax] when a
// range is configured (even ports first, as RFC 3550 section 11 suggests
// for RTP), otherwise on an OS-chosen port.
func (e *Engine) listenLocked() (*net.UDPConn, error) {
	network := "udp4"
	if !e.cfg.IP.Is4() {
		network = "udp6"
	}
	if e.cfg.PortMin <= 0 {
		c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.cfg.IP, 0)))
		if err != nil {
			return nil, fmt.Errorf("media: bind %s: %w", e.cfg.IP, err)
		}
		return c, nil
	}
	span := e.cfg.PortMax - e.cfg.PortMin + 1
	var lastErr error
	for pass := 0; pass < 2; pass++ {
		for range span {
			p := e.nextPort
			e.nextPort++
			if e.nextPort > e.cfg.PortMax {
				e.nextPort = e.cfg.PortMin
			}
			if (p%2 == 1) == (pass == 0) {
				continue
			}
			c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.cfg.IP, uint16(p))))
			if err == nil {
				return c, nil
			}
			lastErr = err
		}
	}
	return nil, fmt.Errorf("media: no free port in %d-%d on %s: %w", e.cfg.PortMin, e.cfg.PortMax, e.cfg.IP, lastErr)
}

// Close stops the pacers, closes all sessions (their playbacks end with
// OnDone(false)) and the sockets, and waits for every goroutine it started.
// It must not be called from a session callback.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	sessions := make([]*Session, 0, len(e.sessions))
	for s := range e.sessions {
		sessions = append(sessions, s)
	}
	socks := e.socks
	e.mu.Unlock()
	close(e.done)
	for _, s := range sessions {
		s.Close()
	}
	var errs []error
	for _, ps := range socks {
		if err := ps.conn.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	e.wg.Wait()
	return errors.Join(errs...)
}

// Stats returns a snapshot of the engine counters.
func (e *Engine) Stats() EngineStats {
	return EngineStats{
		PacketsSent:          e.pktSent.Load(),
		PacketsReceived:      e.pktRecv.Load(),
		BytesSent:            e.bytesSent.Load(),
		BytesReceived:        e.bytesRecv.Load(),
		DroppedUnknownSource: e.unknown.Load(),
		DroppedMalformed:     e.malformed.Load(),
		SendErrors:           e.sendErr.Load(),
		SendCalls:            e.sendCalls.Load(),
		RecvCalls:            e.recvCalls.Load(),
		RTCPIgnored:          e.rtcp.Load(),
		Sessions:             e.nSessions.Load(),
		Sockets:              int(e.nSocks.Load()),
		Ticks:                e.ticks.Load(),
		Late:                 e.late.Load(),
		MaxLag:               time.Duration(e.maxLag.Load()),
	}
}

// IP is the address the pool sockets are bound to.
func (e *Engine) IP() netip.Addr { return e.cfg.IP }

// isClosed reports whether Close has started.
func (e *Engine) isClosed() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}
