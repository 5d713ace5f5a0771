package enrich_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/enrich"
	"github.com/kpulse/kpulse/internal/testbed"
)

var env *testbed.Env

func TestMain(m *testing.M) { os.Exit(testbed.Main(m, &env)) }

func TestFetchThroughTheRealLogPath(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	node, err := env.ServeNodeLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)

	pod, err := env.BarePod(ctx, ns, "crash", "busybox:1.36")
	if err != nil {
		t.Fatal(err)
	}
	k := &testbed.Kubelet{Client: env.Client}
	if _, err := k.CrashLoop(ctx, pod, testbed.AppContainer, 3); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&log, "line %d\n", i)
	}
	log.WriteString("\x1b[31mpanic: boom\x1b[0m\n")
	node.SetLog(ns, "crash", testbed.AppContainer, true, log.String())
	node.SetLog(ns, "crash", testbed.AppContainer, false, "the running instance: not what we want\n")

	f := enrich.New(env.Client, enrich.Options{Events: 3, LogLines: 5, Timeout: 10 * time.Second})
	r := f.Fetch(ctx, enrich.Target{Namespace: ns, Kind: "Pod", Name: "crash", LogsPod: "crash", Container: testbed.AppContainer, Previous: true})
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %v (node saw %v)", r.Errors, node.Requests())
	}
	want := []string{"line 27", "line 28", "line 29", "line 30", "panic: boom"}
	if strings.Join(r.Logs, "|") != strings.Join(want, "|") {
		t.Errorf("logs = %q, want %q", r.Logs, want)
	}
	if r.LogsPod != "crash" || r.LogsContainer != testbed.AppContainer {
		t.Errorf("logs of %s/%s", r.LogsPod, r.LogsContainer)
	}
	reqs := node.Requests()
	if len(reqs) != 1 || !strings.Contains(reqs[0], "/containerLogs/"+ns+"/crash/app") || !strings.Contains(reqs[0], "previous=true") || !strings.Contains(reqs[0], "tailLines=5") {
		t.Errorf("the node saw %v, want one previous=true tailLines=5 request", reqs)
	}
	if len(r.Events) == 0 || r.Events[0].Reason != "BackOff" {
		t.Errorf("events = %+v, want the kubelet's BackOff warning first", r.Events)
	}
	if len(r.Events) > 3 {
		t.Errorf("%d events, want at most 3", len(r.Events))
	}
}

func TestFetchSurvivesWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	f := enrich.New(env.Client, enrich.Options{Events: 3, LogLines: 5, Timeout: 10 * time.Second})

	// A pod on a node that does not exist: the API server cannot reach a kubelet.
	pod, err := env.BarePod(ctx, ns, "lost", "busybox:1.36", testbed.WithNodeName("no-such-node"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&testbed.Kubelet{Client: env.Client}).CrashLoop(ctx, pod, testbed.AppContainer, 1); err != nil {
		t.Fatal(err)
	}
	r := f.Fetch(ctx, enrich.Target{Namespace: ns, Kind: "Pod", Name: "lost", LogsPod: "lost", Container: testbed.AppContainer, Previous: true})
	if len(r.Logs) != 0 || len(r.Errors) != 1 || !strings.HasPrefix(r.Errors[0], "logs: ") {
		t.Errorf("logs %q errors %q: want no logs and one logs error", r.Logs, r.Errors)
	}
	if len(r.Events) == 0 {
		t.Errorf("events were lost with the logs")
	}

	// A pod that does not exist at all.
	r = f.Fetch(ctx, enrich.Target{Namespace: ns, Kind: "Pod", Name: "gone", LogsPod: "gone", Container: "app"})
	if len(r.Errors) != 1 || len(r.Events) != 0 {
		t.Errorf("gone pod: %+v", r)
	}

	// Switched off: nothing is fetched.
	off := enrich.New(env.Client, enrich.Options{})
	if r := off.Fetch(ctx, enrich.Target{Namespace: ns, Kind: "Pod", Name: "lost", LogsPod: "lost", Container: "app"}); r.Events != nil || r.Logs != nil || r.Errors != nil {
		t.Errorf("disabled fetch returned %+v", r)
	}
}
