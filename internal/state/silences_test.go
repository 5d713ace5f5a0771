package state_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/route"
	"github.com/kpulse/kpulse/internal/state"
)

// largest is a silence as large as route lets one be.
func largest(t *testing.T, ss *route.Silences, i int) route.Silence {
	t.Helper()
	s := route.Silence{
		Matcher: route.Matcher{Namespaces: []string{fmt.Sprintf("team-%03d-*", i)}, Classes: []string{"OOMKilled", "CrashLoopBackOff"},
			WorkloadSelector: "app.kubernetes.io/part-of in (payments,checkout)", Workloads: []string{strings.Repeat("w", 300)}},
		StartsAt: t0, EndsAt: t0.Add(time.Hour), CreatedBy: strings.Repeat("a", route.MaxCreatedByBytes),
	}
	for len(s.Comment) < route.MaxCommentBytes-4 {
		s.Comment += "é"
	}
	got, err := ss.Add(s, t0)
	if err != nil {
		// Trim the matcher until it fits MaxSilenceBytes: the bound is what is tested.
		s.Matcher.Workloads = []string{strings.Repeat("w", 100)}
		if got, err = ss.Add(s, t0); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// TestSilencesRoundTripAtTheirBound writes the most silences route keeps, each as large as
// allowed, through the real API server (which refuses a ConfigMap over 1 MiB), and reads them
// back.
func TestSilencesRoundTripAtTheirBound(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	ss := route.NewSilences(route.SilenceLimits{})
	for i := range route.DefaultMaxSilences {
		largest(t, ss, i)
	}
	st := state.NewSilenceStore(env.Client, ns, "kpulse-state", nil)
	if got, err := st.Load(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Load of no ConfigMap = %v, %v", got, err)
	}
	if err := st.Save(ctx, ss.All()); err != nil {
		t.Fatalf("Save of %d silences: %v", len(ss.All()), err)
	}
	got, err := state.NewSilenceStore(env.Client, ns, "kpulse-state", nil).Load(ctx)
	if err != nil || len(got) != route.DefaultMaxSilences {
		t.Fatalf("Load = %d silences, %v; want %d", len(got), err, route.DefaultMaxSilences)
	}
	want := ss.All()
	for i := range got {
		if got[i].ID != want[i].ID || !got[i].EndsAt.Equal(want[i].EndsAt) || got[i].Comment != want[i].Comment {
			t.Fatalf("silence %d read back as %+v, want %+v", i, got[i], want[i])
		}
	}
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "kpulse-state-silences", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Labels[state.LabelSilences] != "kpulse-state" {
		t.Errorf("labels = %v", cm.Labels)
	}
	size := 0
	for k, v := range cm.Data {
		size += len(k) + len(v)
	}
	t.Logf("%d silences at their largest take %d bytes", len(cm.Data), size)
}

// TestSilencesAfterAnotherWriter: a new leader's store, whose version is stale because the
// previous leader wrote after it read, still writes; an entry that does not decode is skipped.
func TestSilencesAfterAnotherWriter(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	ss := route.NewSilences(route.SilenceLimits{})
	a, b := state.NewSilenceStore(env.Client, ns, "p", nil), state.NewSilenceStore(env.Client, ns, "p", nil)
	s1, _ := ss.Add(route.Silence{Matcher: route.Matcher{Namespaces: []string{"a"}}, EndsAt: t0.Add(time.Hour), CreatedBy: "x", Comment: "y"}, t0)
	if err := a.Save(ctx, []route.Silence{s1}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx, nil); err != nil { // the old leader writes once more
		t.Fatal(err)
	}
	if err := b.Save(ctx, []route.Silence{s1}); err != nil {
		t.Fatalf("Save over a newer version: %v", err)
	}
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "p-silences", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["broken"] = "{"
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := a.Load(ctx)
	if err != nil || len(got) != 1 || got[0].ID != s1.ID {
		t.Errorf("Load = %+v, %v; want only %s", got, err, s1.ID)
	}
}
