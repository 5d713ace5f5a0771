package main

import (
	"cmp"
	"fmt"
	"io"
	"text/tabwriter"
)

func ratio(k, f float64) string {
	if f == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", k/f)
}

// print writes the report as the table issue 6 asks for.
func (r *report) print(out io.Writer) {
	m := r.Machine
	fmt.Fprintf(out, "kpulse bench: %d cores (%s), %s, %s, Kubernetes %s, %s\n", m.Cores, m.CPU, m.Go, m.OS, m.Kubernetes, m.Date)
	fmt.Fprintf(out, "runs per size %d (medians), GOMEMLIMIT %q, kpulse's GOMEMLIMIT %q, total %.0fs\n\n", r.Options.Runs,
		r.Options.GoMemLimit, cmp.Or(r.Options.KpulseMemLimit, r.Options.GoMemLimit), r.Seconds)

	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(out, "Memory and startup after sync (RSS, Go heap in use, RSS per pod; start to ready vs one raw LIST)")
	fmt.Fprintln(w, "pods\tsubject\tRSS MiB\tpeak MiB\theap MiB\tB/pod\tready s\tsync CPU s\traw LIST s\tRSS vs floor\tCPU vs floor\t")
	for _, s := range r.Sizes {
		f := s.Subjects["floor"]
		for _, name := range subjects {
			x := s.Subjects[name]
			if x == nil {
				continue
			}
			rr, rc := "", ""
			if name != "floor" && f != nil {
				rr, rc = ratio(float64(x.RSS), float64(f.RSS)), ratio(x.SyncCPUSeconds, f.SyncCPUSeconds)
			}
			fmt.Fprintf(w, "%d\t%s\t%.1f\t%.1f\t%.1f\t%.0f\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n", s.Pods, name, mib(x.RSS), mib(x.PeakRSS),
				mib(x.HeapInuse), x.BytesPerPod, x.StartupSeconds, x.SyncCPUSeconds, s.RawListSeconds, rr, rc)
		}
	}
	w.Flush()
	if len(r.Sizes) > 0 && r.Sizes[len(r.Sizes)-1].Fleet != nil {
		fmt.Fprintln(out, "\nBesides the pods (the fleet: kpulse watches all of it but the ReplicaSets, the floor none of it)")
		fmt.Fprintln(w, "pods	nodes	Deployments	ReplicaSets	DaemonSets	StatefulSets	CronJobs	")
		for _, s := range r.Sizes {
			if f := s.Fleet; f != nil {
				fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", s.Pods, f.Nodes, f.Deployments, f.ReplicaSets, f.DaemonSets, f.StatefulSets, f.CronJobs)
			}
		}
		w.Flush()
	}
	fmt.Fprintln(out, "\nPod creation (create + running status write, the bench's writer)")
	fmt.Fprintln(w, "pods\tseconds\tpods/s\t")
	for _, s := range r.Sizes {
		fmt.Fprintf(w, "%d\t%.0f\t%.0f\t\n", s.Pods, s.CreateSeconds, s.CreateRate)
	}
	w.Flush()

	f, k := r.Runs["floor"], r.Runs["kpulse"]
	if f != nil || k != nil {
		fmt.Fprintf(out, "\nDetection latency at %d pods, ms from the status write returning to the webhook arriving\n", r.Options.ChurnSize)
		fmt.Fprintln(w, "subject\tload\tn\tmissed\tp50\tp90\tp99\tmax\tp99 vs floor\t")
		for _, name := range subjects {
			x := r.Runs[name]
			if x == nil {
				continue
			}
			for _, l := range []struct {
				load  string
				v, fv latency
			}{{"idle", x.Idle, pick(f, true)}, {fmt.Sprintf("churn %.0f/s", x.ChurnRate), x.Churn, pick(f, false)}} {
				rp := ""
				if name != "floor" && f != nil {
					rp = ratio(l.v.P99, l.fv.P99)
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t\n", name, l.load, l.v.N, l.v.Missed, l.v.P50, l.v.P90, l.v.P99, l.v.Max, rp)
			}
		}
		w.Flush()
		fmt.Fprintf(out, "\nCPU per 10,000 healthy-pod status updates (written at %d/s)\n", r.Options.ChurnRate)
		fmt.Fprintln(w, "subject\tupdates seen\twritten/s\tCPU s/10k\tvs floor\t")
		for _, name := range subjects {
			x := r.Runs[name]
			if x == nil {
				continue
			}
			rc := ""
			if name != "floor" && f != nil {
				rc = ratio(x.CPUPer10k, f.CPUPer10k)
			}
			fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%.2f\t%s\t\n", name, x.UpdatesSeen, x.UpdatesWritePer, x.CPUPer10k, rc)
		}
		w.Flush()
	}
	if s := r.Storm; s != nil {
		fmt.Fprintf(out, "\nStorm: %d pods of %d Deployments fail within %.1fs\n", s.Pods, s.Deployments, s.WriteSeconds)
		fmt.Fprintf(out, "  firing messages %d (want %d), last one %.2fs after the first failure (%.2fs after the last); resolved messages %d\n",
			s.Firing, s.Deployments, s.LastSeconds, max(s.LastSeconds-s.WriteSeconds, 0), s.Resolved)
		fmt.Fprintf(out, "  goroutines %d -> %d, heap %.1f -> %.1f MiB, RSS %.1f -> %.1f MiB (before the storm -> after it resolved)\n",
			s.GoroutinesBefore, s.GoroutinesAfter, mib(s.HeapBefore), mib(s.HeapAfter), mib(s.RSSBefore), mib(s.RSSAfter))
	}
	if d := r.Digest; d != nil {
		fmt.Fprintf(out, "\nDigest storm: the same, with storm digests on (threshold %d, default window and maxWait)\n", d.Threshold)
		fmt.Fprintf(out, "  %d of %d alerts alone, %d in %d digests; worst wait of a digested alert %.2fs (its transition to its digest at the sink)\n",
			d.Alone, d.Deployments, d.Digested, d.Digests, d.WorstWaitSeconds)
	}
	if b := r.Big; b != nil {
		fmt.Fprintf(out, "\nOne large incident: a DaemonSet of %d pods fails, fails again, recovers (kpulse CPU per member update)\n", b.Pods)
		fmt.Fprintln(w, "round\twrites\tevents seen\twrite s\tCPU s\tCPU µs/update\t")
		for _, ph := range b.Phases {
			fmt.Fprintf(w, "%s\t%d\t%.0f\t%.1f\t%.2f\t%.0f\t\n", ph.Name, ph.Writes, ph.EventsSeen, ph.WriteSeconds, ph.CPUSeconds, ph.CPUPerUpdate)
		}
		w.Flush()
		fmt.Fprintf(out, "  messages: %d firing (want 1), %.2fs after the first write; %d resolved (want 1), %.2fs after the last write (stable window 5s)\n",
			b.Firing, b.FiringSeconds, b.Resolved, b.ResolvedSeconds)
		fmt.Fprintf(out, "  RSS %.1f -> %.1f MiB, heap %.1f -> %.1f MiB, peak RSS over kpulse's life %.1f MiB\n",
			mib(b.RSSBefore), mib(b.RSSAfter), mib(b.HeapBefore), mib(b.HeapAfter), mib(b.PeakRSS))
	}
	if len(r.Soak) > 0 {
		fmt.Fprintf(out, "\nSoak: churn at %d/s for %s\n", r.Options.ChurnRate, r.Options.Soak)
		fmt.Fprintln(w, "minute\tRSS MiB\theap MiB\tgoroutines\tupdates\t")
		for _, s := range r.Soak {
			fmt.Fprintf(w, "%.1f\t%.1f\t%.1f\t%d\t%d\t\n", s.Minute, mib(s.RSS), mib(s.HeapInuse), s.Goroutines, s.Updates)
		}
		w.Flush()
	}
	if r.Profiles != "" {
		fmt.Fprintf(out, "\nProfiles of kpulse (in-process run): go tool pprof -top %s/cpu.pprof ; go tool pprof -top -sample_index=inuse_space %s/heap.pprof\n", r.Profiles, r.Profiles)
	}
}

func pick(r *subjectRun, idle bool) latency {
	if r == nil {
		return latency{}
	}
	if idle {
		return r.Idle
	}
	return r.Churn
}
