package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/cq12345/hotline/abuse"
)

// AbuseCmd groups the article-26 commands: the review queue, explanations,
// reviews, the evidence pack, agent flags and the policy file.
type AbuseCmd struct {
	List     AbuseListCmd     `cmd:"" help:"List decisions (--queue: those waiting for a supervisor)."`
	Show     AbuseShowCmd     `cmd:"" help:"Explain a decision in words (zh-CN and en); --reason also shows calls and flag notes (audited)."`
	Confirm  AbuseConfirmCmd  `cmd:"" help:"Confirm a decision (a block takes effect only once confirmed)."`
	Shorten  AbuseShortenCmd  `cmd:"" help:"Shorten a decision."`
	Lift     AbuseLiftCmd     `cmd:"" help:"Lift a decision: the caller's next call is ordinary."`
	Evidence AbuseEvidenceCmd `cmd:"" help:"Export the evidence pack (JSON or CSV) for a police referral; never sent anywhere by hotline."`
	Flag     AbuseFlagCmd     `cmd:"" help:"Flag a call (harassment, insult, threat) or record a dissuasion (warned)."`
	Policy   AbusePolicyCmd   `cmd:"" help:"The policy file."`
}

// AbuseListCmd: abuse list.
type AbuseListCmd struct {
	Queue  bool   `help:"Only decisions waiting for a supervisor (pending, or in force and never reviewed)."`
	Status string `help:"pending, active, lifted, superseded, expired." enum:",pending,active,lifted,superseded,expired" default:""`
	Caller string `help:"One caller's decisions (the number is sent in the request body)."`
	Limit  int    `default:"100"`
}

func (c *AbuseListCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	var l []*abuse.Decision
	if c.Caller != "" {
		l, err = cl.AbuseSearch(g.ctx, c.Caller, c.Status, c.Limit)
	} else {
		l, err = cl.AbuseDecisions(g.ctx, c.Queue, c.Status, c.Limit)
	}
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(map[string]any{"decisions": l})
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCALLER\tMEASURE\tSTATUS\tRULE\tCOUNT\tTAKEN (UTC+8)\tENDS (UTC+8)")
	for _, d := range l {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%s\t%s\t%s\n", d.ID, d.Caller, d.Measure, d.Status, d.Rule, d.Count, d.Window.D(), ts(d.Created), ts(d.Expires))
	}
	return tw.Flush()
}

// AbuseShowCmd: abuse show ID.
type AbuseShowCmd struct {
	ID     string `arg:"" help:"Decision id (from abuse list)."`
	Lang   string `default:"both" enum:"zh-CN,en,both" help:"Language of the explanation."`
	Reason string `help:"Why you read the caller's calls and the flag notes (goes to the audit trail); without it only the decision is shown."`
}

func (c *AbuseShowCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	v, err := cl.AbuseShow(g.ctx, c.ID, c.Reason)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(v)
	}
	if c.Lang != "en" {
		fmt.Fprintln(g.out, v.ExplanationZH)
	}
	if c.Lang == "both" {
		fmt.Fprintln(g.out)
	}
	if c.Lang != "zh-CN" {
		fmt.Fprintln(g.out, v.ExplanationEN)
	}
	if ev := v.Evidence; ev != nil {
		fmt.Fprintf(g.out, "\nCalls since %s:\n", ts(ev.From))
		tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ARRIVED (UTC+8)\tDURATION\tOUTCOME\tCOUNTED\tMEASURE\tCALL")
		for _, r := range ev.Calls {
			counted := "yes"
			if !r.Counted {
				counted = "no (" + r.Exempt + ")"
			}
			fmt.Fprintf(tw, "%s\t%.0fs\t%s\t%s\t%s\t%s\n", ts(r.Arrived), r.Duration, r.Outcome, counted, r.Measure, r.CallID)
		}
		tw.Flush()
		for _, f := range append(ev.Warned, ev.Flags...) {
			fmt.Fprintf(g.out, "%s %s by %s: %s\n", ts(f.At), f.Kind, f.Agent, f.Note)
		}
	}
	return nil
}

// AbuseConfirmCmd: abuse confirm ID --reason R.
type AbuseConfirmCmd struct {
	ID     string `arg:"" help:"Decision id."`
	Reason string `required:"" help:"Why (goes to the audit trail)."`
}

func (c *AbuseConfirmCmd) Run(g *Globals) error {
	return review(g, c.ID, abuse.ReviewRequest{Action: abuse.ActionConfirm, Reason: c.Reason})
}

// AbuseLiftCmd: abuse lift ID --reason R.
type AbuseLiftCmd struct {
	ID     string `arg:"" help:"Decision id."`
	Reason string `required:"" help:"Why (goes to the audit trail)."`
}

func (c *AbuseLiftCmd) Run(g *Globals) error {
	return review(g, c.ID, abuse.ReviewRequest{Action: abuse.ActionLift, Reason: c.Reason})
}

// AbuseShortenCmd: abuse shorten ID --for D --reason R.
type AbuseShortenCmd struct {
	ID     string        `arg:"" help:"Decision id."`
	For    time.Duration `required:"" help:"New remaining time from now, e.g. 2h."`
	Reason string        `required:"" help:"Why (goes to the audit trail)."`
}

func (c *AbuseShortenCmd) Run(g *Globals) error {
	return review(g, c.ID, abuse.ReviewRequest{Action: abuse.ActionShorten, Duration: c.For, Reason: c.Reason})
}

func review(g *Globals, id string, r abuse.ReviewRequest) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	d, err := cl.AbuseReview(g.ctx, id, r)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(d)
	}
	fmt.Fprintf(g.out, "decision %s (%s, %s): %s; ends %s\n", d.ID, d.Measure, d.Caller, d.Status, ts(d.Expires))
	return nil
}

// AbuseEvidenceCmd: abuse evidence ID --reason R.
type AbuseEvidenceCmd struct {
	ID     string `arg:"" help:"Decision id."`
	Reason string `required:"" help:"Why the pack is exported, e.g. the referral (goes to the audit trail)."`
	Format string `default:"json" enum:"json,csv"`
	Out    string `short:"o" type:"path" help:"Write to this file (default: stdout)."`
}

func (c *AbuseEvidenceCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	b, err := cl.AbuseEvidence(g.ctx, c.ID, c.Format, c.Reason)
	if err != nil {
		return g.explain(err)
	}
	if c.Out == "" {
		_, err = g.out.Write(b)
		return err
	}
	if err := os.WriteFile(c.Out, b, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(g.errw, "evidence pack written to %s (it holds personal data: hand it over in person)\n", c.Out)
	return nil
}

// AbuseFlagCmd: abuse flag CALL KIND --note N.
type AbuseFlagCmd struct {
	Call string `arg:"" help:"Call id."`
	Kind string `arg:"" enum:"harassment,insult,threat,warned" help:"harassment, insult, threat, or warned (you dissuaded the caller, 劝阻)."`
	Note string `help:"What happened."`
}

func (c *AbuseFlagCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	r, err := cl.AbuseFlag(g.ctx, c.Call, c.Kind, c.Note)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(r)
	}
	if r.Decision != nil {
		fmt.Fprintf(g.out, "recorded; decision %s: %s (%s)\n", r.Decision.ID, r.Decision.Measure, r.Decision.Status)
		return nil
	}
	fmt.Fprintln(g.out, "recorded")
	return nil
}

// AbusePolicyCmd groups the policy commands.
type AbusePolicyCmd struct {
	Validate AbusePolicyValidateCmd `cmd:"" help:"Check a policy file and list every problem (offline)."`
	Default  AbusePolicyDefaultCmd  `cmd:"" help:"Print the embedded default policy, with its reasoning."`
}

// AbusePolicyValidateCmd: abuse policy validate FILE.
type AbusePolicyValidateCmd struct {
	File string `arg:"" type:"existingfile" help:"Policy YAML file."`
}

func (c *AbusePolicyValidateCmd) Run(g *Globals) error {
	b, err := os.ReadFile(c.File)
	if err != nil {
		return err
	}
	_, err = abuse.ParsePolicy(b)
	var inv *abuse.InvalidError
	if err != nil && !errors.As(err, &inv) {
		return err
	}
	if g.cli.JSON {
		ps := []abuse.Problem{}
		if inv != nil {
			ps = inv.Problems
		}
		g.printJSON(map[string]any{"valid": inv == nil, "problems": ps})
	} else if inv != nil {
		fmt.Fprintf(g.errw, "%s: %d problem(s)\n", c.File, len(inv.Problems))
		for _, p := range inv.Problems {
			fmt.Fprintln(g.errw, "  "+p.String())
		}
	} else {
		fmt.Fprintf(g.out, "%s: valid\n", c.File)
	}
	if inv != nil {
		return exitError(1)
	}
	return nil
}

// AbusePolicyDefaultCmd: abuse policy default.
type AbusePolicyDefaultCmd struct{}

func (c *AbusePolicyDefaultCmd) Run(g *Globals) error {
	_, err := g.out.Write(abuse.DefaultPolicyYAML())
	return err
}
