package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cq12345/hotline/routing"
)

// AgentsCmd groups the agent commands.
type AgentsCmd struct {
	List   AgentsListCmd   `cmd:"" help:"List agents and their states."`
	Add    AgentsAddCmd    `cmd:"" help:"Create an agent (admin); the SIP password is stored only as a digest HA1."`
	Remove AgentsRemoveCmd `cmd:"" help:"Delete an agent who is not on a call (admin)."`
	State  AgentsStateCmd  `cmd:"" help:"Log an agent in (available), out (logged-out), or pause them with a reason."`
	Events AgentsEventsCmd `cmd:"" help:"Follow an agent's call events (case of the call ringing, answer, end) until interrupted."`
}

// AgentsEventsCmd: agents events ID.
type AgentsEventsCmd struct {
	ID string `arg:"" help:"The agent's number (工号)."`
}

func (c *AgentsEventsCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	events, err := cl.AgentEvents(g.ctx, c.ID)
	if err != nil {
		return g.explain(err)
	}
	for e := range events {
		if g.cli.JSON {
			if err := g.printJSON(e); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(g.out, "%s %-9s case %s queue %s call %s caller %s\n", ts(e.At), e.Kind, dash(e.Case), dash(e.Queue), dash(e.Call), dash(e.Caller))
	}
	return nil
}

// AgentsListCmd: agents list.
type AgentsListCmd struct{}

func (c *AgentsListCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	l, err := cl.Agents(g.ctx)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(map[string]any{"agents": l})
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "工号\tNAME\tEXT\tSTATE\tCALLS\tMISSED\tSKILLS\tCASE")
	for _, a := range l {
		state := string(a.State)
		if a.State == routing.Paused {
			state += " (" + a.PauseReason + ")"
		}
		if a.State == routing.WrapUp {
			state += fmt.Sprintf(" (until %s)", a.WrapUntil.Format("15:04:05"))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", a.ID, a.Name, a.Extension, state, a.Calls, a.Missed, skills(a.Skills), dash(a.Case))
	}
	return tw.Flush()
}

func skills(s routing.Skills) string {
	var parts []string
	for _, l := range [][]string{s.Appeals, s.Domains, s.Languages} {
		parts = append(parts, l...)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// AgentsAddCmd: agents add ID --name --extension [--password-file|$HOTLINE_AGENT_PASSWORD].
type AgentsAddCmd struct {
	ID           string   `arg:"" help:"The agent's number (工号, digits); callers hear it."`
	Name         string   `required:"" help:"The agent's name."`
	Extension    string   `required:"" help:"SIP user name of the agent's phone (digits)."`
	PasswordFile string   `name:"password-file" type:"path" help:"File holding the SIP password (else $HOTLINE_AGENT_PASSWORD); never given on the command line."`
	Appeals      []string `help:"Appeal types the agent handles (consultation, complaint, suggestion, ...)."`
	Domains      []string `help:"Domains the agent handles (education, market-supervision, ...)."`
	Languages    []string `help:"Languages the agent speaks (default zh-CN)."`
	State        string   `default:"logged-out" enum:"logged-out,available,paused" help:"State at creation (paused needs --reason; a paused agent is never rung)."`
	Reason       string   `help:"Pause reason with --state paused."`
}

func (c *AgentsAddCmd) Run(g *Globals) error {
	pw := g.getenv("HOTLINE_AGENT_PASSWORD")
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return err
		}
		pw = strings.TrimSpace(string(b))
	}
	if pw == "" {
		return fmt.Errorf("no SIP password: give --password-file or $HOTLINE_AGENT_PASSWORD")
	}
	cl, err := g.Client()
	if err != nil {
		return err
	}
	a, err := cl.AddAgent(g.ctx, routing.NewAgent{ID: c.ID, Name: c.Name, Extension: c.Extension, Password: pw,
		Skills:   routing.Skills{Appeals: c.Appeals, Domains: c.Domains, Languages: c.Languages},
		Presence: routing.AgentState(c.State), PauseReason: c.Reason})
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(a)
	}
	fmt.Fprintf(g.out, "agent %s (%s) added, extension %s, %s\n", a.ID, a.Name, a.Extension, a.State)
	return nil
}

// AgentsRemoveCmd: agents remove ID.
type AgentsRemoveCmd struct {
	ID string `arg:"" help:"The agent's number (工号)."`
}

func (c *AgentsRemoveCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	if err := cl.RemoveAgent(g.ctx, c.ID); err != nil {
		return g.explain(err)
	}
	fmt.Fprintf(g.out, "agent %s removed\n", c.ID)
	return nil
}

// AgentsStateCmd: agents state ID STATE [--reason R].
type AgentsStateCmd struct {
	ID     string `arg:"" help:"The agent's number (工号)."`
	State  string `arg:"" enum:"available,paused,logged-out" help:"available, paused or logged-out."`
	Reason string `help:"Why the agent pauses (required with paused): lunch, training, meeting, ..."`
}

func (c *AgentsStateCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	a, err := cl.SetAgentState(g.ctx, c.ID, routing.AgentState(c.State), c.Reason)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(a)
	}
	s := string(a.State)
	if a.Presence == routing.Paused {
		s = "paused (" + a.PauseReason + ")"
		if a.State != routing.Paused {
			s += ", now " + string(a.State)
		}
	}
	fmt.Fprintf(g.out, "agent %s: %s\n", a.ID, s)
	return nil
}

// QueuesCmd groups the queue commands.
type QueuesCmd struct {
	List QueuesListCmd `cmd:"" help:"Queues with their live figures."`
	Show QueuesShowCmd `cmd:"" help:"One queue: settings, figures, agents by state, waiting calls."`
}

// QueuesListCmd: queues list.
type QueuesListCmd struct{}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }

func secs(f float64) string {
	return (time.Duration(f * float64(time.Second))).Round(time.Second).String()
}

func (c *QueuesListCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	l, err := cl.Queues(g.ctx)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(map[string]any{"queues": l})
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tSTRATEGY\tWAITING\tLONGEST\tOFFERED\tANSWERED\t接通率\tSL15s\tSL20s\tABANDON\tAVG WAIT\tAVG HANDLE\tAGENTS")
	for _, q := range l {
		f := q.Figures
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", q.Queue.ID, q.Queue.Strategy, f.Waiting, secs(f.LongestWait),
			f.Offered, f.Answered, pct(f.ConnectionRate), pct(f.ServiceLevel15), pct(f.ServiceLevel20), pct(f.AbandonRate),
			secs(f.AvgWait), secs(f.AvgHandle), agentCounts(f.Agents))
	}
	return tw.Flush()
}

func agentCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// QueuesShowCmd: queues show ID.
type QueuesShowCmd struct {
	ID string `arg:"" help:"Queue id (general, complaints, ...)."`
}

func (c *QueuesShowCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	q, err := cl.Queue(g.ctx, c.ID)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(q)
	}
	qc, f := q.Queue, q.Figures
	fmt.Fprintf(g.out, "queue %s: strategy %s, priority %d, ring %s, wrap-up %s, max wait %s -> %s %s, pause after %d misses\n",
		qc.ID, qc.Strategy, qc.Priority, qc.RingTimeout, qc.WrapUp, qc.MaxWait, qc.Overflow, qc.OverflowTo, qc.MaxMisses)
	if sk := skills(qc.Skills); sk != "-" {
		fmt.Fprintf(g.out, "skills required: %s\n", sk)
	}
	fmt.Fprintf(g.out, "waiting %d, longest %s, estimated wait %s\n", f.Waiting, secs(f.LongestWait), secs(f.EstimatedWait))
	fmt.Fprintf(g.out, "offered %d, answered %d (接通率 %s), within 15s %s, within 20s %s, abandoned %d (%s), overflowed %d, ring-no-answer %d\n",
		f.Offered, f.Answered, pct(f.ConnectionRate), pct(f.ServiceLevel15), pct(f.ServiceLevel20), f.Abandoned, pct(f.AbandonRate), f.Overflowed, f.RingNoAnswer)
	fmt.Fprintf(g.out, "average wait %s, average handle %s\n", secs(f.AvgWait), secs(f.AvgHandle))
	fmt.Fprintf(g.out, "agents: %s\n", agentCounts(f.Agents))
	if len(q.Calls) > 0 {
		tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "POS\tCALL\tCALLER\tWAITED\tLANG\tCASE\tRINGING")
		for _, w := range q.Calls {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", w.Position, w.Call, w.Caller, secs(w.Waited), dash(w.Lang), dash(w.Case), dash(w.Ringing))
		}
		return tw.Flush()
	}
	return nil
}

// DestinationsCmd groups the destination commands.
type DestinationsCmd struct {
	List DestinationsListCmd `cmd:"" help:"Configured destinations (the only places a call may be transferred to) and their figures."`
}

// DestinationsListCmd: destinations list.
type DestinationsListCmd struct{}

func (c *DestinationsListCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	l, err := cl.Destinations(g.ctx)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(map[string]any{"destinations": l})
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tNUMBER\tTRUNK\tCALENDAR\tPASS CALLER\tMAX\tFALLBACK\tTRANSFERS\tANSWERED\tFAILURES")
	for _, d := range l {
		max := "-"
		if d.MaxCalls > 0 {
			max = fmt.Sprint(d.MaxCalls)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\t%d\t%d\t%s\n", d.ID, d.Names["zh-CN"], d.Number, dash(d.Trunk), dash(d.Calendar),
			d.PassCaller, max, dash(d.Fallback), d.Figures.Transfers, d.Figures.Answered, agentCounts(d.Figures.Failures))
	}
	return tw.Flush()
}

// CallbacksCmd groups the callback commands.
type CallbacksCmd struct {
	List CallbacksListCmd `cmd:"" help:"Callback tasks (回拨): callers who hung up while waiting (numbers masked)."`
	Take CallbacksTakeCmd `cmd:"" help:"Take a callback task: hotline rings the agent's phone, then the citizen."`
}

// CallbacksListCmd: callbacks list [--state open].
type CallbacksListCmd struct {
	State []string `help:"Only these states (open, taken, done, failed)."`
}

func (c *CallbacksListCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	l, err := cl.Callbacks(g.ctx, c.State...)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(map[string]any{"callbacks": l})
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCASE\tNUMBER\tQUEUE\tSTATE\tAGENT\tATTEMPTS\tCREATED (UTC+8)\tREASON")
	for _, cb := range l {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", cb.ID, dash(cb.Case), cb.Number, cb.Queue, cb.State, dash(cb.Agent), cb.Attempts, ts(cb.Created), dash(cb.Reason))
	}
	return tw.Flush()
}

// CallbacksTakeCmd: callbacks take ID --agent 工号.
type CallbacksTakeCmd struct {
	ID    string `arg:"" help:"Callback task id."`
	Agent string `help:"The agent's number (工号) whose phone rings first (an agent's own token may leave it out)."`
}

func (c *CallbacksTakeCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	cb, err := cl.TakeCallback(g.ctx, c.ID, c.Agent)
	if err != nil {
		return g.explain(err)
	}
	if g.cli.JSON {
		return g.printJSON(cb)
	}
	fmt.Fprintf(g.out, "callback %s taken by %s: ringing the agent, then %s\n", cb.ID, cb.Agent, cb.Number)
	return nil
}

// CallsCmd groups the commands on calls in progress.
type CallsCmd struct {
	Transfer CallsTransferCmd `cmd:"" help:"Send a caller talking with an agent or a line on to a configured destination (12315, 12333, ...)."`
}

// CallsTransferCmd: calls transfer CALL-ID DESTINATION.
type CallsTransferCmd struct {
	ID          string `arg:"" help:"The call id (from the agent's events)."`
	Destination string `arg:"" help:"A configured destination's id (hotlinectl destinations list)."`
}

func (c *CallsTransferCmd) Run(g *Globals) error {
	cl, err := g.Client()
	if err != nil {
		return err
	}
	if err := cl.TransferCall(g.ctx, c.ID, c.Destination); err != nil {
		return g.explain(err)
	}
	fmt.Fprintf(g.out, "call %s: transferring to %s\n", c.ID, c.Destination)
	return nil
}
