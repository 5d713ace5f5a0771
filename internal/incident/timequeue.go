package incident

import (
	"container/heap"
	"time"
)

// timeQueue holds at most one time per key, earliest first, so that the engine finds its next
// deadline without looking at every incident. Setting, removing and popping cost O(log n).
// It is not safe for concurrent use: the engine's mutex guards it.
type timeQueue[K comparable] struct {
	items []timedKey[K]
	pos   map[K]int // where each key is in items
}

type timedKey[K comparable] struct {
	at  time.Time
	key K
}

func newTimeQueue[K comparable]() *timeQueue[K] {
	return &timeQueue[K]{pos: map[K]int{}}
}

// set gives k the time at, adding k if it is new.
func (q *timeQueue[K]) set(k K, at time.Time) {
	if i, ok := q.pos[k]; ok {
		if !q.items[i].at.Equal(at) {
			q.items[i].at = at
			heap.Fix(q, i)
		}
		return
	}
	heap.Push(q, timedKey[K]{at: at, key: k})
}

// remove forgets k; removing an unknown key does nothing.
func (q *timeQueue[K]) remove(k K) {
	if i, ok := q.pos[k]; ok {
		heap.Remove(q, i)
	}
}

// first returns the earliest entry; false when the queue is empty.
func (q *timeQueue[K]) first() (timedKey[K], bool) {
	if len(q.items) == 0 {
		return timedKey[K]{}, false
	}
	return q.items[0], true
}

// popFirst removes and returns the earliest entry; the queue must not be empty.
func (q *timeQueue[K]) popFirst() timedKey[K] {
	return heap.Pop(q).(timedKey[K])
}

// The methods below are heap.Interface, for container/heap only.

func (q *timeQueue[K]) Len() int { return len(q.items) }

func (q *timeQueue[K]) Less(i, j int) bool { return q.items[i].at.Before(q.items[j].at) }

func (q *timeQueue[K]) Swap(i, j int) {
	q.items[i], q.items[j] = q.items[j], q.items[i]
	q.pos[q.items[i].key] = i
	q.pos[q.items[j].key] = j
}

func (q *timeQueue[K]) Push(x any) {
	tk := x.(timedKey[K])
	q.pos[tk.key] = len(q.items)
	q.items = append(q.items, tk)
}

func (q *timeQueue[K]) Pop() any {
	last := len(q.items) - 1
	tk := q.items[last]
	q.items[last] = timedKey[K]{} // let the key's memory go
	q.items = q.items[:last]
	delete(q.pos, tk.key)
	return tk
}
