package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/app"
	"github.com/kpulse/kpulse/internal/cli"
	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/testbed"
)

// silenceCLI runs `kpulse silence ARGS --url <this kpulse>` as an operator would through a
// port-forward, until kpulse answers it (a kpulse that has not taken the lead yet answers 503),
// and returns what it printed.
func (h *harness) silenceCLI(args ...string) string {
	h.t.Helper()
	var out, errs bytes.Buffer
	poll(h.t, "kpulse silence "+strings.Join(args, " "), func() bool {
		out.Reset()
		errs.Reset()
		code := cli.Commands["silence"].Run(append(args, "--url", "http://"+h.app.Addr()), &out, &errs)
		if code == 2 {
			h.t.Fatalf("kpulse silence %v: exit 2: %s", args, errs.String())
		}
		return code == 0
	})
	return strings.TrimSpace(out.String())
}

// listed is an incident as /incidents lists it, as far as silences go.
type listed struct {
	Key struct {
		Workload struct{ Name string }
	}
	Status     string
	SilencedBy string `json:"silencedBy"`
}

// incident returns the incident of workload as /incidents lists it.
func (h *harness) incident(workload string) (listed, bool) {
	h.t.Helper()
	_, body := h.get("/incidents")
	var page struct{ Incidents []listed }
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		h.t.Fatalf("/incidents: %v\n%s", err, body)
	}
	for _, inc := range page.Incidents {
		if inc.Key.Workload.Name == workload {
			return inc, true
		}
	}
	return listed{}, false
}

// awaitSilenced waits until /incidents lists workload's incident as firing, muted by id.
func (h *harness) awaitSilenced(workload, id string) {
	h.t.Helper()
	poll(h.t, workload+" listed as silenced by "+id, func() bool {
		inc, ok := h.incident(workload)
		return ok && inc.Status == "firing" && inc.SilencedBy == id
	})
}

// told is every document the sink received about workload, of any status.
func (h *harness) told(workload string) int {
	n := 0
	for _, p := range h.sink.all() {
		if p.Workload.Name == workload {
			n++
		}
	}
	return n
}

func crashLoop(t *testing.T, h *harness, name string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, name, image))
	return must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 2))
}

// TestSilenceFromTheCLI: a silence made with `kpulse silence add` mutes a new failure (nothing
// sent, the incident listed as silenced); expired with `kpulse silence expire` while the failure
// goes on, the failure is sent exactly once; a failure that resolves while silenced sends
// nothing at all; a silence that runs out by itself lets its failure through once too.
func TestSilenceFromTheCLI(t *testing.T) {
	h := start(t, nil)
	id := h.silenceCLI("add", "--namespace="+h.ns, "--workload=muted-*", "--duration=1h", "--comment=e2e maintenance", "--author=e2e")
	quiet := h.silenceCLI("add", "--namespace="+h.ns, "--workload=quiet-*", "--class=CrashLoopBackOff", "--duration=1h", "--comment=e2e", "--author=e2e")
	briefFrom := time.Now()
	brief := h.silenceCLI("add", "--workload=brief-*", "--duration=8s", "--comment=e2e short", "--author=e2e")
	crashLoop(t, h, "brief-worker")
	h.awaitSilenced("brief-worker", brief)
	if len(id) != 16 || len(quiet) != 16 {
		t.Fatalf("silence IDs %q %q %q", id, quiet, brief)
	}
	list := h.silenceCLI("list")
	for _, want := range []string{id, quiet, "workload=muted-*", "e2e maintenance", "active"} {
		if !strings.Contains(list, want) {
			t.Errorf("kpulse silence list lacks %q:\n%s", want, list)
		}
	}

	// Two failures while silenced: tracked, listed as silenced, not sent.
	crashLoop(t, h, "muted-api")
	q := crashLoop(t, h, "quiet-job")
	h.awaitSilenced("muted-api", id)
	h.awaitSilenced("quiet-job", quiet)
	h.barrier("loud")
	if n := h.told("muted-api") + h.told("quiet-job"); n != 0 {
		t.Fatalf("%d messages about silenced incidents:\n%s", n, dump(h.sink.all()))
	}
	// Silenced incidents are active all the same.
	h.awaitMetric(`kpulse_incidents_active{reason="CrashLoopBackOff"} 3`)

	// One resolves while silenced: nothing at all, neither firing nor resolved.
	must[*corev1.Pod](t)(h.kubelet.Running(context.Background(), q))
	poll(t, "quiet-job to resolve", func() bool { _, ok := h.incident("quiet-job"); return !ok })
	h.awaitMetric(`kpulse_incidents_active{reason="CrashLoopBackOff"} 2`)

	// The other's silence is expired while it still fails: sent once, then.
	if out := h.silenceCLI("expire", id); out != "expired "+id {
		t.Errorf("kpulse silence expire = %q", out)
	}
	h.sink.await(t, "firing", "muted-api", 1)
	if inc, _ := h.incident("muted-api"); inc.SilencedBy != "" {
		t.Errorf("muted-api still listed as silenced by %q", inc.SilencedBy)
	}

	// The short silence ran out by itself: its failure is sent once, after it.
	h.sink.await(t, "firing", "brief-worker", 1)
	if since := time.Since(briefFrom); since < 8*time.Second {
		t.Errorf("brief-worker sent %s after its 8s silence was made, inside it", since)
	}

	h.barrier("loud-2")
	if n := len(h.sink.matching("firing", "muted-api")); n != 1 {
		t.Errorf("%d firing messages for muted-api, want exactly 1", n)
	}
	if n := len(h.sink.matching("firing", "brief-worker")); n != 1 {
		t.Errorf("%d firing messages for brief-worker, want exactly 1", n)
	}
	if n := h.told("quiet-job"); n != 0 {
		t.Errorf("%d messages about quiet-job, which resolved while silenced", n)
	}
	var listedJSON []struct {
		ID    string
		State string
	}
	if err := json.Unmarshal([]byte(h.silenceCLI("list", "-o", "json")), &listedJSON); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, s := range listedJSON {
		states[s.ID] = s.State
	}
	if states[id] != "expired" || states[quiet] != "active" || states[brief] != "expired" {
		t.Errorf("states after the expiry = %v", states)
	}
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, `kpulse_silenced_total{reason="CrashLoopBackOff"} 3`) {
		t.Errorf("kpulse_silenced_total:\n%s", grepLines(metrics, "kpulse_silenced_total"))
	}
}

// TestSilenceSurvivesARestart: the silences and what they muted are kept with the state. A
// kpulse started again on the same state still mutes a new failure, keeps the old one muted,
// and sends it once when its silence is expired.
func TestSilenceSurvivesARestart(t *testing.T) {
	var cfg *config.Config
	h := start(t, func(c *config.Config, _ *sink) { cfg = c })
	id := h.silenceCLI("add", "--namespace="+h.ns, "--workload=later-*", "--duration=1h", "--comment=before the restart", "--author=e2e")
	crashLoop(t, h, "later-a")
	h.awaitSilenced("later-a", id)
	h.stop()

	h2 := restartOn(h, cfg)
	crashLoop(t, h2, "later-b")
	h2.awaitSilenced("later-b", id)
	h2.awaitSilenced("later-a", id)
	if list := h2.silenceCLI("list"); !strings.Contains(list, id) || !strings.Contains(list, "before the restart") {
		t.Errorf("kpulse silence list after the restart:\n%s", list)
	}
	h2.barrier("loud")
	if n := h2.told("later-a") + h2.told("later-b"); n != 0 {
		t.Fatalf("%d messages about silenced incidents after the restart:\n%s", n, dump(h2.sink.all()))
	}
	h2.silenceCLI("expire", id)
	h2.sink.await(t, "firing", "later-a", 1)
	h2.sink.await(t, "firing", "later-b", 1)
	h2.barrier("loud-2")
	for _, w := range []string{"later-a", "later-b"} {
		if n := len(h2.sink.matching("firing", w)); n != 1 {
			t.Errorf("%d firing messages for %s, want exactly 1", n, w)
		}
	}
}

// TestSilenceInMemory: run from a laptop (state.store: memory, no Lease) silences work the
// same for the life of the process.
func TestSilenceInMemory(t *testing.T) {
	off := false
	h := start(t, func(c *config.Config, _ *sink) { c.State.Store = config.StoreMemory; c.LeaderElection.Enabled = &off })
	id := h.silenceCLI("add", "--namespace="+h.ns, "--class=CrashLoopBackOff", "--duration=1h", "--comment=laptop", "--author=e2e")
	crashLoop(t, h, "local-a")
	h.awaitSilenced("local-a", id)
	h.barrier("loud")
	if n := h.told("local-a"); n != 0 {
		t.Errorf("%d messages about a silenced incident", n)
	}
	h.silenceCLI("expire", id)
	h.sink.await(t, "firing", "local-a", 1)
}

// awaitMetric waits until /metrics has the line want.
func (h *harness) awaitMetric(want string) {
	h.t.Helper()
	poll(h.t, "/metrics to say "+want, func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, want)
	})
}

// TestSilenceSurvivesALeaderChange: with two replicas, the standby lists the silences the
// leader made and refuses to change them, naming the leader; once the leader stops, the new
// leader mutes with them.
func TestSilenceSurvivesALeaderChange(t *testing.T) {
	var cfg *config.Config
	h := start(t, func(c *config.Config, _ *sink) { cfg = c })
	id := h.silenceCLI("add", "--namespace="+h.ns, "--workload=handover-*", "--duration=1h", "--comment=across leaders", "--author=e2e")
	standby := restartOn(h, cfg) // a second replica; h keeps the Lease

	var out, errs bytes.Buffer
	url := "--url=http://" + standby.app.Addr()
	poll(t, "the standby to list the leader's silence", func() bool {
		out.Reset()
		errs.Reset()
		return cli.Commands["silence"].Run([]string{"list", url}, &out, &errs) == 0 && strings.Contains(out.String(), id)
	})
	errs.Reset()
	if code := cli.Commands["silence"].Run([]string{"expire", id, url}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "standby") {
		t.Errorf("expire on the standby: exit %d, %q; want 1 naming the leader", code, errs.String())
	}

	h.stop()
	poll(t, "the standby to take the lead", func() bool {
		_, m := standby.get("/metrics")
		return strings.Contains(m, "kpulse_leader 1")
	})
	crashLoop(t, standby, "handover-a")
	standby.awaitSilenced("handover-a", id)
	standby.barrier("loud")
	if n := standby.told("handover-a"); n != 0 {
		t.Errorf("%d messages about a silenced incident after the leader change", n)
	}
}

// restartOn starts kpulse again with cfg on h's namespace, state and sink, as a restarted pod
// would.
func restartOn(h *harness, cfg *config.Config) *harness {
	h.t.Helper()
	h2 := &harness{t: h.t, bed: h.bed, ns: h.ns, sink: h.sink, kubelet: h.kubelet, stdout: &syncBuffer{}, logs: &syncBuffer{}}
	h2.launch(cfg, app.Options{})
	return h2
}
