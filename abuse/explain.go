package abuse

import (
	"fmt"
	"strings"
	"time"

	"github.com/cq12345/hotline/cases"
)

var measureZH = map[Measure]string{None: "无", Warning: "警示（来电时播放第二十六条提示，通话继续）",
	Restricted: "限制（转值班主管，限定通话时长）", Blocked: "暂停呼入（播放告知后挂断）"}

var measureEN = map[Measure]string{None: "none", Warning: "warning (the caller hears the article-26 rules, the call goes on)",
	Restricted: "restriction (calls go to a supervisor, with a time limit)", Blocked: "temporary block (a notice, then the call ends)"}

var statusZH = map[string]string{StatusPending: "待主管确认（确认前按限制处理）", StatusActive: "生效中", StatusLifted: "已解除",
	StatusSuperseded: "已被后续决定取代", StatusExpired: "已到期"}

var kindZH = map[string]string{KindHarassment: "骚扰", KindInsult: "辱骂", KindThreat: "威胁", KindWarned: "劝阻"}

func window(d time.Duration, zh bool) string {
	switch {
	case d%(24*time.Hour) == 0:
		if zh {
			return fmt.Sprintf("%d天", d/(24*time.Hour))
		}
		if d == 24*time.Hour {
			return "24 hours"
		}
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0:
		if zh {
			return fmt.Sprintf("%d小时", d/time.Hour)
		}
		if d == time.Hour {
			return "one hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	if zh {
		return fmt.Sprintf("%d分钟", d/time.Minute)
	}
	return fmt.Sprintf("%d minutes", d/time.Minute)
}

func local(t time.Time) string { return t.In(cases.Shanghai()).Format("2006-01-02 15:04") }

// Explain says in words a supervisor understands why a decision was taken
// and what it does: lang "zh-CN" or "en".
func Explain(d *Decision, lang string, p *Policy) string {
	var b strings.Builder
	zh := lang == "zh-CN"
	w := window(d.Window.D(), zh)
	if zh {
		fmt.Fprintf(&b, "来电号码 %s 于 %s 被采取措施：%s。\n", d.Caller, local(d.Created), measureZH[d.Measure])
		fmt.Fprintf(&b, "状态：%s；到期时间 %s。\n", statusZH[d.Status], local(d.Expires))
		switch d.Signal {
		case SignalCalls:
			fmt.Fprintf(&b, "原因：在%s内拨打了 %d 次（规则 %s：%s内达到 %d 次即触发）。跟进已有工单的来电、掉线后%s内的回拨以及合作热线号码都不计入。\n",
				w, d.Count, d.Rule, w, d.AtLeast, window(p.Exempt.RedialWithin.D(), true))
		case SignalLongCalls:
			fmt.Fprintf(&b, "原因：在%s内有 %d 次长时间占线（与坐席通话超过%s，或在语音导航中超过%s无任何按键；规则 %s，达到 %d 次即触发）。\n",
				w, d.Count, window(p.LongCall.AgentTalk.D(), true), window(p.LongCall.IVRIdle.D(), true), d.Rule, d.AtLeast)
		case SignalFlags:
			fmt.Fprintf(&b, "原因：在%s内，坐席标记了 %d 次骚扰、辱骂或威胁（规则 %s，达到 %d 次即触发）", w, d.Count, d.Rule, d.AtLeast)
			if !d.Warned.IsZero() {
				fmt.Fprintf(&b, "，且坐席已于 %s 进行劝阻", local(d.Warned))
			}
			b.WriteString("。\n")
			for _, f := range d.Flags {
				fmt.Fprintf(&b, "  - %s %s（坐席 %s）%s\n", local(f.At), kindZH[f.Kind], f.Agent, f.Note)
			}
		}
		why := d.WhyZH
		if why == "" {
			why = d.Why
		}
		fmt.Fprintf(&b, "规则说明：%s\n", why)
		if d.Previous > None {
			fmt.Fprintf(&b, "此前该号码已于 %s 被采取“%s”，因此本次措施升级一级。\n", local(d.PreviousAt), measureZH[d.Previous])
		}
		if len(d.CallTimes) > 0 {
			b.WriteString("计入的来电时间：")
			for i, t := range d.CallTimes {
				if i > 0 {
					b.WriteString("、")
				}
				b.WriteString(t.In(cases.Shanghai()).Format("01-02 15:04"))
			}
			b.WriteString("。\n")
		}
		for _, r := range d.Reviews {
			fmt.Fprintf(&b, "复核：%s %s（%s）%s，理由：%s\n", local(r.At), r.Account, r.Role, map[string]string{ActionConfirm: "确认", ActionShorten: "缩短至 " + local(r.Expires), ActionLift: "解除"}[r.Action], r.Reason)
		}
		b.WriteString("紧急情况（110、119、120）的告知不受任何措施影响。如需移交公安机关，须由主管导出证据包并由人决定，系统不会自动发送。")
		return b.String()
	}
	fmt.Fprintf(&b, "Caller %s got a %s on %s.\n", d.Caller, measureEN[d.Measure], local(d.Created))
	fmt.Fprintf(&b, "Status: %s; ends %s (Beijing time).\n", d.Status, local(d.Expires))
	switch d.Signal {
	case SignalCalls:
		fmt.Fprintf(&b, "Why: %d calls within %s (rule %s: %d or more within %s). Follow-ups on an open case, call-backs within %s of a cut-off call and partner hotlines are never counted.\n",
			d.Count, w, d.Rule, d.AtLeast, w, window(p.Exempt.RedialWithin.D(), false))
	case SignalLongCalls:
		fmt.Fprintf(&b, "Why: %d calls within %s held the line (over %s with an agent, or over %s in the IVR without a key) (rule %s: %d or more).\n",
			d.Count, w, window(p.LongCall.AgentTalk.D(), false), window(p.LongCall.IVRIdle.D(), false), d.Rule, d.AtLeast)
	case SignalFlags:
		fmt.Fprintf(&b, "Why: agents flagged harassment, insults or threats %d times within %s (rule %s: %d or more)", d.Count, w, d.Rule, d.AtLeast)
		if !d.Warned.IsZero() {
			fmt.Fprintf(&b, ", after an agent dissuaded the caller on %s", local(d.Warned))
		}
		b.WriteString(".\n")
		for _, f := range d.Flags {
			fmt.Fprintf(&b, "  - %s %s (agent %s) %s\n", local(f.At), f.Kind, f.Agent, f.Note)
		}
	}
	fmt.Fprintf(&b, "The rule says: %s\n", d.Why)
	if d.Previous > None {
		fmt.Fprintf(&b, "The caller already had a %s on %s, so this measure is one step up.\n", map[Measure]string{Warning: "warning", Restricted: "restriction", Blocked: "block"}[d.Previous], local(d.PreviousAt))
	}
	if len(d.CallTimes) > 0 {
		b.WriteString("Calls counted: ")
		for i, t := range d.CallTimes {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(t.In(cases.Shanghai()).Format("01-02 15:04"))
		}
		b.WriteString(".\n")
	}
	for _, r := range d.Reviews {
		fmt.Fprintf(&b, "Review: %s %s (%s) %s: %s\n", local(r.At), r.Account, r.Role, r.Action, r.Reason)
	}
	b.WriteString("No measure ever keeps a caller from hearing that emergencies go to 110, 119 or 120. A police referral needs a person: a supervisor exports the evidence pack; nothing is sent automatically.")
	return b.String()
}
