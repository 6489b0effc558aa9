// Package media is the RTP engine of the embedded SIP plane: G.711 prompt
// playout paced at 20 ms, RFC 4733 DTMF both ways, symmetric RTP, and
// inactivity detection, for thousands of calls on a small machine.
//
// # Why a socket pool and batches
//
// Per-packet system calls dominate the cost of RTP in Go (issue 2: about
// 8.5 µs a packet with one write per packet per socket, 3.7 µs with
// sendmmsg batches from one socket). So the engine does not open a socket
// per call. It keeps a pool of shared UDP sockets (Config.Sockets) and
// demultiplexes inbound packets by (pool socket, remote source address),
// like WebRTC's single-port mux. Every socket has one receive goroutine that
// reads with recvmmsg (ipv4.PacketConn.ReadBatch) into reused buffers and
// parses headers into a reused rtp.Header. Sending is done by a few pacer
// goroutines (Config.Shards) that wake on a fixed 20 ms grid split into
// sub-slots, build the due packets of their sessions into reused buffers
// and send each socket's packets with one sendmmsg
// (ipv4.PacketConn.WriteBatch). There is no timer or goroutine per call or
// per packet; inactivity is a periodic sweep by the pacers.
//
// # Keeping (socket, remote) unique
//
// Demultiplexing by source address needs each (pool socket, remote address)
// pair to belong to one session. NewSession therefore puts a session on a
// socket where no other session expects the same remote. With K sockets
// here and K' at the far end there are K*K' distinct pairs; when every
// socket already serves the remote (e.g. 2,000 calls from a load generator
// with 16 sockets to us with 16), the pool grows by one socket, up to
// Config.MaxSockets. The offering side (remote unknown at NewSession, set
// later with SetRemote) needs no such care: the answering side keeps the
// pair unique, and the pair is the same seen from both ends. If the pool is
// at MaxSockets, or SetRemote creates a duplicate, sessions sharing a pair
// are told apart by the SSRC they heard first.
//
// # Symmetric RTP and latching
//
// We send from the socket we receive on (RFC 4961). A packet from an
// unexpected source is latched to a session as described at
// (*poolSock).latch: only sessions of that socket that have received
// nothing yet qualify, and only when the choice is unambiguous.
//
// # Callbacks
//
// OnPacket and OnDigit run on the socket's receive goroutine; OnDone(true)
// and OnInactive run on a pacer goroutine; OnDone(false) runs on the
// goroutine that called Stop, Play, Close or Engine.Close. No engine lock is
// held while a callback runs, so callbacks may call Session methods (an
// OnDigit that calls Stop and Play is the barge-in path). They must return
// quickly: a slow callback delays the other sessions of that goroutine.
// Engine.Close must not be called from a callback.
package media
