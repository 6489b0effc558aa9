package phone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/telemetry"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// testRegistrar is a minimal registrar: digest authentication (MD5, one
// nonce), bindings with a granted expiry of at most maxExpires.
type testRegistrar struct {
	addr       string
	users      map[string]string // user -> password
	maxExpires int
	mu         sync.Mutex
	bindings   map[string]string // user -> contact host:port
	registers  int
}

func newTestRegistrar(t *testing.T, users map[string]string) *testRegistrar {
	t.Helper()
	reg := &testRegistrar{users: users, maxExpires: 60, bindings: map[string]string{}}
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	chal := &digest.Challenge{Realm: "hotline", Nonce: "n0nce", Algorithm: "MD5"}
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		reg.mu.Lock()
		reg.registers++
		reg.mu.Unlock()
		user := req.To().Address.User
		h := req.GetHeader("Authorization")
		if h == nil {
			res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
			res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
			_ = tx.Respond(res)
			return
		}
		cred, err := digest.ParseCredentials(h.Value())
		want, derr := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: cred.URI, Username: user, Password: reg.users[user], Count: cred.Nc, Cnonce: cred.Cnonce})
		if err != nil || derr != nil || cred.Username != user || cred.Response != want.Response {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
			return
		}
		expires, _ := strconv.Atoi(req.GetHeader("Expires").Value())
		granted := min(expires, reg.maxExpires)
		ct := req.Contact()
		reg.mu.Lock()
		if granted == 0 {
			delete(reg.bindings, user)
		} else {
			reg.bindings[user] = fmt.Sprintf("%s:%d", ct.Address.Host, ct.Address.Port)
		}
		reg.mu.Unlock()
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if granted > 0 {
			c := ct.Clone()
			c.Params = sip.NewParams()
			c.Params.Add("expires", strconv.Itoa(granted))
			res.AppendHeader(c)
		}
		_ = tx.Respond(res)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg.addr = pc.LocalAddr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeUDP(pc) }()
	t.Cleanup(func() {
		_ = ua.Close()
		_ = pc.Close()
		<-done
	})
	return reg
}

func (reg *testRegistrar) binding(user string) string {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return reg.bindings[user]
}

// TestAgentRegistersAndAnswers: the agent role registers with digest
// authentication, a caller reaches it at the registered contact, and Close
// unregisters; a wrong password is refused.
func TestAgentRegistersAndAnswers(t *testing.T) {
	lib := loadLib(t)
	reg := newTestRegistrar(t, map[string]string{"1001": "s3cret"})
	agent := newTestPhone(t, lib)

	if _, err := agent.Register(context.Background(), RegisterConfig{Registrar: reg.addr, User: "1001", Password: "wrong"}); !errors.Is(err, ErrRegister) {
		t.Fatalf("wrong password: err %v", err)
	}
	r, err := agent.Register(context.Background(), RegisterConfig{Registrar: reg.addr, User: "1001", Password: "s3cret", Expires: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if r.Granted() != 60*time.Second {
		t.Errorf("granted %v, want the registrar's 60 s", r.Granted())
	}
	contact := reg.binding("1001")
	if contact != agent.SIPAddr("udp").String() {
		t.Fatalf("binding %q, want %s", contact, agent.SIPAddr("udp"))
	}

	ctx, stop := context.WithCancel(context.Background())
	reports := make(chan Report, 1)
	answering := make(chan error, 1)
	go func() {
		answering <- agent.Answer(ctx, AnswerConfig{RingFor: 100 * time.Millisecond, Script: Script{Play: []string{"en/digit-0"}, HangupAfter: time.Second},
			OnReport: func(r Report) { reports <- r }})
	}()
	time.Sleep(10 * time.Millisecond)
	caller := newTestPhone(t, lib)
	cr := caller.Run(context.Background(), DialOptions{Target: contact, To: "1001", From: "13800138000"}, Script{HangupAfter: 5 * time.Second})
	if !cr.Answered || cr.EndedBy != EndedRemote || len(cr.PromptsHeard) != 1 || cr.PromptsHeard[0] != "en/digit-0" {
		t.Errorf("caller: %+v", cr)
	}
	ar := <-reports
	if ar.EndedBy != EndedLocal || ar.To != telemetry.MaskNumber("1001") {
		t.Errorf("agent: ended_by %s to %s", ar.EndedBy, ar.To)
	}
	stop()
	if err := <-answering; err != nil {
		t.Error(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if b := reg.binding("1001"); b != "" {
		t.Errorf("still bound to %s after Close", b)
	}
}
