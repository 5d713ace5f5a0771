package route

import "fmt"

// Policy is the routes and the ignore rules of one configuration, with the configured channel
// names: what kpulse asks about every failure before it becomes an incident, and what `kpulse
// check --route` asks about a made-up one. It is immutable; a config reload builds a new one.
type Policy struct {
	Router   *Router
	Ignorer  *Ignorer
	Channels []string
}

// NewPolicy compiles routes and ignore rules against the configured channel names; problems
// carry their full config paths.
func NewPolicy(routes []Route, ignore []IgnoreRule, channels []string) (*Policy, []string) {
	r, p1 := NewRouter(routes, channels)
	ig, p2 := NewIgnorer(ignore)
	return &Policy{Router: r, Ignorer: ig, Channels: channels}, append(p1, p2...)
}

// Empty reports whether the policy has neither routes nor ignore rules: every failure goes to
// every channel, whatever annotations aside.
func (p *Policy) Empty() bool {
	return p == nil || len(p.Router.routes) == 0 && len(p.Ignorer.rules) == 0
}

// Verdict is what the policy says of one failure.
type Verdict struct {
	// Ignored: the failure never becomes an incident. Rule is the ignore rule's name, or
	// AnnotationRule; IgnoredBy says it for people.
	Ignored   bool
	Rule      string
	IgnoredBy string
	// Decision is where it goes when not ignored.
	Decision Decision
	// Runbook and Owner go into its messages.
	Runbook, Owner string
}

// Judge decides about one failure: config ignore rules first (the operator's word, which no
// annotation undoes), then the kpulse.io/ignore annotation, then the routes with the
// kpulse.io/channels annotation.
func (p *Policy) Judge(s Subject, a Settings) Verdict {
	if p == nil {
		return Verdict{Decision: Decision{By: []string{"default (every channel)"}}, Runbook: a.Runbook, Owner: a.Owner}
	}
	if name, ok := p.Ignorer.Match(s); ok {
		return Verdict{Ignored: true, Rule: name, IgnoredBy: fmt.Sprintf("ignore rule %q", name)}
	}
	if a.Ignores(s.Class) {
		return Verdict{Ignored: true, Rule: AnnotationRule, IgnoredBy: fmt.Sprintf("annotation %s on %s", AnnotationIgnore, a.IgnoreFrom)}
	}
	return Verdict{Decision: p.Router.Decide(s, a, p.Channels), Runbook: a.Runbook, Owner: a.Owner}
}
