package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/cq12345/hotline/api"
	"github.com/cq12345/hotline/api/auth"
	"github.com/cq12345/hotline/api/client"
)

// AccountsCmd groups the account commands (admin). Every token belongs to
// an account; every access is attributable to it (article 22).
type AccountsCmd struct {
	List     AccountsListCmd     `cmd:"" help:"List accounts."`
	Add      AccountsAddCmd      `cmd:"" help:"Add an account (the password is read from $HOTLINE_PASSWORD, the terminal, or stdin)."`
	Disable  AccountsDisableCmd  `cmd:"" help:"Disable an account: its tokens stop working at once."`
	Password AccountsPasswordCmd `cmd:"" help:"Set an account's password."`
}

// AccountsListCmd: accounts list.
type AccountsListCmd struct{}

func (c *AccountsListCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	l, err := cl.Accounts(g.ctx)
	if err != nil {
		return err
	}
	if g.cli.JSON {
		return g.printJSON(api.AccountList{Accounts: l})
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tPASSWORD\tCREATED (UTC+8)\tBY\tDISABLED")
	for _, a := range l {
		disabled := "-"
		if a.DisabledAt != nil {
			disabled = ts(*a.DisabledAt) + " by " + a.DisabledBy
		}
		pw := "no"
		if a.HasPassword {
			pw = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Role, pw, ts(a.CreatedAt), a.CreatedBy, disabled)
	}
	return tw.Flush()
}

// AccountsAddCmd: accounts add NAME --role ROLE [--password].
type AccountsAddCmd struct {
	Name     string `arg:"" help:"Account name (e.g. zhang.wei)."`
	Role     string `required:"" enum:"admin,supervisor,agent,auditor" help:"admin, supervisor, agent (sees only cases routed to them) or auditor."`
	Password bool   `help:"Give the account a password (for hotlinectl login)."`
}

func (c *AccountsAddCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	req := api.AccountRequest{Name: c.Name, Role: auth.Role(c.Role)}
	if c.Password {
		if req.Password, err = readPassword(g, "password for "+c.Name+": "); err != nil {
			return err
		}
	}
	a, err := cl.AddAccount(g.ctx, req)
	if err != nil {
		return err
	}
	if g.cli.JSON {
		return g.printJSON(a)
	}
	fmt.Fprintf(g.out, "account %s (%s) added\n", a.Name, a.Role)
	return nil
}

// AccountsDisableCmd: accounts disable NAME.
type AccountsDisableCmd struct {
	Name string `arg:"" help:"Account name."`
}

func (c *AccountsDisableCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	a, err := cl.DisableAccount(g.ctx, c.Name)
	if err != nil {
		return err
	}
	if g.cli.JSON {
		return g.printJSON(a)
	}
	fmt.Fprintf(g.out, "account %s disabled; its tokens no longer work\n", a.Name)
	return nil
}

// AccountsPasswordCmd: accounts password NAME.
type AccountsPasswordCmd struct {
	Name string `arg:"" help:"Account name."`
}

func (c *AccountsPasswordCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	pw, err := readPassword(g, "new password for "+c.Name+": ")
	if err != nil {
		return err
	}
	if err := cl.SetPassword(g.ctx, c.Name, pw); err != nil {
		return err
	}
	fmt.Fprintf(g.out, "password of %s set\n", c.Name)
	return nil
}

// LoginCmd: login --user U: prints a new token of the account.
type LoginCmd struct {
	User string `required:"" help:"Account name."`
	Save string `help:"Write the token to this file (mode 0600) instead of printing it; use it with --token-file." type:"path"`
}

func (c *LoginCmd) Run(g *Globals) error {
	pw, err := readPassword(g, "password for "+c.User+": ")
	if err != nil {
		return err
	}
	cl := client.New(g.server(), "")
	t, err := cl.Login(g.ctx, c.User, pw)
	if err != nil {
		return err
	}
	if c.Save != "" {
		if err := os.WriteFile(c.Save, []byte(t.Secret+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(g.errw, "logged in as %s (%s); token %s saved to %s\n", t.Name, t.Role, t.ID, c.Save)
		return nil
	}
	if g.cli.JSON {
		return g.printJSON(t)
	}
	fmt.Fprintf(g.errw, "logged in as %s (%s); token %s, shown only now:\n", t.Name, t.Role, t.ID)
	fmt.Fprintln(g.out, t.Secret)
	return nil
}

// server is the API's base URL (--server, $HOTLINE_SERVER, default).
func (g *Globals) server() string {
	if g.cli.Server != "" {
		return g.cli.Server
	}
	if s := g.getenv("HOTLINE_SERVER"); s != "" {
		return s
	}
	return "http://127.0.0.1:8080"
}

// readPassword takes $HOTLINE_PASSWORD, else asks on the terminal without
// echo, else reads the first line of standard input.
func readPassword(g *Globals, prompt string) (string, error) {
	if pw := g.getenv("HOTLINE_PASSWORD"); pw != "" {
		return pw, nil
	}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		fmt.Fprint(g.errw, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(g.errw)
		return string(b), err
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func readAllStdin() (string, error) {
	b, err := io.ReadAll(os.Stdin)
	return string(b), err
}
