// Package phone is hotline's SIP test phone and load generator (the engine
// of cmd/callsim): a Phone is one SIP user agent (sipgo) with one RTP engine
// (package media) shared by all its calls. It dials (the caller role, used by
// `callsim call` and `callsim load`); the answering roles of later issues
// (`callsim agent`: REGISTER and answer; `callsim line`: answer as a
// specialised line) use the same Phone through Answer.
//
// A call measures what it receives: RTP counts and loss from sequence
// numbers, interarrival times, and which prompts it heard (see Recogniser).
package phone

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cq12345/hotline/media"
	"github.com/cq12345/hotline/prompts"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Config configures a Phone.
type Config struct {
	// SIPAddr is the local SIP address for UDP and TCP (default
	// 127.0.0.1:0: the OS picks the port; TCP tries the UDP port first).
	SIPAddr string
	// MediaIP is the RTP address (default: SIPAddr's IP).
	MediaIP netip.Addr
	// MediaSockets is the size of the RTP socket pool (default 4). A load
	// run wants more: see LoadConfig.
	MediaSockets     int
	PortMin, PortMax int
	// Prompts, when set, lets calls recognise the prompts they hear.
	Prompts *prompts.Library
	// Logger receives the phone's logs; wrap it in telemetry's masking
	// handler (cmd/callsim does). Default: discard.
	Logger *slog.Logger
	// SIPLogger receives sipgo's logs (default: Logger). sipgo warns about
	// harmless things (a TCP connection's reference count); callsim gives it
	// a logger at error level unless --verbose.
	SIPLogger *slog.Logger
	// UserAgent is the User-Agent header (default "callsim").
	UserAgent string
}

// Phone is a SIP UA plus an RTP engine.
type Phone struct {
	cfg     Config
	log     *slog.Logger
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	engine  *media.Engine
	dialogs map[string]*sipgo.DialogUA // by transport: "udp", "tcp"
	addrs   map[string]netip.AddrPort  // listen address by transport
	udp     net.PacketConn
	tcp     net.Listener
	wg      sync.WaitGroup

	idxOnce [2]sync.Once
	idx     [2]*PromptIndex // PCMA, PCMU

	answer atomic.Pointer[answerer] // set while Answer runs

	mu    sync.Mutex
	calls map[string]*Call // by Call-ID
}

// New starts a phone: it listens for SIP on UDP and TCP and binds its RTP
// socket pool. Close releases everything.
func New(cfg Config) (*Phone, error) {
	if cfg.SIPAddr == "" {
		cfg.SIPAddr = "127.0.0.1:0"
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "callsim"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SIPLogger == nil {
		cfg.SIPLogger = cfg.Logger
	}
	if cfg.MediaSockets <= 0 {
		cfg.MediaSockets = 4
	}
	host, _, err := net.SplitHostPort(cfg.SIPAddr)
	if err != nil {
		return nil, fmt.Errorf("phone: sip address %q: %w", cfg.SIPAddr, err)
	}
	if !cfg.MediaIP.IsValid() {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("phone: sip address %q needs an IP (or set MediaIP): %w", cfg.SIPAddr, err)
		}
		cfg.MediaIP = ip
	}
	p := &Phone{cfg: cfg, log: cfg.Logger, calls: map[string]*Call{}, dialogs: map[string]*sipgo.DialogUA{}, addrs: map[string]netip.AddrPort{}}
	if err := p.startSIP(); err != nil {
		p.Close()
		return nil, err
	}
	p.engine, err = media.NewEngine(media.Config{
		IP: cfg.MediaIP, Sockets: cfg.MediaSockets, PortMin: cfg.PortMin, PortMax: cfg.PortMax,
		// A phone does not hang up on silence: the far end may legitimately
		// send nothing (hold, a menu waiting for a key).
		InactivityTimeout: -1,
		Logger:            cfg.Logger,
	})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("phone: %w", err)
	}
	return p, nil
}

func (p *Phone) startSIP() error {
	var err error
	p.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent(p.cfg.UserAgent),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(p.cfg.SIPLogger)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(p.cfg.SIPLogger)),
	)
	if err != nil {
		return fmt.Errorf("phone: sip user agent: %w", err)
	}
	p.srv, err = sipgo.NewServer(p.ua, sipgo.WithServerLogger(p.cfg.SIPLogger))
	if err != nil {
		return fmt.Errorf("phone: sip server: %w", err)
	}
	p.srv.OnBye(p.onBye)
	p.srv.OnInvite(p.onInvite)
	p.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if c := p.lookup(req); c != nil {
			c.onAck(req, tx) // the ACK of a call we answered (re-INVITE ACKs need nothing)
		}
	})
	p.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	p.srv.OnInfo(p.onInfo)

	p.udp, err = net.ListenPacket("udp", p.cfg.SIPAddr)
	if err != nil {
		return fmt.Errorf("phone: sip udp: %w", err)
	}
	uaddr := netip.MustParseAddrPort(p.udp.LocalAddr().String())
	p.tcp, err = net.Listen("tcp", uaddr.String())
	if err != nil {
		host, _, _ := net.SplitHostPort(p.cfg.SIPAddr)
		if p.tcp, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
			return fmt.Errorf("phone: sip tcp: %w", err)
		}
	}
	p.addrs["udp"] = uaddr
	p.addrs["tcp"] = netip.MustParseAddrPort(p.tcp.Addr().String())
	p.wg.Add(2)
	go func() { defer p.wg.Done(); _ = p.srv.ServeUDP(p.udp) }()
	go func() { defer p.wg.Done(); _ = p.srv.ServeTCP(p.tcp) }()

	// UDP requests leave from the listening socket, so that responses and
	// the far end's requests come back to one place; TCP requests open a
	// connection that the far end reuses for its requests in the dialog.
	udpClient, err := sipgo.NewClient(p.ua, sipgo.WithClientLogger(p.cfg.SIPLogger), sipgo.WithClientConnectionAddr(uaddr.String()))
	if err != nil {
		return fmt.Errorf("phone: sip client: %w", err)
	}
	tcpClient, err := sipgo.NewClient(p.ua, sipgo.WithClientLogger(p.cfg.SIPLogger))
	if err != nil {
		return fmt.Errorf("phone: sip client: %w", err)
	}
	p.dialogs["udp"] = &sipgo.DialogUA{Client: udpClient, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: uaddr.Addr().String(), Port: int(uaddr.Port())}}}
	p.dialogs["tcp"] = &sipgo.DialogUA{Client: tcpClient, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: uaddr.Addr().String(), Port: int(p.addrs["tcp"].Port()), UriParams: sip.HeaderParams{{K: "transport", V: "tcp"}}}}}

	// ServeUDP registers the socket with the transport layer on its own
	// goroutine; wait for it before the first request uses it.
	deadline := time.Now().Add(2 * time.Second)
	for {
		if c, _ := p.ua.TransportLayer().GetConnection("udp", uaddr.String()); c != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("phone: sip udp listener did not start")
		}
		time.Sleep(time.Millisecond)
	}
}

// SIPAddr returns the phone's SIP listen address for a transport.
func (p *Phone) SIPAddr(transport string) netip.AddrPort { return p.addrs[strings.ToLower(transport)] }

// Engine returns the phone's RTP engine.
func (p *Phone) Engine() *media.Engine { return p.engine }

// Close hangs up nothing: end calls first. It stops the SIP listeners and
// the RTP engine and waits for their goroutines.
func (p *Phone) Close() error {
	var errs []error
	if p.engine != nil {
		errs = append(errs, p.engine.Close())
	}
	if p.ua != nil {
		errs = append(errs, p.ua.Close())
	}
	if p.udp != nil {
		_ = p.udp.Close()
	}
	if p.tcp != nil {
		_ = p.tcp.Close()
	}
	p.wg.Wait()
	return errors.Join(errs...)
}

// index returns the prompt index of a codec, built on first use.
func (p *Phone) index(c prompts.Codec) *PromptIndex {
	if p.cfg.Prompts == nil {
		return nil
	}
	i := 0
	if c == prompts.PCMU {
		i = 1
	}
	p.idxOnce[i].Do(func() { p.idx[i] = NewPromptIndex(p.cfg.Prompts, c) })
	return p.idx[i]
}

func (p *Phone) register(c *Call) {
	p.mu.Lock()
	p.calls[c.ID] = c
	p.mu.Unlock()
}

func (p *Phone) unregister(c *Call) {
	p.mu.Lock()
	if p.calls[c.ID] == c {
		delete(p.calls, c.ID)
	}
	p.mu.Unlock()
}

func (p *Phone) lookup(req *sip.Request) *Call {
	id := req.CallID()
	if id == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[id.Value()]
}

// ActiveCalls is the number of calls the phone currently tracks.
func (p *Phone) ActiveCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

func (p *Phone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := p.lookup(req)
	if c == nil || c.dlg == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	if err := c.dlg.ReadBye(req, tx); err != nil {
		p.log.Warn("phone: answering BYE", "call", c.ID, "error", err)
	}
	c.end(EndedRemote, nil)
}

func (p *Phone) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	if p.lookup(req) == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
}

// onInvite handles re-INVITEs of our calls (hold, refresh, a new media
// address) and hands other INVITEs to Config.Incoming.
func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		c := p.lookup(req)
		if c == nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
			return
		}
		c.reinvite(req, tx)
		return
	}
	if a := p.answer.Load(); a != nil {
		a.onIncoming(req, tx)
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", nil))
}

// splitTarget parses HOST:PORT (port default 5060).
func splitTarget(target string) (string, int, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return target, 5060, nil
		}
		return "", 0, fmt.Errorf("target %q: %w", target, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n > 65535 {
		return "", 0, fmt.Errorf("target %q: bad port", target)
	}
	return host, n, nil
}
