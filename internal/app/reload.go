package app

import (
	"crypto/sha256"
	"fmt"
	"os"
	"reflect"
	"slices"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
)

func fileVersion(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// reloadConfig loads the config file again. An invalid file changes nothing: the old
// configuration keeps running, the problems are logged, and kpulse_config_reload_success is 0
// until a valid file is loaded. A valid one rebuilds the channels; what cannot change while
// running (the channel list, namespaces, listen address, state, leader election) is logged as
// needing a restart.
func (a *App) reloadConfig() {
	cfg, err := a.reload()
	if err != nil {
		a.metrics.ConfigReloadOK.Set(0)
		a.metrics.ConfigReloads.WithLabelValues("failed").Inc()
		a.log.Error("config file changed but is invalid; the previous configuration keeps running", "path", a.configPath, "err", err)
		return
	}
	a.reloadMu.Lock()
	old := a.channels
	names := func(list []config.Channel) []string {
		var out []string
		for _, ch := range list {
			out = append(out, ch.Name)
		}
		return out
	}
	if !slices.Equal(names(old), names(cfg.Channels)) {
		a.log.Warn("config reload: channels were added, removed or renamed; that takes a restart (the existing channels are rebuilt now)",
			"running", names(old), "configured", names(cfg.Channels))
		var keep []config.Channel
		for _, ch := range cfg.Channels {
			if slices.Contains(names(old), ch.Name) {
				keep = append(keep, ch)
			}
		}
		cfg.Channels = keep
	}
	a.channels = cfg.Channels
	a.deps.DashboardURL = cfg.DashboardURL // the channels' templates are rebuilt with it
	a.reloadMu.Unlock()
	// Routes and ignore rules take effect now, for incidents that fire from now on; one that
	// fired keeps the channels it was told on.
	a.policy.Store(cfg.Policy())
	a.metrics.InitIgnoreRules(cfg.Policy().Ignorer.Names())
	if ns, wl := watchNeeds(cfg); ns && !a.watcher.WatchesNamespaces() || wl && !a.watcher.WatchesWorkloads() {
		a.log.Warn("config reload: a namespaceSelector, workloadSelector or annotations.enabled needs the Namespace or workload caches, which start at the next restart; until then those selectors match nothing",
			"key", "routes")
	}
	for _, k := range []struct {
		key      string
		old, new any
	}{
		{"namespaces", a.cfg.Namespaces, cfg.Namespaces}, {"listen", a.cfg.Listen, cfg.Listen},
		{"state", a.cfg.State, cfg.State}, {"leaderElection", a.cfg.LeaderElection, cfg.LeaderElection},
		{"incidents", a.cfg.Incidents, cfg.Incidents}, {"delivery", a.cfg.Delivery, cfg.Delivery},
		{"enrichment", a.cfg.Enrichment, cfg.Enrichment}, {"detection", a.cfg.Detection, cfg.Detection},
		{"silences", a.cfg.Silences, cfg.Silences},
		{"annotations", a.cfg.Annotations, cfg.Annotations},
	} {
		if !reflect.DeepEqual(k.old, k.new) {
			a.log.Warn("config reload: this setting changes at the next restart", "key", k.key)
		}
	}
	a.rebuildChannels("config file changed")
	a.metrics.ConfigReloadOK.Set(1)
	a.metrics.ConfigReloads.WithLabelValues("success").Inc()
}

// reloadChannels is the secrets watcher's reload.
func (a *App) reloadChannels() { a.rebuildChannels("secrets changed") }

// rebuildChannels builds the channels again (new credentials or settings) and swaps them into
// the dispatcher, keeping its queues. A channel whose credential is unusable is "not
// configured" alone: the others deliver.
func (a *App) rebuildChannels(why string) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	a.metrics.ReloadTimestamp.SetToCurrentTime()
	channels, err := notifiers.Build(integrations.List, a.channels, a.deps)
	if err != nil {
		// The config was validated, so this cannot happen unless Build's checks change.
		a.metrics.ReloadSuccess.Set(0)
		a.metrics.Reloads.WithLabelValues("partial").Inc()
		a.log.Error(why+" but the channels could not be rebuilt; keeping the old ones", "err", err)
		return
	}
	a.dispatcher.Replace(channels)
	result, ok := "success", 1.0
	for _, ch := range channels {
		if ch.Err != nil {
			result, ok = "partial", 0
		}
	}
	a.metrics.ReloadSuccess.Set(ok)
	a.metrics.Reloads.WithLabelValues(result).Inc()
	a.log.Info(why+"; channels rebuilt", "result", result)
}
