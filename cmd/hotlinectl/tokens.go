package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/cq12345/hotline/api/auth"
)

// TokensCmd groups the API token commands (admin).
type TokensCmd struct {
	List   TokensListCmd   `cmd:"" help:"List API tokens (never their secrets)."`
	Create TokensCreateCmd `cmd:"" help:"Create an API token; its secret is printed once."`
	Revoke TokensRevokeCmd `cmd:"" help:"Revoke an API token."`
}

// TokensListCmd: tokens list.
type TokensListCmd struct{}

func (c *TokensListCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	l, err := cl.Tokens(g.ctx)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(map[string]any{"tokens": l})
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED (UTC+8)\tBY\tREVOKED")
	for _, t := range l {
		revoked := "-"
		if t.RevokedAt != nil {
			revoked = ts(*t.RevokedAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, ts(t.CreatedAt), t.CreatedBy, revoked)
	}
	return tw.Flush()
}

// TokensCreateCmd: tokens create NAME --role ROLE.
type TokensCreateCmd struct {
	Name string `arg:"" help:"Who holds the token (shown as the actor in histories)."`
	Role string `help:"Role of a new account (admin, supervisor, agent, auditor); an existing account's token takes the account's role."`
}

func (c *TokensCreateCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	t, err := cl.CreateToken(g.ctx, c.Name, auth.Role(c.Role))
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(t)
	}
	fmt.Fprintf(g.errw, "token %s for %s (%s); the secret below is shown only now:\n", t.ID, t.Name, t.Role)
	fmt.Fprintln(g.out, t.Secret)
	return nil
}

// TokensRevokeCmd: tokens revoke ID.
type TokensRevokeCmd struct {
	ID string `arg:"" help:"Token id (from tokens list)."`
}

func (c *TokensRevokeCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	if err := cl.RevokeToken(g.ctx, c.ID); err != nil {
		return g.explain(err)
	}
	fmt.Fprintf(g.out, "token %s revoked\n", c.ID)
	return nil
}
