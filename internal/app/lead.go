package app

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/dispatch"
	"github.com/kpulse/kpulse/internal/server"
)

// serviceAccountNamespace is where the kubelet writes the pod's namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// ownNamespace is where kpulse keeps its state and its Lease: the configured one, else the pod's
// (POD_NAMESPACE from the downward API, or the service account's file), else "default".
func ownNamespace(configured string) string {
	if configured != "" {
		return configured
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b))
	}
	return "default"
}

// identity names this replica in the Lease: the pod name with a random suffix, so a restarted
// pod of the same name is a new candidate and never mistakes the old lease for its own.
func identity(given string) string {
	if given != "" {
		return given
	}
	host := cmp.Or(os.Getenv("POD_NAME"), "")
	if host == "" {
		host, _ = os.Hostname()
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return cmp.Or(host, "kpulse") + "_" + hex.EncodeToString(b[:])
}

// elect campaigns for the Lease until ctx ends and leads while it holds it. The lease is
// released only after lead has drained and persisted, so a standby never works on state the
// leader is still writing. Losing the lease mid-term is an error: the process exits and is
// restarted as a standby (the usual client-go practice), so no two replicas ever notify.
func (a *App) elect(ctx context.Context) error {
	le := a.cfg.LeaderElection
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, a.namespace, le.LeaseName,
		a.client.CoreV1(), a.client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: a.identity})
	if err != nil {
		return fmt.Errorf("app: leader lock: %w", err)
	}
	electCtx, stopElect := context.WithCancel(context.Background())
	defer stopElect()
	started := make(chan context.Context)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: le.LeaseName, ReleaseOnCancel: true,
		LeaseDuration: le.LeaseDuration, RenewDeadline: le.RenewDeadline, RetryPeriod: le.RetryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				select {
				case started <- leadCtx:
				case <-electCtx.Done():
				}
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != a.identity {
					a.log.Info("leader elected", "leader", id, "self", a.identity)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("app: leader election: %w", err)
	}
	a.elector.Store(elector)
	var ewg sync.WaitGroup
	ewg.Go(func() { elector.Run(electCtx) })
	defer ewg.Wait() // after stopElect: the Lease is released once lead has returned
	defer stopElect()
	a.log.Info("standing by for the leader Lease", "lease", a.namespace+"/"+le.LeaseName, "identity", a.identity)
	var leadCtx context.Context
	select {
	case <-ctx.Done():
		return nil
	case leadCtx = <-started:
	}
	both, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(leadCtx, cancel)
	defer stop()
	lost := func() bool { return leadCtx.Err() != nil && ctx.Err() == nil }
	if err := a.lead(both, func() bool { return !lost() }); err != nil {
		return err
	}
	if lost() {
		return errors.New("app: lost the leader Lease (the API server could not be reached within leaderElection.renewDeadline); exiting so that one replica alone notifies")
	}
	return nil
}

// lead is the leader's term: read the persisted incidents, resume what is owed, decide about
// everything the caches hold, and notify until ctx ends. Then it stops intake, gives deliveries
// delivery.drainTimeout, and, if it still holds the lease (stillLeader), persists what is left.
func (a *App) lead(ctx context.Context, stillLeader func() bool) error {
	a.log.Info("leading: this replica notifies", "identity", a.identity)
	a.metrics.Leader.Set(1)
	defer a.metrics.Leader.Set(0)
	if a.state != nil {
		err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
			if err := a.state.Load(ctx); err != nil {
				a.log.Error("cannot read the persisted incidents yet; retrying", "err", err)
				return false, nil
			}
			return true, nil
		})
		if err != nil {
			return nil // ctx ended before the state could be read: nothing was done
		}
	}
	if !a.silences.load(ctx) {
		return nil // ctx ended before the silences could be read: nothing was done
	}
	engine := incident.NewEngine(a.store, incident.Settings{
		StableWindow:   a.cfg.Incidents.StableWindow,
		RepeatInterval: a.cfg.Incidents.RepeatInterval,
		MaxIncidents:   a.cfg.Incidents.MaxActive,
	})
	engine.OnFold(func(c detect.Class) { a.metrics.IncidentsOverflow.WithLabelValues(string(c)).Inc() })
	// A pod folded into its node's incident is its own again once that incident resolves or
	// goes: look at it again, so that a pod still failing then gets an incident of its own.
	engine.OnRelease(func(ns string, ref incident.MemberRef) { a.watcher.Enqueue(memberKey(ns, ref)) })
	engine.SetSilencer(a.silences.silenced, a.silences.onHeld)
	grower := newGrowth(a.clock, engine, func(inc incident.Incident, at time.Time, edit, followUp bool) {
		if edit = edit && a.dispatcher.Editing(); !edit && !followUp {
			return
		}
		a.stage.addGrowth(notifiers.Notification{
			Kind: notifiers.KindFiring, Why: incident.WhyGrown, Cluster: a.cfg.ClusterName, Incident: inc, At: at,
		}, edit, followUp)
	})
	engine.OnGrow(grower.grew)
	a.stage.opened(engine.Active())
	names := a.dispatcher.Names()
	engine.SetChannels(names)
	engine.Forget(names)
	a.engine.Store(engine)
	a.updateActive(engine)

	var wg sync.WaitGroup
	stateCtx, stopState := context.WithCancel(context.Background())
	if a.state != nil {
		wg.Go(func() { a.state.Run(stateCtx) })
	}
	dispatchCtx, stopDispatch := context.WithCancel(context.Background())
	var dwg sync.WaitGroup
	dwg.Go(func() { a.dispatcher.Run(dispatchCtx) })
	stageCtx, stopStage := context.WithCancel(context.Background())
	var swg sync.WaitGroup
	swg.Go(func() { a.stage.run(stageCtx) })

	resumed := a.resume(engine)
	a.leading.Store(true)
	// Caches that have not synced yet get swept once they do (watch.Watcher.Run), and that
	// sweep comes after this replica leads: it decides about everything then. Caches already
	// synced (a standby that takes over) need a sweep of their own.
	sweep := a.watcher.Synced()
	select {
	case <-a.synced:
		// Look again at everything: what is still failing is the same incident (no message),
		// what failed meanwhile is new, and the members of stored incidents that are gone are
		// seen gone (their incident resolves after the stable window; a pending one goes).
		for _, inc := range append(engine.Active(), engine.Pending()...) {
			for _, m := range inc.Members {
				ns, name := inc.MemberObject(m) // an overflow or Node incident's members span namespaces
				a.watcher.Enqueue(memberKey(ns, incident.MemberRef{Kind: m.Ref.Kind, Name: name}))
			}
		}
		if sweep {
			a.watcher.EnqueueAll()
		}
		a.log.Info("leader caught up", "incidents", len(engine.Active()), "resumedDeliveries", resumed)
	case <-ctx.Done():
	}
	var twg sync.WaitGroup
	twg.Go(func() { a.timer(ctx, engine) })
	twg.Go(func() { grower.run(ctx) })
	if hb := a.heartbeat(); hb != nil {
		twg.Go(func() { hb.Run(ctx) })
	}
	<-ctx.Done()
	twg.Wait()
	a.leading.Store(false)
	// Stop intake first, then let what is queued go out, then persist what is still owed.
	stopStage()
	swg.Wait()
	stopDispatch()
	dwg.Wait()
	stopState()
	wg.Wait()
	if a.state != nil && stillLeader() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.state.Flush(fctx); err != nil {
			a.log.Error("could not persist the state at shutdown; the next leader reads the last written state", "err", err)
		}
	}
	return nil
}

// resume queues again what the persisted incidents are still owed, per channel, in order.
func (a *App) resume(engine *incident.Engine) int {
	n := 0
	for _, inc := range engine.All() {
		for ch, cs := range inc.Deliveries {
			for _, p := range cs.Pending {
				kind := notifiers.KindFiring
				if p.Why == incident.WhyResolved {
					kind = notifiers.KindResolved
				}
				if a.dispatcher.EnqueueTo(ch, notifiers.Notification{
					Kind: kind, Why: p.Why, Cluster: a.cfg.ClusterName, Incident: inc, At: p.At,
				}) {
					n++
				}
			}
		}
	}
	return n
}

// ledger is the dispatcher's Ledger: the incident engine keeps, with each incident, what each
// channel was told and the reference it handed back; a delivery given up is also listed for
// /incidents.
type ledger struct{ a *App }

func (l ledger) Ref(fingerprint, channel string) string {
	if e := l.a.engine.Load(); e != nil {
		return e.Ref(fingerprint, channel)
	}
	return ""
}

func (l ledger) Settle(o dispatch.Outcome) {
	if o.Fingerprint == "" {
		return
	}
	if o.State == incident.DeliveryFailed {
		l.a.failures.add(failedDelivery{
			Channel: o.Channel, Fingerprint: o.Fingerprint, Why: o.Why, At: o.At,
			Namespace: o.Key.Namespace, Workload: o.Key.Workload.Kind + "/" + o.Key.Workload.Name,
			Error: o.Err, FailedAt: o.SettledAt,
		})
	}
	if e := l.a.engine.Load(); e != nil {
		e.Settle(o.Fingerprint, o.Channel, incident.DeliveryOutcome{Why: o.Why, At: o.At, State: o.State, Error: o.Err, Digest: o.Digest}, o.Ref)
	}
}

// activeIncidents is what /incidents lists: the firing incidents, and the pending ones (status
// "pending": waiting out a grace period, not notified yet).
func (a *App) activeIncidents() []incident.Incident {
	if e := a.engine.Load(); e != nil && a.leading.Load() {
		return append(e.Active(), e.Pending()...)
	}
	return nil
}

// leaderState is /readyz's "leader" check.
func (a *App) leaderState() string {
	switch {
	case a.leading.Load():
		return "leading (" + a.identity + ")"
	case !a.electing:
		return "starting"
	}
	if e := a.elector.Load(); e != nil && e.GetLeader() != "" {
		return "standby; leader is " + e.GetLeader()
	}
	return "standby; no leader yet"
}

// failedDelivery is one notification given up, as /incidents lists it.
type failedDelivery = server.FailedDelivery

// maxFailures bounds the failed deliveries /incidents lists: the newest are kept.
const maxFailures = 100

// failureLog keeps the newest failed deliveries; each is also logged and counted.
type failureLog struct {
	mu    sync.Mutex
	items []failedDelivery
}

func (f *failureLog) add(d failedDelivery) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items = append(f.items, d)
	if len(f.items) > maxFailures {
		f.items = append([]failedDelivery(nil), f.items[len(f.items)-maxFailures:]...)
	}
}

func (f *failureLog) list() []failedDelivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]failedDelivery{}, f.items...)
}
