package sip

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cq12345/hotline/routing"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Registrar (RFC 3261 section 10) with digest authentication (RFC 7616 /
// RFC 8760: MD5 and SHA-256, qop=auth). Bindings live in this process's
// memory: a site that runs several hotlined processes registers each
// phone with every process (or puts a proxy in front that forks), since an
// agent's INVITE is sent by the process that holds the caller.

// CredentialStore gives the registrar an agent's digest HA1 values;
// routing.SQLStore implements it (routing.ErrNoAgent for an unknown user).
type CredentialStore interface {
	Credentials(ctx context.Context, username string) (routing.Credentials, error)
}

// Binding is one registered contact of an address of record.
type Binding struct {
	Contact sip.Uri
	Expires time.Time
	CallID  string
	CSeq    uint32
	// Transport the REGISTER came over ("UDP", "TCP").
	Transport string
}

// Registration limits (RFC 3261 section 10.3 step 7: 423 below the minimum).
const (
	defaultMinExpires = 60 * time.Second
	defaultMaxExpires = time.Hour
	nonceLifetime     = 5 * time.Minute
)

type registrar struct {
	creds      CredentialStore
	realm      string
	minExpires time.Duration
	maxExpires time.Duration
	key        [32]byte                         // nonce MAC key, per process
	clock      atomic.Pointer[func() time.Time] // tests move time; nil: time.Now

	mu       sync.Mutex
	bindings map[string][]Binding // by user (extension)
}

func newRegistrar(creds CredentialStore, realm string, minE, maxE time.Duration) *registrar {
	if realm == "" {
		realm = "hotline"
	}
	if minE <= 0 {
		minE = defaultMinExpires
	}
	if maxE < minE {
		maxE = max(defaultMaxExpires, minE)
	}
	r := &registrar{creds: creds, realm: realm, minExpires: minE, maxExpires: maxE,
		bindings: map[string][]Binding{}}
	_, _ = rand.Read(r.key[:])
	return r
}

func (r *registrar) now() time.Time {
	if f := r.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// Registered reports whether an extension has a live registration (an
// agent that is not registered is ErrUnreachable for RingAgent).
func (s *Server) Registered(ext string) bool { return len(s.Contacts(ext)) > 0 }

// Contacts lists the live contacts registered for an extension, newest
// registration first.
func (s *Server) Contacts(ext string) []Binding {
	if s.reg == nil {
		return nil
	}
	return s.reg.contacts(ext)
}

func (r *registrar) contacts(user string) []Binding {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	bs := r.bindings[user]
	live := bs[:0]
	for _, b := range bs {
		if b.Expires.After(now) {
			live = append(live, b)
		}
	}
	if len(live) == 0 {
		delete(r.bindings, user)
		return nil
	}
	r.bindings[user] = live
	out := make([]Binding, len(live))
	copy(out, live)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Expires.After(out[j].Expires) })
	return out
}

// nonce is time.Unix || HMAC(key, time): stateless, checked for age.
func (r *registrar) nonce(now time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.Unix()))
	m := hmac.New(sha256.New, r.key[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// checkNonce reports whether n is ours (valid) and whether it is too old
// (stale: RFC 7616 section 3.3, the client retries without asking the user).
func (r *registrar) checkNonce(n string, now time.Time) (valid, stale bool) {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 24 {
		return false, false
	}
	m := hmac.New(sha256.New, r.key[:])
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return false, false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	return true, now.Sub(issued) > nonceLifetime
}

func (r *registrar) challenge(stale bool, now time.Time) []sip.Header {
	var hs []sip.Header
	for _, alg := range []string{"SHA-256", "MD5"} {
		c := digest.Challenge{Realm: r.realm, Nonce: r.nonce(now), Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		hs = append(hs, sip.NewHeader("WWW-Authenticate", c.String()))
	}
	return hs
}

// errBadDigest is a wrong password (or a response computed over something
// else): 403.
var errBadDigest = errors.New("digest response does not match")

// verify checks an Authorization header against the stored HA1.
func verify(cred *digest.Credentials, c routing.Credentials, method string) error {
	var h func() hash.Hash
	var ha1 string
	switch strings.ToUpper(cred.Algorithm) {
	case "", "MD5":
		h, ha1 = md5.New, c.HA1MD5
	case "SHA-256":
		h, ha1 = sha256.New, c.HA1SHA256
	default:
		return fmt.Errorf("algorithm %q not supported", cred.Algorithm)
	}
	if ha1 == "" {
		return errBadDigest
	}
	hx := func(s string) string {
		x := h()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
	ha2 := hx(method + ":" + cred.URI)
	var want string
	switch cred.QOP {
	case "":
		want = hx(ha1 + ":" + cred.Nonce + ":" + ha2) // RFC 2069 compatibility
	case "auth":
		want = hx(ha1 + ":" + cred.Nonce + ":" + fmt.Sprintf("%08x", cred.Nc) + ":" + cred.Cnonce + ":auth:" + ha2)
	default:
		return fmt.Errorf("qop %q not supported", cred.QOP)
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(cred.Response))) != 1 {
		return errBadDigest
	}
	return nil
}

// onRegister handles REGISTER (RFC 3261 section 10.3).
func (s *Server) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	r := s.reg
	if r == nil || r.creds == nil {
		s.respond(req, tx, 405, "Method Not Allowed")
		return
	}
	now := r.now()
	to := req.To()
	if to == nil || to.Address.User == "" {
		s.respond(req, tx, 404, "Not Found")
		return
	}
	user := to.Address.User

	auth := req.GetHeader("Authorization")
	if auth == nil {
		s.respond(req, tx, 401, "Unauthorized", r.challenge(false, now)...)
		return
	}
	cred, err := digest.ParseCredentials(auth.Value())
	if err != nil {
		s.respond(req, tx, 400, "Bad Request", sip.NewHeader("Warning", `399 hotline "malformed Authorization"`))
		return
	}
	if cred.Realm != r.realm {
		s.respond(req, tx, 401, "Unauthorized", r.challenge(false, now)...)
		return
	}
	valid, stale := r.checkNonce(cred.Nonce, now)
	if !valid || stale {
		s.respond(req, tx, 401, "Unauthorized", r.challenge(valid && stale, now)...)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := r.creds.Credentials(ctx, cred.Username)
	switch {
	case errors.Is(err, routing.ErrNoAgent):
		s.log.Warn("REGISTER refused: unknown user", "user", truncateForLog(cred.Username))
		s.respond(req, tx, 403, "Forbidden")
		return
	case err != nil:
		s.log.Error("REGISTER: credentials", "error", err)
		s.respond(req, tx, 500, "Server Internal Error", sip.NewHeader("Retry-After", "5"))
		return
	}
	if cred.Username != user {
		// One may only register one's own extension.
		s.log.Warn("REGISTER refused: user does not own the address", "user", truncateForLog(cred.Username), "aor", truncateForLog(user))
		s.respond(req, tx, 403, "Forbidden")
		return
	}
	if err := verify(cred, c, string(req.Method)); err != nil {
		s.log.Warn("REGISTER refused: bad credentials", "user", truncateForLog(user), "error", err)
		s.respond(req, tx, 403, "Forbidden")
		return
	}

	// Expiry: the Contact's expires parameter, else the Expires header,
	// else our maximum (section 10.2.1.1).
	defExp := -1
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			s.respond(req, tx, 400, "Bad Request", sip.NewHeader("Warning", `399 hotline "bad Expires"`))
			return
		}
		defExp = n
	}
	contacts := req.GetHeaders("Contact")
	callID := req.CallID().Value()
	seq := req.CSeq().SeqNo
	type change struct {
		uri sip.Uri
		exp time.Duration
	}
	var changes []change
	for _, h := range contacts {
		ct, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		if ct.Address.Wildcard {
			// "*" removes every binding, only with Expires: 0 and alone
			// (section 10.3 step 6).
			if defExp != 0 || len(contacts) != 1 {
				s.respond(req, tx, 400, "Bad Request", sip.NewHeader("Warning", `399 hotline "Contact * needs Expires: 0"`))
				return
			}
			r.mu.Lock()
			delete(r.bindings, user)
			r.mu.Unlock()
			s.log.Info("agent unregistered", "user", user, "contacts", "*")
			s.respond(req, tx, 200, "OK")
			return
		}
		exp := defExp
		if v, ok := ct.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				s.respond(req, tx, 400, "Bad Request")
				return
			}
			exp = n
		}
		d := time.Duration(exp) * time.Second
		if exp < 0 {
			d = r.maxExpires
		}
		if d > 0 && d < r.minExpires {
			s.respond(req, tx, 423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(int(r.minExpires/time.Second))))
			return
		}
		changes = append(changes, change{uri: ct.Address, exp: min(d, r.maxExpires)})
	}

	r.mu.Lock()
	bs := r.bindings[user]
	for _, ch := range changes {
		i := indexBinding(bs, ch.uri)
		if i >= 0 && bs[i].CallID == callID && seq <= bs[i].CSeq {
			// An older or repeated REGISTER of the same client (step 7).
			continue
		}
		if ch.exp == 0 {
			if i >= 0 {
				bs = append(bs[:i], bs[i+1:]...)
			}
			continue
		}
		b := Binding{Contact: ch.uri, Expires: now.Add(ch.exp), CallID: callID, CSeq: seq, Transport: req.Transport()}
		if i >= 0 {
			bs[i] = b
		} else {
			bs = append(bs, b)
		}
	}
	if len(bs) == 0 {
		delete(r.bindings, user)
	} else {
		r.bindings[user] = bs
	}
	// The answer lists every current binding with its expiry (step 8).
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range bs {
		if !b.Expires.After(now) {
			continue
		}
		ct := &sip.ContactHeader{Address: b.Contact, Params: sip.NewParams()}
		ct.Params.Add("expires", strconv.Itoa(int(b.Expires.Sub(now).Round(time.Second)/time.Second)))
		res.AppendHeader(ct)
	}
	n := len(bs)
	r.mu.Unlock()
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	s.log.Info("agent registered", "user", user, "contacts", n)
	if err := tx.Respond(res); err != nil {
		s.log.Debug("REGISTER response failed", "error", err)
	}
}

// indexBinding finds a contact by URI equality (RFC 3261 section 19.1.4,
// simplified to scheme, user, host and port).
func indexBinding(bs []Binding, u sip.Uri) int {
	for i, b := range bs {
		if strings.EqualFold(b.Contact.Scheme, u.Scheme) && b.Contact.User == u.User &&
			strings.EqualFold(b.Contact.Host, u.Host) && b.Contact.Port == u.Port {
			return i
		}
	}
	return -1
}

// truncateForLog keeps what a peer sent from flooding the log.
func truncateForLog(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
