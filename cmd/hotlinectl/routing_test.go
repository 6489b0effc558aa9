package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/flows"
	"github.com/cq12345/hotline/flows/flowstest"
	"github.com/cq12345/hotline/ivr"
	"github.com/cq12345/hotline/routing"
)

type noPhones struct{}

func (noPhones) RingAgent(context.Context, routing.AgentRing) (routing.Leg, error) {
	return nil, routing.ErrUnreachable
}
func (noPhones) DialOut(context.Context, routing.Outbound) (routing.Leg, error) {
	return nil, routing.ErrUnreachable
}
func (noPhones) Bridge(context.Context, ivr.Call, ivr.Call) error { return nil }

func TestRoutingCommands(t *testing.T) {
	ctx := context.Background()
	env := flowstest.Env(t)
	db := flowstest.Open(t, filepath.Join(t.TempDir(), "cli.db"))
	fs, err := flows.NewStore(ctx, db, flows.LoaderFor(env).Checker())
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	store, err := routing.OpenStore(ctx, db, routing.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := routing.New(routing.Options{Store: store, Dialer: noPhones{}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	srv := httptest.NewServer(api.New(api.Config{Flows: fs, Tokens: tokens, Env: env, Routing: r, Logger: quiet}))
	t.Cleanup(srv.Close)
	admin, _, _ := tokens.Create(ctx, "alice", auth.Admin, "test")
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("s3cret-password\n"), 0o600)
	f := &cliFixture{url: srv.URL, admin: admin, dir: dir, env: map[string]string{}}

	code, out, errOut := f.adminRun(t, "agents", "add", "1001", "--name", "王芳", "--extension", "8001", "--password-file", pwFile, "--languages", "zh-CN,en")
	if code != 0 || !strings.Contains(out, "agent 1001 (王芳) added, extension 8001, logged-out") {
		t.Fatalf("add: %d %q %q", code, out, errOut)
	}
	f.env["HOTLINE_AGENT_PASSWORD"] = "another-password"
	if code, _, errOut := f.adminRun(t, "agents", "add", "1002", "--name", "赵", "--extension", "8002", "--state", "paused", "--reason", "training"); code != 0 {
		t.Fatalf("add paused: %s", errOut)
	}
	if code, _, errOut := f.adminRun(t, "agents", "add", "1003", "--name", "x", "--extension", "8001"); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("duplicate extension: %d %q", code, errOut)
	}
	if code, out, _ := f.adminRun(t, "agents", "state", "1001", "available"); code != 0 || out != "agent 1001: available\n" {
		t.Fatalf("state: %q", out)
	}
	if code, _, errOut := f.adminRun(t, "agents", "state", "1001", "paused"); code == 0 || !strings.Contains(errOut, "reason") {
		t.Fatalf("pause without reason: %q", errOut)
	}
	code, out, _ = f.adminRun(t, "agents", "list")
	if code != 0 || !strings.Contains(out, "1001") || !strings.Contains(out, "available") || !strings.Contains(out, "paused (training)") || !strings.Contains(out, "zh-CN,en") {
		t.Fatalf("list: %s", out)
	}
	code, out, _ = f.adminRun(t, "--json", "agents", "list")
	var al struct{ Agents []routing.AgentView }
	if code != 0 || json.Unmarshal([]byte(out), &al) != nil || len(al.Agents) != 2 || al.Agents[1].PauseReason != "training" || strings.Contains(out, "password") {
		t.Fatalf("json list: %s", out)
	}

	code, out, _ = f.adminRun(t, "queues", "list")
	if code != 0 || !strings.Contains(out, "general") || !strings.Contains(out, "longest-idle") || !strings.Contains(out, "paused:training=1") {
		t.Fatalf("queues list: %s", out)
	}
	code, out, _ = f.adminRun(t, "queues", "show", "general")
	if code != 0 || !strings.Contains(out, "queue general: strategy longest-idle") || !strings.Contains(out, "pause after 2 misses") || !strings.Contains(out, "available=1") {
		t.Fatalf("queues show: %s", out)
	}
	if code, _, errOut := f.adminRun(t, "queues", "show", "nope"); code == 0 || !strings.Contains(errOut, "no such queue") {
		t.Fatalf("unknown queue: %q", errOut)
	}
	code, out, _ = f.adminRun(t, "destinations", "list")
	if code != 0 || !strings.Contains(out, "02363862437") || !strings.Contains(out, "四川12345热线") || !strings.Contains(out, "edu-bureau") {
		t.Fatalf("destinations: %s", out)
	}
	code, out, _ = f.adminRun(t, "--json", "destinations", "list")
	var dl struct{ Destinations []routing.DestinationStatus }
	if code != 0 || json.Unmarshal([]byte(out), &dl) != nil || len(dl.Destinations) != 4 || dl.Destinations[0].PassCaller {
		t.Fatalf("json destinations: %s", out)
	}
	if code, out, _ := f.adminRun(t, "callbacks", "list"); code != 0 || !strings.HasPrefix(out, "ID") {
		t.Fatalf("callbacks: %q", out)
	}
	if code, out, _ := f.adminRun(t, "agents", "remove", "1002"); code != 0 || out != "agent 1002 removed\n" {
		t.Fatalf("remove: %q", out)
	}
}
