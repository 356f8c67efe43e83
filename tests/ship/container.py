"""Checks of container/Dockerfile and container/sidecar.yaml for
tests/e2e/ship_container.sh, without a container engine or a cluster.

  container.py dockerfile FILE OUTDIR
      Checks the Dockerfile's shape and writes what the shell test needs to
      replay its build stage and to look at its final stage.
  container.py sidecar FILE DEFAULTS OUTDIR
      Checks the pod template as the API server and kubelet would take it,
      and against the agent's defaults (DEFAULTS, a JSON file the shell test
      reads off the binary); writes the argv and environment of istio-init,
      istio-proxy and its postStart hook for the shell test to run.

Problems are printed one per line; the exit code is 1 when there is any.
Needs PyYAML (Debian's python3-yaml).
"""
import json
import os
import re
import shlex
import sys

problems = []


def problem(msg):
    problems.append(msg)


def finish():
    for p in problems:
        print("FAIL: " + p, file=sys.stderr)
    sys.exit(1 if problems else 0)


def write_argv(path, argv):
    """NUL-terminated arguments, for bash's mapfile -d ''."""
    with open(path, "wb") as f:
        for a in argv:
            f.write(a.encode() + b"\0")


# ---- Dockerfile ----

def dockerfile_instructions(text):
    """(instruction, arguments) pairs; continuation lines joined."""
    out, cur = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        word, _, rest = cur.partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def apt_check(path, run):
    """The build stage installs only what tests/deps.sh installs."""
    deps = os.path.join(os.path.dirname(os.path.abspath(path)), "..", "tests", "deps.sh")
    text = open(deps).read()
    known = set(re.search(r'pkgs="([^"]*)"', text).group(1).split())
    install = run[run.index("apt-get install"):].split("&&")[0].split()[2:]
    for pkg in install:
        if not pkg.startswith("-") and pkg not in known:
            problem("build stage installs %s, which tests/deps.sh does not" % pkg)


def dockerfile(path, outdir):
    ins = dockerfile_instructions(open(path).read())
    args, stages = {}, []
    for word, rest in ins:
        if word == "ARG" and not stages:
            name, _, dflt = rest.partition("=")
            args[name] = dflt
        elif word == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            if not m:
                problem("FROM %r" % rest)
                continue
            stages.append({"from": m.group(1), "name": m.group(2), "ins": []})
        elif stages:
            stages[-1]["ins"].append((word, rest))
        else:
            problem("%s before the first FROM" % word)
    if len(stages) != 2:
        problem("want two stages (build, final), have %d" % len(stages))
        return
    build, final = stages
    if build["from"] != "debian:bookworm" or build["name"] != "build":
        problem("the first stage must be 'FROM debian:bookworm AS build', not %r"
                % build["from"])
    m = re.match(r"\$\{?(\w+)\}?$", final["from"])
    if not m or m.group(1) not in args:
        problem("the final stage must be FROM a build argument, not %r" % final["from"])
    elif not re.match(r"envoyproxy/envoy:v\d+\.\d+\.\d+$", args[m.group(1)]):
        problem("the default of %s, %r, is not an Envoy release image"
                % (m.group(1), args[m.group(1)]))

    # The build stage: COPY sources into WORKDIR, then RUN make.
    copies, makes, workdir = [], [], None
    for word, rest in build["ins"]:
        if word == "WORKDIR":
            workdir = rest
        elif word == "COPY":
            parts = rest.split()
            if any(p.startswith("--") for p in parts) or len(parts) != 2:
                problem("build stage: COPY %r" % rest)
                continue
            copies.append(parts[0])
        elif word == "RUN":
            if rest.startswith("make "):
                makes.append(rest)
            elif "apt-get install" in rest:
                apt_check(path, rest)
            else:
                problem("build stage: unexpected RUN %r" % rest)
    if workdir is None:
        problem("build stage: no WORKDIR")
    if len(makes) != 1:
        problem("build stage: want one RUN make, have %d" % len(makes))
        return
    make = shlex.split(makes[0].replace('"$(nproc)"', "2"))
    vars_ = dict(a.split("=", 1) for a in make if "=" in a and not a.startswith("-"))
    targets = [a for a in make[1:] if "=" not in a and not a.startswith("-")]
    if targets != ["install"]:
        problem("build stage: make targets %r, want install" % targets)
    if vars_.get("PREFIX") != "/usr/local":
        problem("build stage: make install PREFIX=%r, want /usr/local" % vars_.get("PREFIX"))
    if vars_.get("STATIC") != "1":
        problem("build stage: the agent must be linked with STATIC=1")
    for v in ("DESTDIR", "BUILD"):
        if not vars_.get(v, "").startswith("/"):
            problem("build stage: make needs an absolute %s" % v)
    destdir = vars_.get("DESTDIR", "/out")

    # The final stage: the installed tree copied in, user 1337, entrypoint.
    user = entry = None
    final_copies, runs = [], []
    for word, rest in final["ins"]:
        if word == "USER":
            user = rest
        elif word == "ENTRYPOINT":
            entry = rest
        elif word == "COPY":
            final_copies.append(rest.split())
        elif word == "RUN":
            runs.append(rest)
        elif word == "CMD":
            problem("final stage: CMD %r (the sidecar template gives the arguments)" % rest)
    if user is None or user.split(":")[0] != "1337":
        problem("final stage: USER %r, want 1337" % user)
    try:
        entry_argv = json.loads(entry or "")
    except ValueError:
        entry_argv = None
    if entry_argv != ["/usr/local/bin/pilot-agent"]:
        problem("final stage: ENTRYPOINT %r, want [\"/usr/local/bin/pilot-agent\"]" % entry)
    want_copy = ["--from=build", destdir + "/usr/local/", "/usr/local/"]
    if want_copy not in final_copies:
        problem("final stage: no 'COPY %s'" % " ".join(want_copy))
    if not any("useradd" in r and "--uid 1337" in r for r in runs):
        problem("final stage: no user with uid 1337 is created")
    if not any("iptables" in r and "iproute2" in r for r in runs):
        problem("final stage: iptables and iproute2 are not installed (istio-init needs them)")

    with open(os.path.join(outdir, "build.env"), "w") as f:
        f.write("DF_WORKDIR=%s\n" % shlex.quote(workdir or ""))
        f.write("DF_COPIES=%s\n" % shlex.quote(" ".join(copies)))
        f.write("DF_DESTDIR=%s\n" % shlex.quote(destdir))
        f.write("DF_BUILD=%s\n" % shlex.quote(vars_.get("BUILD", "")))
        f.write("DF_ENTRYPOINT=%s\n" % shlex.quote((entry_argv or [""])[0]))
    write_argv(os.path.join(outdir, "make.argv"), make)
    smoke = [json.loads(r) for r in runs if r.startswith("[")]
    write_argv(os.path.join(outdir, "smoke.argv"), smoke[0] if smoke else [])


# ---- sidecar.yaml ----

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
FIELD_PATHS = {"metadata.name", "metadata.namespace", "metadata.uid",
               "spec.nodeName", "spec.serviceAccountName", "status.hostIP",
               "status.podIP", "status.podIPs"}
QUANTITY = re.compile(r"^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
UNITS = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
         "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
# What the test's pod looks like: the values of the downward API.
FIELD_VALUES = {"metadata.name": "productpage-v1-7d9f8c-x2x4q",
                "metadata.namespace": "shop",
                "spec.serviceAccountName": "bookinfo-productpage",
                "status.podIP": "10.1.2.3", "status.hostIP": "10.0.0.7"}


def quantity(where, q):
    m = QUANTITY.match(str(q))
    if not m:
        problem("%s: %r is not a quantity" % (where, q))
        return None
    return float(m.group(1)) * UNITS[m.group(2)]


def expand(s, env):
    """Kubernetes' $(VAR) expansion; $$ is a literal $."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        if name not in env:
            problem("$(%s) refers to no variable defined before it" % name)
            return m.group(0)
        return env[name]
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, s)


def container_env(c):
    env = {}
    for e in c.get("env", []):
        name = e.get("name", "")
        if not ENV_NAME.match(name):
            problem("%s: env name %r" % (c["name"], name))
        if ("value" in e) == ("valueFrom" in e):
            problem("%s: env %s needs exactly one of value and valueFrom" % (c["name"], name))
        if name in env:
            problem("%s: env %s twice" % (c["name"], name))
        if "valueFrom" in e:
            fp = e["valueFrom"].get("fieldRef", {}).get("fieldPath")
            if fp not in FIELD_PATHS:
                problem("%s: env %s: fieldPath %r" % (c["name"], name, fp))
            env[name] = FIELD_VALUES.get(fp, "")
        else:
            if not isinstance(e["value"], str):
                problem("%s: env %s: the value must be a string" % (c["name"], name))
            env[name] = expand(str(e["value"]), env)
    return env


def flag_value(argv, name):
    """The last value of --name in argv (--name v or --name=v), or None."""
    val = None
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            val = argv[i + 1]
        elif a.startswith(name + "="):
            val = a.split("=", 1)[1]
    return val


def probe_checks(c, kind, probe, ports):
    get = probe.get("httpGet")
    if get is None:
        problem("%s: %s is not an httpGet probe" % (c["name"], kind))
        return None
    port = get.get("port")
    if isinstance(port, str):
        if port not in ports:
            problem("%s: %s names port %r, which it does not declare" % (c["name"], kind, port))
            return None
        port = ports[port]
    if not isinstance(port, int) or not 0 < port < 65536:
        problem("%s: %s port %r" % (c["name"], kind, port))
        return None
    return port, get.get("path")


def sidecar(path, defaults_path, outdir):
    import yaml

    doc = yaml.safe_load(open(path))
    dflt = json.load(open(defaults_path))
    if doc.get("apiVersion") != "apps/v1" or doc.get("kind") != "Deployment":
        problem("want an apps/v1 Deployment")
    spec = doc["spec"]
    tmpl = spec["template"]
    labels = tmpl["metadata"].get("labels", {})
    for k, v in spec["selector"]["matchLabels"].items():
        if labels.get(k) != v:
            problem("selector %s=%s does not match the template's labels" % (k, v))
    pod = tmpl["spec"]
    inits = pod.get("initContainers", [])
    ctrs = pod.get("containers", [])
    by_name = {}
    for c in inits + ctrs:
        if not DNS_LABEL.match(c.get("name", "")) or len(c["name"]) > 63:
            problem("container name %r" % c.get("name"))
        if c["name"] in by_name:
            problem("container %s twice" % c["name"])
        by_name[c["name"]] = c
        if "image" not in c:
            problem("%s: no image" % c["name"])
    init, proxy = by_name.get("istio-init"), by_name.get("istio-proxy")
    if init is None or proxy is None or init not in inits or proxy not in ctrs:
        problem("want an init container istio-init and a container istio-proxy")
        return
    if ctrs[0] is not proxy:
        problem("istio-proxy must be the first container, for its postStart hook to hold the others")
    if init["image"] != proxy["image"]:
        problem("istio-init and istio-proxy must run the same image")
    for c in (init, proxy):
        if "command" in c:
            problem("%s: a command would replace the image's entrypoint" % c["name"])

    # Ports: valid, unique in the pod, named by protocol.
    seen_names, seen_ports = set(), set()
    cports = {}
    for c in inits + ctrs:
        cports[c["name"]] = {}
        for p in c.get("ports", []):
            name, num = p.get("name", ""), p.get("containerPort")
            if not isinstance(num, int) or not 0 < num < 65536:
                problem("%s: containerPort %r" % (c["name"], num))
                continue
            if (len(name) > 15 or not PORT_NAME.match(name) or "--" in name
                    or not re.search("[a-z]", name)):
                problem("%s: port name %r is not an IANA service name" % (c["name"], name))
            if name in seen_names or num in seen_ports:
                problem("%s: port %s (%d) declared twice in the pod" % (c["name"], name, num))
            seen_names.add(name)
            seen_ports.add(num)
            if p.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
                problem("%s: protocol %r" % (c["name"], p.get("protocol")))
            cports[c["name"]][name] = num

    # Resources: quantities that parse, requests within limits.
    for c in inits + ctrs:
        res = c.get("resources", {})
        req, lim = res.get("requests", {}), res.get("limits", {})
        if not req:
            problem("%s: no resource requests" % c["name"])
        for k in set(req) | set(lim):
            r = quantity("%s requests.%s" % (c["name"], k), req[k]) if k in req else None
            l = quantity("%s limits.%s" % (c["name"], k), lim[k]) if k in lim else None
            if r is not None and l is not None and r > l:
                problem("%s: %s request over its limit" % (c["name"], k))

    # Volumes: every mount names a volume, every volume is mounted.
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounted = set()
    for c in inits + ctrs:
        paths = set()
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problem("%s: mounts volume %s, which the pod does not have" % (c["name"], m["name"]))
            if m["mountPath"] in paths:
                problem("%s: %s mounted twice" % (c["name"], m["mountPath"]))
            paths.add(m["mountPath"])
            mounted.add(m["name"])
    for v in volumes:
        if v not in mounted:
            problem("volume %s is not mounted" % v)

    # istio-proxy: the agent's arguments, environment, user, probes.
    penv = container_env(proxy)
    pargs = [expand(str(a), penv) for a in proxy.get("args", [])]
    if pargs[:2] != ["proxy", "sidecar"]:
        problem("istio-proxy: args must start with 'proxy sidecar', not %r" % pargs[:2])
    sc = proxy.get("securityContext", {})
    uid = sc.get("runAsUser")
    if uid != 1337 or sc.get("runAsNonRoot") is not True:
        problem("istio-proxy: runAsUser %r, runAsNonRoot %r; want 1337, true"
                % (uid, sc.get("runAsNonRoot")))
    if sc.get("readOnlyRootFilesystem") is not True:
        problem("istio-proxy: the root filesystem must be read-only")
    if sc.get("allowPrivilegeEscalation") is not False:
        problem("istio-proxy: allowPrivilegeEscalation must be false")
    # With a read-only root, --configPath (bootstrap files, the xDS socket)
    # must be a writable volume.
    cfg = flag_value(pargs, "--configPath") or "./etc/istio/proxy"
    mount = [m for m in proxy.get("volumeMounts", [])
             if (cfg + "/").startswith(m["mountPath"].rstrip("/") + "/")]
    if not mount:
        problem("istio-proxy: --configPath %s is on the read-only root" % cfg)
    elif mount[0].get("readOnly") or "emptyDir" not in volumes.get(mount[0]["name"], {}):
        problem("istio-proxy: --configPath %s is not on a writable emptyDir" % cfg)
    for c in inits + ctrs:
        if c is not proxy and c.get("securityContext", {}).get("runAsUser") == uid:
            problem("%s runs as the proxy's uid %r: its traffic would escape the proxy"
                    % (c["name"], uid))

    # Ports: exactly the agent's and the proxy's, at their defaults.
    want = {dflt["outbound"]: "tcp", dflt["inbound"]: "tcp", dflt["statusPort"]: "http",
            dflt["health"]: "http", dflt["prometheus"]: "http"}
    have = {num: name for name, num in cports["istio-proxy"].items()}
    if set(have) != set(want):
        problem("istio-proxy ports %s, want the defaults %s" % (sorted(have), sorted(want)))
    for num, name in have.items():
        if num in want and name.split("-")[0] != want[num]:
            problem("istio-proxy: port %d is named %r, want a %s- name" % (num, name, want[num]))
    if dflt["proxyAdminPort"] in seen_ports:
        problem("the proxy's admin port %d is for 127.0.0.1 only" % dflt["proxyAdminPort"])
    for flag, key in (("--statusPort", "statusPort"), ("--proxyAdminPort", "proxyAdminPort")):
        v = flag_value(pargs, flag)
        if v is not None and v != str(dflt[key]):
            problem("istio-proxy: %s %s, not the default %d" % (flag, v, dflt[key]))
    status_port = int(flag_value(pargs, "--statusPort") or dflt["statusPort"])

    # Probes go to the health listener, which passes /healthz/ready on.
    for kind in ("startupProbe", "readinessProbe"):
        if kind not in proxy:
            problem("istio-proxy: no %s" % kind)
            continue
        pp = probe_checks(proxy, kind, proxy[kind], cports["istio-proxy"])
        if pp and pp != (dflt["health"], "/healthz/ready"):
            problem("istio-proxy: %s %r, want /healthz/ready on %d" % (kind, pp, dflt["health"]))
    hook = proxy.get("lifecycle", {}).get("postStart", {}).get("exec", {}).get("command")
    if not hook or hook[:2] != ["pilot-agent", "wait"]:
        problem("istio-proxy: postStart must run 'pilot-agent wait', not %r" % hook)
        hook = ["pilot-agent", "wait"]
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= dflt["terminationDrainDuration"] + 5:
        problem("terminationGracePeriodSeconds %d is not more than the drain and its grace" % grace)

    # Prometheus scrapes the agent's merged metrics.
    ann = tmpl["metadata"].get("annotations", {})
    if ann.get("prometheus.io/port") != str(status_port) or \
            ann.get("prometheus.io/path") != "/stats/prometheus":
        problem("the prometheus.io annotations must name %d and /stats/prometheus" % status_port)

    # The application's probes, rewritten to the agent's /app-health/.
    probers = json.loads(penv.get("ISTIO_KUBE_APP_PROBERS", "{}"))
    app_paths = []
    for c in ctrs[1:]:
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            if kind not in c:
                continue
            pp = probe_checks(c, kind, c[kind], cports[c["name"]])
            if not pp:
                continue
            if pp[0] != status_port or pp[1] not in probers:
                problem("%s: %s %r is not one of ISTIO_KUBE_APP_PROBERS on %d"
                        % (c["name"], kind, pp, status_port))
            app_paths.append(pp[1])
    for k in probers:
        if not re.match(r"^/app-health/[a-z0-9-]+/(livez|readyz|startupz)$", k):
            problem("ISTIO_KUBE_APP_PROBERS: path %r" % k)

    # istio-init: the capture must agree with the proxy.
    iargs = [str(a) for a in init.get("args", [])]
    if iargs[:1] != ["istio-iptables"]:
        problem("istio-init: args must start with istio-iptables")
    isc = init.get("securityContext", {})
    caps = isc.get("capabilities", {}).get("add", [])
    if not {"NET_ADMIN", "NET_RAW"} <= set(caps) or isc.get("runAsUser") != 0:
        problem("istio-init: needs NET_ADMIN and NET_RAW, as root")

    def short(flag):
        return iargs[iargs.index(flag) + 1] if flag in iargs[:-1] else None
    if short("-u") != str(uid):
        problem("istio-init: -u %r, but istio-proxy runs as %r" % (short("-u"), uid))
    for flag, key in (("-p", "outbound"), ("-z", "inbound")):
        if short(flag) is not None and short(flag) != str(dflt[key]):
            problem("istio-init: %s %s, not the default %d" % (flag, short(flag), dflt[key]))
    excluded = set((short("-d") or "").split(","))
    for key in ("statusPort", "health", "prometheus"):
        if str(dflt[key]) not in excluded:
            problem("istio-init: -d must exclude port %d from capture" % dflt[key])

    write_argv(os.path.join(outdir, "init.argv"), iargs)
    write_argv(os.path.join(outdir, "proxy.argv"), pargs)
    write_argv(os.path.join(outdir, "poststart.argv"), hook)
    write_argv(os.path.join(outdir, "proxy.env"),
               ["%s=%s" % kv for kv in penv.items()])
    write_argv(os.path.join(outdir, "app.paths"), app_paths)
    with open(os.path.join(outdir, "sidecar.env"), "w") as f:
        f.write("SC_GRACE=%d\n" % grace)
        f.write("SC_PROM_PATH=%s\n" % shlex.quote(ann.get("prometheus.io/path", "")))
        for k, v in FIELD_VALUES.items():
            f.write("SC_%s=%s\n" % (re.sub(r"\W", "_", k).upper(), shlex.quote(v)))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "dockerfile":
        dockerfile(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "sidecar":
        sidecar(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    finish()


main()
