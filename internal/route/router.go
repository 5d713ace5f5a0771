package route

import (
	"fmt"
	"slices"
	"strings"
)

// Route is one entry of config's ordered `routes:` list: the matcher's fields inline, the
// channels a matching incident is sent to, and whether the routes after it are tried too.
type Route struct {
	// Name is optional; it names the route in `kpulse check` and the logs.
	Name    string `mapstructure:"name" json:"name,omitempty"`
	Matcher `mapstructure:",squash"`
	// Channels are channel names (config's channels[].name); at least one.
	Channels []string `mapstructure:"channels" json:"channels"`
	// Continue goes on to the next routes after a match; the channels of every route matched
	// are joined.
	Continue bool `mapstructure:"continue" json:"continue,omitempty"`
}

// Decision is where an incident goes and what decided it.
type Decision struct {
	// Channels are the channel names, in the order the deciding rules name them; nil means
	// every channel (no route matched: the default).
	Channels []string
	// By names what decided, for people: `routes[0] "payments"`, `default (every channel)`,
	// `annotation kpulse.io/channels on Deployment/api`.
	By []string
}

// Router picks an incident's channels from the routes. It is immutable and safe for concurrent
// use.
type Router struct {
	routes []compiledRoute
}

type compiledRoute struct {
	Route
	m *Compiled
}

// NewRouter compiles routes; channels are the configured channel names, which a route's channels
// must be among. Each problem carries its full path (`routes[1].channels[0]: ...`). The Router is
// usable even with problems (a bad route never matches), but config rejects them.
func NewRouter(routes []Route, channels []string) (*Router, []string) {
	r := &Router{}
	var problems []string
	for i, rt := range routes {
		path := fmt.Sprintf("routes[%d]", i)
		c, ps := rt.Matcher.Compile()
		for _, p := range ps {
			problems = append(problems, path+"."+p)
		}
		if len(rt.Channels) == 0 {
			problems = append(problems, path+".channels: name at least one channel (an ignore rule is what keeps a failure quiet)")
		}
		for j, ch := range rt.Channels {
			if !slices.Contains(channels, ch) {
				problems = append(problems, fmt.Sprintf("%s.channels[%d]: unknown channel %q (channels are %s)", path, j, ch, names(channels)))
			}
		}
		if len(ps) > 0 {
			continue
		}
		r.routes = append(r.routes, compiledRoute{Route: rt, m: c})
		r.routes[len(r.routes)-1].Route.Name = routeName(i, rt.Name)
	}
	return r, problems
}

func routeName(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("routes[%d]", i)
	}
	return fmt.Sprintf("routes[%d] %q", i, name)
}

func names(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

// Match walks the routes in order: the first that matches decides, unless it says continue, in
// which case the next matching ones add their channels too. With no match the decision is the
// default, every channel.
func (r *Router) Match(s Subject) Decision {
	var d Decision
	if r != nil {
		for _, rt := range r.routes {
			if !rt.m.Matches(s) {
				continue
			}
			for _, ch := range rt.Channels {
				if !slices.Contains(d.Channels, ch) {
					d.Channels = append(d.Channels, ch)
				}
			}
			d.By = append(d.By, rt.Name)
			if !rt.Continue {
				break
			}
		}
	}
	if len(d.By) == 0 {
		return Decision{By: []string{"default (every channel)"}}
	}
	return d
}

// Decide is Match with the kpulse.io/channels annotation applied: when the most specific object
// that sets it names at least one configured channel (channels), those channels replace the
// route's. Names that are not configured are left out; an annotation naming none of them is
// disregarded (the route decides, and By says so), so a typo in the cluster never loses an
// alert.
func (r *Router) Decide(s Subject, a Settings, channels []string) Decision {
	if a.ChannelsFrom == "" {
		return r.Match(s)
	}
	var known []string
	for _, ch := range a.Channels {
		if slices.Contains(channels, ch) && !slices.Contains(known, ch) {
			known = append(known, ch)
		}
	}
	if len(known) == 0 {
		d := r.Match(s)
		d.By = append(d.By, fmt.Sprintf("(annotation %s on %s names no configured channel; disregarded)", AnnotationChannels, a.ChannelsFrom))
		return d
	}
	return Decision{Channels: known, By: []string{fmt.Sprintf("annotation %s on %s", AnnotationChannels, a.ChannelsFrom)}}
}
