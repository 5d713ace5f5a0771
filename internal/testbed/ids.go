package testbed

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Identifiers the runtime and controllers would make up. They are derived from the objects (a
// hash), not random, so two calls about the same container instance agree, and a test can
// predict them.

// containerID is the runtime's ID of one instance (attempt) of a container in a pod.
func containerID(pod types.UID, container string, attempt int32) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", pod, container, attempt))
	return "containerd://" + hex.EncodeToString(sum[:])
}

// imageID is the digest reference containerd reports for a pulled image:
// docker.io/library/busybox@sha256:<64 hex>.
func imageID(image string) string {
	ref := normalizeImage(image)
	repo := ref
	if at := strings.Index(ref, "@"); at >= 0 {
		return ref // already pinned by digest
	}
	if slash, colon := strings.LastIndex(ref, "/"), strings.LastIndex(ref, ":"); colon > slash {
		repo = ref[:colon]
	}
	sum := sha256.Sum256([]byte(ref))
	return repo + "@sha256:" + hex.EncodeToString(sum[:])
}

// withDefaultTag appends :latest to a reference with neither tag nor digest, as the kubelet does
// before pulling ("nginx" -> "nginx:latest").
func withDefaultTag(image string) string {
	if strings.Contains(image, "@") {
		return image
	}
	if slash, colon := strings.LastIndex(image, "/"), strings.LastIndex(image, ":"); colon > slash {
		return image
	}
	return image + ":latest"
}

// normalizeImage is the fully qualified reference containerd resolves: a registry host and, on
// Docker Hub, the library/ namespace ("busybox" -> "docker.io/library/busybox:latest").
func normalizeImage(image string) string {
	ref := withDefaultTag(image)
	first, rest, found := strings.Cut(ref, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return ref
	}
	if !found {
		return "docker.io/library/" + ref
	}
	return "docker.io/" + first + "/" + rest
}

// podIP is a stable address in the pod CIDR of the fake node (10.244.0.0/16).
func podIP(uid types.UID) string {
	h := fnv.New32a()
	h.Write([]byte(uid))
	v := h.Sum32()
	return fmt.Sprintf("10.244.%d.%d", (v>>8)%256, 2+v%252)
}

// templateHash is the short, vowel-free hash controllers put in names and labels
// (pod-template-hash, controller-revision-hash).
func templateHash(tmpl corev1.PodTemplateSpec) (string, error) {
	b, err := json.Marshal(tmpl)
	if err != nil {
		return "", err
	}
	h := fnv.New32a()
	h.Write(b)
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10)), nil
}
