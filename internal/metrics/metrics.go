// Package metrics owns kpulse's Prometheus metrics: one struct, registered on a Registerer that
// the caller passes in. Labels are bounded: reason class, channel name, result, transition.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Results of one delivery, the values of the result label.
const (
	ResultSuccess = "success" // delivered
	ResultRetry   = "retry"   // an attempt failed and will be retried
	ResultFailed  = "failed"  // given up: permanent error or past the maximum age
	ResultDropped = "dropped" // refused because the channel's queue was full
)

// Metrics holds every collector kpulse exports.
type Metrics struct {
	IncidentsActive   *prometheus.GaugeVec     // reason
	IncidentsOverflow *prometheus.CounterVec   // reason: members folded into an overflow incident
	Silenced          *prometheus.CounterVec   // reason: incidents whose firing message a silence held back
	Ignored           *prometheus.CounterVec   // rule: failures an ignore rule or annotation kept from becoming incidents
	Transitions       *prometheus.CounterVec   // reason, transition (first|repeat|resolved)
	Notifications     *prometheus.CounterVec   // channel, result
	DeliveryDuration  *prometheus.HistogramVec // channel: one attempt, request to answer
	DeliveryLatency   *prometheus.HistogramVec // channel: transition to successful delivery
	QueueDepth        *prometheus.GaugeVec     // channel
	ChannelConfigured *prometheus.GaugeVec     // channel, type: 1 usable, 0 not configured
	WorkqueueEvents   prometheus.Counter
	ReloadTimestamp   prometheus.Gauge
	ReloadSuccess     prometheus.Gauge
	Reloads           *prometheus.CounterVec // result
	CachesSynced      prometheus.Gauge
	StateWrites       *prometheus.CounterVec // result (success|error)
	StateIncidents    *prometheus.GaugeVec   // state (persisted|unpersisted)
	Leader            prometheus.Gauge       // 1 while this replica leads
	ConfigReloads     *prometheus.CounterVec // result (success|failed)
	ConfigReloadOK    prometheus.Gauge
	Digests           *prometheus.CounterVec // channel, cause (storm|overflow)
	NotifierPanics    *prometheus.CounterVec // channel
	// HeartbeatPings counts the pings of the dead-man's switch by result (success|failed);
	// HeartbeatLastSuccess is when one last succeeded (Unix seconds).
	HeartbeatPings       *prometheus.CounterVec
	HeartbeatLastSuccess prometheus.Gauge
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		IncidentsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kpulse_incidents_active",
			Help: "Incidents currently firing, by reason class.",
		}, []string{"reason"}),
		IncidentsOverflow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kpulse_incidents_overflow_total",
			Help: "Failing pods or Jobs folded into the overflow incident of their reason class because incidents.maxActive incidents were held: each would have started or joined an incident of its own.",
		}, []string{"reason"}),
		Silenced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kpulse_silenced_total",
			Help: "Incidents whose firing message a silence held back when they fired, by reason class (each counted once; one still failing at the silence's end is sent then).",
		}, []string{"reason"}),
		Transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kpulse_transitions_total",
			Help: "Incident transitions that were sent to the channels, by reason class and transition (first, repeat, resolved).",
		}, []string{"reason", "transition"}),
		Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kpulse_notifications_total",
			Help: "Delivery attempts by channel and result (success, retry, failed, dropped).",
		}, []string{"channel", "result"}),
		DeliveryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kpulse_delivery_attempt_duration_seconds",
			Help:    "Duration of one delivery attempt, by channel.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"channel"}),
		DeliveryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kpulse_delivery_latency_seconds",
			Help:    "Time from an incident transition to its successful delivery, retries included, by channel.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 60, 300, 900, 3600},
		}, []string{"channel"}),
		QueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kpulse_queue_depth",
			Help: "Notifications waiting in a channel's queue, the one being delivered included.",
		}, []string{"channel"}),
		ChannelConfigured: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kpulse_channel_configured",
			Help: "1 when a channel is configured and usable, 0 when it is not (see /readyz for why).",
		}, []string{"channel", "type"}),
		WorkqueueEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kpulse_watch_events_total",
			Help: "Pod and Job keys handed to the workers.",
		}),
		ReloadTimestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kpulse_secrets_reload_timestamp_seconds",
			Help: "When the channels were last rebuilt from the secrets directory (Unix time).",
		}),
		ReloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kpulse_secrets_reload_success",
			Help: "1 when the last rebuild of the channels from the secrets directory left every channel configured, 0 when one is not (see /readyz).",
		}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kpulse_secrets_reloads_total",
			Help: "Rebuilds of the channels after the secrets directory changed, by result (success: every channel configured; partial: some not).",
		}, []string{"result"}),
		CachesSynced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kpulse_caches_synced",
			Help: "1 once the informer caches have synced.",
		}),
		StateWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kpulse_state_writes_total",
			Help: "Writes of the state ConfigMaps, by result (success, error).",
		}, []string{"result"}),
		StateIncidents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kpulse_state_incidents",
			Help: "Incidents in the store, by state: persisted in the state ConfigMaps, or unpersisted (the store is full: kept in memory only).",
		}, []string{"state"}),
		Leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kpulse_leader",
			Help: "1 while this replica holds the leader Lease and notifies, 0 while it stands by.",
		}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kpulse_config_reloads_total",
			Help: "Reloads of the config file after it changed, by result (success, failed: the old config keeps running).",
		}, []string{"result"}),
		ConfigReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kpulse_config_reload_success",
			Help: "1 when the last reload of the config file succeeded (or none happened), 0 when it failed and the old config runs.",
		}),
		Digests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kpulse_digests_total",
			Help: "Digest messages queued instead of single notifications, by channel and cause (storm: more than delivery.digest.threshold within delivery.digest.window; overflow: the queue was full).",
		}, []string{"channel", "cause"}),
		NotifierPanics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kpulse_notifier_panics_total",
			Help: "Panics of a channel's notifier while rendering or sending one notification, by channel; each is logged, and a minimal fallback message is sent in its place.",
		}, []string{"channel"}),
		HeartbeatPings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kpulse_heartbeat_pings_total",
			Help: "Pings of the heartbeat URL (heartbeat.urlFrom), by result (success, failed): each attempt, retries included.",
		}, []string{"result"}),
		HeartbeatLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kpulse_heartbeat_last_success_timestamp_seconds",
			Help: "When a heartbeat ping last succeeded, in Unix seconds; 0 before the first.",
		}),
	}
	reg.MustRegister(m.HeartbeatPings, m.HeartbeatLastSuccess)
	for _, r := range []string{"success", "failed"} {
		m.HeartbeatPings.WithLabelValues(r)
	}
	reg.MustRegister(m.IncidentsActive, m.IncidentsOverflow, m.Silenced, m.Transitions, m.Notifications, m.DeliveryDuration,
		m.DeliveryLatency, m.QueueDepth, m.ChannelConfigured, m.WorkqueueEvents, m.CachesSynced,
		m.ReloadTimestamp, m.ReloadSuccess, m.Reloads, m.StateWrites, m.StateIncidents, m.Leader,
		m.ConfigReloads, m.ConfigReloadOK, m.Digests, m.NotifierPanics)
	m.Ignored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kpulse_ignored_total",
		Help: "Failures (a pod's or Job's failure of one class and container, counted once while it lasts) that an ignore rule kept from becoming an incident, by rule name; rule \"annotation\" counts the kpulse.io/ignore annotation.",
	}, []string{"rule"})
	reg.MustRegister(m.Ignored)
	for _, r := range []string{"success", "error"} {
		m.StateWrites.WithLabelValues(r)
	}
	for _, st := range []string{"persisted", "unpersisted"} {
		m.StateIncidents.WithLabelValues(st)
	}
	for _, r := range []string{"success", "failed"} {
		m.ConfigReloads.WithLabelValues(r)
	}
	m.ConfigReloadOK.Set(1)
	m.Reloads.WithLabelValues("success")
	m.Reloads.WithLabelValues("partial")
	return m
}

// InitReasons sets every reason's series to zero, so dashboards see them before the first incident.
func (m *Metrics) InitReasons(reasons []string) {
	for _, r := range reasons {
		m.IncidentsActive.WithLabelValues(r)
		m.IncidentsOverflow.WithLabelValues(r)
		m.Silenced.WithLabelValues(r)
		for _, t := range []string{"first", "repeat", "resolved"} {
			m.Transitions.WithLabelValues(r, t)
		}
	}
}

// InitIgnoreRules sets kpulse_ignored_total of each rule name to zero.
func (m *Metrics) InitIgnoreRules(rules []string) {
	for _, r := range rules {
		m.Ignored.WithLabelValues(r)
	}
}

// InitChannel sets a channel's series to zero.
func (m *Metrics) InitChannel(name string) {
	for _, r := range []string{ResultSuccess, ResultRetry, ResultFailed, ResultDropped} {
		m.Notifications.WithLabelValues(name, r)
	}
	m.QueueDepth.WithLabelValues(name)
	m.Digests.WithLabelValues(name, "storm")
	m.Digests.WithLabelValues(name, "overflow")
	m.NotifierPanics.WithLabelValues(name)
}
