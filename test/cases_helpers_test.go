package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/client"
	"github.com/cq12345/hotline/cases"
	"github.com/cq12345/hotline/sqldb"
)

// adminClient is an API client with the bootstrap admin token hotlined
// wrote to its data folder.
func (s *server) adminClient(t *testing.T) *client.Client {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.DataDir, api.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return client.New("http://"+s.HTTP, strings.TrimSpace(string(b)))
}

// allCases lists every case the store holds.
func allCases(t *testing.T, cl *client.Client) []*cases.Case {
	t.Helper()
	l, err := cl.Cases(context.Background(), api.CaseSearch{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// health reads /healthz.
func (s *server) health(t *testing.T) (calls int, journaling bool) {
	t.Helper()
	resp, err := http.Get("http://" + s.HTTP + "/healthz")
	if err != nil {
		return -1, false
	}
	defer resp.Body.Close()
	var h struct {
		Calls      int  `json:"calls"`
		Journaling bool `json:"journaling"`
	}
	json.NewDecoder(resp.Body).Decode(&h)
	return h.Calls, h.Journaling
}

// numberHeard returns the case number callsim heard after "your case
// number is", from the digit prompts it recognised ("" when none).
func (r callResult) numberHeard() string {
	var b strings.Builder
	on := false
	for _, k := range r.PromptsHeard {
		_, id, _ := strings.Cut(k, "/")
		switch {
		case id == "your-case-number-is":
			on = true
		case on && id == "digit-dash":
			b.WriteByte('-')
		case on && strings.HasPrefix(id, "digit-") && len(id) == len("digit-0"):
			b.WriteByte(id[len(id)-1])
		case on:
			return b.String()
		}
	}
	return b.String()
}

// loadResult is the part of `callsim load --json` the case tests read.
type loadResult struct {
	Calls        int            `json:"calls"`
	SetupsOK     int            `json:"setups_ok"`
	SetupsFailed int            `json:"setups_failed"`
	Failures     map[string]int `json:"failures"`
	EndedBy      map[string]int `json:"ended_by"`
}

// load is a `callsim load` running in the background.
type load struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// startLoad starts `callsim load --json` against s.
func (s *server) startLoad(t *testing.T, args ...string) *load {
	t.Helper()
	l := &load{done: make(chan struct{})}
	all := append([]string{"load", "--target", s.SIP, "--json"}, args...)
	l.cmd = exec.Command(filepath.Join(bin, "callsim"), all...)
	l.cmd.Stdout, l.cmd.Stderr = &l.stdout, &l.stderr
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { l.err = l.cmd.Wait(); close(l.done) }()
	t.Cleanup(func() {
		select {
		case <-l.done:
		default:
			l.cmd.Process.Kill()
			<-l.done
		}
	})
	return l
}

// wait waits for the load to end and decodes its report.
func (l *load) wait(t *testing.T, timeout time.Duration) loadResult {
	t.Helper()
	select {
	case <-l.done:
	case <-time.After(timeout):
		l.cmd.Process.Kill()
		<-l.done
		t.Fatalf("callsim load still running after %v\nstderr: %s", timeout, tail(l.stderr.String(), 3000))
	}
	var r loadResult
	if err := json.Unmarshal(l.stdout.Bytes(), &r); err != nil {
		t.Fatalf("callsim load: %v (json: %v)\nstdout: %s\nstderr: %s", l.err, err, l.stdout.String(), tail(l.stderr.String(), 3000))
	}
	t.Logf("callsim load: %s", strings.TrimSpace(l.stdout.String()))
	return r
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// writeKeys puts a fresh set of case keys in <dataDir>/keys (hotlined
// generates them only for SQLite; processes on PostgreSQL share theirs).
func writeKeys(t *testing.T, dataDir string) {
	t.Helper()
	dir := filepath.Join(dataDir, "keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	k, h := make([]byte, 32), make([]byte, 32)
	rand.Read(k)
	rand.Read(h)
	if err := os.WriteFile(filepath.Join(dir, cases.KeyFileName), []byte("e2e "+base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, cases.HashKeyFileName), []byte(base64.StdEncoding.EncodeToString(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// pgDatabase creates a fresh PostgreSQL database for one test (dropped at
// its end) and returns its URL. It skips without HOTLINE_TEST_PG_DSN, but
// fails under CI=true.
func pgDatabase(t *testing.T) *url.URL {
	t.Helper()
	dsn := os.Getenv("HOTLINE_TEST_PG_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("HOTLINE_TEST_PG_DSN is not set under CI=true (make test starts PostgreSQL)")
		}
		t.Skip("HOTLINE_TEST_PG_DSN not set (. scripts/test-env.sh)")
	}
	var b [6]byte
	rand.Read(b[:])
	name := "hl_e2e_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	admin, err := sqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, err := sqldb.Open(context.Background(), dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer a.Close()
		if _, err := a.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u
}

// tcpProxy stands between hotlined and PostgreSQL on loopback, so a test
// can cut the database away (listener closed, every connection reset) and
// bring it back on the same port, as a PostgreSQL restart looks to a
// client, without stopping the PostgreSQL other tests share.
type tcpProxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	if err := p.up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) up() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[s] = true, true
			p.mu.Unlock()
			for _, pair := range [][2]net.Conn{{c, s}, {s, c}} {
				p.wg.Add(1)
				go func() {
					defer p.wg.Done()
					io.Copy(pair[0], pair[1])
					pair[0].Close()
					pair[1].Close()
				}()
			}
		}
	}()
	return nil
}

func (p *tcpProxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	p.wg.Wait()
}
