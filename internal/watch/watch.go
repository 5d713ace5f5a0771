// Package watch owns the shared informers for Pods and Jobs, the transforms that strip what kpulse
// never reads, and the workqueue: event handlers only enqueue keys; workers re-read the latest
// object from the cache, so a burst of updates to one object merges into one decision.
package watch

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
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
}

// Watcher runs the informers and the workqueue.
type Watcher struct {
	opts    Options
	exclude map[string]bool
	queue   workqueue.TypedRateLimitingInterface[Key]
	sets    map[string]*informerSet // by namespace; "" = all namespaces
	synced  atomic.Bool
}

type informerSet struct {
	factory informers.SharedInformerFactory
	pods    corelisters.PodLister
	jobs    batchlisters.JobLister
	jobIdx  cache.Indexer
	podInf  cache.SharedIndexInformer
	jobInf  cache.SharedIndexInformer
}

// byOwner indexes Jobs by their controller's UID, to find a CronJob's other runs.
const byOwner = "kpulse/controller-uid"

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
			workqueue.TypedRateLimitingQueueConfig[Key]{Name: "kpulse"}),
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
	return w, nil
}

func (w *Watcher) newSet(ns string) (*informerSet, error) {
	f := informers.NewSharedInformerFactoryWithOptions(w.opts.Client, 0,
		informers.WithNamespace(ns), informers.WithTransform(Slim))
	podInf := f.Core().V1().Pods().Informer()
	jobInf := f.Batch().V1().Jobs().Informer()
	if err := jobInf.AddIndexers(cache.Indexers{byOwner: indexByController}); err != nil {
		return nil, fmt.Errorf("watch: add job index: %w", err)
	}
	for kind, inf := range map[Kind]cache.SharedIndexInformer{KindPod: podInf, KindJob: jobInf} {
		kind := kind
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { w.enqueue(kind, obj) },
			UpdateFunc: func(_, obj any) { w.enqueue(kind, obj) },
			DeleteFunc: func(obj any) { w.enqueue(kind, obj) },
		}); err != nil {
			return nil, fmt.Errorf("watch: add %s handler: %w", kind, err)
		}
	}
	return &informerSet{
		factory: f,
		pods:    f.Core().V1().Pods().Lister(),
		jobs:    f.Batch().V1().Jobs().Lister(),
		jobIdx:  jobInf.GetIndexer(),
		podInf:  podInf,
		jobInf:  jobInf,
	}, nil
}

func indexByController(obj any) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// enqueue is the whole event handler: it only computes the key.
func (w *Watcher) enqueue(kind Kind, obj any) {
	name, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		runtime.HandleError(err)
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

// Synced reports whether every informer cache has synced.
func (w *Watcher) Synced() bool { return w.synced.Load() }

// Run starts the informers, waits for their caches, then runs the workers with handle until ctx
// ends. On return the queue has drained and every goroutine it started has ended.
func (w *Watcher) Run(ctx context.Context, handle Handler) error {
	var wg sync.WaitGroup
	defer func() {
		w.queue.ShutDownWithDrain()
		wg.Wait()
		for _, s := range w.sets {
			s.factory.Shutdown()
		}
	}()
	for _, s := range w.sets {
		s.factory.Start(ctx.Done())
	}
	log := w.opts.Logger
	start := time.Now()
	for ns, s := range w.sets {
		if !cache.WaitForCacheSync(ctx.Done(), s.podInf.HasSynced, s.jobInf.HasSynced) {
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

	for i := 0; i < w.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w.next(ctx, handle) {
			}
		}()
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
func (w *Watcher) Pod(ns, name string) (*corev1.Pod, bool) {
	s := w.set(ns)
	if s == nil {
		return nil, false
	}
	p, err := s.pods.Pods(ns).Get(name)
	return p, err == nil
}

// Job returns the cached Job; callers must not modify it.
func (w *Watcher) Job(ns, name string) (*batchv1.Job, bool) {
	s := w.set(ns)
	if s == nil {
		return nil, false
	}
	j, err := s.jobs.Jobs(ns).Get(name)
	return j, err == nil
}

// JobsControlledBy returns the cached Jobs whose controller has the given UID.
func (w *Watcher) JobsControlledBy(ns string, uid string) []*batchv1.Job {
	s := w.set(ns)
	if s == nil {
		return nil
	}
	objs, err := s.jobIdx.ByIndex(byOwner, uid)
	if err != nil {
		return nil
	}
	out := make([]*batchv1.Job, 0, len(objs))
	for _, o := range objs {
		if j, ok := o.(*batchv1.Job); ok && j.Namespace == ns {
			out = append(out, j)
		}
	}
	return out
}

// PodsMatching returns the cached Pods of a namespace that match sel; callers must not modify them.
func (w *Watcher) PodsMatching(ns string, sel labels.Selector) []*corev1.Pod {
	s := w.set(ns)
	if s == nil {
		return nil
	}
	pods, err := s.pods.Pods(ns).List(sel)
	if err != nil {
		return nil
	}
	return pods
}
