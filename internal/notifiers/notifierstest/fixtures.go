// Package notifierstest holds what the tests of the delivery core, the dispatcher and every
// integration share: notifications to render (fixtures, hostile text, the inputs that test a
// service's limits, the fuzzed notification), golden files, and small helpers (a buffer for
// logs, polling for a condition, a recording HTTP server). The conformance suite builds on it.
package notifierstest

import (
	"time"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// T0 is the time of the fixtures: a notification is at T0, its incident began a little before.
var T0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// Ptr returns a pointer to v.
func Ptr[T any](v T) *T { return &v }

// Pod is a Pod member showing f, failing or healthy.
func Pod(name string, f detect.Finding, failing bool) incident.Member {
	return incident.Member{Ref: incident.MemberRef{Kind: "Pod", Name: name}, Failing: failing, Healthy: !failing, Finding: f}
}

// CrashLoop is a firing CrashLoopBackOff of two pods of a Deployment.
func CrashLoop() notifiers.Notification {
	f := detect.Finding{
		Class:              detect.CrashLoop,
		Container:          "api",
		Reason:             "CrashLoopBackOff",
		Message:            "back-off 5m0s restarting failed container=api pod=checkout-7d9f-x2x",
		Image:              "registry.example.com/shop/checkout:1.42.0",
		ExitCode:           Ptr(int32(1)),
		RestartCount:       7,
		TerminationMessage: "panic: config: missing DATABASE_URL\n",
		Ongoing:            true,
		At:                 T0.Add(-time.Minute),
	}
	return notifiers.Notification{
		Kind:    notifiers.KindFiring,
		Why:     incident.WhyFirst,
		Cluster: "prod-eu-1",
		At:      T0,
		Incident: incident.Incident{
			Fingerprint: "3f2a9c1e5b7d4a60",
			Key: incident.Key{
				Namespace: "shop",
				Workload:  detect.Workload{Kind: "Deployment", Name: "checkout"},
				Container: "api",
				Class:     detect.CrashLoop,
			},
			Status:    incident.Firing,
			Members:   []incident.Member{Pod("checkout-7d9f-x2x", f, true), Pod("checkout-7d9f-a1b", f, true)},
			Latest:    f,
			FirstSeen: T0.Add(-2 * time.Minute),
			LastSeen:  T0,
		},
	}
}

// Resolved is CrashLoop resolved, 12 minutes after it began.
func Resolved() notifiers.Notification {
	n := CrashLoop()
	n.Kind = notifiers.KindResolved
	n.Why = incident.WhyResolved
	n.At = T0.Add(10 * time.Minute)
	n.Incident.Status = incident.Resolved
	n.Incident.ResolvedAt = T0.Add(10 * time.Minute)
	for i := range n.Incident.Members {
		n.Incident.Members[i].Failing = false
		n.Incident.Members[i].Healthy = true
	}
	return n
}

// ImagePull is a repeat of an image pull failure of a StatefulSet.
func ImagePull() notifiers.Notification {
	f := detect.Finding{
		Class:     detect.ImagePull,
		Container: "web",
		Reason:    "ErrImagePull",
		Message:   `failed to pull and unpack image "registry.example.com/web:nope": not found <&>`,
		Image:     "registry.example.com/web:nope",
		Ongoing:   true,
	}
	return notifiers.Notification{
		Kind:    notifiers.KindFiring,
		Why:     incident.WhyRepeat,
		Cluster: "staging",
		At:      T0,
		Incident: incident.Incident{
			Fingerprint: "9b1c",
			Key:         incident.Key{Namespace: "web", Workload: detect.Workload{Kind: "StatefulSet", Name: "web"}, Container: "web", Class: detect.ImagePull},
			Status:      incident.Firing,
			Members:     []incident.Member{Pod("web-0", f, true)},
			Latest:      f,
			FirstSeen:   T0.Add(-time.Hour),
		},
	}
}

// JobFailed is two failed runs of a CronJob.
func JobFailed() notifiers.Notification {
	f := detect.Finding{
		Class:   detect.JobFailed,
		Reason:  "BackoffLimitExceeded",
		Message: "Job has reached the specified backoff limit",
		Ongoing: true,
		At:      T0,
	}
	job := func(name string) incident.Member {
		return incident.Member{Ref: incident.MemberRef{Kind: "Job", Name: name}, Failing: true, Finding: f}
	}
	return notifiers.Notification{
		Kind:    notifiers.KindFiring,
		Why:     incident.WhyFirst,
		Cluster: "prod-eu-1",
		At:      T0,
		Incident: incident.Incident{
			Fingerprint: "77aa",
			Key:         incident.Key{Namespace: "batch", Workload: detect.Workload{Kind: "CronJob", Name: "nightly-report"}, Class: detect.JobFailed},
			Status:      incident.Firing,
			Members:     []incident.Member{job("nightly-report-29000002"), job("nightly-report-29000001")},
			Latest:      f,
			FirstSeen:   T0,
		},
	}
}

// OOMKilled is one OOM-killed pod.
func OOMKilled() notifiers.Notification {
	f := detect.Finding{
		Class:        detect.OOMKilled,
		Container:    "worker",
		Reason:       "OOMKilled",
		Image:        "ghcr.io/example/worker@sha256:0123",
		ExitCode:     Ptr(int32(137)),
		RestartCount: 2,
		At:           T0,
	}
	return notifiers.Notification{
		Kind:    notifiers.KindFiring,
		Why:     incident.WhyFirst,
		Cluster: "prod-eu-1",
		At:      T0,
		Incident: incident.Incident{
			Fingerprint: "0c0c",
			Key:         incident.Key{Namespace: "jobs", Workload: detect.Workload{Kind: "Pod", Name: "worker"}, Container: "worker", Class: detect.OOMKilled},
			Status:      incident.Firing,
			Members:     []incident.Member{Pod("worker", f, false)},
			Latest:      f,
			FirstSeen:   T0,
		},
	}
}

// Enriched adds what the app fetches for a crash: Warning events and the previous container's
// last log lines, and one fetch that failed.
func Enriched(n notifiers.Notification) notifiers.Notification {
	n.Enrichment = &notifiers.Enrichment{
		Events: []notifiers.Event{
			{Reason: "BackOff", Message: "Back-off restarting failed container api in pod checkout-7d9f-x2x_shop", Count: 12, LastSeen: T0.Add(-10 * time.Second)},
			{Reason: "Unhealthy", Message: "Readiness probe failed: HTTP probe failed with statuscode: 503", Count: 3, LastSeen: T0.Add(-90 * time.Second)},
		},
		Logs: []string{
			"2026-03-01T09:59:58Z INFO starting checkout version=1.42.0",
			"2026-03-01T09:59:58Z INFO loading config from /etc/checkout/config.yaml",
			"2026-03-01T09:59:59Z ERROR config: missing DATABASE_URL",
			"panic: config: missing DATABASE_URL",
			"",
			"goroutine 1 [running]:",
			"main.main()",
			"\t/src/cmd/checkout/main.go:42 +0x1d4",
		},
		LogsPod:       "checkout-7d9f-x2x",
		LogsContainer: "api",
		Errors:        []string{"events of checkout-7d9f-a1b: forbidden"},
	}
	return n
}

// Fingerprinted is CrashLoop with fingerprint fp.
func Fingerprinted(fp string) notifiers.Notification {
	n := CrashLoop()
	n.Incident.Fingerprint = fp
	return n
}

// Owned is CrashLoop of a workload whose kpulse.io annotations name a runbook and an owner; the
// runbook has the characters a link markup must encode (&, |).
func Owned() notifiers.Notification {
	n := CrashLoop()
	n.Incident.Runbook = "https://runbooks.example/checkout?view=crash&team=a|b"
	n.Incident.Owner = "team-checkout (@oncall)"
	return n
}
