// Package route decides who gets told about an incident: the routes that pick its channels, the
// ignore rules that keep a failure from becoming an incident at all, the kpulse.io/* annotations
// through which a workload's owners set the same from the cluster, and the silences that mute
// matching incidents for a while. Everything here is pure: it matches a Subject, built by app
// from its caches, and takes the time as an argument where time matters.
package route
