// Package watch owns the shared informers for Pods, Jobs, Nodes, Deployments, DaemonSets,
// StatefulSets and CronJobs, the transform that turns each decoded object into kpulse's own small
// type of the same name (all the cache holds), and the workqueue: event handlers only enqueue
// keys; workers re-read the latest object from the cache, so a burst of updates to one object
// merges into one decision.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	typedappsv1 "k8s.io/client-go/kubernetes/typed/apps/v1"
	typedbatchv1 "k8s.io/client-go/kubernetes/typed/batch/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Kind says which informer a key came from.
type Kind string

const (
	KindPod         Kind = "Pod"
	KindJob         Kind = "Job"
	KindNode        Kind = "Node"
	KindDeployment  Kind = "Deployment"
	KindDaemonSet   Kind = "DaemonSet"
	KindStatefulSet Kind = "StatefulSet"
	KindCronJob     Kind = "CronJob"
)

// OptionalKinds are the kinds a Watcher may be told to skip (Options.Skip): each serves only
// detection classes of its own. Pods and Jobs are always watched.
var OptionalKinds = []Kind{KindNode, KindDeployment, KindDaemonSet, KindStatefulSet, KindCronJob}

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
	// Skip names kinds of OptionalKinds not to watch (their classes are switched off): no
	// informer, no cache, no RBAC needed for them.
	Skip   []Kind
	Logger *slog.Logger
	// Workers is how many keys are handled at once (default 2).
	Workers int
	// OnEvent is called once per enqueued key (a metric hook); may be nil.
	OnEvent func()
	// OnSynced is called once the caches have synced; may be nil.
	OnSynced func()
	// Clock times the queue's delayed keys (EnqueueAfter); nil means the real clock.
	Clock clock.WithTicker
	// Namespaces caches every Namespace (name, labels, kpulse.io/* annotations), with no
	// handler: routes with a namespaceSelector and the annotations read it. Workloads keeps the
	// top workloads (Deployments, StatefulSets, DaemonSets, CronJobs) watched whatever Skip says,
	// for their labels and kpulse.io/* annotations (Watcher.Workload). Both off unless asked for.
	Namespaces bool
	Workloads  bool
}

// Watcher runs the informers and the workqueue.
type Watcher struct {
	opts    Options
	exclude map[string]bool
	queue   workqueue.TypedRateLimitingInterface[Key]
	sets    map[string]*informerSet // by namespace; "" = all namespaces
	// nodes is the one Node informer: Nodes belong to no namespace, so it watches the whole
	// cluster whatever Include says. Nil when Skip names KindNode.
	nodes cache.SharedIndexInformer
	// namespaces is the Namespace informer (Options.Namespaces); nil when off.
	namespaces cache.SharedIndexInformer
	synced     atomic.Bool
	// handlers report whether each informer's handler has had its initial list's events.
	handlers []cache.InformerSynced
	// sweepAsked holds an ask for a sweep (sweep.go); taken a worker's signal that it took a key.
	sweepAsked chan struct{}
	taken      chan struct{}
}

// informerSet is the informers of one namespace (or of all). They are built directly rather than
// through an informer factory, whose informers would add a namespace index (a set entry per
// object) that kpulse never reads. A kind the Watcher skips has no informer.
type informerSet struct {
	byKind map[Kind]cache.SharedIndexInformer
}

func (s *informerSet) indexer(k Kind) cache.Indexer {
	if inf, ok := s.byKind[k]; ok {
		return inf.GetIndexer()
	}
	return nil
}

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
		sets:       map[string]*informerSet{},
		sweepAsked: make(chan struct{}, 1),
		taken:      make(chan struct{}, 1),
	}
	for _, ns := range opts.Exclude {
		w.exclude[ns] = true
	}
	namespaces := opts.Include
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	skip := map[Kind]bool{}
	for _, k := range opts.Skip {
		if !slices.Contains(OptionalKinds, k) {
			return nil, fmt.Errorf("watch: cannot skip kind %q: only %v are optional", k, OptionalKinds)
		}
		skip[k] = true
	}
	if opts.Workloads {
		for _, k := range WorkloadKinds {
			delete(skip, Kind(k))
		}
	}
	for _, ns := range namespaces {
		set := &informerSet{byKind: map[Kind]cache.SharedIndexInformer{}}
		for _, src := range namespaced {
			if skip[src.kind] {
				continue
			}
			inf, err := w.newInformer(src, ns)
			if err != nil {
				return nil, err
			}
			set.byKind[src.kind] = inf
		}
		w.sets[ns] = set
	}
	if !skip[KindNode] {
		var err error
		if w.nodes, err = w.newInformer(nodeSource, metav1.NamespaceAll); err != nil {
			return nil, err
		}
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

// WorkloadKinds are the top workload kinds Options.Workloads keeps watched for their labels and
// annotations (a Job's are in the Job cache).
var WorkloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet", "CronJob"}

// source is how to list and watch one kind in a namespace ("" for all, and for Nodes).
type source struct {
	kind     Kind
	example  runtime.Object
	indexers cache.Indexers
	lw       func(c kubernetes.Interface, ns string) (cache.ListWithContextFunc, cache.WatchFuncWithContext)
}

// listWatcher is what client-go's typed clients have in common for a kind.
type listWatcher[L runtime.Object] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (apiwatch.Interface, error)
}

// newSource is the source of a kind whose typed client client returns.
func newSource[L runtime.Object, C listWatcher[L]](kind Kind, example runtime.Object, indexers cache.Indexers,
	client func(c kubernetes.Interface, ns string) C) source {
	return source{kind: kind, example: example, indexers: indexers,
		lw: func(c kubernetes.Interface, ns string) (cache.ListWithContextFunc, cache.WatchFuncWithContext) {
			typed := client(c, ns)
			return func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return typed.List(ctx, o) },
				typed.Watch
		}}
}

// namespaced are the sources of the namespaced kinds, Pods first (the informers start in this
// order).
var namespaced = []source{
	newSource(KindPod, &corev1.Pod{}, podIndexers,
		func(c kubernetes.Interface, ns string) typedcorev1.PodInterface { return c.CoreV1().Pods(ns) }),
	newSource(KindJob, &batchv1.Job{}, jobIndexers,
		func(c kubernetes.Interface, ns string) typedbatchv1.JobInterface { return c.BatchV1().Jobs(ns) }),
	newSource(KindDeployment, &appsv1.Deployment{}, nil,
		func(c kubernetes.Interface, ns string) typedappsv1.DeploymentInterface {
			return c.AppsV1().Deployments(ns)
		}),
	newSource(KindDaemonSet, &appsv1.DaemonSet{}, nil,
		func(c kubernetes.Interface, ns string) typedappsv1.DaemonSetInterface {
			return c.AppsV1().DaemonSets(ns)
		}),
	newSource(KindStatefulSet, &appsv1.StatefulSet{}, nil,
		func(c kubernetes.Interface, ns string) typedappsv1.StatefulSetInterface {
			return c.AppsV1().StatefulSets(ns)
		}),
	newSource(KindCronJob, &batchv1.CronJob{}, nil,
		func(c kubernetes.Interface, ns string) typedbatchv1.CronJobInterface { return c.BatchV1().CronJobs(ns) }),
}

var nodeSource = newSource(KindNode, &corev1.Node{}, nil,
	func(c kubernetes.Interface, _ string) typedcorev1.NodeInterface { return c.CoreV1().Nodes() })

// newInformer builds src's informer for namespace ns, with the transform and a handler that only
// enqueues keys.
func (w *Watcher) newInformer(src source, ns string) (cache.SharedIndexInformer, error) {
	c := w.opts.Client
	list, watchFn := src.lw(c, ns)
	inf := newInformer(c, src.example, src.indexers, list, watchFn)
	if err := inf.SetTransform(Slim); err != nil {
		return nil, fmt.Errorf("watch: set %s transform: %w", src.kind, err)
	}
	kind := src.kind
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.enqueue(kind, obj) },
		UpdateFunc: func(_, obj any) { w.enqueue(kind, obj) },
		DeleteFunc: func(obj any) { w.enqueue(kind, obj) },
	})
	if err != nil {
		return nil, fmt.Errorf("watch: add %s handler: %w", src.kind, err)
	}
	w.handlers = append(w.handlers, reg.HasSynced)
	return inf, nil
}

// newInformer is what client-go's generated informers build, minus their namespace index.
func newInformer(client kubernetes.Interface, example runtime.Object, indexers cache.Indexers,
	list cache.ListWithContextFunc, watchFn cache.WatchFuncWithContext) cache.SharedIndexInformer {
	if indexers == nil {
		indexers = cache.Indexers{}
	}
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

// objectName is the key of a cached object or tombstone. It reads kpulse's types directly rather
// than through meta.Accessor, which would build an ObjectMeta for every event.
func objectName(obj any) (cache.ObjectName, error) {
	switch o := obj.(type) {
	case *Pod:
		return cache.ObjectName{Namespace: o.Namespace(), Name: o.Name}, nil
	case *Job:
		return cache.ObjectName{Namespace: o.Namespace(), Name: o.Name}, nil
	case interface{ objectName() (string, string) }:
		ns, name := o.objectName()
		return cache.ObjectName{Namespace: ns, Name: name}, nil
	}
	return cache.DeletionHandlingObjectToName(obj)
}

// enqueue is the whole event handler: it only computes the key.
func (w *Watcher) enqueue(kind Kind, obj any) {
	if !w.synced.Load() {
		return // the sweep after the sync looks at every cached object (sweep.go)
	}
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
// ends. Once the caches have synced it sweeps them (every cached object is handled once, see
// sweep.go); events are queued from then on. On return the queue has drained and every
// goroutine it started has ended.
func (w *Watcher) Run(ctx context.Context, handle Handler) error {
	informerCtx, stopInformers := context.WithCancel(ctx)
	var informers, workers sync.WaitGroup
	defer func() {
		w.queue.ShutDownWithDrain()
		workers.Wait()
		stopInformers()
		informers.Wait()
	}()
	for _, inf := range w.informers() {
		informers.Go(func() { inf.RunWithContext(informerCtx) })
	}
	log := w.opts.Logger
	start := time.Now()
	for ns, s := range w.sets {
		var synced []cache.InformerSynced
		for _, inf := range s.byKind {
			synced = append(synced, inf.HasSynced)
		}
		if !cache.WaitForCacheSync(ctx.Done(), synced...) {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch: caches of namespace %q did not sync", ns)
		}
	}
	if w.nodes != nil && !cache.WaitForCacheSync(ctx.Done(), w.nodes.HasSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("watch: the Node cache did not sync")
	}
	if w.namespaces != nil && !cache.WaitForCacheSync(ctx.Done(), w.namespaces.HasSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("watch: the Namespace cache did not sync")
	}
	// The handlers have had every event of the initial lists (and queued none, see enqueue):
	// none comes in after the sync to be queued beside the sweep.
	if !cache.WaitForCacheSync(ctx.Done(), w.handlers...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("watch: the event handlers did not get the initial lists")
	}
	w.synced.Store(true)
	if w.opts.OnSynced != nil {
		w.opts.OnSynced()
	}
	log.Info("caches synced", "durationMs", time.Since(start).Milliseconds())

	w.EnqueueAll()
	workers.Go(func() { w.sweeper(ctx) })
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
	select {
	case w.taken <- struct{}{}:
	default:
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

// informers lists every informer: each namespace's, Pods first, then the Node informer.
func (w *Watcher) informers() []cache.SharedIndexInformer {
	var out []cache.SharedIndexInformer
	for _, s := range w.sets {
		for _, src := range namespaced {
			if inf, ok := s.byKind[src.kind]; ok {
				out = append(out, inf)
			}
		}
	}
	if w.nodes != nil {
		out = append(out, w.nodes)
	}
	if w.namespaces != nil {
		out = append(out, w.namespaces)
	}
	return out
}

func (w *Watcher) set(ns string) *informerSet {
	if s, ok := w.sets[metav1.NamespaceAll]; ok {
		return s
	}
	return w.sets[ns]
}

// lookup returns the cached object of kind k; false when it is not cached (or k is skipped).
func lookup[T any](w *Watcher, k Kind, ns, name string) (T, bool) {
	var zero T
	s := w.set(ns)
	if s == nil {
		return zero, false
	}
	idx := s.indexer(k)
	if idx == nil {
		return zero, false
	}
	return get[T](idx, ns, name)
}

// Pod returns the cached Pod; callers must not modify it.
func (w *Watcher) Pod(ns, name string) (*Pod, bool) { return lookup[*Pod](w, KindPod, ns, name) }

// Job returns the cached Job; callers must not modify it.
func (w *Watcher) Job(ns, name string) (*Job, bool) { return lookup[*Job](w, KindJob, ns, name) }

// Deployment returns the cached Deployment; callers must not modify it.
func (w *Watcher) Deployment(ns, name string) (*Deployment, bool) {
	return lookup[*Deployment](w, KindDeployment, ns, name)
}

// DaemonSet returns the cached DaemonSet; callers must not modify it.
func (w *Watcher) DaemonSet(ns, name string) (*DaemonSet, bool) {
	return lookup[*DaemonSet](w, KindDaemonSet, ns, name)
}

// StatefulSet returns the cached StatefulSet; callers must not modify it.
func (w *Watcher) StatefulSet(ns, name string) (*StatefulSet, bool) {
	return lookup[*StatefulSet](w, KindStatefulSet, ns, name)
}

// CronJob returns the cached CronJob; callers must not modify it.
func (w *Watcher) CronJob(ns, name string) (*CronJob, bool) {
	return lookup[*CronJob](w, KindCronJob, ns, name)
}

// Node returns the cached Node; callers must not modify it.
func (w *Watcher) Node(name string) (*Node, bool) {
	if w.nodes == nil {
		return nil, false
	}
	return get[*Node](w.nodes.GetIndexer(), "", name)
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

// Workload returns the name, labels and kpulse.io/* annotations of a cached top workload of a
// kind among WorkloadKinds; false when that kind is not watched or the object is unknown.
func (w *Watcher) Workload(kind, ns, name string) (*Object, bool) {
	var m *Meta
	switch kind {
	case "Deployment":
		if o, ok := w.Deployment(ns, name); ok {
			m = &o.Meta
		}
	case "StatefulSet":
		if o, ok := w.StatefulSet(ns, name); ok {
			m = &o.Meta
		}
	case "DaemonSet":
		if o, ok := w.DaemonSet(ns, name); ok {
			m = &o.Meta
		}
	case "CronJob":
		if o, ok := w.CronJob(ns, name); ok {
			m = &o.Meta
		}
	}
	if m == nil {
		return nil, false
	}
	return m.object(), true
}

func get[T any](idx cache.Indexer, ns, name string) (T, bool) {
	obj, ok, err := idx.GetByKey(cache.ObjectName{Namespace: ns, Name: name}.String())
	t, isT := obj.(T)
	return t, ok && err == nil && isT
}

// JobsControlledBy returns the cached Jobs of a namespace whose controller has the given UID;
// callers must not modify them.
func (w *Watcher) JobsControlledBy(ns string, uid string) []*Job {
	s := w.set(ns)
	if s == nil {
		return nil
	}
	return byIndex(s.indexer(KindJob), byController, uid, func(j *Job) bool { return j.Namespace() == ns })
}

// PodsOfJob returns the cached Pods that carry the job-name label of Job ns/job; callers must not
// modify them.
func (w *Watcher) PodsOfJob(ns, job string) []*Pod {
	s := w.set(ns)
	if s == nil {
		return nil
	}
	return byIndex(s.indexer(KindPod), byJob, ns+"/"+job, func(*Pod) bool { return true })
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

// PodsOnNode returns the cached Pods bound to node; callers must not modify them. It scans the
// pod caches: there is no index by node, which would cost memory for every pod, and this is for
// the rare moment a node goes.
func (w *Watcher) PodsOnNode(node string) []*Pod {
	var out []*Pod
	for _, s := range w.sets {
		idx := s.indexer(KindPod)
		if idx == nil {
			continue
		}
		for _, obj := range idx.List() {
			if p, ok := obj.(*Pod); ok && p.NodeName() == node {
				out = append(out, p)
			}
		}
	}
	return out
}
