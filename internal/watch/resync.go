package watch

// EnqueueAll queues every cached object for another look: a replica that starts to lead decides
// about everything its warm caches hold, as if it had just listed them.
func (w *Watcher) EnqueueAll() {
	for _, s := range w.sets {
		for kind, inf := range s.byKind {
			for _, obj := range inf.GetStore().List() {
				w.enqueue(kind, obj)
			}
		}
	}
	if w.nodes != nil {
		for _, obj := range w.nodes.GetStore().List() {
			w.enqueue(KindNode, obj)
		}
	}
}
