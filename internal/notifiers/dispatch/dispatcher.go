// Package dispatch delivers notifications to the channels: each channel has its own queue and
// worker, so a slow or failing channel never delays another; a worker retries with back-off
// (or after the service's Retry-After) until delivery.maxAge, folds storms and overflows into
// digests, sends test messages, and keeps a panicking render from losing an alert (it sends the
// minimal fallback). It holds only what is in flight: every outcome goes to one Ledger, which
// keeps what is owed, how each delivery went and each channel's reference with the incident.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// Defaults of Options.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = time.Minute
	DefaultMaxAge         = time.Hour
	DefaultDrainTimeout   = 5 * time.Second
	DefaultQueueLimit     = 10000
	DefaultDigestWindow   = time.Minute
	DefaultDigestMaxWait  = 10 * time.Second
)

// maxRetryAfter caps the delay a peer may ask for: a Retry-After of a day would otherwise park a
// channel's queue for a day.
const maxRetryAfter = time.Hour

// Options tune a Dispatcher. Zero fields get the defaults above.
type Options struct {
	Clock   clock.WithTicker
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Cluster is shown in test notifications.
	Cluster string
	// Timeout bounds one delivery attempt.
	Timeout time.Duration
	// InitialBackoff doubles after each failed attempt up to MaxBackoff; the wait is jittered
	// down by up to half.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxAge is how long after it was queued a notification is retried; past it, it is recorded
	// as failed.
	MaxAge time.Duration
	// DrainTimeout bounds the last attempts made at shutdown.
	DrainTimeout time.Duration
	// QueueLimit bounds each channel's queue, the notification being delivered included, plus
	// one digest: past it, notifications are folded into that digest, never dropped.
	QueueLimit int
	// Jitter returns a number in [0, 1); default math/rand/v2.Float64.
	Jitter func() float64
	// DigestThreshold and DigestWindow pace each channel on its own: once DigestThreshold
	// notifications have entered a channel's queue within DigestWindow, the next ones are folded
	// into a digest message. 0 turns storm digests off. A full queue folds into a digest too
	// (cause "overflow"), whatever these are.
	DigestThreshold int
	DigestWindow    time.Duration
	// DigestMaxWait is the longest a notification waits in a digest: a digest leaves at most
	// DigestMaxWait after the first notification folded into it, and while a storm goes on,
	// digests leave on a steady beat of one per DigestMaxWait. Default 10s, at most DigestWindow.
	DigestMaxWait time.Duration
	// Ledger is where outcomes go and references come from (default: one that keeps nothing).
	Ledger Ledger
	// Resumable says that the caller keeps what is owed and queues it again after a restart, so
	// notifications left at shutdown are logged as left for the next start, not counted failed.
	Resumable bool
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New(prometheus.NewRegistry())
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.InitialBackoff)
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.QueueLimit <= 0 {
		o.QueueLimit = DefaultQueueLimit
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.DigestWindow <= 0 {
		o.DigestWindow = DefaultDigestWindow
	}
	if o.DigestMaxWait <= 0 {
		o.DigestMaxWait = DefaultDigestMaxWait
	}
	o.DigestMaxWait = min(o.DigestMaxWait, o.DigestWindow)
	if o.Ledger == nil {
		o.Ledger = noLedger{}
	}
	return o
}

// Dispatcher gives every channel its own FIFO queue and worker, so a slow or failing channel
// never delays another. Create it with New, start it with Run, feed it with Enqueue.
type Dispatcher struct {
	opts    Options
	workers []*worker
	byName  map[string]*worker
	running atomic.Bool
}

// TestResult is the outcome of one test send, as /test-channel answers it.
type TestResult struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	OK         bool   `json:"ok"`
	Error      string `json:"error,omitempty"`
	DurationMs int64  `json:"durationMs"`
}

// New makes a dispatcher for channels, whose names must be unique (notifiers.Build ensures it).
// Their metric series are initialised at zero, and kpulse_channel_configured is set: 1, or 0 for
// a channel with Err. It registers nothing: a daemon that rebuilds its channels (a rotated Secret)
// makes a new Dispatcher with the same Metrics, runs it, and stops the old one.
func New(channels []notifiers.Channel, opts Options) *Dispatcher {
	opts = opts.withDefaults()
	d := &Dispatcher{opts: opts, byName: make(map[string]*worker, len(channels))}
	for _, ch := range channels {
		opts.Metrics.InitChannel(ch.Name)
		configured := 1.0
		if ch.Err != nil {
			configured = 0
		}
		opts.Metrics.ChannelConfigured.WithLabelValues(ch.Name, ch.Type).Set(configured)
		n := opts.Metrics.Notifications
		w := &worker{
			ch:       ch,
			opts:     &d.opts,
			log:      opts.Logger.With("channel", ch.Name, "type", ch.Type),
			kick:     make(chan struct{}, 1),
			replaced: make(chan struct{}, 1),
			success:  n.WithLabelValues(ch.Name, metrics.ResultSuccess),
			retry:    n.WithLabelValues(ch.Name, metrics.ResultRetry),
			failed:   n.WithLabelValues(ch.Name, metrics.ResultFailed),
			dropped:  n.WithLabelValues(ch.Name, metrics.ResultDropped),
			duration: opts.Metrics.DeliveryDuration.WithLabelValues(ch.Name),
			latency:  opts.Metrics.DeliveryLatency.WithLabelValues(ch.Name),
			depth:    opts.Metrics.QueueDepth.WithLabelValues(ch.Name),
			storms:   opts.Metrics.Digests.WithLabelValues(ch.Name, "storm"),
			overflow: opts.Metrics.Digests.WithLabelValues(ch.Name, "overflow"),
			panics:   opts.Metrics.NotifierPanics.WithLabelValues(ch.Name),
		}
		d.workers = append(d.workers, w)
		d.byName[ch.Name] = w
	}
	return d
}

// Names returns the channel names in configuration order.
func (d *Dispatcher) Names() []string {
	names := make([]string, 0, len(d.workers))
	for _, w := range d.workers {
		names = append(names, w.channel().Name)
	}
	return names
}

// Status returns each channel's state, for /readyz: "ok", or why it cannot deliver ("not
// configured: missing key SLACK_BOT_TOKEN").
func (d *Dispatcher) Status() map[string]string {
	out := make(map[string]string, len(d.workers))
	for _, w := range d.workers {
		ch := w.channel()
		out[ch.Name] = "ok"
		if ch.Err != nil {
			out[ch.Name] = ch.Err.Error()
		}
	}
	return out
}

// Run starts one worker per channel and returns when all have ended: after ctx is cancelled and
// each has had DrainTimeout to deliver what was queued. Call it once. A channel that is not
// configured is reported here, in one log line; its notifications are then counted as failed
// without a line each.
func (d *Dispatcher) Run(ctx context.Context) {
	if !d.running.CompareAndSwap(false, true) {
		// A second Run would start a second worker per queue and break FIFO order.
		d.opts.Logger.Error("notifiers: Dispatcher.Run called twice; the second call does nothing")
		<-ctx.Done()
		return
	}
	for _, w := range d.workers {
		if err := w.channel().Err; err != nil {
			w.log.Error(notConfiguredLog, "err", err)
		}
	}
	var wg sync.WaitGroup
	for _, w := range d.workers {
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()
	<-ctx.Done() // with no channel there is no worker to wait for
}

const notConfiguredLog = "channel cannot deliver; its notifications wait (up to delivery.maxAge) until the Secret is fixed"

// Replace swaps in channels rebuilt after the Secret changed, matching them by name; queues and
// their order are kept, so nothing queued is lost. A channel that became usable delivers what it
// held. Names the dispatcher does not have are ignored (the channel list comes from the config,
// which a Secret does not change). It reports each channel whose state changed, once.
func (d *Dispatcher) Replace(channels []notifiers.Channel) {
	for _, ch := range channels {
		w, ok := d.byName[ch.Name]
		if !ok {
			d.opts.Logger.Warn("notifiers: rebuilt channel unknown to the dispatcher; ignored", "channel", ch.Name)
			continue
		}
		w.chMu.Lock()
		before := w.ch.Err
		w.ch = ch
		w.chMu.Unlock()
		configured := 1.0
		switch {
		case ch.Err != nil:
			configured = 0
			if before == nil || before.Error() != ch.Err.Error() {
				w.log.Error(notConfiguredLog, "err", ch.Err)
			}
		case before != nil:
			w.log.Info("channel configured", "was", before.Error())
		}
		d.opts.Metrics.ChannelConfigured.WithLabelValues(ch.Name, ch.Type).Set(configured)
		select {
		case w.replaced <- struct{}{}:
		default:
		}
	}
}

// Enqueue hands n to every channel's queue without blocking. A channel whose queue is full
// folds n into a digest (logged, counted in kpulse_digests_total{cause="overflow"}); one that is
// shutting down refuses n: that is logged at error and counted as "dropped". A firing n whose
// context is still being fetched (EnrichmentPending) skips the channels that wait for it: they
// get it from Enriched.
//
// Only the channels of the incident's route get it (Incident.Route; nil is every channel).
func (d *Dispatcher) Enqueue(n notifiers.Notification) {
	for _, w := range d.workers {
		if !routedTo(n, w) {
			continue
		}
		if n.Kind == notifiers.KindFiring && n.EnrichmentPending && w.channel().Enrichment == notifiers.EnrichWait {
			w.await(n.Incident.Fingerprint)
			continue
		}
		w.enqueue(n)
	}
}

// Enriched hands on a firing notification whose context has been fetched (n.Enrichment, nil
// when nothing could be), after Enqueue had sent it without: a channel that skipped it gets it
// now, whole; a channel that adds context later gets a KindUpdate when there is context to add.
func (d *Dispatcher) Enriched(n notifiers.Notification) {
	n.EnrichmentPending = false
	for _, w := range d.workers {
		if !routedTo(n, w) {
			continue
		}
		switch {
		case w.awaited(n.Incident.Fingerprint):
			w.enqueue(n)
		case n.Enrichment != nil && w.channel().Enrichment == notifiers.EnrichUpdate:
			u := n
			u.Kind = notifiers.KindUpdate
			w.enqueueUpdate(u)
		}
	}
}

// Editing reports whether any channel edits what it sent (policy EnrichUpdate): only then is
// each growth of an incident worth telling (Grew with edit), and its context worth fetching again.
func (d *Dispatcher) Editing() bool {
	for _, w := range d.workers {
		if w.channel().Enrichment == notifiers.EnrichUpdate {
			return true
		}
	}
	return false
}

// Grew tells the channels that an incident they were told of has grown: n is a firing
// notification carrying the incident as it stands now (and the context its first message had).
// A channel that edits what it sent (policy EnrichUpdate: a Slack bot edits its alert, a
// webhook that asked for it gets an "update" document) gets n as a KindUpdate when edit is set;
// the caller debounces these. The others get n as a follow-up message (KindFiring, Why WhyGrown) only when
// followUp is set, which the caller sets once per incident (incident.Engine.FollowUp). Neither
// is a transition: nothing is owed for it. A channel that was not told of the incident (it has
// no delivery state for it while others have) gets nothing.
func (d *Dispatcher) Grew(n notifiers.Notification, edit, followUp bool) {
	n.EnrichmentPending = false
	for _, w := range d.workers {
		name := w.channel().Name
		if ds := n.Incident.Deliveries; ds != nil {
			if _, told := ds[name]; !told {
				continue
			}
		}
		switch {
		case w.channel().Enrichment == notifiers.EnrichUpdate:
			if !edit {
				continue
			}
			u := n
			u.Kind, u.Why = notifiers.KindUpdate, incident.WhyGrown
			w.enqueueUpdate(u)
		case followUp:
			f := n
			f.Kind, f.Why = notifiers.KindFiring, incident.WhyGrown
			w.enqueue(f)
		}
	}
}

// routedTo reports whether n's incident is routed to w's channel.
func routedTo(n notifiers.Notification, w *worker) bool {
	return n.Incident.Route == nil || slices.Contains(n.Incident.Route, w.channel().Name)
}

// EnqueueTo hands n to the named channel's queue only (a delivery resumed after a restart is
// owed to some channels, not all). It reports false for an unknown channel.
func (d *Dispatcher) EnqueueTo(channel string, n notifiers.Notification) bool {
	w, ok := d.byName[channel]
	if ok {
		w.enqueue(n)
	}
	return ok
}

// Test sends a test notification through the named channel now, bypassing its queue, within
// Timeout. found is false when no channel has that name.
func (d *Dispatcher) Test(ctx context.Context, name string) (result TestResult, found bool) {
	w, ok := d.byName[name]
	if !ok {
		return TestResult{}, false
	}
	n := notifiers.TestNotification(d.opts.Cluster, d.opts.Clock.Now())
	took, _, err := w.attempt(ctx, n)
	ch := w.channel()
	result = TestResult{Name: ch.Name, Type: ch.Type, OK: err == nil, DurationMs: took.Milliseconds()}
	if err != nil {
		result.Error = err.Error()
	}
	return result, true
}

// item is one queued notification, or a digest of several.
type item struct {
	n        notifiers.Notification
	queued   time.Time
	attempts int
	digest   *digest
}

// digest collects the notifications folded into one message. It stays open, collecting, until
// closes; the worker holds it at the head of the queue until then.
type digest struct {
	closes time.Time
	cause  string // "storm" or "overflow"
	folded []notifiers.Notification
}

// MaxDigestEntries bounds what a digest carries. A full digest takes no more: the next
// notification starts another, so every folded notification is in the message that settles it
// (a channel that sends one event per entry, as PagerDuty, loses none). Channels for people show
// fewer lines (notifiers.MaxDigestLines) and say how many more there are.
const MaxDigestEntries = 1000

func (d *digest) notification(cluster string, at time.Time) notifiers.Notification {
	n := notifiers.Notification{Kind: notifiers.KindDigest, Cluster: cluster, At: at,
		Digest: &notifiers.Digest{Total: len(d.folded), Cause: d.cause}}
	for _, f := range d.folded[:min(len(d.folded), MaxDigestEntries)] {
		n.Digest.Entries = append(n.Digest.Entries, notifiers.DigestEntry{Kind: f.Kind, Why: f.Why, Incident: f.Incident, At: f.At})
	}
	return n
}

// worker owns one channel's queue. Only the worker removes from the queue, and only its head,
// after the head's delivery has ended; so the queue's length counts the one in flight.
type worker struct {
	chMu sync.RWMutex
	ch   notifiers.Channel // read through channel(); Replace swaps it
	opts *Options
	log  *slog.Logger
	// kick wakes the worker after an enqueue; size 1 with a non-blocking send, so kicks merge.
	kick chan struct{}
	// replaced wakes a worker holding notifications for a channel that was not configured.
	replaced chan struct{}

	mu     sync.Mutex
	queue  []*item
	closed bool // set at shutdown; later notifications are refused
	// awaiting are the fingerprints of firing notifications this channel skipped because it
	// waits for their context; Enriched queues them.
	awaiting map[string]int
	// recent are the times at which notifications entered the queue within the digest window;
	// open is the digest collecting now, if any; lastClose is when the latest digest closes (or
	// closed), the beat the next digest of a storm keeps.
	recent    []time.Time
	open      *digest
	lastClose time.Time

	// templateFailed is the channel template whose failure was logged: once per template.
	templateFailed atomic.Pointer[notifiers.Template]

	success, retry, failed, dropped prometheus.Counter
	storms, overflow                prometheus.Counter
	panics                          prometheus.Counter
	duration, latency               prometheus.Observer
	depth                           prometheus.Gauge
}

// channel returns the worker's current channel (Replace may swap it while the worker runs).
func (w *worker) channel() notifiers.Channel {
	w.chMu.RLock()
	defer w.chMu.RUnlock()
	return w.ch
}

// await records that the channel skipped a firing notification until its context arrives.
func (w *worker) await(fp string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.awaiting == nil {
		w.awaiting = map[string]int{}
	}
	w.awaiting[fp]++
}

// awaited reports, once per await, whether the channel skipped fp's firing notification.
func (w *worker) awaited(fp string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.awaiting[fp] == 0 {
		return false
	}
	if w.awaiting[fp]--; w.awaiting[fp] == 0 {
		delete(w.awaiting, fp)
	}
	return true
}

// enqueueUpdate queues a KindUpdate behind the firing message it adds to. It is context, not an
// alert: it takes no part in storm pacing, and it is left out (logged at debug) while the channel
// is folding notifications into a digest, is full or is shutting down, since the message it
// would add to is then a digest or not sent yet.
func (w *worker) enqueueUpdate(n notifiers.Notification) {
	w.mu.Lock()
	now := w.opts.Clock.Now()
	skip := ""
	switch {
	case w.closed:
		skip = "channel is shutting down"
	case w.open != nil && now.Before(w.open.closes):
		skip = "channel is collecting a digest"
	case len(w.queue) >= w.opts.QueueLimit:
		skip = "queue is full"
	default:
		w.queue = append(w.queue, &item{n: n, queued: now})
		w.depth.Inc()
	}
	w.mu.Unlock()
	if skip != "" {
		w.log.Debug("context update not sent: "+skip, "fingerprint", n.Incident.Fingerprint)
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *worker) enqueue(n notifiers.Notification) {
	w.mu.Lock()
	var refused string
	now := w.opts.Clock.Now()
	w.recent = slices.DeleteFunc(w.recent, func(t time.Time) bool { return now.Sub(t) >= w.opts.DigestWindow })
	// Folded ones count too, so a storm that outlasts one window goes on as digests. Only the
	// newest DigestThreshold times matter.
	w.recent = append(w.recent, now)
	if len(w.recent) > w.opts.DigestThreshold+1 {
		w.recent = slices.Delete(w.recent, 0, len(w.recent)-w.opts.DigestThreshold-1)
	}
	switch {
	case w.closed:
		refused = "channel is shutting down"
	case w.open != nil && now.Before(w.open.closes) && len(w.open.folded) < MaxDigestEntries:
		w.open.folded = append(w.open.folded, n)
	case w.open != nil && now.Before(w.open.closes):
		w.fold(n, now, w.open.cause) // the open digest is full: another closes with it
	case len(w.queue) >= w.opts.QueueLimit:
		// The queue stays within QueueLimit items plus the digests: a digest still waiting at
		// its tail, with room, takes n too.
		if last := w.queue[len(w.queue)-1]; last.digest != nil && last.n.Kind == "" && len(last.digest.folded) < MaxDigestEntries {
			last.digest.folded = append(last.digest.folded, n)
			break
		}
		w.fold(n, now, "overflow")
	case w.opts.DigestThreshold > 0 && len(w.recent) > w.opts.DigestThreshold:
		w.fold(n, now, "storm")
	default:
		w.queue = append(w.queue, &item{n: n, queued: now})
		// Inc and Dec, not Set: while a rebuilt dispatcher takes over, the old one drains the
		// same channel's series.
		w.depth.Inc()
	}
	w.mu.Unlock()

	if refused != "" {
		w.dropped.Inc()
		w.log.Error("notification dropped: "+refused, "fingerprint", n.Incident.Fingerprint,
			"kind", n.Kind, "queueLimit", w.opts.QueueLimit)
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// fold starts a digest holding n: it takes one place in the queue, however many it collects.
// It closes, and leaves, DigestMaxWait after n at the latest: so no notification waits longer for
// a digest. While a storm goes on (the previous digest closed within DigestWindow), it closes on
// the beat of the previous one, the first multiple of DigestMaxWait after now, so that a storm
// gives one digest per DigestMaxWait. Call with mu held.
func (w *worker) fold(n notifiers.Notification, now time.Time, cause string) {
	wait := w.opts.DigestMaxWait
	closes := now.Add(wait)
	if last := w.lastClose; !last.IsZero() && now.Sub(last) < w.opts.DigestWindow {
		if now.Before(last) {
			closes = last
		} else {
			closes = last.Add((now.Sub(last)/wait + 1) * wait)
		}
	}
	w.lastClose = closes
	w.open = &digest{closes: closes, cause: cause, folded: []notifiers.Notification{n}}
	w.queue = append(w.queue, &item{queued: now, digest: w.open})
	w.depth.Inc()
	if cause == "overflow" {
		w.overflow.Inc()
		w.log.Error("channel queue is full; further notifications are collected into one digest message",
			"queueLimit", w.opts.QueueLimit, "maxWait", w.opts.DigestMaxWait.String())
	} else {
		w.storms.Inc()
		w.log.Warn("notification storm; further notifications are collected into digest messages, one per maxWait",
			"threshold", w.opts.DigestThreshold, "window", w.opts.DigestWindow.String(), "maxWait", w.opts.DigestMaxWait.String())
	}
}

// seal waits until the digest at the head closes, then turns it into its message. It returns
// false when ctx ends first.
func (w *worker) seal(ctx context.Context, it *item) bool {
	w.mu.Lock()
	closes := it.digest.closes
	w.mu.Unlock()
	if d := closes.Sub(w.opts.Clock.Now()); d > 0 {
		t := w.opts.Clock.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C():
		}
	}
	w.mu.Lock()
	if w.open == it.digest {
		w.open = nil
	}
	if it.n.Kind == "" {
		it.n = it.digest.notification(w.opts.Cluster, w.opts.Clock.Now())
	}
	w.mu.Unlock()
	return true
}

// outcome tells the Ledger how each notification an item carried left the queue: delivered
// (err nil, with the channel's receipt) or given up.
func (w *worker) outcome(it *item, rec notifiers.Receipt, err error) {
	if it.n.Kind == notifiers.KindUpdate || it.n.Why == incident.WhyGrown {
		return // not a transition: nothing is owed for it
	}
	o := Outcome{Channel: w.channel().Name, State: incident.DeliveryDelivered, SettledAt: w.opts.Clock.Now()}
	if err != nil {
		o.State, o.Err = incident.DeliveryFailed, err.Error()
	}
	if it.digest == nil {
		o.setNotification(it.n)
		o.Ref = rec.Ref
		w.opts.Ledger.Settle(o)
		return
	}
	w.mu.Lock()
	folded := slices.Clone(it.digest.folded)
	w.mu.Unlock()
	o.Digest = true // one message stands for them all: no reference of its own
	for _, n := range folded {
		o.setNotification(n)
		w.opts.Ledger.Settle(o)
	}
}

// head returns the oldest queued item without removing it.
func (w *worker) head() (*item, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return nil, false
	}
	return w.queue[0], true
}

// pop removes the head once its delivery has ended.
func (w *worker) pop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queue[0] = nil
	w.queue = w.queue[1:]
	if len(w.queue) == 0 {
		w.queue = nil // let the backing array go after a burst
	}
	w.depth.Dec()
}

func (w *worker) run(ctx context.Context) {
	for {
		it, ok := w.head()
		if !ok {
			select {
			case <-ctx.Done():
				w.drain()
				return
			case <-w.kick:
				continue
			}
		}
		if it.digest != nil && !w.seal(ctx, it) {
			w.drain()
			return
		}
		if !w.deliver(ctx, it) {
			w.drain()
			return
		}
	}
}

// deliver tries the head until it is delivered, fails for good or grows too old, and removes it.
// It returns false, leaving the head queued, when ctx ends first.
func (w *worker) deliver(ctx context.Context, it *item) bool {
	// Not configured: the notification waits (Run and Replace have said why, once) until the
	// Secret is fixed and Replace gives a usable channel, or until it is MaxAge old.
	for w.channel().Err != nil {
		age := w.opts.Clock.Since(it.queued)
		if age >= w.opts.MaxAge {
			w.giveUp(it, w.channel().Err, fmt.Sprintf("channel still not configured after %s (maxAge %s)",
				age.Round(time.Millisecond), w.opts.MaxAge))
			w.pop()
			return true
		}
		t := w.opts.Clock.NewTimer(w.opts.MaxAge - age)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-w.replaced:
		case <-t.C():
		}
		t.Stop()
	}
	for {
		if ctx.Err() != nil {
			return false
		}
		took, rec, err := w.attempt(ctx, it.n)
		w.duration.Observe(took.Seconds())
		if err == nil {
			w.delivered(it, rec)
			w.pop()
			return true
		}
		if ctx.Err() != nil {
			w.log.Debug("delivery interrupted by shutdown", "fingerprint", it.n.Incident.Fingerprint, "err", err)
			return false
		}
		it.attempts++
		if notifiers.IsPermanent(err) {
			w.giveUp(it, err, "permanent error")
			w.pop()
			return true
		}
		delay := w.retryDelay(err, it.attempts)
		age := w.opts.Clock.Since(it.queued)
		if age+delay > w.opts.MaxAge {
			w.giveUp(it, err, fmt.Sprintf("still failing after %s (maxAge %s)", age.Round(time.Millisecond), w.opts.MaxAge))
			w.pop()
			return true
		}
		if it.n.Kind != notifiers.KindUpdate {
			w.retry.Inc()
		}
		w.log.Warn("delivery failed; will retry", "fingerprint", it.n.Incident.Fingerprint,
			"kind", it.n.Kind, "attempt", it.attempts, "retryIn", delay.String(), "err", err)
		t := w.opts.Clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C():
		}
	}
}

func (w *worker) delivered(it *item, rec notifiers.Receipt) {
	w.outcome(it, rec, nil)
	if it.n.Kind != notifiers.KindUpdate { // kpulse_notifications_total counts alerts, not their context
		w.success.Inc()
	}
	if !it.n.At.IsZero() && it.n.Kind != notifiers.KindUpdate {
		w.latency.Observe(max(w.opts.Clock.Since(it.n.At), 0).Seconds())
	}
	w.log.Debug("notification delivered", "fingerprint", it.n.Incident.Fingerprint, "kind", it.n.Kind,
		"attempts", it.attempts+1)
}

func (w *worker) giveUp(it *item, err error, why string) {
	if it.n.Kind == notifiers.KindUpdate {
		// The alert itself went out; only the context added to it is missing.
		w.log.Warn("context update not delivered: "+why, "fingerprint", it.n.Incident.Fingerprint,
			"attempts", it.attempts, "err", err)
		return
	}
	w.outcome(it, notifiers.Receipt{}, fmt.Errorf("%s: %w", why, err))
	// Logged before it is counted, so that whoever sees the count can find the line.
	w.log.Error("delivery failed; giving up: "+why, "fingerprint", it.n.Incident.Fingerprint,
		"kind", it.n.Kind, "attempts", it.attempts, "err", err)
	w.failed.Inc()
}

// retryDelay is the peer's Retry-After when it gave one (capped at maxRetryAfter), otherwise the
// exponential back-off for the given attempt, jittered down by up to half.
func (w *worker) retryDelay(err error, attempts int) time.Duration {
	if after, ok := notifiers.RetryDelay(err); ok && after > 0 {
		return min(after, maxRetryAfter)
	}
	d := w.opts.InitialBackoff
	for i := 1; i < attempts && d < w.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.opts.MaxBackoff)
	j := min(max(w.opts.Jitter(), 0), 1)
	return d - time.Duration(float64(d)*j/2)
}

// errAttemptTimeout is the cause of an attempt's context ending after Timeout.
var errAttemptTimeout = errors.New("delivery attempt timed out")

// attempt calls the notifier once, bounded by Timeout on the dispatcher's clock, with the
// channel's reference for the incident read from the Ledger just before. A panic in a notifier
// must neither take the other channels down nor lose the notification: it is logged and counted
// (kpulse_notifier_panics_total), and a minimal fallback message (notifiers.Fallback) goes
// through the same channel in its place, within the same attempt. Only when the fallback fails
// too does the attempt fail: as the fallback's error says (a retry renders n again), or
// permanently when the fallback panicked as well.
func (w *worker) attempt(ctx context.Context, n notifiers.Notification) (took time.Duration, rec notifiers.Receipt, err error) {
	actx, stop := withClockTimeout(ctx, w.opts.Clock, w.opts.Timeout, errAttemptTimeout)
	start := w.opts.Clock.Now()
	ch := w.channel()
	defer func() {
		if err != nil && errors.Is(context.Cause(actx), errAttemptTimeout) {
			err = fmt.Errorf("%w (attempt timed out after %s)", err, w.opts.Timeout)
		}
		stop()
		took = w.opts.Clock.Since(start)
	}()
	if fp := n.Incident.Fingerprint; fp != "" && n.Kind != notifiers.KindTest && n.Kind != notifiers.KindDigest {
		n.Ref = w.opts.Ledger.Ref(fp, ch.Name)
	}
	n.Rendered = w.render(ch, n)
	rec, err = w.notify(actx, ch, n)
	var p *panicError
	if !errors.As(err, &p) {
		return 0, rec, err
	}
	w.panicked(n, p)
	fb, ok := notifiers.Fallback(n)
	if !ok {
		return 0, notifiers.Receipt{}, err
	}
	rec, ferr := w.notify(actx, ch, fb)
	var fp *panicError
	switch {
	case ferr == nil:
		w.log.Warn("sent a minimal fallback message in place of the one whose rendering panicked",
			"fingerprint", fb.Incident.Fingerprint, "kind", n.Kind)
		return 0, rec, nil
	case errors.As(ferr, &fp):
		w.panicked(fb, fp)
		return 0, notifiers.Receipt{}, fmt.Errorf("%w; its minimal fallback message panicked too", err)
	default:
		return 0, notifiers.Receipt{}, fmt.Errorf("%s; its minimal fallback message failed: %w", p.Error(), ferr)
	}
}

// render executes the channel's message template for n; nil (the default rendering) when it
// has none, for a digest, or when the template fails: that is logged once per channel (until
// the channel is rebuilt), and the message goes out all the same.
func (w *worker) render(ch notifiers.Channel, n notifiers.Notification) *notifiers.Rendered {
	if ch.Template == nil || n.Kind == notifiers.KindDigest {
		return nil
	}
	r, err := ch.Template.Render(n)
	if err != nil {
		if w.templateFailed.CompareAndSwap(nil, ch.Template) {
			w.log.Error("message template failed; this channel's messages use the default rendering where it fails (logged once)",
				"fingerprint", notifiers.SafeText(n.Incident.Fingerprint, notifiers.MaxNameBytes), "err", err)
		}
		return nil
	}
	return &r
}

// notify calls the notifier, turning a panic into a permanent *panicError.
func (w *worker) notify(ctx context.Context, ch notifiers.Channel, n notifiers.Notification) (rec notifiers.Receipt, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = notifiers.Permanent(&panicError{typ: ch.Type, channel: ch.Name, value: r, stack: debug.Stack()})
		}
	}()
	return ch.Notifier.Notify(ctx, n)
}

// panicError is a notifier's panic, turned into an error.
type panicError struct {
	typ, channel string
	value        any
	stack        []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("notifiers: %s %q: panic: %s", e.typ, e.channel, panicText(e.value, 200))
}

// panicText is what a log or an error may say of a panic's value. A runtime error's text is the
// runtime's own (an index out of range, a nil dereference) and is told; any other value (a
// string or error a notifier or a library built) may carry a URL or a token, which a channel's
// redactor would have removed but the dispatcher cannot, so only its type is told. The stack
// says where it happened.
func panicText(v any, max int) string {
	if re, ok := v.(runtime.Error); ok {
		return notifiers.SafeText(re.Error(), max)
	}
	return fmt.Sprintf("a %T value (its text is not logged: it may hold a secret)", v)
}

// panicked logs a notifier's panic, with its stack, and counts it.
func (w *worker) panicked(n notifiers.Notification, p *panicError) {
	w.log.Error("notifier panicked on a notification; a minimal fallback message is sent in its place",
		"fingerprint", notifiers.SafeText(n.Incident.Fingerprint, notifiers.MaxNameBytes), "kind", n.Kind,
		"panic", panicText(p.value, 500), "stack", string(p.stack))
	w.panics.Inc()
}

// drain runs once ctx has ended: it refuses new notifications, tries each queued one once within
// DrainTimeout (an open digest is sent as it stands), and reports what is left undelivered: with
// Resumable it is left owed for the next start, otherwise counted failed.
func (w *worker) drain() {
	w.mu.Lock()
	w.closed = true
	queued := len(w.queue)
	if w.open != nil {
		w.open.closes = w.opts.Clock.Now()
		w.open = nil
	}
	w.mu.Unlock()

	dctx, stop := withClockTimeout(context.Background(), w.opts.Clock, w.opts.DrainTimeout, errors.New("drain timeout"))
	defer stop()
	undelivered := 0
	for {
		it, ok := w.head()
		if !ok {
			break
		}
		if it.digest != nil && it.n.Kind == "" {
			w.mu.Lock()
			it.n = it.digest.notification(w.opts.Cluster, w.opts.Clock.Now())
			w.mu.Unlock()
		}
		var err error = context.Cause(dctx)
		var rec notifiers.Receipt
		if dctx.Err() == nil && w.channel().Err == nil {
			var took time.Duration
			took, rec, err = w.attempt(dctx, it.n)
			w.duration.Observe(took.Seconds())
		}
		if err == nil {
			w.delivered(it, rec)
		} else if it.n.Kind != notifiers.KindUpdate {
			undelivered++
			if !w.opts.Resumable {
				w.failed.Inc()
			}
			w.log.Debug("delivery at shutdown failed", "fingerprint", it.n.Incident.Fingerprint, "err", err)
		}
		w.pop()
	}
	switch {
	case undelivered > 0 && w.opts.Resumable:
		w.log.Warn("notifications left undelivered at shutdown; they are kept and resumed at the next start",
			"undelivered", undelivered, "queued", queued, "drainTimeout", w.opts.DrainTimeout.String())
	case undelivered > 0:
		w.log.Error("notifications left undelivered at shutdown", "undelivered", undelivered,
			"queued", queued, "drainTimeout", w.opts.DrainTimeout.String())
	case queued > 0:
		w.log.Info("queued notifications delivered at shutdown", "delivered", queued)
	}
}

// withClockTimeout is context.WithTimeout on clk, so that tests drive it with a fake clock. The
// context ends with cause when d has passed. stop releases the timer and waits for the goroutine
// that watches it; it must be called.
func withClockTimeout(parent context.Context, clk clock.Clock, d time.Duration, cause error) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	t := clk.NewTimer(d)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-t.C():
			cancel(cause)
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		t.Stop()
		cancel(context.Canceled)
		<-done
	}
}
