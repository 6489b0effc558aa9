// Package sip is the embedded SIP plane: a user agent server on sipgo
// (github.com/emiago/sipgo) that answers calls to the hotline, negotiates
// SDP (RFC 3264, pion/sdp), drives RTP through package media, collects DTMF
// (RFC 4733 through media, SIP INFO here) and hands each call, as an
// ivr.Call, to a Handler.
//
// Use:
//
//	srv, err := sip.New(sip.Config{Listen: "127.0.0.1:5060", Engine: eng,
//		Prompts: lib, Handler: h, Logger: log, TracerProvider: tp, MeterProvider: mp})
//	err = srv.Start(ctx)      // UDP and TCP on one port; srv.Addr() is it
//	...
//	srv.Drain(ctx, grace)     // SIGTERM: 503 to new calls, BYE after grace
//	srv.Close()
//
// Behaviour:
//   - INVITE: the Request-URI's user part (or tel: number) must be the
//     hotline in one of its forms (routing.HotlineNumber), else 404. Body
//     checks come first: a non-SDP body 415, an Accept without SDP 406, no
//     PCMA/PCMU over RTP/AVP 488, broken SDP 400. Then 100 Trying, and the
//     Handler runs on the INVITE's goroutine. Call.Answer sends 200 with the
//     answer (or, for an INVITE without SDP, our offer; the answer then comes
//     in the ACK) and waits for the ACK. When the Handler returns, the call
//     is hung up (BYE, or 480 if never answered).
//   - CANCEL before the answer: sipgo answers 200 and 487; the call ends
//     (Done closed, the Handler's context cancelled).
//   - In the dialog: BYE ends the call; re-INVITE (hold by sendonly,
//     inactive or c=0.0.0.0, unhold, refresh, new address or codec, or no
//     SDP) gets 200 and keeps the call, 488 keeps the old session; INFO with
//     application/dtmf-relay or application/dtmf feeds the digit buffer.
//   - OPTIONS 200 with Allow and Accept; known methods we do not serve 405,
//     others 501, both with Allow.
//   - No inbound RTP for the media engine's InactivityTimeout: BYE, except
//     while the far end holds the call (hold.go); after its unhold the
//     timeout counts again from the unhold.
//
// The guard (guard.go) checks every datagram and every message framed out
// of a TCP stream before sipgo sees it, because sipgo silently drops what it
// cannot parse and logs the raw bytes (caller numbers included). Broken
// requests get a stateless 400, 505 (other SIP version), 416 (URI scheme),
// 420 (Require, with Unsupported); broken responses are dropped. It also
// adds rport to UDP requests (RFC 3581, like Asterisk's force_rport) so that
// answers go back to the source port. testdata/rfc4475 holds the RFC 4475
// torture messages the tests send over UDP and TCP.
//
// Calls reaching people (issue 4): the Server is also the routing.Dialer.
//   - Registrar (registrar.go, with Config.Credentials = routing.SQLStore):
//     REGISTER with digest authentication (RFC 7616/8760: SHA-256 and MD5,
//     qop=auth, stateless HMAC nonces valid 5 min, stale=true after) against
//     the agents' stored HA1; 401 challenge, 403 wrong password or unknown
//     user or another user's address, 423 with Min-Expires below MinExpires,
//     expiry capped at MaxExpires, several contacts per extension,
//     unregister by Expires: 0 (header or contact parameter) or Contact: *.
//     Bindings are in this process's memory: with several hotlined
//     processes, register each phone with every process (or front them with
//     a forking proxy). Contacts(ext) lists the live ones.
//   - RingAgent (legs.go): one INVITE per registered contact (parallel
//     fork, first 200 wins, the others CANCELled; a 200 crossing a CANCEL is
//     ACKed and BYEd), X-Hotline-Case, X-Hotline-Queue, X-Hotline-Lang
//     headers, our offer PCMA, PCMU, telephone-event/101. DialOut: one
//     INVITE to Number at the trunk URI (Outbound.Trunk or Config.Trunk);
//     From is the caller only with PassCaller, else Config.HotlineNumber.
//     A leg is an ivr.Call once answered (Play, ReadDigit, Hangup: CANCEL
//     before the answer, BYE after); Err maps 486/600 to ErrBusy,
//     408/480/487, the ring timeout and transaction timeouts after a 1xx to
//     ErrNoAnswer, 404/604, no contact and transport failures to
//     ErrUnreachable, the other 4xx-6xx to ErrRejected. BYE, INFO and
//     re-INVITE (hold) from the far end are served in the leg's dialog.
//   - Bridge (bridge.go): media.Session.RelayTo both ways (per-leg SSRC,
//     sequence, timestamps, payload type; PCMA<->PCMU translated; relayed on
//     the receive goroutine, no pacer delay), DTMF regenerated as RFC 4733
//     on the other leg, nothing sent to a held leg. The codes of an agent's
//     leg (RingAgent) are caught: *7 flags the caller (Config.Flagger); *1,
//     *2, *3 bring 110, 119, 120 into a three-party call (the agent leaving
//     then is the hand-over). A '*' is held back up to 1.5 s for the next
//     digit.
//   - Conference (mix.go): G.711 decoded to linear PCM, each party gets the
//     sum of the others every 20 ms (one goroutine per conference).
//   - REFER (refer.go): the target (Refer-To user part: a destination's
//     number or id) must be a configured destination (Config.Destinations =
//     routing.Directory, which logs refusals), else 403; an allowed one is
//     202 and goes to Config.Transfers (routing.Router.Transfer). From an
//     agent's leg, the call bridged to it is transferred.
//
// Telemetry: one "call" span per call (caller masked) with an "answer"
// child; metrics hotline.calls.active, hotline.calls{outcome},
// hotline.dtmf.received{mode=rfc4733|info}, all with plane="sip". Caller
// numbers appear only masked (telemetry.MaskNumber) in logs and spans;
// sipgo's own logs are kept at warnings and stripped of raw messages.
package sip
