// Package abuse applies article 26 of the Chongqing 12345 hotline's rules:
// callers who maliciously call again and again, hold the line, or — after
// staff dissuaded them (劝阻) — harass, insult or threaten staff, are warned,
// restricted and, when a supervisor confirms, temporarily blocked; a person
// decides any police referral, with the evidence pack this package builds.
//
// Signals, per caller (the keyed caller hash, never the number):
//   - calls that count, over sliding windows (1 h, 24 h, 7 d by default);
//     follow-ups (the caller keyed a case number, or has an open case that
//     someone took up), redials soon after a cut-off call and allow-listed
//     partner hotlines never count;
//   - long calls (an agent held past a threshold, or the IVR held without a
//     key);
//   - agent flags (harassment, insult, threat, with a note) and the
//     dissuasion itself ("warned"), through the API, hotlinectl, or the SIP
//     plane's *7 (Service.Flag).
//
// Rules in the policy file (policy.default.yaml, embedded and documented)
// turn signals into measures on a ladder: a caller goes at most one step up
// from their last measure (warning -> restricted -> blocked); a decision
// spends the signals it was based on, so each step needs fresh behaviour
// after the previous measure; every measure expires; a supervisor confirms,
// shortens or lifts (a lift clears the ladder and the signals).
//
// Service.Check decides on an arriving call from memory (a sharded map of
// compact per-caller rings, about 100 bytes per caller); only a call about
// to start a new measure asks the case store whether the caller has an open
// case. Every change is an event in an append-only log (component "abuse",
// SQLite or PostgreSQL), written behind in batches; the state is rebuilt
// from it at start and other processes' events are applied as they appear.
// Decisions carry their explanation: rule, counts and window, the calls and
// flags counted, the previous measure, the reviews (Explain puts it in
// words, zh-CN and en).
package abuse
