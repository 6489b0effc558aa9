//go:build race

package phone

// raceEnabled relaxes timing assertions: the race detector slows the pacer.
const raceEnabled = true
