// Package ari is hotline's Asterisk plane: a typed client for the Asterisk
// REST Interface (ARI), its events WebSocket, and a Stasis application that
// turns each channel entering Stasis(hotline) into an ivr.Call.
//
// The REST methods and the model/event types in zz_generated.go are
// generated from Asterisk's own ARI specification (Swagger 1.2 api-docs,
// Asterisk 22.10.1) by ./internal/gen; the spec itself is GPL-2.0 data of
// the Asterisk project and is not copied into this repository:
//
//	go run ./ari/internal/gen -spec ../shared/ari/api-docs -out ari/zz_generated.go
//
// Behaviours of Asterisk that this package is built around (recorded in
// ../shared/ari/transcripts, minimal copies in testdata/):
//   - DTMF does not stop an ARI playback: the app stops it itself
//     (DELETE /playbacks/{id}) on ChannelDtmfReceived, which Asterisk sends
//     only at the END of a digit.
//   - Events missed while the WebSocket is down are never replayed: after a
//     reconnect the app lists its channels and playbacks and resynchronises.
//   - Hang-up is not propagated across a bridge: the controller hangs up the
//     other legs itself.
//   - An inbound caller channel gets StasisEnd but no ChannelDestroyed.
//   - PlaybackStarted may arrive before the 201 of the play request, and
//     StasisEnd before the 204 of DELETE /channels/{id}: the app names its
//     playbacks itself (playbackId) and never waits for a reply to learn them.
package ari

//go:generate go run ./internal/gen -spec ../../shared/ari/api-docs -out zz_generated.go
