package routing

// Destination is a place outside the 12345 agent queues that a call can be
// sent to: a specialised line, a bureau's own line, a partner hotline. Flows
// name destinations by id only, never by number (toll-fraud protection): a
// call can only ever go to a configured destination.
type Destination struct {
	ID    string            `yaml:"id" json:"id"`
	Names map[string]string `yaml:"names" json:"names"` // language -> name
	// Number is the number dialled on the trunk.
	Number string `yaml:"number" json:"number"`
	// Trunk is the SIP URI the call is sent through (empty until configured).
	Trunk string `yaml:"trunk,omitempty" json:"trunk,omitempty"`
	// Calendar names the calendar the line keeps ("" = always open).
	Calendar string `yaml:"calendar,omitempty" json:"calendar,omitempty"`
	// PassCaller says whether the caller's number is passed on (privacy:
	// off by default; the line sees the hotline's number).
	PassCaller bool `yaml:"pass_caller" json:"pass_caller"`
	// MaxCalls caps concurrent calls to the line (0 = no cap).
	MaxCalls int `yaml:"max_calls,omitempty" json:"max_calls,omitempty"`
	// Fallback is where the flow goes when the line fails (a queue id).
	Fallback string `yaml:"fallback,omitempty" json:"fallback,omitempty"`
}

// DefaultDestinations are the real lines of the Chongqing 12345 hotline
// (DESIGN.md, "Facts from the hotline's own documents"). Trunks are
// site-specific and left empty.
func DefaultDestinations() []Destination {
	return []Destination{
		{ID: "12315", Number: "12315", Fallback: "general",
			Names: map[string]string{"zh-CN": "12315消费者投诉举报热线", "en": "12315 consumer complaints"}},
		{ID: "12333", Number: "12333", Fallback: "general",
			Names: map[string]string{"zh-CN": "12333人力资源和社会保障热线", "en": "12333 human resources and social security"}},
		{ID: "edu-bureau", Number: "02363862437", Calendar: "edu-bureau", Fallback: "complaints",
			Names: map[string]string{"zh-CN": "市教育局投诉电话", "en": "Education bureau complaints line"}},
		{ID: "sichuan-12345", Number: "12345", Fallback: "general",
			Names: map[string]string{"zh-CN": "四川12345热线（川渝互转）", "en": "Sichuan 12345 hotline (Sichuan–Chongqing transfer)"}},
	}
}

// DefaultQueues are the 12345 agent queues the default flow uses, and
// "supervisor", where callers under the article-26 restriction go.
func DefaultQueues() []string {
	return []string{"general", "complaints", "suggestions", "followup", "supervisor"}
}
