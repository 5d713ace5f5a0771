package watch

import "context"

// A sweep queues every cached object for a look: once when the caches have synced (Run), and
// again whenever EnqueueAll asks. Once the queue holds sweepBatch keys it waits until the workers
// have brought it down to half of that before it queues more.
//
// Why paced: the workqueue's sets and its backing slice grow to the most keys they ever held and
// never shrink. Queuing 150k pods at once (as the informers' initial Add events used to, before
// any worker ran) left some 20 MB of empty capacity in the heap for the life of the process, and
// made the initial list's peak higher. Paced, the queue holds at most sweepBatch keys more than
// the events in flight. For the same reason the informers' events are not queued before the
// caches have synced: the sweep that follows the sync covers every object they named (an object
// deleted meanwhile was never known to this process).
const sweepBatch = 512

// EnqueueAll asks for a sweep: a replica that starts to lead decides about everything its warm
// caches hold, as if it had just listed them. It returns at once; the sweep runs in Run's
// goroutines. Asks made while a sweep runs give one more sweep after it, however many they are.
// Nodes go first, so that a node that is down has its incident before its pods are looked at,
// which then fold into it.
func (w *Watcher) EnqueueAll() {
	select {
	case w.sweepAsked <- struct{}{}:
	default: // a sweep is already asked for and has not started: it covers this ask too
	}
}

// sweeper runs the sweeps that are asked for until ctx ends.
func (w *Watcher) sweeper(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.sweepAsked:
		}
		if !w.sweep(ctx) {
			return
		}
	}
}

// sweep queues every cached object, nodes first, then each namespace's kinds in the order of
// namespaced; false when ctx ended first.
func (w *Watcher) sweep(ctx context.Context) bool {
	queue := func(kind Kind, objs []any) bool {
		for _, obj := range objs {
			w.enqueue(kind, obj)
			if w.queue.Len() >= sweepBatch && !w.waitQueueBelow(ctx, sweepBatch/2) {
				return false
			}
		}
		return true
	}
	if w.nodes != nil && !queue(KindNode, w.nodes.GetStore().List()) {
		return false
	}
	for _, s := range w.sets {
		for _, src := range namespaced {
			if inf, ok := s.byKind[src.kind]; ok && !queue(src.kind, inf.GetStore().List()) {
				return false
			}
		}
	}
	return true
}

// waitQueueBelow waits until at most n keys wait in the queue; false when ctx ended first. The
// workers signal each key they take (taken holds one signal, so none is missed between the
// length check and the wait).
func (w *Watcher) waitQueueBelow(ctx context.Context, n int) bool {
	for w.queue.Len() > n {
		select {
		case <-ctx.Done():
			return false
		case <-w.taken:
		}
	}
	return true
}
