package notifiers

import (
	"time"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
)

// TestNotification is the clearly marked message /test-channel sends: a plausible incident so a
// receiver exercises its real path, with status "test" and test=true so nobody is paged for it.
func TestNotification(cluster string, now time.Time) Notification {
	finding := detect.Finding{
		Class:     detect.CrashLoop,
		Container: "app",
		Reason:    "KpulseTest",
		Message:   "This is a test notification from kpulse; nothing is broken and no action is needed.",
		Image:     "example.invalid/kpulse-test:latest",
		Ongoing:   true,
		At:        now,
	}
	return Notification{
		Kind:    KindTest,
		Why:     incident.WhyFirst,
		Cluster: cluster,
		At:      now,
		Incident: incident.Incident{
			Fingerprint: "kpulse-test",
			Key: incident.Key{
				Namespace: "kpulse-test",
				Workload:  detect.Workload{Kind: "Deployment", Name: "kpulse-test"},
				Container: "app",
				Class:     detect.CrashLoop,
			},
			Status: incident.Firing,
			Members: []incident.Member{{
				Ref:     incident.MemberRef{Kind: "Pod", Name: "kpulse-test-0"},
				Failing: true,
				Finding: finding,
			}},
			Latest:    finding,
			FirstSeen: now,
			LastSeen:  now,
		},
	}
}
