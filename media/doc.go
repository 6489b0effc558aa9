// Package media is the RTP engine of the embedded SIP plane.
//
// Design (see issue 2): a small pool of shared UDP sockets instead of a
// socket per call, inbound packets demultiplexed by (pool socket, remote
// source address) like WebRTC's single-port mux, batched receive with
// recvmmsg and batched send with sendmmsg (golang.org/x/net/ipv4), and a
// sharded pacer that wakes on a fixed 20 ms grid instead of a timer and a
// goroutine per call.
package media
