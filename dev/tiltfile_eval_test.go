package dev

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/kpulse/kpulse/dev/testkit"
)

// Tilt cannot run here (no Docker, no cluster), so the Tiltfile is evaluated with go.starlark.net,
// the interpreter Tilt embeds, with the same dialect options, and with stand-ins for the Tilt
// builtins it calls. Each stand-in takes exactly the parameters of the Tilt API
// (https://docs.tilt.dev/api.html), so a misspelt or invented argument fails here as it would
// in Tilt, and records what it was given for the tests to check.

type localResource struct {
	Name, Cmd                         string
	Deps, Ignore, ResourceDeps, Label []string
}

type customBuild struct {
	Ref, Command, Tag string
	Deps              []string
	DisablePush       bool
	SkipsLocalDocker  bool
}

type k8sResource struct {
	Workload, NewName                           string
	PortForwards, ResourceDeps, Objects, Labels []string
}

// Name is the resource's name as Tilt shows it.
func (r k8sResource) Name() string {
	if r.NewName != "" {
		return r.NewName
	}
	return r.Workload
}

// tiltfile is what one evaluation declared.
type tiltfile struct {
	LocalResources []localResource
	CustomBuilds   []customBuild
	YAML           []string
	K8sResources   []k8sResource
	Allowed        []string
	Local          []string // commands run with local() while loading
}

func (tf *tiltfile) localResource(t *testing.T, name string) localResource {
	t.Helper()
	for _, r := range tf.LocalResources {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no local_resource %q", name)
	return localResource{}
}

func (tf *tiltfile) customBuild(t *testing.T, ref string) customBuild {
	t.Helper()
	for _, b := range tf.CustomBuilds {
		if b.Ref == ref {
			return b
		}
	}
	t.Fatalf("no custom_build %q", ref)
	return customBuild{}
}

func (tf *tiltfile) k8sResource(t *testing.T, name string) k8sResource {
	t.Helper()
	for _, r := range tf.K8sResources {
		if r.Name() == name {
			return r
		}
	}
	t.Fatalf("no k8s_resource %q", name)
	return k8sResource{}
}

// tiltRun is what `tilt up` would be started with.
type tiltRun struct {
	Env     map[string]string // what os.getenv sees
	Args    []string          // tilt up -- ARGS (positional)
	Flags   map[string]string // tilt up -- --name value
	Context string            // kubectl's current context (k8s_context())
	Arch    string            // what the node's architecture query prints
}

// evalTiltfile evaluates the repository's Tiltfile.
func evalTiltfile(t *testing.T, run tiltRun) (*tiltfile, error) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "Tiltfile"))
	if err != nil {
		t.Fatal(err)
	}
	tf := &tiltfile{}
	type definedFlag struct {
		kind string
		args bool
	}
	defined := map[string]definedFlag{}
	parsed := false

	strs := func(fn, param string, v starlark.Value) ([]string, error) {
		switch v := v.(type) {
		case nil, starlark.NoneType:
			return nil, nil
		case starlark.String:
			return []string{string(v)}, nil
		case *starlark.List:
			var out []string
			for i := range v.Len() {
				s, ok := v.Index(i).(starlark.String)
				if !ok {
					return nil, fmt.Errorf("%s: %s[%d] is %s, want a string", fn, param, i, v.Index(i).Type())
				}
				out = append(out, string(s))
			}
			return out, nil
		}
		return nil, fmt.Errorf("%s: %s is %s, want a string or a list of strings", fn, param, v.Type())
	}
	builtin := func(name string, fn func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
		return starlark.NewBuiltin(name, func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return fn(args, kwargs)
		})
	}

	defineFlag := func(kind string) *starlark.Builtin {
		return builtin("config.define_"+kind, func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name, usage string
			var isArgs bool
			if err := starlark.UnpackArgs("config.define_"+kind, args, kwargs, "name", &name, "args?", &isArgs, "usage?", &usage); err != nil {
				return nil, err
			}
			if parsed {
				return nil, fmt.Errorf("config.define_%s(%q) after config.parse()", kind, name)
			}
			defined[name] = definedFlag{kind, isArgs}
			return starlark.None, nil
		})
	}
	config := &starlarkstruct.Module{Name: "config", Members: starlark.StringDict{
		"define_string_list": defineFlag("string_list"),
		"define_string":      defineFlag("string"),
		"define_bool":        defineFlag("bool"),
		"parse": builtin("config.parse", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if err := starlark.UnpackArgs("config.parse", args, kwargs); err != nil {
				return nil, err
			}
			parsed = true
			d := starlark.NewDict(len(defined))
			for name, f := range defined {
				if f.args && len(run.Args) > 0 {
					var l []starlark.Value
					for _, a := range run.Args {
						l = append(l, starlark.String(a))
					}
					d.SetKey(starlark.String(name), starlark.NewList(l))
				}
			}
			if len(run.Args) > 0 && !slices.ContainsFunc(slices.Collect(maps.Values(defined)), func(f definedFlag) bool { return f.args }) {
				return nil, fmt.Errorf("positional args %v, and no config setting takes them", run.Args)
			}
			for name, val := range run.Flags {
				f, ok := defined[name]
				if !ok || f.args {
					return nil, fmt.Errorf("unknown flag --%s", name)
				}
				switch f.kind {
				case "string":
					d.SetKey(starlark.String(name), starlark.String(val))
				case "bool":
					d.SetKey(starlark.String(name), starlark.Bool(val == "true"))
				case "string_list":
					d.SetKey(starlark.String(name), starlark.NewList([]starlark.Value{starlark.String(val)}))
				}
			}
			return d, nil
		}),
	}}
	osModule := &starlarkstruct.Module{Name: "os", Members: starlark.StringDict{
		"getenv": builtin("os.getenv", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var key string
			var def starlark.Value = starlark.None
			if err := starlark.UnpackArgs("os.getenv", args, kwargs, "key", &key, "default?", &def); err != nil {
				return nil, err
			}
			if v, ok := run.Env[key]; ok {
				return starlark.String(v), nil
			}
			return def, nil
		}),
	}}

	predeclared := starlark.StringDict{
		"config": config,
		"os":     osModule,
		"k8s_context": builtin("k8s_context", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if err := starlark.UnpackArgs("k8s_context", args, kwargs); err != nil {
				return nil, err
			}
			return starlark.String(run.Context), nil
		}),
		"allow_k8s_contexts": builtin("allow_k8s_contexts", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var v starlark.Value
			if err := starlark.UnpackArgs("allow_k8s_contexts", args, kwargs, "contexts", &v); err != nil {
				return nil, err
			}
			l, err := strs("allow_k8s_contexts", "contexts", v)
			tf.Allowed = append(tf.Allowed, l...)
			return starlark.None, err
		}),
		"local": builtin("local", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var command, commandBat, dir string
			var quiet, echoOff bool
			var env, stdin starlark.Value
			if err := starlark.UnpackArgs("local", args, kwargs, "command", &command, "quiet?", &quiet, "command_bat?", &commandBat,
				"echo_off?", &echoOff, "env?", &env, "dir?", &dir, "stdin?", &stdin); err != nil {
				return nil, err
			}
			tf.Local = append(tf.Local, command)
			if strings.Contains(command, "nodeInfo.architecture") {
				return starlark.String(run.Arch + "\n"), nil
			}
			return nil, fmt.Errorf("local(%q): the test has no stand-in output for this command", command)
		}),
		"local_resource": builtin("local_resource", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var r localResource
			var deps, ignore, resourceDeps, labels, triggerMode, links, tags, env, serveEnv, probe starlark.Value
			var serveCmd, cmdBat, serveCmdBat, dir, serveDir string
			autoInit, allowParallel := true, false
			if err := starlark.UnpackArgs("local_resource", args, kwargs, "name", &r.Name, "cmd?", &r.Cmd, "deps?", &deps,
				"trigger_mode?", &triggerMode, "resource_deps?", &resourceDeps, "ignore?", &ignore, "auto_init?", &autoInit,
				"serve_cmd?", &serveCmd, "cmd_bat?", &cmdBat, "serve_cmd_bat?", &serveCmdBat, "allow_parallel?", &allowParallel,
				"links?", &links, "tags?", &tags, "env?", &env, "serve_env?", &serveEnv, "readiness_probe?", &probe,
				"dir?", &dir, "serve_dir?", &serveDir, "labels?", &labels); err != nil {
				return nil, err
			}
			var err error
			for _, p := range []struct {
				name string
				v    starlark.Value
				out  *[]string
			}{{"deps", deps, &r.Deps}, {"ignore", ignore, &r.Ignore}, {"resource_deps", resourceDeps, &r.ResourceDeps}, {"labels", labels, &r.Label}} {
				if *p.out, err = strs("local_resource", p.name, p.v); err != nil {
					return nil, err
				}
			}
			tf.LocalResources = append(tf.LocalResources, r)
			return starlark.None, nil
		}),
		"custom_build": builtin("custom_build", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var b customBuild
			var deps, liveUpdate, ignore, entrypoint, containerArgs, imageDeps, env starlark.Value
			var matchInEnvVars bool
			var commandBat, outputsImageRefTo, dir string
			if err := starlark.UnpackArgs("custom_build", args, kwargs, "ref", &b.Ref, "command", &b.Command, "deps", &deps,
				"tag?", &b.Tag, "disable_push?", &b.DisablePush, "skips_local_docker?", &b.SkipsLocalDocker,
				"live_update?", &liveUpdate, "match_in_env_vars?", &matchInEnvVars, "ignore?", &ignore,
				"entrypoint?", &entrypoint, "command_bat?", &commandBat, "outputs_image_ref_to?", &outputsImageRefTo,
				"container_args?", &containerArgs, "image_deps?", &imageDeps, "env?", &env, "dir?", &dir); err != nil {
				return nil, err
			}
			var err error
			if b.Deps, err = strs("custom_build", "deps", deps); err != nil {
				return nil, err
			}
			tf.CustomBuilds = append(tf.CustomBuilds, b)
			return starlark.None, nil
		}),
		"k8s_yaml": builtin("k8s_yaml", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var v starlark.Value
			var allowDuplicates bool
			if err := starlark.UnpackArgs("k8s_yaml", args, kwargs, "yaml", &v, "allow_duplicates?", &allowDuplicates); err != nil {
				return nil, err
			}
			l, err := strs("k8s_yaml", "yaml", v)
			tf.YAML = append(tf.YAML, l...)
			return starlark.None, err
		}),
		"k8s_resource": builtin("k8s_resource", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var r k8sResource
			var portForwards, extraSelectors, triggerMode, resourceDeps, objects, links, labels starlark.Value
			var podReadiness, discovery string
			autoInit := true
			if err := starlark.UnpackArgs("k8s_resource", args, kwargs, "workload?", &r.Workload, "new_name?", &r.NewName,
				"port_forwards?", &portForwards, "extra_pod_selectors?", &extraSelectors, "trigger_mode?", &triggerMode,
				"resource_deps?", &resourceDeps, "objects?", &objects, "auto_init?", &autoInit, "pod_readiness?", &podReadiness,
				"links?", &links, "labels?", &labels, "discovery_strategy?", &discovery); err != nil {
				return nil, err
			}
			if r.Workload == "" && (r.NewName == "" || objects == nil) {
				return nil, fmt.Errorf("k8s_resource: without a workload, new_name and objects are required")
			}
			var err error
			for _, p := range []struct {
				name string
				v    starlark.Value
				out  *[]string
			}{{"port_forwards", portForwards, &r.PortForwards}, {"resource_deps", resourceDeps, &r.ResourceDeps},
				{"objects", objects, &r.Objects}, {"labels", labels, &r.Labels}} {
				if *p.out, err = strs("k8s_resource", p.name, p.v); err != nil {
					return nil, err
				}
			}
			tf.K8sResources = append(tf.K8sResources, r)
			return starlark.None, nil
		}),
	}

	thread := &starlark.Thread{Name: "Tiltfile", Print: func(_ *starlark.Thread, msg string) { t.Logf("Tiltfile: %s", msg) }}
	// The dialect Tilt evaluates Tiltfiles with: top-level if/for, reassignment, while, sets.
	opts := &syntax.FileOptions{TopLevelControl: true, GlobalReassign: true, While: true, Set: true, Recursion: true}
	if _, err := starlark.ExecFileOptions(opts, thread, "Tiltfile", src, predeclared); err != nil {
		return tf, err
	}
	if !parsed && len(defined) > 0 {
		return tf, fmt.Errorf("config settings defined but config.parse() never called")
	}
	return tf, nil
}
