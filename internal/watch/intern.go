package watch

import "unique"

// intern returns a canonical copy of s, for strings of rare parts (a waiting or terminated
// state's reason) that no handle keeps: the copy is shared by the objects interned between two
// garbage collections, which is all such a short string needs.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// handle interns s and keeps the canonical copy alive for as long as a cached object holds the
// handle: namespaces, images, container and node names repeat across every replica of a
// workload, and an 8-byte handle is half a string header. The zero handle stands for "".
func handle(s string) unique.Handle[string] {
	if s == "" {
		return unique.Handle[string]{}
	}
	return unique.Make(s)
}

// value is the string behind h; "" for the zero handle.
func value(h unique.Handle[string]) string {
	if h == (unique.Handle[string]{}) {
		return ""
	}
	return h.Value()
}

// canonical returns the constant among known that equals s, so that a phase, a condition
// status or a restart policy costs no memory of its own, or s interned when it is none of them.
func canonical[T ~string](s T, known ...T) T {
	for _, k := range known {
		if s == k {
			return k
		}
	}
	return T(intern(string(s)))
}
