package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/testbed"
)

// digestStorm is the storm case with storm digests on, as a user runs kpulse: how long the
// notifications folded into digests waited for them.
type digestStorm struct {
	Deployments int `json:"deployments"`
	Threshold   int `json:"digestThreshold"`
	// Alone and Digested count the firing notifications that arrived on their own and in
	// digests; Digests counts the digest messages.
	Alone    int `json:"alone"`
	Digested int `json:"digested"`
	Digests  int `json:"digests"`
	// WorstWaitSeconds is the longest time from a digested notification's transition (its
	// digest entry's "at") to the arrival of its digest at the sink.
	WorstWaitSeconds float64 `json:"worstDigestWaitSeconds"`
	WriteSeconds     float64 `json:"writeSeconds"`
}

const digestNamespace = "bench-digest"

// runDigestStorm starts kpulse again, this time with storm digests on (threshold o.DigestThreshold,
// the default window and maxWait), fails o.StormPods pods of o.StormDeployments Deployments within
// o.StormWithin, and measures how long the digested notifications waited. The other phases run
// with digests off, so that each probe is timed alone.
func runDigestStorm(ctx context.Context, cl *cluster, sk *sink, spec subjectSpec, o options) (*digestStorm, error) {
	fmt.Fprintf(os.Stderr, "bench: digest storm: %d pods of %d Deployments fail within %s, digests on (threshold %d)\n",
		o.StormPods, o.StormDeployments, o.StormWithin, o.DigestThreshold)
	if err := cl.ensureNamespace(ctx, digestNamespace); err != nil {
		return nil, err
	}
	per := max(1, o.StormPods/max(1, o.StormDeployments))
	pods := make([]*corev1.Pod, o.StormPods)
	if err := cl.parallel(ctx, len(pods), func(ctx context.Context, i int) error {
		var err error
		pods[i], err = cl.create(ctx, testbed.DeploymentPod(digestNamespace, fmt.Sprintf("dstorm-%03d", i/per), i%per))
		return err
	}); err != nil {
		return nil, err
	}
	defer func() {
		zero := int64(0)
		_ = cl.client.CoreV1().Pods(digestNamespace).DeleteCollection(context.WithoutCancel(ctx),
			metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	}()
	// A subject of its own name, so that its log (kpulse-digest.log) does not replace the
	// detailed run's.
	spec.name, spec.dir, spec.profile, spec.digestThreshold = "kpulse-digest", o.Dir, false, o.DigestThreshold
	// A state of its own: what the detailed run still owed (the resolves of its probes) would be
	// resumed at start and count toward the threshold.
	spec.env = append(spec.env, "KPULSE_STATE_STORE=memory")
	p, err := startSubject(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if _, err := p.settle(ctx); err != nil {
		return nil, err
	}

	ds := &digestStorm{Deployments: o.StormDeployments, Threshold: o.DigestThreshold}
	t0 := time.Now()
	step := o.StormWithin / time.Duration(len(pods))
	if err := cl.parallel(ctx, len(pods), func(ctx context.Context, i int) error {
		if d := time.Until(t0.Add(time.Duration(i) * step)); d > 0 {
			time.Sleep(d)
		}
		_, err := cl.writeStatus(ctx, pods[i], crashLoopStatus(pods[i], time.Now(), 2))
		return err
	}); err != nil {
		return nil, err
	}
	ds.WriteSeconds = time.Since(t0).Seconds()
	count := func() {
		ds.Alone, ds.Digested, ds.Digests, ds.WorstWaitSeconds = 0, 0, 0, 0
		for _, a := range sk.since(t0, "dstorm-") {
			if a.status == "firing" {
				ds.Alone++
			}
		}
		for _, d := range sk.digestsSince(t0) {
			n := 0
			for _, e := range d.entries {
				if e.Status != "firing" || !strings.HasPrefix(e.Workload.Name, "dstorm-") {
					continue
				}
				n++
				ds.WorstWaitSeconds = max(ds.WorstWaitSeconds, d.at.Sub(e.At).Seconds())
			}
			if n > 0 {
				ds.Digests++
				ds.Digested += n
			}
		}
	}
	// The last digest leaves at most maxWait (10 s) after the last failure was noticed.
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if count(); ds.Alone+ds.Digested >= ds.Deployments {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	count()
	fmt.Fprintf(os.Stderr, "bench: digest storm: %d alone, %d in %d digests; worst wait in a digest %.2fs\n",
		ds.Alone, ds.Digested, ds.Digests, ds.WorstWaitSeconds)
	return ds, ctx.Err()
}
