package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each directory under testdata/cgroup is a file-system root holding the cgroup files of one
// kind of host; "missing" does not exist at all (no cgroup file, e.g. not in a container).
func cgroupRoot(name string) string { return filepath.Join("testdata", "cgroup", name) }

func environ(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestGoMemoryLimit: by default the Go runtime gets the container's limit less 10% of it, and
// less at least 48 MiB (the binary's resident code and the runtime's overshoot), but never less
// than half of it.
func TestGoMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct{ cgroup, want int64 }{
		{64 * mib, 32 * mib},                 // half: the reserve would leave 16 MiB
		{128 * mib, 80 * mib},                // 48 MiB reserve
		{256 * mib, 208 * mib},               // 48 MiB reserve (10% would be 25.6 MiB)
		{480 * mib, 432 * mib},               // 10% and 48 MiB agree
		{1024 * mib, 1024*mib - 1024*mib/10}, // 10%
	} {
		if got := GoMemoryLimit(tc.cgroup); got != tc.want {
			t.Errorf("GoMemoryLimit(%d MiB) = %.1f MiB, want %.1f MiB", tc.cgroup/mib, float64(got)/mib, float64(tc.want)/mib)
		}
	}
}

func TestMemoryLimitFromCgroup(t *testing.T) {
	const mib256, mib512 = 256 << 20, 512 << 20
	cases := []struct {
		name, root string
		env        map[string]string
		// want: source, file, cgroup bytes, Go bytes; skipped is non-empty when nothing is set.
		source, file         string
		cgroupBytes, goBytes int64
		skipped              string
		err                  string // the error names the file
	}{
		{name: "cgroup v2 limit", root: "v2", source: "cgroup v2", file: "/sys/fs/cgroup/memory.max",
			cgroupBytes: mib256, goBytes: mib256 - 48<<20},
		{name: "cgroup v2 max is no limit", root: "v2-max", source: "cgroup v2", file: "/sys/fs/cgroup/memory.max",
			skipped: "/sys/fs/cgroup/memory.max says no limit"},
		{name: "cgroup v1 limit", root: "v1", source: "cgroup v1", file: "/sys/fs/cgroup/memory/memory.limit_in_bytes",
			cgroupBytes: mib256, goBytes: mib256 - 48<<20},
		{name: "cgroup v1 unlimited", root: "v1-unlimited", source: "cgroup v1", file: "/sys/fs/cgroup/memory/memory.limit_in_bytes",
			skipped: "says no limit"},
		{name: "v2 wins over v1", root: "hybrid", source: "cgroup v2", file: "/sys/fs/cgroup/memory.max",
			cgroupBytes: mib512, goBytes: mib512 - mib512/10},
		{name: "no cgroup files", root: "missing", skipped: "no cgroup memory limit found"},
		{name: "cgroup v2 without the memory controller", root: "no-memory-controller", skipped: "no cgroup memory limit found"},
		{name: "GOMEMLIMIT set", root: "v2", env: map[string]string{"GOMEMLIMIT": "100MiB"},
			source: "GOMEMLIMIT", skipped: "GOMEMLIMIT=100MiB is set"},
		{name: "GOMEMLIMIT=off is the user's choice too", root: "v2", env: map[string]string{"GOMEMLIMIT": "off"},
			source: "GOMEMLIMIT", skipped: "GOMEMLIMIT=off is set"},
		{name: "empty GOMEMLIMIT is unset", root: "v2", env: map[string]string{"GOMEMLIMIT": ""},
			source: "cgroup v2", file: "/sys/fs/cgroup/memory.max", cgroupBytes: mib256, goBytes: mib256 - 48<<20},
		{name: "ratio from the environment", root: "v1", env: map[string]string{memoryLimitRatioEnv: "0.5"},
			source: "cgroup v1", file: "/sys/fs/cgroup/memory/memory.limit_in_bytes", cgroupBytes: mib256, goBytes: mib256 / 2},
		{name: "ratio 1", root: "v2", env: map[string]string{memoryLimitRatioEnv: "1"},
			source: "cgroup v2", file: "/sys/fs/cgroup/memory.max", cgroupBytes: mib256, goBytes: mib256},
		{name: "garbage in v2", root: "v2-garbage", err: `memory limit: /sys/fs/cgroup/memory.max: "256Mi" is not a number of bytes`},
		{name: "empty v2 file", root: "v2-empty", err: `memory limit: /sys/fs/cgroup/memory.max: "" is not a number of bytes`},
		{name: "garbage in v1", root: "v1-garbage", err: `memory limit: /sys/fs/cgroup/memory/memory.limit_in_bytes: "unlimited" is not a number of bytes`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := memoryLimitFrom(os.DirFS(cgroupRoot(tc.root)), environ(tc.env))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.source != tc.source || d.file != tc.file || d.cgroupBytes != tc.cgroupBytes || d.goBytes != tc.goBytes {
				t.Errorf("got source %q file %q cgroup %d Go %d, want %q %q %d %d",
					d.source, d.file, d.cgroupBytes, d.goBytes, tc.source, tc.file, tc.cgroupBytes, tc.goBytes)
			}
			if (tc.skipped == "") != (d.skipped == "") || !strings.Contains(d.skipped, tc.skipped) {
				t.Errorf("skipped = %q, want %q", d.skipped, tc.skipped)
			}
		})
	}
}

func TestMemoryLimitRatio(t *testing.T) {
	cases := []struct {
		name, value string
		want        float64
		invalid     bool
	}{
		{"unset is the default", "", 0.9, false},
		{"a share", "0.75", 0.75, false},
		{"all of it", "1", 1, false},
		{"spaces around", " 0.8\n", 0.8, false},
		{"zero", "0", 0.9, true},
		{"negative", "-0.5", 0.9, true},
		{"above 1", "1.5", 0.9, true},
		{"a percentage", "90%", 0.9, true},
		{"NaN", "NaN", 0.9, true},
		{"infinity", "Inf", 0.9, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := memoryLimitRatio(tc.value)
			if got != tc.want || (err != nil) != tc.invalid {
				t.Fatalf("memoryLimitRatio(%q) = %v, %v; want %v, invalid %v", tc.value, got, err, tc.want, tc.invalid)
			}
			if err != nil && !strings.Contains(err.Error(), memoryLimitRatioEnv) {
				t.Errorf("error %q does not name %s", err, memoryLimitRatioEnv)
			}
		})
	}
}

// TestApplyMemoryLimitLogs: one line says what was done (or why not); the limit reaches the
// runtime only when there is one to set; a bad ratio is a warning and the default is used.
func TestApplyMemoryLimitLogs(t *testing.T) {
	cases := []struct {
		name, root string
		env        map[string]string
		wantSet    int64 // 0: the runtime's limit is not touched
		wantLines  []map[string]any
	}{
		{name: "set", root: "v2", wantSet: 218103808, wantLines: []map[string]any{{
			"level": "INFO", "source": "cgroup v2", "file": "/sys/fs/cgroup/memory.max",
			"cgroupLimitBytes": 268435456.0, "ratio": 0.813, "goMemoryLimitBytes": 218103808.0,
		}}},
		{name: "GOMEMLIMIT set", root: "v2", env: map[string]string{"GOMEMLIMIT": "200MiB"}, wantLines: []map[string]any{{
			"level": "INFO", "source": "GOMEMLIMIT", "reason": "GOMEMLIMIT=200MiB is set; the runtime uses it",
		}}},
		{name: "no limit", root: "v2-max", wantLines: []map[string]any{{
			"level": "INFO", "source": "cgroup v2", "reason": "/sys/fs/cgroup/memory.max says no limit",
		}}},
		{name: "garbage", root: "v1-garbage", wantLines: []map[string]any{{
			"level": "WARN", "err": `memory limit: /sys/fs/cgroup/memory/memory.limit_in_bytes: "unlimited" is not a number of bytes or "max"`,
		}}},
		{name: "bad ratio", root: "v1", env: map[string]string{memoryLimitRatioEnv: "2"}, wantSet: 218103808, wantLines: []map[string]any{
			{"level": "WARN", "ratio": 0.9, "err": memoryLimitRatioEnv + `="2": want a number greater than 0 and at most 1, e.g. 0.8`},
			{"level": "INFO", "source": "cgroup v1", "cgroupLimitBytes": 268435456.0, "goMemoryLimitBytes": 218103808.0},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, nil))
			var set []int64
			applyMemoryLimit(log, os.DirFS(cgroupRoot(tc.root)), environ(tc.env), func(n int64) int64 {
				set = append(set, n)
				return 0
			})
			switch {
			case tc.wantSet == 0 && len(set) > 0:
				t.Errorf("the runtime's limit was set to %v, want untouched", set)
			case tc.wantSet != 0 && (len(set) != 1 || set[0] != tc.wantSet):
				t.Errorf("the runtime's limit was set to %v, want once to %d", set, tc.wantSet)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != len(tc.wantLines) {
				t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(tc.wantLines), buf.String())
			}
			for i, line := range lines {
				var got map[string]any
				if err := json.Unmarshal([]byte(line), &got); err != nil {
					t.Fatal(err)
				}
				for k, want := range tc.wantLines[i] {
					if got[k] != want {
						t.Errorf("line %d: %s = %v, want %v\n%s", i, k, got[k], want, line)
					}
				}
			}
		})
	}
}
