package routing

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cq12345/hotline/ivr"
)

// Dialer is what a media plane (the sip plane's B2BUA; later ARI) gives the
// router: outbound legs and bridging. The router decides who and when; the
// plane does SIP and RTP.
type Dialer interface {
	// RingAgent calls the agent's phone: an INVITE to every contact the
	// registrar holds for r.Agent.Extension (forked; the first 200 wins,
	// the others are CANCELled), with the header X-Hotline-Case:
	// r.CaseNumber. It returns at once with the ringing leg; the router
	// enforces r.Timeout by hanging the leg up. An agent with no registered
	// contact is ErrUnreachable.
	RingAgent(ctx context.Context, r AgentRing) (Leg, error)
	// DialOut calls a number through a trunk (a transfer to a destination,
	// or the citizen of a callback). The plane presents the caller's
	// number only when r.PassCaller is set (privacy), else the hotline's.
	DialOut(ctx context.Context, r Outbound) (Leg, error)
	// Bridge relays audio (RTP, each leg with its own SSRC, sequence and
	// timestamps) and DTMF both ways between two answered calls until one
	// of them ends or ctx is done. It hangs up neither: the router looks
	// at which one ended (Done) and decides about the other. When the far
	// party (b, the agent or the line) asks to transfer the caller (a
	// blind transfer: SIP REFER, already checked against the configured
	// destinations), Bridge returns a *TransferRequest and the router,
	// which owns the call, carries the transfer out.
	Bridge(ctx context.Context, a, b ivr.Call) error
}

// TransferRequest is Bridge's error when the bridged party asked to send
// the caller on to a configured destination (blind transfer).
type TransferRequest struct {
	Destination string // a configured destination's id
	By          string // who asked, for the record ("agent 1001")
}

func (t *TransferRequest) Error() string {
	return "routing: transfer to " + t.Destination + " requested by " + t.By
}

// DefaultEmergencyCodes maps the digit an agent keys after '*' during a
// bridge to the emergency line brought into a three-party call (DESIGN.md:
// 110 police, 119 fire, 120 ambulance).
func DefaultEmergencyCodes() map[byte]string {
	return map[byte]string{'1': "110", '2': "119", '3': "120"}
}

// EmergencyOutbound is the call a plane places when an agent's code brings
// destination id into a bridge with caller: only a configured destination
// (checked by dir, which logs a refusal), with the caller's case number.
func EmergencyOutbound(dir interface {
	Allowed(id, source string) (Destination, bool)
}, id string, caller ivr.Call) (Outbound, error) {
	if dir == nil {
		return Outbound{}, errors.New("no destinations configured")
	}
	d, ok := dir.Allowed(id, "agent-code")
	if !ok {
		return Outbound{}, fmt.Errorf("destination %q not configured", id)
	}
	r := Outbound{Destination: d.ID, Number: d.Number, Trunk: d.Trunk, Caller: caller, PassCaller: d.PassCaller, Timeout: 60 * time.Second}
	if cn, ok := caller.(CaseNumberer); ok {
		r.CaseNumber = cn.CaseNumber()
	}
	return r, nil
}

// AgentRing asks the plane to ring an agent.
type AgentRing struct {
	Agent Agent
	// Caller is the waiting caller (nil for the agent leg of a callback).
	// The plane may show its number to the agent (agents see full numbers,
	// DESIGN.md).
	Caller ivr.Call
	// CaseNumber goes in the X-Hotline-Case header of the INVITE.
	CaseNumber string
	Queue      string
	// Lang and Vars are the caller's language and the flow's variables
	// (appeal type, domain...), for headers or the agent's screen.
	Lang    string
	Vars    map[string]string
	Timeout time.Duration
}

// Outbound asks the plane to call a number through a trunk.
type Outbound struct {
	// Destination is the configured destination's id ("" for a callback).
	Destination string
	// Number is the number to dial (from configuration, or the callback's
	// citizen: personal data, never log it).
	Number string
	// Trunk is the SIP URI the INVITE goes to ("" for the plane's default).
	Trunk string
	// Caller is the call being transferred (nil for a callback).
	Caller     ivr.Call
	PassCaller bool
	CaseNumber string
	Timeout    time.Duration
}

// Leg is an outbound call. Before it is answered only Answered, Done, Err
// and Hangup make sense; once answered it is an ivr.Call like any other
// (the router plays the callback prompt to an agent on it and bridges it).
type Leg interface {
	ivr.Call
	// Answered is closed when the far end answered (200 OK, ACKed).
	Answered() <-chan struct{}
	// Err says why the leg ended without an answer: ErrBusy, ErrNoAnswer,
	// ErrRejected, ErrUnreachable (wrapped with the SIP status), or nil.
	Err() error
}

// EarlyMediaLeg is a Leg whose far end may send audio before it answers
// (RFC 3960: a 183 Session Progress with SDP — a carrier's ringback or
// 彩铃, or an announcement such as "the number you dialled is busy").
type EarlyMediaLeg interface {
	Leg
	// EarlyMedia is closed once the far end's early media can be heard.
	EarlyMedia() <-chan struct{}
}

// EarlyRelayer is implemented by a Dialer that can pass a ringing leg's
// early media on to whoever waits for it. While it relays, the router
// plays no ringback: the far end's own is better than ours.
type EarlyRelayer interface {
	// RelayEarly sends leg's audio to c, one way, until stop is called.
	// stop must be called before c and leg are bridged.
	RelayEarly(c ivr.Call, leg Leg) (stop func(), err error)
}

// Why a leg was not answered.
var (
	ErrBusy        = errors.New("routing: busy")        // 486, 600
	ErrNoAnswer    = errors.New("routing: no answer")   // 408, 480, ring timeout
	ErrRejected    = errors.New("routing: rejected")    // 603, other 4xx-6xx
	ErrUnreachable = errors.New("routing: unreachable") // no contact, transport error, 404
)

// CaseNumberer is implemented by calls that know their case's number
// (hotlined's case-opening wrapper): it goes to the agent with the call.
type CaseNumberer interface{ CaseNumber() string }

// LateDialer lets the router be built before the plane that dials exists
// (hotlined builds the interpreter, then starts the sip plane): until Set,
// every leg is ErrUnreachable.
type LateDialer struct {
	d atomic.Pointer[Dialer]
}

// Set installs the plane's dialer.
func (l *LateDialer) Set(d Dialer) { l.d.Store(&d) }

func (l *LateDialer) get() (Dialer, error) {
	p := l.d.Load()
	if p == nil {
		return nil, fmt.Errorf("%w: no media plane yet", ErrUnreachable)
	}
	return *p, nil
}

// RingAgent implements Dialer.
func (l *LateDialer) RingAgent(ctx context.Context, r AgentRing) (Leg, error) {
	d, err := l.get()
	if err != nil {
		return nil, err
	}
	return d.RingAgent(ctx, r)
}

// DialOut implements Dialer.
func (l *LateDialer) DialOut(ctx context.Context, r Outbound) (Leg, error) {
	d, err := l.get()
	if err != nil {
		return nil, err
	}
	return d.DialOut(ctx, r)
}

// Bridge implements Dialer.
func (l *LateDialer) Bridge(ctx context.Context, a, b ivr.Call) error {
	d, err := l.get()
	if err != nil {
		return err
	}
	return d.Bridge(ctx, a, b)
}

// RelayEarly implements EarlyRelayer when the installed plane does.
func (l *LateDialer) RelayEarly(c ivr.Call, leg Leg) (func(), error) {
	d, err := l.get()
	if err != nil {
		return nil, err
	}
	rel, ok := d.(EarlyRelayer)
	if !ok {
		return nil, fmt.Errorf("routing: the %T plane does not relay early media", d)
	}
	return rel.RelayEarly(c, leg)
}
