package cases_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cq12345/hotline/cases"
)

// tcpProxy stands between the store and PostgreSQL on loopback, so a test
// can cut the database away (listener closed, every connection reset) and
// bring it back on the same port, as a PostgreSQL restart looks to a client.
type tcpProxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *tcpProxy {
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

// TestDurableRealOutage cuts the real database away under a stream of
// calls — PostgreSQL behind a proxy that goes down, SQLite locked by
// another writer — and checks that every call goes on, and that every case
// and event is in the store, in order, once the database is back.
func TestDurableRealOutage(t *testing.T) {
	for name, mk := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dsn := mk(t)
			var cut, restore func()
			if name == "postgres" {
				u, _ := url.Parse(dsn)
				px := startProxy(t, u.Host)
				u.Host = px.addr
				dsn = u.String()
				cut, restore = px.down, func() {
					if err := px.up(); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				var lock *sql.Tx
				var lockDB *sql.DB
				cut = func() {
					var err error
					lockDB, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=busy_timeout(10000)&_txlock=immediate")
					if err != nil {
						t.Fatal(err)
					}
					if lock, err = lockDB.BeginTx(ctx, nil); err != nil {
						t.Fatal(err)
					}
					// Hold the write lock: every store write now waits.
					if _, err := lock.ExecContext(ctx, `INSERT INTO case_counters (day, last) VALUES ('lock', 0)`); err != nil {
						t.Fatal(err)
					}
				}
				restore = func() { lock.Rollback(); lockDB.Close() }
			}
			p := testProtector(t)
			s, _ := openSQL(t, dsn, p, cases.DuePolicy{})
			d := newDurable(t, s, p, filepath.Join(t.TempDir(), "journal"), 8)
			defer d.Close()

			t0 := time.Now()
			var told []*cases.Case
			for i := 0; i < 5; i++ {
				told = append(told, call(t, d, fmt.Sprintf("pre-%d", i), t0.Add(time.Duration(i)*time.Second)))
			}
			cut()
			for i := 0; i < 20; i++ {
				told = append(told, call(t, d, fmt.Sprintf("out-%02d", i), t0.Add(time.Minute+time.Duration(i)*time.Second)))
			}
			if !d.Journaling() {
				t.Fatal("database cut away, yet not journaling")
			}
			restore()
			for i := 0; i < 5; i++ { // calls go on while the journal is replayed
				told = append(told, call(t, d, fmt.Sprintf("post-%d", i), t0.Add(2*time.Minute+time.Duration(i)*time.Second)))
			}
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := d.Drain(dctx); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, c := range told {
				got := checkCall(t, s, c)
				if seen[got.Number] {
					t.Errorf("number %s twice", got.Number)
				}
				seen[got.Number] = true
			}
			if list, _ := s.List(ctx, cases.Filter{}); len(list) != len(told) {
				t.Errorf("%d cases stored, want %d", len(list), len(told))
			}
			j, r, dr := d.Stats()
			if j == 0 || r != j || dr != 0 {
				t.Errorf("journaled %d, replayed %d, dropped %d", j, r, dr)
			}
			t.Logf("%s: %d writes journaled during the outage, all replayed", name, j)
		})
	}
}
