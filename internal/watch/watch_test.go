package watch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
)

// run starts w with a handler that hands each key over to the returned channel, and stops it
// when the test ends.
func run(t *testing.T, w *Watcher) <-chan Key {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	keys := make(chan Key)
	done := make(chan error)
	go func() {
		done <- w.Run(ctx, func(ctx context.Context, k Key) error {
			select {
			case keys <- k:
			case <-ctx.Done():
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return keys
}

// collect reads keys until it has seen every one of want, failing after a deadline.
func collect(t *testing.T, keys <-chan Key, want []Key) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	seen := map[Key]bool{}
	for len(seen) < len(want) {
		select {
		case k := <-keys:
			if !slices.Contains(want, k) {
				t.Fatalf("unexpected key %+v", k)
			}
			seen[k] = true
		case <-deadline:
			t.Fatalf("saw %v of %v", seen, want)
		}
	}
}

func key(kind Kind, ns, name string) Key {
	return Key{Kind: kind, ObjectName: cache.ObjectName{Namespace: ns, Name: name}}
}

func objects() []runtime.Object {
	cron := metav1.OwnerReference{APIVersion: "batch/v1", Kind: "CronJob", Name: "report", UID: "u-cron", Controller: new(true)}
	cronRun := func(ns, name string, created time.Time) *batchv1.Job {
		return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("u-" + ns + "-" + name),
			CreationTimestamp: metav1.NewTime(created), OwnerReferences: []metav1.OwnerReference{cron}}}
	}
	jobPod := func(ns, name, job string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{batchv1.JobNameLabel: job}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "report", Image: "report:1"}}}}
	}
	return []runtime.Object{
		cronRun("billing", "report-1", t0), cronRun("billing", "report-2", t0.Add(time.Hour)), cronRun("other", "report-1", t0),
		jobPod("billing", "report-1-abcde", "report-1"), jobPod("billing", "report-1-fghij", "report-1"),
		jobPod("billing", "report-2-abcde", "report-2"), jobPod("other", "report-1-abcde", "report-1"),
	}
}

func TestWatcher(t *testing.T) {
	w, err := New(Options{
		Client:  fake.NewClientset(objects()...),
		Exclude: []string{"other"},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	keys := run(t, w)
	all := []Key{
		key(KindJob, "billing", "report-1"), key(KindJob, "billing", "report-2"),
		key(KindPod, "billing", "report-1-abcde"), key(KindPod, "billing", "report-1-fghij"), key(KindPod, "billing", "report-2-abcde"),
	}
	collect(t, keys, all) // an excluded namespace's key would fail it
	if !w.Synced() {
		t.Error("keys handled before the caches synced")
	}

	if p, ok := w.Pod("billing", "report-1-abcde"); !ok || p.JobName() != "report-1" || p.Containers[0].Name() != "report" {
		t.Errorf("Pod() = %+v, %v", p, ok)
	}
	if _, ok := w.Pod("billing", "missing"); ok {
		t.Error("Pod() found a missing pod")
	}
	if j, ok := w.Job("billing", "report-2"); !ok || !j.Created.Equal(t0.Add(time.Hour)) {
		t.Errorf("Job() = %+v, %v", j, ok)
	}
	var names []string
	for _, p := range w.PodsOfJob("billing", "report-1") {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"report-1-abcde", "report-1-fghij"}) {
		t.Errorf("PodsOfJob() = %v", names)
	}
	if runs := w.JobsControlledBy("billing", "u-cron"); len(runs) != 2 {
		t.Errorf("JobsControlledBy() = %d Jobs, want billing's 2, not other's", len(runs))
	}

	w.EnqueueAll()
	collect(t, keys, all)
	w.Enqueue(key(KindJob, "billing", "report-1"))
	collect(t, keys, all[:1])
}

func TestWatcherIncludesOnlyItsNamespaces(t *testing.T) {
	w, err := New(Options{
		Client:  fake.NewClientset(objects()...),
		Include: []string{"other"},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, run(t, w), []Key{key(KindJob, "other", "report-1"), key(KindPod, "other", "report-1-abcde")})
	if _, ok := w.Pod("billing", "report-1-abcde"); ok {
		t.Error("a namespace not included is cached")
	}
	if pods := w.PodsOfJob("other", "report-1"); len(pods) != 1 {
		t.Errorf("PodsOfJob() = %d pods, want 1", len(pods))
	}
}

// TestEnqueueAfter: a key asked for later is handled once the watcher's clock has reached the
// time, not before: a key enqueued meanwhile comes first.
func TestEnqueueAfter(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	w, err := New(Options{
		Client: fake.NewClientset(objects()...),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Clock:  clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	keys := run(t, w)
	collect(t, keys, []Key{
		key(KindJob, "billing", "report-1"), key(KindJob, "billing", "report-2"), key(KindJob, "other", "report-1"),
		key(KindPod, "billing", "report-1-abcde"), key(KindPod, "billing", "report-1-fghij"), key(KindPod, "billing", "report-2-abcde"),
		key(KindPod, "other", "report-1-abcde"),
	})
	later, marker := key(KindPod, "billing", "report-1-abcde"), key(KindJob, "billing", "report-2")
	w.EnqueueAfter(later, time.Minute)
	clk.Step(time.Minute - time.Second)
	w.Enqueue(marker)
	collect(t, keys, []Key{marker}) // the delayed key, if it were queued already, would come first
	clk.Step(time.Second)
	collect(t, keys, []Key{later})
}

// TestSweepIsPaced: the events of the initial lists are not queued; the sweep after the sync
// queues every cached object once and never holds more than sweepBatch keys in the queue (its
// sets never shrink again); EnqueueAll asks for one more sweep, and nothing else is queued.
func TestSweepIsPaced(t *testing.T) {
	const n = 3*sweepBatch + 100
	objs := make([]runtime.Object, 0, n)
	for i := range n {
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: fmt.Sprintf("web-%04d", i)}})
	}
	w, err := New(Options{Client: fake.NewClientset(objs...), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	keys := run(t, w)
	sweepOnce := func(what string) {
		t.Helper()
		seen := map[string]int{}
		longest := 0
		deadline := time.After(30 * time.Second)
		for len(seen) < n {
			select {
			case k := <-keys:
				if seen[k.Name]++; seen[k.Name] > 1 {
					t.Fatalf("%s: %s handled twice", what, k.Name)
				}
				longest = max(longest, w.queue.Len())
			case <-deadline:
				t.Fatalf("%s: %d of %d pods handled", what, len(seen), n)
			}
		}
		if longest > sweepBatch {
			t.Errorf("%s: the queue held %d keys, want at most %d", what, longest, sweepBatch)
		}
	}
	sweepOnce("after the sync")
	w.EnqueueAll()
	sweepOnce("EnqueueAll")
	sentinel := key(KindPod, "shop", "sentinel")
	w.Enqueue(sentinel)
	if k := <-keys; k != sentinel {
		t.Errorf("after the sweeps %+v came, want nothing before the sentinel", k)
	}
}
