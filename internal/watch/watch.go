// Package watch owns the shared informers for Pods and Jobs, the transform that turns each decoded
// object into kpulse's own small Pod or Job (all the cache holds), and the workqueue: event
// handlers only enqueue keys; workers re-read the latest object from the cache, so a burst of
// updates to one object merges into one decision.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	apiwatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Kind says which informer a key came from.
type Kind string

const (
	KindPod Kind = "Pod"
	KindJob Kind = "Job"
)

// Key names one object to look at again.
type Key struct {
	Kind Kind
	cache.ObjectName
}

// Handler decides about the object a key names. It reads the object through the Watcher's
// lookups; a missing object means it was deleted. A returned error re-queues the key with
// rate-limited back-off.
type Handler func(ctx context.Context, key Key) error

// Options configure a Watcher.
type Options struct {
	Client kubernetes.Interface
	// Include limits the watch to these namespaces (one informer set each); empty means all.
	Include []string
	// Exclude drops these namespaces' objects before they reach the queue.
	Exclude []string
	Logger  *slog.Logger
	// Workers is how many keys are handled at once (default 2).
	Workers int
	// OnEvent is called once per enqueued key (a metric hook); may be nil.
	OnEvent func()
	// OnSynced is called once the caches have synced; may be nil.
	OnSynced func()
	// Clock times the queue's delayed keys (EnqueueAfter); nil means the real clock.
	Clock clock.WithTicker
	// Namespaces caches every Namespace (name, labels, kpulse.io/* annotations): routes with a
	// namespaceSelector and the annotations read it. Workloads caches the top workloads
	// (Deployments, StatefulSets, DaemonSets, CronJobs) of the watched namespaces the same way.
	// Both are off unless asked for; their caches hold no handlers (a label change affects the
	// next failure, not the incidents that fired).
	Namespaces bool
	Workloads  bool
}

// Watcher runs the informers and the workqueue.
type Watcher struct {
	opts    Options
	exclude map[string]bool
	queue   workqueue.TypedRateLimitingInterface[Key]
	sets    map[string]*informerSet // by namespace; "" = all namespaces
	// namespaces is the Namespace informer (Options.Namespaces); nil when off.
	namespaces cache.SharedIndexInformer
	synced     atomic.Bool
}

// informerSet is the pod and job informers of one namespace (or of all). They are built directly
// rather than through an informer factory, whose pod informer would add a namespace index (a set
// entry per pod) that kpulse never reads.
type informerSet struct {
	pods cache.SharedIndexInformer
	jobs cache.SharedIndexInformer
	// workloads are the top workloads' informers by kind (Options.Workloads); nil when off.
	workloads map[string]cache.SharedIndexInformer
}

// WorkloadKinds are the top workload kinds cached as Objects with Options.Workloads (a Job is
// in the Job cache).
var WorkloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet", "CronJob"}

const (
	// byController indexes Jobs by their controller's UID, to find a CronJob's other runs.
	byController = "kpulse/controller-uid"
	// byJob indexes the pods of Jobs by "namespace/job-name", to find a failed Job's pods; pods
	// without the job-name label have no entry.
	byJob = "kpulse/job"
)

var (
	podIndexers = cache.Indexers{byJob: indexByJob}
	jobIndexers = cache.Indexers{byController: indexByController}
)

// New builds the informers; nothing runs until Run.
func New(opts Options) (*Watcher, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	w := &Watcher{
		opts:    opts,
		exclude: map[string]bool{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[Key](),
			workqueue.TypedRateLimitingQueueConfig[Key]{Name: "kpulse", Clock: opts.Clock}),
		sets: map[string]*informerSet{},
	}
	for _, ns := range opts.Exclude {
		w.exclude[ns] = true
	}
	namespaces := opts.Include
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	for _, ns := range namespaces {
		set, err := w.newSet(ns)
		if err != nil {
			return nil, err
		}
		w.sets[ns] = set
	}
	if opts.Namespaces {
		c := opts.Client
		w.namespaces = newInformer(c, &corev1.Namespace{}, cache.Indexers{},
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.CoreV1().Namespaces().List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (apiwatch.Interface, error) {
				return c.CoreV1().Namespaces().Watch(ctx, o)
			})
		if err := w.namespaces.SetTransform(Slim); err != nil {
			return nil, fmt.Errorf("watch: set Namespace transform: %w", err)
		}
	}
	return w, nil
}

// workloadInformers builds the top workloads' informers of namespace ns, each with the Slim
// transform and no handler.
func workloadInformers(c kubernetes.Interface, ns string) (map[string]cache.SharedIndexInformer, error) {
	lw := func(example runtime.Object, list cache.ListWithContextFunc, watchFn cache.WatchFuncWithContext) cache.SharedIndexInformer {
		return newInformer(c, example, cache.Indexers{}, list, watchFn)
	}
	out := map[string]cache.SharedIndexInformer{
		"Deployment": lw(&appsv1.Deployment{},
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.AppsV1().Deployments(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (apiwatch.Interface, error) {
				return c.AppsV1().Deployments(ns).Watch(ctx, o)
			}),
		"StatefulSet": lw(&appsv1.StatefulSet{},
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.AppsV1().StatefulSets(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (apiwatch.Interface, error) {
				return c.AppsV1().StatefulSets(ns).Watch(ctx, o)
			}),
		"DaemonSet": lw(&appsv1.DaemonSet{},
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.AppsV1().DaemonSets(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (apiwatch.Interface, error) {
				return c.AppsV1().DaemonSets(ns).Watch(ctx, o)
			}),
		"CronJob": lw(&batchv1.CronJob{},
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.BatchV1().CronJobs(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (apiwatch.Interface, error) {
				return c.BatchV1().CronJobs(ns).Watch(ctx, o)
			}),
	}
	for kind, inf := range out {
		if err := inf.SetTransform(Slim); err != nil {
			return nil, fmt.Errorf("watch: set %s transform: %w", kind, err)
		}
	}
	return out, nil
}

func (w *Watcher) newSet(ns string) (*informerSet, error) {
	c := w.opts.Client
	podInf := newInformer(c, &corev1.Pod{}, podIndexers,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.CoreV1().Pods(ns).List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (apiwatch.Interface, error) {
			return c.CoreV1().Pods(ns).Watch(ctx, o)
		})
	jobInf := newInformer(c, &batchv1.Job{}, jobIndexers,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.BatchV1().Jobs(ns).List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (apiwatch.Interface, error) {
			return c.BatchV1().Jobs(ns).Watch(ctx, o)
		})
	for kind, inf := range map[Kind]cache.SharedIndexInformer{KindPod: podInf, KindJob: jobInf} {
		if err := inf.SetTransform(Slim); err != nil {
			return nil, fmt.Errorf("watch: set %s transform: %w", kind, err)
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { w.enqueue(kind, obj) },
			UpdateFunc: func(_, obj any) { w.enqueue(kind, obj) },
			DeleteFunc: func(obj any) { w.enqueue(kind, obj) },
		}); err != nil {
			return nil, fmt.Errorf("watch: add %s handler: %w", kind, err)
		}
	}
	set := &informerSet{pods: podInf, jobs: jobInf}
	if w.opts.Workloads {
		var err error
		if set.workloads, err = workloadInformers(c, ns); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// hasSynced lists what must have synced before the workers start.
func (s *informerSet) hasSynced() []cache.InformerSynced {
	out := []cache.InformerSynced{s.pods.HasSynced, s.jobs.HasSynced}
	for _, inf := range s.workloads {
		out = append(out, inf.HasSynced)
	}
	return out
}

// newInformer is what client-go's generated informers build, minus their namespace index.
func newInformer(client kubernetes.Interface, example runtime.Object, indexers cache.Indexers,
	list cache.ListWithContextFunc, watchFn cache.WatchFuncWithContext) cache.SharedIndexInformer {
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: list, WatchFuncWithContext: watchFn,
	}, client)
	return cache.NewSharedIndexInformerWithOptions(lw, example, cache.SharedIndexInformerOptions{Indexers: indexers})
}

func indexByController(obj any) ([]string, error) {
	if j, ok := obj.(*Job); ok {
		if o, ok := j.Controller(); ok && o.UID != "" {
			return []string{string(o.UID)}, nil
		}
	}
	return nil, nil
}

func indexByJob(obj any) ([]string, error) {
	if p, ok := obj.(*Pod); ok {
		if job := p.JobName(); job != "" {
			return []string{p.Namespace() + "/" + job}, nil
		}
	}
	return nil, nil
}

// objectName is the key of a cached object or tombstone. It reads a Pod or Job directly rather
// than through meta.Accessor, which would build an ObjectMeta for every event.
func objectName(obj any) (cache.ObjectName, error) {
	switch o := obj.(type) {
	case *Pod:
		return cache.ObjectName{Namespace: o.Namespace(), Name: o.Name}, nil
	case *Job:
		return cache.ObjectName{Namespace: o.Namespace(), Name: o.Name}, nil
	}
	return cache.DeletionHandlingObjectToName(obj)
}

// enqueue is the whole event handler: it only computes the key.
func (w *Watcher) enqueue(kind Kind, obj any) {
	name, err := objectName(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	if w.exclude[name.Namespace] {
		return
	}
	w.queue.Add(Key{Kind: kind, ObjectName: name})
	if w.opts.OnEvent != nil {
		w.opts.OnEvent()
	}
}

// Enqueue asks for another look at an object (e.g. a CronJob's older failed runs when a newer
// one succeeds).
func (w *Watcher) Enqueue(key Key) {
	if !w.exclude[key.Namespace] {
		w.queue.Add(key)
	}
}

// EnqueueAfter asks for another look at an object once d has passed: detection whose answer
// changes with time while the object does not (a restart leaving the window a rate is counted
// over) says when to look again. A key already waiting keeps the earlier of the two times, and a
// key that is added meanwhile is handled then too, so a delayed look is never lost nor doubled
// for long.
func (w *Watcher) EnqueueAfter(key Key, d time.Duration) {
	if !w.exclude[key.Namespace] {
		w.queue.AddAfter(key, d)
	}
}

// Synced reports whether every informer cache has synced.
func (w *Watcher) Synced() bool { return w.synced.Load() }

// Run starts the informers, waits for their caches, then runs the workers with handle until ctx
// ends. On return the queue has drained and every goroutine it started has ended.
func (w *Watcher) Run(ctx context.Context, handle Handler) error {
	informerCtx, stopInformers := context.WithCancel(ctx)
	var informers, workers sync.WaitGroup
	defer func() {
		w.queue.ShutDownWithDrain()
		workers.Wait()
		stopInformers()
		informers.Wait()
	}()
	for _, s := range w.sets {
		informers.Go(func() { s.pods.RunWithContext(informerCtx) })
		informers.Go(func() { s.jobs.RunWithContext(informerCtx) })
		for _, inf := range s.workloads {
			informers.Go(func() { inf.RunWithContext(informerCtx) })
		}
	}
	if w.namespaces != nil {
		informers.Go(func() { w.namespaces.RunWithContext(informerCtx) })
		if !cache.WaitForCacheSync(ctx.Done(), w.namespaces.HasSynced) {
			if ctx.Err() != nil {
				return nil
			}
			return errors.New("watch: the Namespace cache did not sync")
		}
	}
	log := w.opts.Logger
	start := time.Now()
	for ns, s := range w.sets {
		if !cache.WaitForCacheSync(ctx.Done(), s.hasSynced()...) {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch: caches of namespace %q did not sync", ns)
		}
	}
	w.synced.Store(true)
	if w.opts.OnSynced != nil {
		w.opts.OnSynced()
	}
	log.Info("caches synced", "durationMs", time.Since(start).Milliseconds())

	for range w.opts.Workers {
		workers.Go(func() {
			for w.next(ctx, handle) {
			}
		})
	}
	<-ctx.Done()
	return nil
}

func (w *Watcher) next(ctx context.Context, handle Handler) bool {
	key, quit := w.queue.Get()
	if quit {
		return false
	}
	defer w.queue.Done(key)
	if err := handle(ctx, key); err != nil {
		w.opts.Logger.Warn("handle object", "kind", key.Kind, "namespace", key.Namespace, "name", key.Name, "err", err)
		w.queue.AddRateLimited(key)
		return true
	}
	w.queue.Forget(key)
	return true
}

func (w *Watcher) set(ns string) *informerSet {
	if s, ok := w.sets[metav1.NamespaceAll]; ok {
		return s
	}
	return w.sets[ns]
}

// Pod returns the cached Pod; callers must not modify it.
func (w *Watcher) Pod(ns, name string) (*Pod, bool) {
	s := w.set(ns)
	if s == nil {
		return nil, false
	}
	return get[*Pod](s.pods.GetIndexer(), ns, name)
}

// Job returns the cached Job; callers must not modify it.
func (w *Watcher) Job(ns, name string) (*Job, bool) {
	s := w.set(ns)
	if s == nil {
		return nil, false
	}
	return get[*Job](s.jobs.GetIndexer(), ns, name)
}

func get[T any](idx cache.Indexer, ns, name string) (T, bool) {
	obj, ok, err := idx.GetByKey(cache.ObjectName{Namespace: ns, Name: name}.String())
	t, isT := obj.(T)
	return t, ok && err == nil && isT
}

// WatchesNamespaces and WatchesWorkloads say whether Options.Namespaces and Options.Workloads
// were on.
func (w *Watcher) WatchesNamespaces() bool { return w.opts.Namespaces }
func (w *Watcher) WatchesWorkloads() bool  { return w.opts.Workloads }

// Namespace returns the cached Namespace; false when Options.Namespaces is off or it is unknown.
func (w *Watcher) Namespace(name string) (*Object, bool) {
	if w.namespaces == nil {
		return nil, false
	}
	return get[*Object](w.namespaces.GetIndexer(), "", name)
}

// Workload returns the cached top workload of a kind among WorkloadKinds; false when
// Options.Workloads is off, the kind is not cached or the object is unknown.
func (w *Watcher) Workload(kind, ns, name string) (*Object, bool) {
	s := w.set(ns)
	if s == nil || s.workloads[kind] == nil {
		return nil, false
	}
	return get[*Object](s.workloads[kind].GetIndexer(), ns, name)
}

// JobsControlledBy returns the cached Jobs of a namespace whose controller has the given UID;
// callers must not modify them.
func (w *Watcher) JobsControlledBy(ns string, uid string) []*Job {
	s := w.set(ns)
	if s == nil {
		return nil
	}
	return byIndex(s.jobs.GetIndexer(), byController, uid, func(j *Job) bool { return j.Namespace() == ns })
}

// PodsOfJob returns the cached Pods that carry the job-name label of Job ns/job; callers must not
// modify them.
func (w *Watcher) PodsOfJob(ns, job string) []*Pod {
	s := w.set(ns)
	if s == nil {
		return nil
	}
	return byIndex(s.pods.GetIndexer(), byJob, ns+"/"+job, func(*Pod) bool { return true })
}

func byIndex[T any](idx cache.Indexer, index, value string, keep func(T) bool) []T {
	objs, err := idx.ByIndex(index, value)
	if err != nil {
		return nil
	}
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if t, ok := o.(T); ok && keep(t) {
			out = append(out, t)
		}
	}
	return out
}
