package watch

// EnqueueAll queues every cached object for another look: a replica that starts to lead decides
// about everything its warm caches hold, as if it had just listed them. Nodes go first, so that
// a node that is down has its incident before its pods are looked at, which then fold into it.
func (w *Watcher) EnqueueAll() {
	if w.nodes != nil {
		for _, obj := range w.nodes.GetStore().List() {
			w.enqueue(KindNode, obj)
		}
	}
	for _, s := range w.sets {
		for kind, inf := range s.byKind {
			for _, obj := range inf.GetStore().List() {
				w.enqueue(kind, obj)
			}
		}
	}
}
