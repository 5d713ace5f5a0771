package notifiers

import (
	"fmt"
	"strings"
)

// Problems collects what is wrong with a type block, each as "key: what is wrong", the key
// relative to the block (config prefixes channels[i].<type>. to it): a Config's Problems method
// builds one.
type Problems []string

// Add records a problem; format starts with the key.
func (p *Problems) Add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// SecretKey checks an optional *From setting: it must name a key of a Kubernetes Secret. A value
// that cannot be a key is not echoed: it is most likely the secret itself, pasted in the wrong
// place.
func (p *Problems) SecretKey(field, key string) {
	if key == "" {
		return
	}
	if !validSecretKey(key) || strings.HasPrefix(key, "xox") {
		p.Add("%s: must name a key in the Secret directory (secretsDir), such as SLACK_BOT_TOKEN, "+
			"not hold the secret itself (the value is not shown)", field)
	}
}

// URL checks a URL setting that may be written in the config (it holds no token); the value is
// not echoed anyway.
func (p *Problems) URL(field, raw string) {
	if err := CheckURL(raw); err != nil {
		p.Add("%s: %v", field, err)
	}
}

// validSecretKey reports whether k can be a key of a Kubernetes Secret ([-._a-zA-Z0-9]+, at most
// 253 characters) that the kubelet can project as a file (not "." or "..", not "..data").
func validSecretKey(k string) bool {
	if len(k) == 0 || len(k) > 253 || k == "." || strings.HasPrefix(k, "..") {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
