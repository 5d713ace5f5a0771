package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mvdan.cc/sh/v3/syntax"
)

// notPOSIX are commands of bash (and friends) that a POSIX sh such as dash lacks or treats
// differently; the parser takes them for ordinary commands, so they are looked for by name.
var notPOSIX = map[string]string{
	"[[":        "use [ ]",
	"local":     "not in POSIX sh (dash has it, others do not)",
	"source":    "use .",
	"declare":   "bash only",
	"typeset":   "ksh/bash only",
	"shopt":     "bash only",
	"pushd":     "bash only",
	"popd":      "bash only",
	"let":       "use $(( ))",
	"mapfile":   "bash only",
	"readarray": "bash only",
}

// CheckPOSIXShell is the shell check of `make test`. ShellCheck is a Haskell program that cannot
// be built from the Go module proxy, so it runs in CI (.github/workflows/ci.yml; GitHub's runners
// ship it) and here its POSIX part is approximated in Go:
//
//   - the script parses as POSIX sh with mvdan.cc/sh (the parser behind shfmt), which rejects
//     bash syntax: [[ ]], arrays, function, <<<, $'...', ${x//a/b}, &>, c-style for, ...;
//   - no command is a bash builtin (local, source, declare, ...), and no test uses ==;
//   - the shebang is #!/bin/sh and /bin/sh -n (dash on Debian) accepts the script.
func CheckPOSIXShell(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(path)
	if !strings.HasPrefix(string(data), "#!/bin/sh\n") {
		t.Errorf("%s: the first line is not #!/bin/sh", name)
	}
	for _, p := range POSIXProblems(string(data), name) {
		t.Errorf("%s", p)
	}
	if out, err := exec.Command("/bin/sh", "-n", path).CombinedOutput(); err != nil {
		t.Errorf("%s: /bin/sh -n: %v\n%s", name, err, out)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("%s is not executable", name)
	}
}

// POSIXProblems returns what keeps a script from being POSIX sh, one line per problem.
func POSIXProblems(script, name string) []string {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX), syntax.KeepComments(false)).Parse(strings.NewReader(script), name)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		cmd := call.Args[0].Lit()
		if why, bad := notPOSIX[cmd]; bad {
			problems = append(problems, fmt.Sprintf("%s:%s: %s: %s", name, call.Pos(), cmd, why))
		}
		if cmd == "[" || cmd == "test" {
			for _, a := range call.Args[1:] {
				if a.Lit() == "==" {
					problems = append(problems, fmt.Sprintf("%s:%s: == in a test: use =", name, a.Pos()))
				}
			}
		}
		if cmd == "echo" && len(call.Args) > 1 && strings.HasPrefix(call.Args[1].Lit(), "-") {
			problems = append(problems, fmt.Sprintf("%s:%s: echo with an option: use printf", name, call.Pos()))
		}
		return true
	})
	return problems
}
