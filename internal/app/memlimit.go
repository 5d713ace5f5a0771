package app

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The Go runtime keeps its heap under a limit only when it knows one (GOMEMLIMIT or
// debug.SetMemoryLimit). In a container the limit lives in the cgroup, which the runtime does not
// read: under GOGC=100 alone the heap may double before a collection and the kernel OOM-kills the
// container while the live heap is still well inside its limit.

// memoryLimitRatioEnv names the share of the cgroup limit given to the Go runtime; the rest is
// headroom for what the Go limit does not cover (the binary, C allocations, kernel buffers).
//
// By default the headroom is 10% of the limit and at least defaultNonGoReserve: the binary's
// code that the process has touched is resident but not counted by the runtime (about 30 MiB of
// kpulse's RSS), and the runtime overshoots its soft limit for short spells while the caches
// fill. Measured at 150k pods (docs/performance.md): with 90% of a 256Mi limit (230 MiB) the
// peak RSS was 264.7 MiB, past the container's limit; the reserve keeps it under. A ratio set
// through the environment is used as given, without the reserve.
const (
	memoryLimitRatioEnv     = "KPULSE_MEMORY_LIMIT_RATIO"
	defaultMemoryLimitRatio = 0.9
	defaultNonGoReserve     = 48 << 20
)

// GoMemoryLimit is the Go memory limit kpulse sets by default in a container whose memory limit
// is cgroupBytes: the limit less the larger of 10% and defaultNonGoReserve, and never less than
// half of it.
func GoMemoryLimit(cgroupBytes int64) int64 {
	reserve := max(cgroupBytes/10, defaultNonGoReserve) // 10%: 1 - defaultMemoryLimitRatio
	return max(cgroupBytes-reserve, cgroupBytes/2)
}

// unlimitedCgroupBytes: cgroup v1 reports "no limit" as the largest page-aligned int64
// (9223372036854771712 with 4 KiB pages, less with larger pages); no real limit comes near it.
const unlimitedCgroupBytes = 1 << 62

// cgroupLimitFiles are read in order, relative to the file-system root; the first that exists
// decides. cgroup v2 comes first because a hybrid host may mount both.
var cgroupLimitFiles = []struct{ source, path string }{
	{"cgroup v2", "sys/fs/cgroup/memory.max"},
	{"cgroup v1", "sys/fs/cgroup/memory/memory.limit_in_bytes"},
}

// memoryLimitDecision is what memoryLimitFrom found: either a Go limit to set (goBytes > 0) or
// the reason nothing is set (skipped).
type memoryLimitDecision struct {
	source      string // "cgroup v2", "cgroup v1", or "GOMEMLIMIT" when that is set
	file        string // the cgroup file the limit came from
	cgroupBytes int64
	ratio       float64
	goBytes     int64
	skipped     string
	ratioErr    error // an invalid KPULSE_MEMORY_LIMIT_RATIO; ratio then holds the default
}

// ApplyMemoryLimit sets the Go runtime's memory limit to a share of the container's cgroup
// memory limit (KPULSE_MEMORY_LIMIT_RATIO; by default GoMemoryLimit), unless GOMEMLIMIT is set, and logs what it
// did in one line. Call it once at startup, before the informers fill the heap.
func ApplyMemoryLimit(log *slog.Logger) {
	applyMemoryLimit(log, os.DirFS("/"), os.Getenv, debug.SetMemoryLimit)
}

// applyMemoryLimit is ApplyMemoryLimit with the file-system root, the environment and the
// runtime's setter as parameters.
func applyMemoryLimit(log *slog.Logger, root fs.FS, getenv func(string) string, setLimit func(int64) int64) {
	d, err := memoryLimitFrom(root, getenv)
	if d.ratioErr != nil {
		log.Warn("invalid "+memoryLimitRatioEnv+", using the default ratio", "err", d.ratioErr, "ratio", d.ratio)
	}
	switch {
	case err != nil:
		log.Warn("Go memory limit not set: cannot read the container's memory limit", "err", err)
	case d.goBytes > 0:
		setLimit(d.goBytes)
		share := math.Round(float64(d.goBytes)/float64(d.cgroupBytes)*1000) / 1000
		log.Info("Go memory limit set from the container's memory limit", "source", d.source, "file", d.file,
			"cgroupLimitBytes", d.cgroupBytes, "ratio", share, "goMemoryLimitBytes", d.goBytes)
	default:
		log.Info("Go memory limit not set by kpulse", "source", d.source, "reason", d.skipped)
	}
}

// memoryLimitFrom decides the Go memory limit from the environment and the cgroup files under
// root. A file that exists but cannot be read or parsed is an error naming it; no file at all
// means no limit.
func memoryLimitFrom(root fs.FS, getenv func(string) string) (memoryLimitDecision, error) {
	var d memoryLimitDecision
	// The runtime treats an empty GOMEMLIMIT as unset; anything else, "off" included, is the
	// user's choice and the runtime already applies it.
	if v := getenv("GOMEMLIMIT"); v != "" {
		d.source, d.skipped = "GOMEMLIMIT", fmt.Sprintf("GOMEMLIMIT=%s is set; the runtime uses it", v)
		return d, nil
	}
	rawRatio := getenv(memoryLimitRatioEnv)
	d.ratio, d.ratioErr = memoryLimitRatio(rawRatio)

	for _, f := range cgroupLimitFiles {
		raw, err := fs.ReadFile(root, f.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		name := "/" + f.path
		if err != nil {
			return d, fmt.Errorf("memory limit: read %s: %w", name, err)
		}
		limit, unlimited, err := parseCgroupLimit(string(raw))
		if err != nil {
			return d, fmt.Errorf("memory limit: %s: %w", name, err)
		}
		d.source, d.file = f.source, name
		if unlimited {
			d.skipped = fmt.Sprintf("%s says no limit", name)
			return d, nil
		}
		d.cgroupBytes = limit
		if rawRatio == "" || d.ratioErr != nil {
			d.goBytes = GoMemoryLimit(limit)
		} else {
			d.goBytes = int64(float64(limit) * d.ratio)
		}
		return d, nil
	}
	d.skipped = "no cgroup memory limit found (not in a container, or no memory controller)"
	return d, nil
}

// parseCgroupLimit reads memory.max ("max" or bytes) or memory.limit_in_bytes (bytes, a huge
// value when unlimited).
func parseCgroupLimit(s string) (limit int64, unlimited bool, err error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, true, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	switch {
	case err != nil:
		return 0, false, fmt.Errorf("%q is not a number of bytes or \"max\"", s)
	case n == 0:
		return 0, false, errors.New("a limit of 0 bytes")
	case n >= unlimitedCgroupBytes:
		return 0, true, nil
	}
	return int64(n), false, nil
}

// memoryLimitRatio parses KPULSE_MEMORY_LIMIT_RATIO: empty is the default, anything outside
// (0, 1] is an error and the default.
func memoryLimitRatio(s string) (float64, error) {
	if s == "" {
		return defaultMemoryLimitRatio, nil
	}
	r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(r) || r <= 0 || r > 1 {
		return defaultMemoryLimitRatio, fmt.Errorf("%s=%q: want a number greater than 0 and at most 1, e.g. 0.8", memoryLimitRatioEnv, s)
	}
	return r, nil
}
