// Package testpeer holds what the loopback peers of the integrations share (each peer lives with
// its integration, in notifiers/<type>/<type>test): the Fault a test makes a peer play, the Peer
// interface the conformance suite drives them through, Hangup, and Buffer, a writer several
// goroutines may share.
package testpeer
