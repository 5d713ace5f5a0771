package detect

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kpulse/kpulse/internal/watch"
)

// t1 is a moment long after pod-liveness-restarted.yaml's pod was created.
var t1 = at("2026-03-02T12:00:00Z")

// restarted is pod-liveness-restarted.yaml after restarts restarts, the last one ending at
// t1+lastAt, running again (or waiting with waiting as its reason, when not empty).
func restarted(t *testing.T, restarts int32, lastAt time.Duration, waiting string) *corev1.Pod {
	p := loadPod(t, "pod-liveness-restarted.yaml")
	s := &p.Status.ContainerStatuses[0]
	s.RestartCount = restarts
	s.LastTerminationState.Terminated.FinishedAt = metav1.NewTime(t1.Add(lastAt))
	if restarts == 0 {
		s.LastTerminationState = corev1.ContainerState{}
	}
	if waiting != "" {
		s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: waiting}}
	}
	return p
}

func TestRestartTracker(t *testing.T) {
	type step struct {
		at      time.Duration // since t1
		pod     func(t *testing.T) *corev1.Pod
		gone    bool
		want    int           // FrequentRestarts findings
		recheck time.Duration // since t1; -1 none
		looping bool
		tracked int // pods the tracker holds after the step
	}
	const none = -1
	run := func(n int32, last time.Duration) func(t *testing.T) *corev1.Pod {
		return func(t *testing.T) *corev1.Pod { return restarted(t, n, last, "") }
	}
	wait := func(n int32, last time.Duration, reason string) func(t *testing.T) *corev1.Pod {
		return func(t *testing.T) *corev1.Pod { return restarted(t, n, last, reason) }
	}
	edit := func(f func(t *testing.T) *corev1.Pod, e func(p *corev1.Pod)) func(t *testing.T) *corev1.Pod {
		return func(t *testing.T) *corev1.Pod { p := f(t); e(p); return p }
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "three liveness kills within the window, then quiet: fires, then goes when they leave it",
			steps: []step{
				{at: 0, pod: run(0, 0), recheck: none},
				{at: time.Minute, pod: run(1, time.Minute), recheck: 11 * time.Minute, tracked: 1},
				{at: 2 * time.Minute, pod: run(2, 2*time.Minute), recheck: 11 * time.Minute, tracked: 1},
				{at: 3 * time.Minute, pod: run(3, 3*time.Minute), want: 1, recheck: 11 * time.Minute, tracked: 1},
				{at: 4 * time.Minute, pod: run(3, 3*time.Minute), want: 1, recheck: 11 * time.Minute, tracked: 1},
				{at: 11 * time.Minute, pod: run(3, 3*time.Minute), recheck: 12 * time.Minute, tracked: 1},
				{at: 13 * time.Minute, pod: run(3, 3*time.Minute), recheck: none},
			},
		},
		{
			name: "restarts further apart than the window never fire",
			steps: []step{
				{at: 0, pod: run(0, 0), recheck: none},
				{at: 6 * time.Minute, pod: run(1, 6*time.Minute), recheck: 16 * time.Minute, tracked: 1},
				{at: 12 * time.Minute, pod: run(2, 12*time.Minute), recheck: 16 * time.Minute, tracked: 1},
				{at: 18 * time.Minute, pod: run(3, 18*time.Minute), recheck: 22 * time.Minute, tracked: 1},
			},
		},
		{
			name: "a CrashLoopBackOff seen in the window: CrashLoop's, not this class",
			steps: []step{
				{at: 0, pod: run(0, 0), recheck: none},
				{at: time.Minute, pod: run(1, time.Minute), recheck: 11 * time.Minute, tracked: 1},
				{at: 90 * time.Second, pod: wait(2, 90*time.Second, "CrashLoopBackOff"), recheck: 11 * time.Minute, looping: true, tracked: 1},
				{at: 2 * time.Minute, pod: run(2, 90*time.Second), recheck: 11 * time.Minute, looping: true, tracked: 1},
				{at: 3 * time.Minute, pod: run(3, 3*time.Minute), recheck: 11 * time.Minute, looping: true, tracked: 1},
			},
		},
		{
			name: "a rise by three between two looks counts three",
			steps: []step{
				{at: 0, pod: run(1, 0), recheck: 10 * time.Minute, tracked: 1},
				{at: time.Minute, pod: run(4, time.Minute), want: 1, recheck: 11 * time.Minute, tracked: 1},
			},
		},
		{
			// Nothing is kept of a pod whose restarts are old (most pods that ever restarted),
			// so a rise seen next counts only the restart its status dates.
			name: "a rise after old restarts counts the one the status dates",
			steps: []step{
				{at: 0, pod: run(1, -time.Hour), recheck: none},
				{at: time.Minute, pod: run(4, time.Minute), recheck: 11 * time.Minute, tracked: 1},
			},
		},
		{
			name: "first seen, created within the window, with four restarts: fires at once",
			steps: []step{
				{at: 0, pod: edit(run(4, -30*time.Second), func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t1.Add(-5 * time.Minute)) }),
					want: 1, recheck: 5 * time.Minute, tracked: 1},
			},
		},
		{
			name: "first seen long after its restarts: nothing to remember",
			steps: []step{
				{at: 0, pod: run(50, -time.Hour), recheck: none},
			},
		},
		{
			name: "first seen just after a restart: that one counts",
			steps: []step{
				{at: 0, pod: run(50, -2*time.Minute), recheck: 8 * time.Minute, tracked: 1},
				{at: time.Minute, pod: run(51, time.Minute), recheck: 8 * time.Minute, tracked: 1},
				{at: 2 * time.Minute, pod: run(52, 2*time.Minute), want: 1, recheck: 8 * time.Minute, tracked: 1},
			},
		},
		{
			name: "an OOM kill is OOMKilled's",
			steps: []step{
				{at: 0, pod: edit(run(4, -30*time.Second), func(p *corev1.Pod) {
					p.CreationTimestamp = metav1.NewTime(t1.Add(-5 * time.Minute))
					p.Status.ContainerStatuses[0].LastTerminationState.Terminated.Reason = "OOMKilled"
				}), recheck: 5 * time.Minute, tracked: 1},
			},
		},
		{
			name: "a Job's pod (restartPolicy OnFailure) is its Job's",
			steps: []step{
				{at: 0, pod: edit(run(4, -30*time.Second), func(p *corev1.Pod) {
					p.CreationTimestamp = metav1.NewTime(t1.Add(-5 * time.Minute))
					p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
				}), recheck: none},
			},
		},
		{
			name: "not running now (waiting to start): no finding",
			steps: []step{
				{at: 0, pod: edit(wait(4, -30*time.Second, "ContainerCreating"), func(p *corev1.Pod) {
					p.CreationTimestamp = metav1.NewTime(t1.Add(-5 * time.Minute))
				}), recheck: 5 * time.Minute, tracked: 1},
			},
		},
		{
			name: "a new pod under the same name starts afresh",
			steps: []step{
				{at: 0, pod: run(1, 0), recheck: 10 * time.Minute, tracked: 1},
				{at: time.Minute, pod: run(2, time.Minute), recheck: 10 * time.Minute, tracked: 1},
				{at: 2 * time.Minute, pod: edit(run(3, 2*time.Minute), func(p *corev1.Pod) { p.UID = "another" }), recheck: 12 * time.Minute, tracked: 1},
			},
		},
		{
			name: "a pod being deleted is forgotten",
			steps: []step{
				{at: 0, pod: run(1, 0), recheck: 10 * time.Minute, tracked: 1},
				{at: time.Minute, pod: edit(run(2, time.Minute), func(p *corev1.Pod) {
					d := metav1.NewTime(t1.Add(time.Minute))
					p.DeletionTimestamp = &d
				}), recheck: none},
			},
		},
		{
			name: "a pod that goes is forgotten",
			steps: []step{
				{at: 0, pod: run(1, 0), recheck: 10 * time.Minute, tracked: 1},
				{at: time.Minute, gone: true, recheck: none},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewRestartTracker(3, 10*time.Minute)
			for i, s := range tt.steps {
				now := t1.Add(s.at)
				var got RestartsSeen
				if s.gone {
					tr.Forget("shop", "search-7c9d8e6f5-k2m4n")
				} else {
					got = tr.Observe(watch.NewPod(s.pod(t)), now, nil)
				}
				want := time.Time{}
				if s.recheck != none {
					want = t1.Add(s.recheck)
				}
				if len(got.Findings) != s.want || !got.RecheckAt.Equal(want) || got.Looping != s.looping || tr.Len() != s.tracked {
					t.Fatalf("step %d at +%v: %d findings, recheck %v, looping %v, %d tracked; want %d, %v, %v, %d\n%s",
						i, s.at, len(got.Findings), got.RecheckAt, got.Looping, tr.Len(), s.want, want, s.looping, s.tracked, show(got.Findings))
				}
			}
		})
	}
}

func TestRestartFinding(t *testing.T) {
	tr := NewRestartTracker(3, 10*time.Minute)
	p := restarted(t, 4, -30*time.Second, "")
	p.CreationTimestamp = metav1.NewTime(t1.Add(-5 * time.Minute))
	got := tr.Observe(watch.NewPod(p), t1, nil).Findings
	want := []Finding{{Class: FrequentRestarts, Container: "search", Reason: "Error",
		Message: "restarted 3 times within 10m0s while running, without a crash-loop back-off (restartCount 4); last exit 137 Error",
		Image:   "registry.example.com/shop/search:3.2.0", ExitCode: code(137), RestartCount: 4, TerminationReason: "Error",
		Ongoing: true, At: t1.Add(-30 * time.Second)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings =\n%s\nwant\n%s", show(got), show(want))
	}
	// A container another class reports on is left to it.
	if got := tr.Observe(watch.NewPod(p), t1, []Finding{{Class: OOMKilled, Container: "search"}}).Findings; len(got) != 0 {
		t.Errorf("findings beside another class's: %s", show(got))
	}
}

func TestDetector(t *testing.T) {
	s := DefaultSettings()
	s.Classes = map[Class]ClassSettings{ImagePull: {Disabled: true}, NotReady: {Severity: Info}}
	d := NewDetector(s)
	now := at("2026-03-02T12:00:00Z")

	// NotReady gets its severity and grace.
	res := d.Pod(watch.NewPod(loadPod(t, "pod-readiness-failing.yaml")), nil, now)
	if len(res.Findings) != 1 || res.Findings[0].Class != NotReady || res.Findings[0].Severity != Info || res.Findings[0].Grace != 10*time.Minute || res.Healthy {
		t.Errorf("readiness failing: %s healthy %v", show(res.Findings), res.Healthy)
	}
	// A disabled class is dropped.
	if res := d.Pod(watch.NewPod(loadPod(t, "pod-errimagepull.yaml")), nil, now); len(res.Findings) != 0 {
		t.Errorf("a disabled class: %s", show(res.Findings))
	}
	// An evicted pod counts as healthy: it is done, and replaced.
	if res := d.Pod(watch.NewPod(loadPod(t, "pod-evicted.yaml")), nil, now); len(res.Findings) != 1 || !res.Healthy {
		t.Errorf("evicted: %s healthy %v", show(res.Findings), res.Healthy)
	}
	// A Job that completed: its pods' failures were retried away.
	oomPod := watch.NewPod(loadPod(t, "pod-oom-never.yaml"))
	if res := d.Pod(oomPod, watch.NewJob(loadJob(t, "job-cronjob-deadline.yaml")), now); len(res.Findings) != 1 || res.Healthy {
		t.Errorf("a failed Job's OOM-killed pod: %s healthy %v", show(res.Findings), res.Healthy)
	}
	if res := d.Pod(oomPod, watch.NewJob(loadJob(t, "job-cronjob-complete.yaml")), now); len(res.Findings) != 0 || !res.Healthy {
		t.Errorf("a completed Job's pod: %s healthy %v", show(res.Findings), res.Healthy)
	}

	// Restarts: FrequentRestarts replaces NotReady, and says when to look again.
	p := restarted(t, 4, -30*time.Second, "")
	p.CreationTimestamp = metav1.NewTime(now.Add(-5 * time.Minute))
	res = d.Pod(watch.NewPod(p), nil, now)
	if len(res.Findings) != 1 || res.Findings[0].Class != FrequentRestarts || res.Findings[0].Severity != Warning || res.Findings[0].Grace != 0 ||
		!res.RecheckAt.Equal(now.Add(5*time.Minute)) {
		t.Errorf("restarting: %s recheck %v", show(res.Findings), res.RecheckAt)
	}
	// A crash loop seen lately explains the pod's readiness too: no NotReady between crashes.
	c := restarted(t, 1, -time.Hour, "")
	c.Name, c.UID = "looping", types.UID("u-looping")
	d.Pod(watch.NewPod(restartedAs(c, 2, now.Add(-time.Minute), "CrashLoopBackOff")), nil, now.Add(-time.Minute))
	res = d.Pod(watch.NewPod(restartedAs(c, 2, now.Add(-time.Minute), "")), nil, now.Add(20*time.Minute))
	if len(res.Findings) != 1 || res.Findings[0].Class != NotReady {
		t.Errorf("20 minutes after the loop, not ready since: %s", show(res.Findings))
	}
	d.Pod(watch.NewPod(restartedAs(c, 3, now.Add(21*time.Minute), "CrashLoopBackOff")), nil, now.Add(21*time.Minute))
	res = d.Pod(watch.NewPod(restartedAs(c, 3, now.Add(21*time.Minute), "")), nil, now.Add(22*time.Minute))
	if len(res.Findings) != 0 {
		t.Errorf("running between two crashes: %s; want nothing (CrashLoop's)", show(res.Findings))
	}
	d.PodGone(c.Namespace, c.Name)
	if n := d.restarts.Len(); n != 1 {
		t.Errorf("%d pods tracked after one went, want 1", n)
	}
}

// restartedAs is p (a copy) after restarts restarts, the last one ending at last, running again
// or waiting with reason waiting.
func restartedAs(p *corev1.Pod, restarts int32, last time.Time, waiting string) *corev1.Pod {
	p = p.DeepCopy()
	s := &p.Status.ContainerStatuses[0]
	s.RestartCount = restarts
	s.LastTerminationState.Terminated.FinishedAt = metav1.NewTime(last)
	s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	if waiting != "" {
		s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: waiting}}
	}
	return p
}

// BenchmarkRestartTrackerBytes reports what the restart tracker holds per pod that restarted
// (B/pod): 10,000 pods of one container, each seen restarting three times within the window.
func BenchmarkRestartTrackerBytes(b *testing.B) {
	const n = 10_000
	base := loadPod(b, "pod-liveness-restarted.yaml")
	now := at("2026-03-02T12:00:00Z")
	pods := make([][3]*watch.Pod, n)
	for i := range pods {
		for r := range 3 {
			p := base.DeepCopy()
			p.Name, p.UID = fmt.Sprintf("search-%05d", i), types.UID(fmt.Sprintf("u-%05d", i))
			p.Status.ContainerStatuses[0].RestartCount = int32(r + 1)
			p.Status.ContainerStatuses[0].LastTerminationState.Terminated.FinishedAt = metav1.NewTime(now.Add(time.Duration(r) * time.Minute))
			pods[i][r] = watch.NewPod(p)
		}
	}
	var total float64
	runs := 0
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr := NewRestartTracker(3, 10*time.Minute)
		for r := range 3 {
			for i := range pods {
				tr.Observe(pods[i][r], now.Add(time.Duration(r)*time.Minute), nil)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if tr.Len() != n {
			b.Fatalf("%d pods tracked, want %d", tr.Len(), n)
		}
		runtime.KeepAlive(tr)
		total += (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
		runs++
	}
	b.ReportMetric(total/float64(runs), "B/pod")
}
