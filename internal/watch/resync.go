package watch

// EnqueueAll queues every cached Pod and Job for another look: a replica that starts to lead
// decides about everything its warm caches hold, as if it had just listed them.
func (w *Watcher) EnqueueAll() {
	for _, s := range w.sets {
		for _, obj := range s.pods.GetStore().List() {
			w.enqueue(KindPod, obj)
		}
		for _, obj := range s.jobs.GetStore().List() {
			w.enqueue(KindJob, obj)
		}
	}
}
