package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/pflag"

	"github.com/kpulse/kpulse/internal/route"
)

func init() {
	Silenced = activeSilence
	Commands["silence"] = Command{
		Summary: "add, list or expire silences through a running kpulse (--url, default http://localhost:8080)",
		Run:     runSilence,
	}
}

// DefaultURL is where `kpulse silence` finds kpulse: what `kubectl port-forward deploy/kpulse
// 8080` gives.
const DefaultURL = "http://localhost:8080"

// silenceTimeout bounds one call of the API.
const silenceTimeout = 15 * time.Second

const silenceUsage = `usage:
  kpulse silence add [matcher flags] (--duration D | --ends T) [--starts T] --comment TEXT [--author NAME]
  kpulse silence list [-o table|json]
  kpulse silence expire ID
Every subcommand takes --url (default ` + DefaultURL + `: kubectl -n NAMESPACE port-forward deploy/kpulse 8080).
With admin.access: token, reach the admin port over https instead:
  --url https://HOST:8443 --token-file FILE [--ca-file admin-ca.pem]
Exit codes: 0 done, 1 kpulse could not be reached or failed, 2 bad arguments or a silence kpulse refused.
`

func runSilence(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, silenceUsage)
		return 2
	}
	switch args[0] {
	case "add":
		return silenceAdd(args[1:], stdout, stderr)
	case "list", "ls":
		return silenceList(args[1:], stdout, stderr)
	case "expire", "rm":
		return silenceExpire(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, silenceUsage)
		return 0
	}
	fmt.Fprintf(stderr, "kpulse silence: unknown subcommand %q\n%s", args[0], silenceUsage)
	return 2
}

// remote is where and how the silence commands reach kpulse.
type remote struct {
	base string
	// tokenFile holds a bearer token for an admin port with admin.access: token (docs/security.md);
	// caFile the PEM certificate(s) that admin.tls's certificate chains to.
	tokenFile, caFile string
}

// silenceFlags returns a flag set with --url, --token-file and --ca-file, and where they land.
func silenceFlags(name string, stderr io.Writer) (*pflag.FlagSet, *remote) {
	fs := pflag.NewFlagSet("kpulse silence "+name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	r := &remote{}
	fs.StringVar(&r.base, "url", DefaultURL, "kpulse's address (its admin endpoints answer on loopback: use kubectl port-forward)")
	fs.StringVar(&r.tokenFile, "token-file", "", "file holding a bearer token, for kpulse's admin port with admin.access: token (https only), e.g. from kubectl create token")
	fs.StringVar(&r.caFile, "ca-file", "", "PEM file of the CA that signed kpulse's admin certificate (admin.tls), for --url https://...")
	return fs, r
}

// client returns the HTTP client and the Authorization header value (empty for none) that r
// asks for; the error names the flag and the file, never the token.
func (r remote) client(u *url.URL) (*http.Client, string, error) {
	c := &http.Client{}
	if r.caFile != "" {
		pem, err := os.ReadFile(r.caFile)
		if err != nil {
			return nil, "", fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("--ca-file %s: no PEM certificate in it", r.caFile)
		}
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	if r.tokenFile == "" {
		return c, "", nil
	}
	if u.Scheme != "https" {
		return nil, "", fmt.Errorf("--token-file: a token goes over https only (the admin port, admin.listen), not to %s", u.Redacted())
	}
	raw, err := os.ReadFile(r.tokenFile)
	if err != nil {
		return nil, "", fmt.Errorf("--token-file: %w", err)
	}
	token := strings.TrimSpace(string(raw))
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return nil, "", fmt.Errorf("--token-file %s: want one token, alone in the file", r.tokenFile)
	}
	return c, "Bearer " + token, nil
}

// parse parses args; done is true with the exit code when there is nothing more to do.
func parse(fs *pflag.FlagSet, args []string, stderr io.Writer) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0, true
		}
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 2, true
	}
	return 0, false
}

func silenceAdd(args []string, stdout, stderr io.Writer) int {
	fs, at := silenceFlags("add", stderr)
	var m route.Matcher
	fs.StringSliceVar(&m.Namespaces, "namespace", nil, "namespace name or glob (repeat, or comma-separated)")
	fs.StringVar(&m.NamespaceSelector, "namespace-selector", "", "label selector on the Namespace's labels")
	fs.StringSliceVar(&m.Kinds, "kind", nil, "workload kind: Deployment, StatefulSet, DaemonSet, CronJob, Job, Node, Pod")
	fs.StringSliceVar(&m.Workloads, "workload", nil, "workload name or glob")
	fs.StringVar(&m.WorkloadSelector, "workload-selector", "", "label selector on the workload's labels")
	fs.StringVar(&m.Pods, "pod", "", "regular expression on the pod's name (anchored)")
	fs.StringSliceVar(&m.Containers, "container", nil, "container name or glob")
	fs.StringSliceVar(&m.Classes, "class", nil, "failure class: CrashLoopBackOff, OOMKilled, ...")
	fs.StringSliceVar(&m.Severities, "severity", nil, "critical, warning or info")
	exitCodes := fs.Int32Slice("exit-code", nil, "container exit code")
	starts := fs.String("starts", "", "start, RFC 3339 (default now)")
	ends := fs.String("ends", "", "end, RFC 3339")
	duration := fs.Duration("duration", 0, "how long, from the start (2h, 90m)")
	comment := fs.String("comment", "", "why (required)")
	author := fs.String("author", defaultAuthor(), "who asks (a token's user wins over remote access)")
	if code, done := parse(fs, args, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kpulse silence add: unexpected argument %q (matchers are flags: --namespace, --workload, --class, ...)\n", fs.Arg(0))
		return 2
	}
	m.ExitCodes = *exitCodes
	var problems []string
	if *duration != 0 && *ends != "" {
		problems = append(problems, "--duration and --ends: give one")
	}
	if *duration == 0 && *ends == "" {
		problems = append(problems, "--duration or --ends: required")
	}
	if *duration < 0 {
		problems = append(problems, "--duration: must be positive")
	}
	if strings.TrimSpace(*comment) == "" {
		problems = append(problems, "--comment: required (why the silence)")
	}
	for _, t := range []struct{ flag, v string }{{"--starts", *starts}, {"--ends", *ends}} {
		if _, err := time.Parse(time.RFC3339, t.v); t.v != "" && err != nil {
			problems = append(problems, fmt.Sprintf("%s: %q is not an RFC 3339 time (2026-12-02T15:04:05Z)", t.flag, t.v))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "kpulse silence add:\n  %s\n", strings.Join(problems, "\n  "))
		return 2
	}
	req := map[string]any{"matcher": m, "createdBy": *author, "comment": *comment}
	if *starts != "" {
		req["startsAt"] = *starts
	}
	if *ends != "" {
		req["endsAt"] = *ends
	}
	if *duration > 0 {
		req["duration"] = duration.String()
	}
	var added route.Silence
	if code := call(*at, http.MethodPost, "/api/v1/silences", req, &added, stderr); code != 0 {
		return code
	}
	fmt.Fprintln(stdout, added.ID)
	return 0
}

// silenceView is a silence as the API lists it.
type silenceView struct {
	route.Silence
	State route.SilenceState `json:"state"`
}

func silenceList(args []string, stdout, stderr io.Writer) int {
	fs, at := silenceFlags("list", stderr)
	output := fs.StringP("output", "o", "table", "table or json")
	if code, done := parse(fs, args, stderr); done {
		return code
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "kpulse silence list: -o %q: want table or json\n", *output)
		return 2
	}
	var answer struct {
		Silences []silenceView `json:"silences"`
	}
	if code := call(*at, http.MethodGet, "/api/v1/silences", nil, &answer, stderr); code != 0 {
		return code
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if answer.Silences == nil {
			answer.Silences = []silenceView{}
		}
		_ = enc.Encode(answer.Silences)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSTARTS\tENDS\tCREATED BY\tMATCHER\tCOMMENT")
	for _, s := range answer.Silences {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, s.StartsAt.Format(time.RFC3339), s.EndsAt.Format(time.RFC3339),
			printable(s.CreatedBy, 40), printable(matcherText(s.Matcher), 80), printable(s.Comment, 60))
	}
	_ = tw.Flush()
	return 0
}

func silenceExpire(args []string, stdout, stderr io.Writer) int {
	fs, at := silenceFlags("expire", stderr)
	if code, done := parse(fs, args, stderr); done {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, "kpulse silence expire: which silence? give its ID (kpulse silence list)\n")
		return 2
	}
	code := 0
	for _, id := range fs.Args() {
		var s route.Silence
		if c := call(*at, http.MethodDelete, "/api/v1/silences/"+url.PathEscape(id), nil, &s, stderr); c != 0 {
			code = max(code, c)
			continue
		}
		fmt.Fprintf(stdout, "expired %s\n", s.ID)
	}
	return code
}

// call sends one request to the API and decodes the answer into out. It returns the exit code:
// 0, 2 when kpulse refused the request as bad (400, 413), 1 for anything else, with the reason
// on stderr.
func call(at remote, method, path string, body, out any, stderr io.Writer) int {
	base := at.base
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		fmt.Fprintf(stderr, "kpulse silence: --url %q: want http://HOST:PORT\n", base)
		return 2
	}
	client, auth, err := at.client(u)
	if err != nil {
		fmt.Fprintf(stderr, "kpulse silence: %v\n", err)
		return 2
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			fmt.Fprintf(stderr, "kpulse silence: %v\n", err)
			return 1
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), silenceTimeout)
	defer cancel()
	target := strings.TrimSuffix(u.String(), "/") + path
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		fmt.Fprintf(stderr, "kpulse silence: %v\n", err)
		return 2
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "kpulse silence: cannot reach kpulse at %s (is a kubectl port-forward running?): %v\n", base, err)
		return 1
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		fmt.Fprintf(stderr, "kpulse silence: reading kpulse's answer: %v\n", err)
		return 1
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		reason := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			reason = e.Error
		}
		fmt.Fprintf(stderr, "kpulse silence: %s %s: %s: %s\n", method, path, resp.Status, printable(reason, 2000))
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusRequestEntityTooLarge {
			return 2
		}
		return 1
	}
	if err := json.Unmarshal(raw, out); err != nil {
		fmt.Fprintf(stderr, "kpulse silence: kpulse's answer does not decode: %v\n", err)
		return 1
	}
	return 0
}

// matcherText is a matcher in one line: key=value pairs, as the flags spell them.
func matcherText(m route.Matcher) string {
	var parts []string
	list := func(key string, vs []string) {
		if len(vs) > 0 {
			parts = append(parts, key+"="+strings.Join(vs, ","))
		}
	}
	one := func(key, v string) {
		if v != "" {
			parts = append(parts, key+"="+v)
		}
	}
	list("namespace", m.Namespaces)
	one("namespace-selector", m.NamespaceSelector)
	list("kind", m.Kinds)
	list("workload", m.Workloads)
	one("workload-selector", m.WorkloadSelector)
	one("pod", m.Pods)
	list("container", m.Containers)
	list("class", m.Classes)
	list("severity", m.Severities)
	if len(m.ExitCodes) > 0 {
		codes := make([]string, len(m.ExitCodes))
		for i, c := range m.ExitCodes {
			codes[i] = fmt.Sprint(c)
		}
		list("exit-code", codes)
	}
	return strings.Join(parts, " ")
}

// printable keeps text to one line of at most n runes without control characters, so that a
// comment cannot rewrite the terminal or break the table.
func printable(s string, n int) string {
	var b strings.Builder
	count := 0
	for _, r := range s {
		if count == n {
			b.WriteString("…")
			break
		}
		switch {
		case r == '\n' || r == '\t':
			r = ' '
		case unicode.IsControl(r) || r == '\u200b' || unicode.Is(unicode.Bidi_Control, r):
			continue
		}
		b.WriteRune(r)
		count++
	}
	return b.String()
}

// defaultAuthor is who runs the command: $USER, else the OS account.
func defaultAuthor() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// activeSilence is the Silenced hook of `kpulse check --route --url`: it lists the silences of
// the kpulse at base and returns the ID of the first active one whose matcher matches s.
func activeSilence(base string, s route.Subject) (string, error) {
	var answer struct {
		Silences []silenceView `json:"silences"`
	}
	var why strings.Builder
	if code := call(remote{base: base}, http.MethodGet, "/api/v1/silences", nil, &answer, &why); code != 0 {
		return "", errors.New(strings.TrimSpace(strings.TrimPrefix(why.String(), "kpulse silence: ")))
	}
	for _, sv := range answer.Silences {
		if sv.State != route.SilenceActive {
			continue
		}
		m, problems := sv.Matcher.Compile()
		if len(problems) == 0 && m.Matches(s) {
			return sv.ID, nil
		}
	}
	return "", nil
}
