package phone

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
)

// Registration of an agent's phone with a registrar (RFC 3261 section 10),
// with digest authentication (RFC 8760 / RFC 2617) when challenged.

// RegisterConfig describes a registration.
type RegisterConfig struct {
	Registrar string // HOST:PORT
	Transport string // udp (default) or tcp
	User      string // the agent's extension, e.g. "1001"
	Password  string
	Domain    string        // address-of-record domain (default: the registrar's host)
	Expires   time.Duration // requested (default 300 s)
}

// Registration is a live registration, refreshed before it expires.
type Registration struct {
	p       *Phone
	cfg     RegisterConfig
	client  *sipgo.Client
	host    string
	port    int
	callID  sip.CallIDHeader
	fromTag string

	mu      sync.Mutex
	cseq    uint32
	granted time.Duration

	stop chan struct{}
	done chan struct{}
}

// ErrRegister is wrapped by registration failures that came as a SIP answer.
var ErrRegister = errors.New("registration refused")

// Register registers the phone's contact and keeps it registered until
// Close, which unregisters it.
func (p *Phone) Register(ctx context.Context, cfg RegisterConfig) (*Registration, error) {
	if cfg.Expires <= 0 {
		cfg.Expires = 300 * time.Second
	}
	cfg.Transport = strings.ToLower(cfg.Transport)
	if cfg.Transport == "" {
		cfg.Transport = "udp"
	}
	dua := p.dialogs[cfg.Transport]
	if dua == nil {
		return nil, fmt.Errorf("phone: register: unknown transport %q", cfg.Transport)
	}
	host, port, err := splitTarget(cfg.Registrar)
	if err != nil {
		return nil, fmt.Errorf("phone: register: %w", err)
	}
	if cfg.Domain == "" {
		cfg.Domain = host
	}
	r := &Registration{
		p: p, cfg: cfg, client: dua.Client, host: host, port: port,
		callID: sip.CallIDHeader(uuid.NewString()), fromTag: sip.GenerateTagN(16),
		cseq: 1, stop: make(chan struct{}), done: make(chan struct{}),
	}
	granted, err := r.register(ctx, cfg.Expires)
	if err != nil {
		return nil, err
	}
	r.granted = granted
	go r.refresh()
	return r, nil
}

// Granted is the expiry the registrar granted last.
func (r *Registration) Granted() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.granted
}

// Close stops refreshing and unregisters (Expires: 0).
func (r *Registration) Close() error {
	close(r.stop)
	<-r.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := r.register(ctx, 0)
	return err
}

func (r *Registration) refresh() {
	defer close(r.done)
	for {
		r.mu.Lock()
		wait := max(r.granted*8/10, time.Second)
		r.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-r.stop:
			t.Stop()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		g, err := r.register(ctx, r.cfg.Expires)
		cancel()
		if err != nil {
			r.p.log.Warn("phone: registration refresh failed", "user", r.cfg.User, "error", err)
			g = 5 * time.Second * 10 / 8 // retry in 5 s (refresh waits 80 %)
		}
		r.mu.Lock()
		r.granted = g
		r.mu.Unlock()
	}
}

// register sends one REGISTER (answering a digest challenge) and returns
// the expiry granted.
func (r *Registration) register(ctx context.Context, expires time.Duration) (time.Duration, error) {
	local := r.p.addrs[r.cfg.Transport]
	aor := sip.Uri{Scheme: "sip", User: r.cfg.User, Host: r.cfg.Domain}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: r.host, Port: r.port})
	req.SetTransport(strings.ToUpper(r.cfg.Transport))
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", r.fromTag)
	to := &sip.ToHeader{Address: aor, Params: sip.NewParams()}
	contact := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: r.cfg.User, Host: local.Addr().String(), Port: int(local.Port())}}
	if r.cfg.Transport == "tcp" {
		contact.Address.UriParams = sip.HeaderParams{{K: "transport", V: "tcp"}}
	}
	r.mu.Lock()
	r.cseq++
	cseq := &sip.CSeqHeader{SeqNo: r.cseq, MethodName: sip.REGISTER}
	r.mu.Unlock()
	callID := r.callID
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(cseq)
	req.AppendHeader(contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	req.AppendHeader(sip.NewHeader("User-Agent", r.p.cfg.UserAgent))
	res, err := r.client.Do(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("phone: REGISTER %s: %w", r.cfg.User, err)
	}
	if (res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired) && r.cfg.Password != "" {
		res, err = r.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: r.cfg.User, Password: r.cfg.Password})
		if err != nil {
			return 0, fmt.Errorf("phone: REGISTER %s: %w", r.cfg.User, err)
		}
		r.mu.Lock()
		r.cseq = max(r.cseq, req.CSeq().SeqNo)
		r.mu.Unlock()
	}
	if !res.IsSuccess() {
		return 0, fmt.Errorf("phone: REGISTER %s: %w: %d %s", r.cfg.User, ErrRegister, res.StatusCode, res.Reason)
	}
	return grantedExpiry(res, contact, expires), nil
}

// grantedExpiry reads the expiry of our contact in a 200 to REGISTER: the
// contact's expires parameter, else the Expires header, else what we asked.
func grantedExpiry(res *sip.Response, ours *sip.ContactHeader, asked time.Duration) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		ct, ok := h.(*sip.ContactHeader)
		if !ok || ct.Address.Host != ours.Address.Host || ct.Address.Port != ours.Address.Port {
			continue
		}
		if v, ok := ct.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return time.Duration(n) * time.Second
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			return time.Duration(n) * time.Second
		}
	}
	return asked
}
