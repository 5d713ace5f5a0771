package watch

import "unique"

// intern returns a canonical copy of s. Namespaces, images, container names, owner names and
// label values repeat across every replica of a workload; each decoded object carries its own
// copy, and the cache would keep them all.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}
