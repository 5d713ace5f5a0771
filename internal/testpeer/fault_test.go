package testpeer

import (
	"testing"
	"time"
)

func TestFaultsPlayInOrderAndCountTimes(t *testing.T) {
	var q Faults
	if _, ok := q.Next(); ok {
		t.Fatal("an empty queue gave a fault")
	}
	q.Add(Fault{Kind: RateLimited, After: time.Second, Times: 2})
	q.Add(Fault{Kind: ServerError}) // Times 0 means once
	if n := q.Pending(); n != 3 {
		t.Fatalf("Pending = %d, want 3", n)
	}
	want := []FaultKind{RateLimited, RateLimited, ServerError}
	for i, k := range want {
		f, ok := q.Next()
		if !ok || f.Kind != k || f.Times != 1 {
			t.Fatalf("fault %d = %+v, %v; want %s", i, f, ok, k)
		}
		if k == RateLimited && f.After != time.Second {
			t.Fatalf("After = %s", f.After)
		}
	}
	if _, ok := q.Next(); ok || q.Pending() != 0 {
		t.Fatal("the queue outlived its faults")
	}
}

func TestFaultKindNames(t *testing.T) {
	for k, want := range map[FaultKind]string{
		RateLimited: "RateLimited", ServerError: "ServerError", Unauthorized: "Unauthorized",
		Invalid: "Invalid", NotFound: "NotFound", Disconnect: "Disconnect", FaultKind(99): "FaultKind(99)",
	} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(k), got, want)
		}
	}
	if s := (Fault{Kind: RateLimited, After: 2 * time.Second}).String(); s != "RateLimited after 2s" {
		t.Errorf("Fault.String() = %q", s)
	}
}
