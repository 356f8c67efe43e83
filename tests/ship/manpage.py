"""Cross-checks man/pilot-agent.8 against the binary and the sources, for
tests/e2e/ship_man.sh:

  manpage.py AGENT MANPAGE TOP

- every flag a command's --help lists is documented in that command's
  flags section, and every flag documented there is accepted by the
  command (listed by its --help, or, for commands whose --help is missing or
  incomplete, not refused as unknown when tried);
- the defaults the page gives for proxy's flags are those of its --help;
- every .Fl anywhere in the page is a flag some command accepts;
- every command of "pilot-agent help" is in SYNOPSIS and in Commands;
- every environment variable the sources read, every path the status
  server answers and every signal the agent handles is documented.

Problems are printed one per line; the exit code is 1 when there is any.
"""
import glob
import os
import re
import subprocess
import sys

AGENT, MANPAGE, TOP = sys.argv[1:4]
problems = []

# The section of the page that documents each command's flags.
SECTIONS = {
    "proxy": "Flags of proxy and bootstrap",
    "bootstrap": "Flags of proxy and bootstrap",
    "istio-iptables": "Flags of istio-iptables and istio-clean-iptables",
    "istio-clean-iptables": "Flags of istio-iptables and istio-clean-iptables",
    "wait": "Flags of wait",
    "request": "Flags of request",
}
# How to try a flag on a command without side effects: the command line
# around the flag. A flag is refused when the command says "unknown flag".
# wait takes a value before it looks at the flag's name, so it gets one.
TRY = {
    "istio-iptables": (["istio-iptables", "--dry-run"], []),
    "istio-clean-iptables": (["istio-clean-iptables", "--dry-run"], []),
    "wait": (["wait", "--timeoutSeconds", "0"], ["1"]),
    "request": (["request"], ["1"]),
}


def run(argv):
    env = dict(os.environ)
    for k in ("ENVOY_PORT", "DRY_RUN"):
        env.pop(k, None)
    p = subprocess.run([AGENT] + argv, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=20, env=env)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def tokens(line):
    """The words of a macro line, quoted strings kept whole."""
    return [t.strip('"') for t in re.findall(r'"[^"]*"|\S+', line)]


def parse_man(text):
    """(flag, section, subsection) for every .Fl; .Ev names; all text."""
    flags, evs = [], set()
    sh = ss = ""
    for line in text.splitlines():
        if not line.startswith(".") or line.startswith('.\\"'):
            continue
        t = tokens(line[1:])
        if not t:
            continue
        if t[0] == "Sh":
            sh, ss = " ".join(t[1:]), ""
            continue
        if t[0] == "Ss":
            ss = " ".join(t[1:])
            continue
        for i, w in enumerate(t):
            nxt = t[i + 1] if i + 1 < len(t) else None
            if w == "Fl" and nxt and not re.match(r"^[A-Z][a-z][a-z]?$", nxt) \
                    and nxt not in (",", ".", ";", ":", "|", ")", "("):
                flags.append(("-" + nxt.replace("\\-", "-"), sh, ss))
            if w == "Ev" and nxt:
                evs.add(nxt)
    return flags, evs


def help_flags(out):
    """The flags a --help text lists: its flag column, and the ignored ones."""
    found = set()
    for line in out.splitlines():
        m = re.match(r"^\s+(?:(-\w), )?(--[\w-]+)", line)
        if m:
            found.update(x for x in m.groups() if x)
        elif line.startswith("accepted and ignored"):
            found.update(re.findall(r"--[\w-]+", line))
    return found


def go_seconds(v):
    """A Go duration's seconds, or None when v is not one."""
    m = re.findall(r"([0-9.]+)(ms|h|m|s)", v)
    if not m or "".join(a + b for a, b in m) != v:
        return None
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3}[u] for n, u in m)


def man_defaults(text, section):
    """{flag: default} from the items of a flags section ("Default X.")."""
    body = text[text.index(".Ss " + section):]
    body = body[:body.index("\n.El")]
    out = {}
    for item in re.split(r"^(?=\.It )", body, flags=re.M):
        m = re.match(r"\.It Fl (\\-[\w-]+)", item)
        d = re.search(r"\bDefault\s+(?:\.[A-Z][a-z] )?(\S+?)[.,]?(?:\s|$)", item)
        if m and d:
            out["-" + m.group(1).replace("\\-", "-")] = d.group(1)
    return out


def help_defaults(out):
    found = {}
    for line in out.splitlines():
        m = re.match(r'^\s+(--[\w-]+) \S+ +\(default "?(.*?)"?\)$', line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def refused(cmd, flag):
    before, after = TRY[cmd]
    rc, out, err = run(before + [flag] + after)
    return "unknown flag" in err or "unknown flag" in out


def main():
    text = open(MANPAGE).read()
    flags, evs = parse_man(text)
    documented = {}
    for flag, sh, ss in flags:
        for cmd, sec in SECTIONS.items():
            if ss == sec:
                documented.setdefault(cmd, set()).add(flag)

    accepted = {}
    for cmd in SECTIONS:
        rc, out, err = run([cmd, "--help"])
        if rc == 0 and "--help" in out:
            accepted[cmd] = help_flags(out)
        else:
            print("note: %s has no --help; its flags are only tried" % cmd)
            accepted[cmd] = set()
        doc = documented.get(cmd, set())
        if not doc and accepted[cmd]:
            problems.append("no section '%s' documents %s" % (SECTIONS[cmd], cmd))
        for f in sorted(accepted[cmd] - doc):
            problems.append("%s accepts %s (--help), undocumented in '%s'"
                            % (cmd, f, SECTIONS[cmd]))
        for f in sorted(doc - accepted[cmd]):
            # proxy and bootstrap list every flag in --help; the others are tried.
            if cmd == "bootstrap" and f in accepted.get("proxy", set()) | {"--output"}:
                continue
            if cmd == "proxy" and f == "--output":
                continue
            if cmd in TRY and not refused(cmd, f):
                accepted[cmd].add(f)
                if f not in ("-h", "--help"):
                    print("note: %s accepts %s, which its --help does not list" % (cmd, f))
                continue
            problems.append("'%s' documents %s, which %s does not accept"
                            % (SECTIONS[cmd], f, cmd))

    # The defaults the page gives are the ones --help prints.
    rc, out, err = run(["proxy", "--help"])
    hd = help_defaults(out)
    for flag, d in sorted(man_defaults(text, SECTIONS["proxy"]).items()):
        h = hd.get(flag)
        if h in (None, "", "-1"):
            continue
        if d != h and (go_seconds(d) is None or go_seconds(d) != go_seconds(h)):
            problems.append("%s: the page says default %s, --help says %s" % (flag, d, h))

    every = set().union(*accepted.values())
    for flag, sh, ss in flags:
        if flag in every:
            continue
        if not any(not refused(c, flag) for c in TRY):
            problems.append(".Fl %s (%s%s) is not a flag of pilot-agent"
                            % (flag, sh, " / " + ss if ss else ""))
        every.add(flag)

    # Commands.
    rc, out, err = run(["help"])
    cmds = re.findall(r"^  ([a-z][\w-]*)", out, re.M) + ["help"]
    synopsis = text[text.index(".Sh SYNOPSIS"):text.index(".Sh DESCRIPTION")]
    commands = text[text.index(".Ss Commands"):]
    for c in cmds:
        if ".Cm %s" % c not in synopsis:
            problems.append("command %s is not in SYNOPSIS" % c)
        if not re.search(r"^\.It Cm %s\b" % re.escape(c), commands, re.M):
            problems.append("command %s has no item in Commands" % c)

    # Environment variables the sources read.
    src = ""
    for d in ("agent", "bootstrap", "status"):
        for f in sorted(glob.glob(os.path.join(TOP, d, "*.c"))):
            src += re.sub(r'"\s+"', "", open(f).read())
    names = set(re.findall(r'\benv\("([A-Z][A-Z0-9_]+)"\)', src))
    names |= set(re.findall(r'\bF\("([A-Z][A-Z0-9_]+)"', src))
    for a, b in re.findall(r'\{ "([A-Z][A-Z0-9_]+)", (?:NULL|"([A-Z0-9_]+)") \}', src):
        names.update(x for x in (a, b) if x)
    prefixes = set(re.findall(r'"([A-Z][A-Z0-9_]*_)"', src))
    for n in sorted(names | prefixes):
        if n not in evs:
            problems.append("environment variable %s is not documented (.Ev)" % n)

    # Paths of the status server, and the signals of proxy.
    paths = set()
    for f in glob.glob(os.path.join(TOP, "status", "*.c")):
        paths |= set(re.findall(r'strn?cmp\(path, "(/[^"]+)"', open(f).read()))
    for p in sorted(paths):
        if p not in text:
            problems.append("status path %s is not documented" % p)
    main_c = open(os.path.join(TOP, "agent", "main.c")).read()
    sigs = re.search(r"sigs\[\] = \{([^}]*)\}", main_c)
    signals = text[text.index(".Sh SIGNALS"):]
    signals = signals[:signals.index("\n.Sh ")]
    items = set()
    for line in re.findall(r"^\.It Dv (.*)$", signals, re.M):
        items.update(w for w in re.split(r"[ ,]+", line) if w.startswith("SIG"))
    for s in re.findall(r"SIG[A-Z0-9]+", sigs.group(1) if sigs else ""):
        if s not in items:
            problems.append("signal %s has no item in SIGNALS" % s)

    for p in problems:
        print("FAIL: " + p, file=sys.stderr)
    sys.exit(1 if problems else 0)


main()
