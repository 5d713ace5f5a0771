package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
)

// incidentsPage is /incidents' answer.
type incidentsPage struct {
	Count     int `json:"count"`
	Limit     int `json:"limit"`
	Incidents []struct {
		incident.Incident
		MembersTotal int `json:"membersTotal"`
	} `json:"incidents"`
	Continue         string           `json:"continue"`
	FailedDeliveries []FailedDelivery `json:"failedDeliveries"`
}

func bigIncident(fp, ns string, class detect.Class, pods, msgBytes int) incident.Incident {
	msg := strings.Repeat("x", msgBytes)
	inc := incident.Incident{
		Fingerprint: fp, Status: incident.Firing,
		Key:    incident.Key{Namespace: ns, Workload: detect.Workload{Kind: "DaemonSet", Name: "agent-" + fp}, Class: class},
		Latest: detect.Finding{Class: class, TerminationMessage: msg},
		Deliveries: map[string]incident.ChannelState{"slack": {Last: &incident.DeliveryOutcome{
			Why: incident.WhyFirst, State: incident.DeliveryFailed, Error: strings.Repeat("e", 5000)}}},
	}
	for i := range pods {
		inc.Members = append(inc.Members, incident.Member{
			Ref:     incident.MemberRef{Kind: "Pod", Name: fmt.Sprintf("agent-%s-%05d", fp, i)},
			Failing: true,
			Finding: detect.Finding{Class: class, Image: "registry.example.com/agent:1", TerminationMessage: msg},
		})
	}
	return inc
}

func incidentsServer(t *testing.T, list []incident.Incident, failures []FailedDelivery) string {
	t.Helper()
	s := newServer(t, true, func(o *Options) {
		o.Incidents = func() []incident.Incident {
			out := make([]incident.Incident, len(list))
			for i, inc := range list {
				out[i] = inc.DeepCopy()
			}
			return out
		}
		o.Failures = func() []FailedDelivery { return failures }
	})
	return loopbackServer(t, s.Handler()).URL
}

func getPage(t *testing.T, url string) (incidentsPage, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw strings.Builder
	var p incidentsPage
	dec := json.NewDecoder(&teeReader{resp.Body, &raw})
	if resp.StatusCode == 200 {
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("%s: answer is not JSON: %v\n%.2000s", url, err, raw.String())
		}
	}
	return p, raw.Len()
}

type teeReader struct {
	r interface{ Read([]byte) (int, error) }
	w *strings.Builder
}

func (t *teeReader) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	t.w.Write(b[:n])
	return n, err
}

// TestIncidentsAreBounded: an incident of 3,000 pods with 4 KiB termination messages is listed
// with at most MaxMembersListed members (membersTotal says 3000), every text cut to
// MaxStringBytes, and the answer stays under MaxAnswerBytes. Many such incidents come in pages
// joined by continue tokens, each page bounded, together listing each incident once.
func TestIncidentsAreBounded(t *testing.T) {
	var list []incident.Incident
	for i := range 12 {
		class := []detect.Class{detect.CrashLoop, detect.OOMKilled}[i%2]
		list = append(list, bigIncident(fmt.Sprintf("fp%02d", i), []string{"shop", "batch"}[i%3/2], class, 3000, 4096))
	}
	url := incidentsServer(t, list, nil)

	p, size := getPage(t, url+"/incidents")
	if size > MaxAnswerBytes {
		t.Errorf("answer of %d bytes, cap %d", size, MaxAnswerBytes)
	}
	if p.Count != 12 || p.Limit != DefaultPageSize || p.Continue == "" || len(p.Incidents) == 0 || len(p.Incidents) == 12 {
		t.Fatalf("first page: count %d limit %d continue %q, %d incidents; want 12 in all, cut short by size", p.Count, p.Limit, p.Continue, len(p.Incidents))
	}
	seen := map[string]bool{}
	for pages := 1; ; pages++ {
		for _, inc := range p.Incidents {
			if seen[inc.Fingerprint] {
				t.Errorf("%s listed twice", inc.Fingerprint)
			}
			seen[inc.Fingerprint] = true
			if inc.MembersTotal != 3000 || len(inc.Members) != MaxMembersListed {
				t.Errorf("%s: %d members listed of %d; want %d of 3000", inc.Fingerprint, len(inc.Members), inc.MembersTotal, MaxMembersListed)
			}
			checkCut(t, inc.Latest.TerminationMessage)
			checkCut(t, inc.Members[0].Finding.TerminationMessage)
			checkCut(t, inc.Deliveries["slack"].Last.Error)
		}
		if p.Continue == "" {
			break
		}
		if pages > 12 {
			t.Fatal("the continue tokens do not end")
		}
		p, size = getPage(t, url+"/incidents?continue="+p.Continue)
		if size > MaxAnswerBytes || p.Count != 12 {
			t.Errorf("page %d: %d bytes, count %d", pages+1, size, p.Count)
		}
	}
	if len(seen) != 12 {
		t.Errorf("the pages listed %d incidents of 12", len(seen))
	}
	// The stored incidents were not changed by the cutting.
	if got := len(list[0].Members[0].Finding.TerminationMessage); got != 4096 {
		t.Errorf("the source incident's message is now %d bytes", got)
	}
}

func checkCut(t *testing.T, s string) {
	t.Helper()
	if len(s) > MaxStringBytes || !strings.HasSuffix(s, cutMark) || !utf8.ValidString(s) {
		t.Errorf("text of %d bytes (ends %q), want at most %d ending in %q", len(s), s[max(0, len(s)-8):], MaxStringBytes, cutMark)
	}
}

func TestIncidentsFiltersAndPaging(t *testing.T) {
	var list []incident.Incident
	for i := range 10 {
		class := []detect.Class{detect.CrashLoop, detect.OOMKilled}[i%2]
		list = append(list, bigIncident(fmt.Sprintf("fp%02d", i), []string{"shop", "batch"}[i/5], class, 2, 10))
	}
	failures := []FailedDelivery{{Channel: "slack", Namespace: "shop", Error: strings.Repeat("z", 4000)}, {Channel: "slack", Namespace: "batch"}}
	url := incidentsServer(t, list, failures)

	p, _ := getPage(t, url+"/incidents?namespace=shop&class=OOMKilled")
	if p.Count != 2 || len(p.Incidents) != 2 || p.Continue != "" {
		t.Fatalf("shop OOMKilled: count %d, %d listed, continue %q; want 2", p.Count, len(p.Incidents), p.Continue)
	}
	for _, inc := range p.Incidents {
		if inc.Key.Namespace != "shop" || inc.Key.Class != detect.OOMKilled {
			t.Errorf("filter let through %s %s", inc.Key.Namespace, inc.Key.Class)
		}
	}
	if len(p.FailedDeliveries) != 1 || p.FailedDeliveries[0].Namespace != "shop" || len(p.FailedDeliveries[0].Error) > MaxFailureStringBytes {
		t.Errorf("failed deliveries for shop = %+v", p.FailedDeliveries)
	}
	if p, _ := getPage(t, url+"/incidents?namespace=shop&namespace=batch&class=CrashLoopBackOff&class=OOMKilled"); p.Count != 10 {
		t.Errorf("both namespaces and classes: count %d, want 10", p.Count)
	}
	if p, _ := getPage(t, url+"/incidents?namespace=none"); p.Count != 0 || p.Incidents == nil || len(p.FailedDeliveries) != 0 {
		t.Errorf("no match = %+v; want count 0 and an empty list", p)
	}

	var got []string
	next := "/incidents?limit=3"
	for i := 0; next != ""; i++ {
		p, _ := getPage(t, url+next)
		if p.Count != 10 || p.Limit != 3 || len(p.Incidents) > 3 {
			t.Fatalf("page %d: count %d limit %d, %d listed", i, p.Count, p.Limit, len(p.Incidents))
		}
		if (i == 0) != (p.FailedDeliveries != nil) {
			t.Errorf("page %d: failedDeliveries %v; they belong on the first page only", i, p.FailedDeliveries)
		}
		for _, inc := range p.Incidents {
			got = append(got, inc.Fingerprint)
		}
		next = ""
		if p.Continue != "" {
			next = "/incidents?limit=3&continue=" + p.Continue
		}
	}
	if want := "fp00 fp01 fp02 fp03 fp04 fp05 fp06 fp07 fp08 fp09"; strings.Join(got, " ") != want {
		t.Errorf("pages listed %v, want %s in order", got, want)
	}
}

func TestIncidentsBadQuery(t *testing.T) {
	url := incidentsServer(t, nil, nil)
	for q, want := range map[string]string{
		"limit=0": "limit", "limit=501": "limit", "limit=x": "limit", "class=Crashy": "class \\\"Crashy\\\" is not one of", "namespaces=a": "unknown query parameter",
	} {
		a := do(t, nil, "GET", url+"/incidents?"+q, nil)
		if a.code != 400 || !strings.Contains(a.body, want) {
			t.Errorf("?%s = %d %s; want 400 naming %q", q, a.code, a.body, want)
		}
	}
}

func TestCutString(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456…"},
		{"ééééé", 8, "éé…"}, // 10 bytes; 5 kept bytes would split an é
		{"\x80", 0, ""},
		{"\x80\x80\x80\x80\x80\x80", 5, "\x80\x80…"},
		{"abc", -1, ""},
		{"abcd", -1, ""},
	} {
		got := cutString(tc.s, tc.n)
		if got != tc.want {
			t.Errorf("cutString(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// FuzzCutString: cutting is total (no input panics it), never longer than asked, and never
// splits a valid rune.
func FuzzCutString(f *testing.F) {
	for _, s := range []string{"", "\x80", "é", "日本語テキスト", strings.Repeat("a", 2000)} {
		f.Add(s, 4)
	}
	f.Add("\x80", -1)
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := cutString(s, n)
		if len(s) <= n {
			if got != s {
				t.Fatalf("changed a string that fits")
			}
			return
		}
		if len(got) > max(n, 0) {
			t.Fatalf("cutString to %d gave %d bytes", n, len(got))
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("cut split a rune: %q", got)
		}
	})
}

func TestCapStringsKeepsTheOriginal(t *testing.T) {
	inc := bigIncident("fp", "ns", detect.CrashLoop, 2, 3000)
	before := inc.DeepCopy()
	got := capStrings(reflect.ValueOf(inc), 100).Interface().(incident.Incident)
	if !reflect.DeepEqual(inc, before) {
		t.Fatal("capStrings changed its input")
	}
	if len(got.Members[1].Finding.TerminationMessage) > 100 || got.Key.Class != detect.CrashLoop || got.Members[1].Ref.Name != inc.Members[1].Ref.Name {
		t.Errorf("capped = %+v", got.Members[1])
	}
}
