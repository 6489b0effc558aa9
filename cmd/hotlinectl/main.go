// Command hotlinectl is the admin CLI of hotline. It talks to hotlined's HTTP
// API:
//
//	hotlinectl [--server URL] [--token T] [--json] flows list|get|put|validate|publish|rollback|diff|history|simulate
//	hotlinectl tokens list|create|revoke
//	hotlinectl accounts list|add|disable|password; hotlinectl login --user U
//	hotlinectl cases list|show|note|status|assign|history; hotlinectl audit
//	hotlinectl report monthly --month 2026-11 --format html|csv|json
//
// The token comes from --token, else $HOTLINE_TOKEN, else the file
// ./var/admin.token (written by hotlined on first start); --server defaults
// to $HOTLINE_SERVER, else http://127.0.0.1:8080. Output is for people; --json
// prints JSON for scripts. Further command groups (cases, agents, abuse,
// report) are fields of CLI beside Flows.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/cq12345/hotline/api/client"
)

// CLI is the command line: global flags and the command groups.
type CLI struct {
	Server    string `help:"hotlined's HTTP API (else $HOTLINE_SERVER, else http://127.0.0.1:8080)." placeholder:"URL"`
	Token     string `help:"API token (else $HOTLINE_TOKEN, else the file --token-file)." placeholder:"T"`
	TokenFile string `name:"token-file" help:"Token file read when no token is given." default:"./var/admin.token" type:"path"`
	JSON      bool   `name:"json" help:"Print JSON (for scripts)."`

	Flows  FlowsCmd  `cmd:"" help:"IVR flows: versions, validation, publishing, simulation."`
	Tokens TokensCmd `cmd:"" help:"API tokens (admin)."`

	Accounts AccountsCmd `cmd:"" help:"Accounts with roles and passwords (admin)."`
	Login    LoginCmd    `cmd:"" help:"Log in with an account's password; prints a new token."`
	Cases    CasesCmd    `cmd:"" help:"Cases (工单): list, search, show, notes, status, history."`
	Audit    AuditCmd    `cmd:"" help:"The audit trail: who read which full number or case, and why (admin, auditor)."`
	Report   ReportCmd   `cmd:"" help:"Reports: the monthly evaluation."`
	Abuse    AbuseCmd    `cmd:"" help:"Article 26: abusive callers' decisions (queue, show, confirm, shorten, lift, evidence), agent flags, policy."`

	Agents       AgentsCmd       `cmd:"" help:"Agents: list, add, remove, state (log in, pause with a reason, log out)."`
	Queues       QueuesCmd       `cmd:"" help:"Agent queues and their live figures."`
	Destinations DestinationsCmd `cmd:"" help:"Configured transfer destinations (12315, 12333, ...) and their figures."`
	Callbacks    CallbacksCmd    `cmd:"" help:"Callback tasks (回拨): list, take."`
	Calls        CallsCmd        `cmd:"" help:"Calls in progress: transfer a caller talking with an agent to a configured destination."`
}

// Globals is what every command's Run gets.
type Globals struct {
	cli    *CLI
	ctx    context.Context
	out    io.Writer
	errw   io.Writer
	getenv func(string) string
}

// Client returns an API client with the resolved server and token.
func (g *Globals) Client() (*client.Client, error) {
	server := g.cli.Server
	if server == "" {
		server = g.getenv("HOTLINE_SERVER")
	}
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	token := g.cli.Token
	if token == "" {
		token = g.getenv("HOTLINE_TOKEN")
	}
	if token == "" {
		b, err := os.ReadFile(g.cli.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("no token: give --token or $HOTLINE_TOKEN, or run where %s is readable (%v)", g.cli.TokenFile, errors.Unwrap(err))
		}
		token = strings.TrimSpace(string(b))
	}
	return client.New(server, token), nil
}

// exitError carries an exit status without a message of its own (the
// command already printed what went wrong).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (code int) {
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("hotlinectl"),
		kong.Description("Admin CLI of the hotline IVR server (talks to hotlined's HTTP API)."),
		kong.Writers(stdout, stderr),
		// --help ends the program through Exit; here it unwinds to run.
		kong.Exit(func(c int) { panic(exitError(c)) }),
	)
	if err != nil {
		fmt.Fprintln(stderr, "hotlinectl:", err)
		return 2
	}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(exitError)
			if !ok {
				panic(r)
			}
			code = int(e)
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "hotlinectl:", err)
		if kctx != nil {
			kctx.PrintUsage(true)
		}
		return 2
	}
	g := &Globals{cli: &cli, ctx: ctx, out: stdout, errw: stderr, getenv: getenv}
	if err := kctx.Run(g); err != nil {
		var e exitError
		if errors.As(err, &e) {
			return int(e)
		}
		fmt.Fprintln(stderr, "hotlinectl:", err)
		return 1
	}
	return 0
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
