package incident

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// Fingerprint names the incident of k: the first 16 hex digits of a SHA-256 over the key's
// fields, each prefixed by its length so that no two keys encode alike ("a/b"+"c" vs "a"+"b/c").
func Fingerprint(k Key) string {
	h := sha256.New()
	for _, s := range []string{k.Namespace, k.Workload.Kind, k.Workload.Name, k.Container, string(k.Class)} {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
