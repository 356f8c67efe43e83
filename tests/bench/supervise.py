#!/usr/bin/env python3
"""Figures of the supervisor (issue 2), medians over repeated runs:

- agent overhead from SIGHUP to the exec of the next epoch (goal <= 1 ms),
- agent start to the exec of epoch 0 (goal <= 10 ms),
- RSS and RssAnon of the agent with one live epoch (<= 16 MiB, <= 4 MiB),
- requests served and failed, p99 latency, with and without 50 hot
  restarts under load (0 failed, p99 ratio <= 2).

The proxy is the stand-in behind tests/tools/stamp, which records the
moment of each exec. Everything runs on loopback, on free ports, in a
temporary directory, and only processes started here are stopped.
"""
import json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

B = os.environ.get("B", "build")
AGENT = os.path.abspath(os.path.join(B, "pilot-agent"))
EMU = os.path.abspath(os.path.join(B, "envoy-emu"))
STAMP = os.path.abspath(os.path.join(B, "tools", "stamp"))
LOADGEN = os.path.abspath(os.path.join(B, "tools", "loadgen"))
CONFIG_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None


def free_port():
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, os.path.join(here, "..", "tools", "free_port.py")],
                         check=True, capture_output=True, text=True)
    return int(out.stdout)


class Agent:
    """An agent supervising the stand-in. With load=True its bootstrap gets a
    bare listener on self.load (ISTIO_BOOTSTRAP_OVERRIDE), which the stand-in
    answers itself: the load's path through the proxy, as a pod's traffic
    takes it, without the agent's status server on it (15021 routes to it)."""

    def __init__(self, tmp, base_id, extra=(), load=False):
        self.tmp = tmp
        self.admin, self.status, self.health, self.prom = (free_port() for _ in range(4))
        wrapper = os.path.join(tmp, "envoy")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec %s --base-id %d \"$@\"\n" % (EMU, base_id))
        os.chmod(wrapper, 0o755)
        self.stamps = os.path.join(tmp, "stamps")
        env = dict(os.environ, STAMP_FILE=self.stamps, STAMP_EXEC=wrapper,
                   ENVOY_EMU_ASSUME_XDS="1", ENVOY_STATUS_PORT=str(self.health),
                   ENVOY_PROMETHEUS_PORT=str(self.prom), POD_NAME="bench",
                   POD_NAMESPACE="bench", INSTANCE_IP="127.0.0.1")
        if load:
            self.load = free_port()
            override = os.path.join(tmp, "load-listener.json")
            with open(override, "w") as f:
                json.dump({"static_resources": {"listeners": [{"name": "load", "address": {
                    "socket_address": {"address": "127.0.0.1", "port_value": self.load}}}]}}, f)
            env["ISTIO_BOOTSTRAP_OVERRIDE"] = override
        # Istio mounts the config path as an emptyDir with medium Memory,
        # so the bootstrap's fsync costs what it costs on tmpfs.
        self.etc = tempfile.mkdtemp(prefix="pa-bench-etc.", dir=CONFIG_DIR)
        argv = [AGENT, "proxy", "sidecar", "--configPath", self.etc,
                "--binaryPath", STAMP, "--proxyAdminPort", str(self.admin),
                "--statusPort", str(self.status), "--controlPlaneAuthPolicy", "NONE",
                "--discoveryAddress", "127.0.0.1:%d" % free_port(),
                "--certDir", os.path.join(tmp, "certs"),
                "--drainDuration", "2s", "--parentShutdownDuration", "3s",
                "--terminationDrainDuration", "0s"] + list(extra)
        self.log = open(os.path.join(tmp, "agent.log"), "w")
        self.t_start = time.time_ns()
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=self.log)

    def stamp_times(self):
        try:
            with open(self.stamps) as f:
                return [int(l.split()[1]) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def live_epoch(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/server_info" % self.admin, timeout=2) as r:
                d = json.load(r)
            if d.get("state") == "LIVE":
                return d["command_line_options"]["restart_epoch"]
        except Exception:
            return None
        return None

    def wait_live(self, epoch, limit=20.0):
        end = time.time() + limit
        while time.time() < end:
            if self.live_epoch() == epoch:
                return
            time.sleep(0.02)
        raise RuntimeError("epoch %d not LIVE" % epoch)

    def wait_agent_live(self, epoch, limit=20.0):
        """Until the agent itself has seen the epoch LIVE (its log says so)."""
        needle = "epoch %d: starting \u2192 live" % epoch
        end = time.time() + limit
        while time.time() < end:
            with open(os.path.join(self.tmp, "agent.log"), encoding="utf-8", errors="replace") as f:
                if needle in f.read():
                    return
            time.sleep(0.005)
        raise RuntimeError("agent never saw epoch %d LIVE" % epoch)

    def wait_stamps(self, n, limit=10.0):
        end = time.time() + limit
        while time.time() < end:
            t = self.stamp_times()
            if len(t) >= n:
                return t
            time.sleep(0.002)
        raise RuntimeError("no exec stamp %d" % n)

    def memory(self):
        out = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon"):
                    out[k] = int(v.split()[0]) / 1024.0
        return out

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.etc, ignore_errors=True)


def run_load(agent, seconds, restarts):
    stop = os.path.join(agent.tmp, "stop-load")
    if os.path.exists(stop):
        os.unlink(stop)
    lg = subprocess.Popen([LOADGEN, "--url", "http://127.0.0.1:%d/" % agent.load,
                           "--stop-file", stop, "--duration", "%ds" % (seconds + 120),
                           "--concurrency", "2"],
                          stdout=subprocess.PIPE)
    start_epoch = agent.live_epoch()
    t_end = time.time() + seconds
    epoch = start_epoch
    for i in range(restarts):
        agent.proc.send_signal(signal.SIGHUP)
        epoch += 1
        agent.wait_agent_live(epoch)
    while time.time() < t_end:
        time.sleep(0.05)
    open(stop, "w").close()
    out, _ = lg.communicate(timeout=60)
    return json.loads(out)


def spawn_baseline(n=3):
    """Signal-free baseline: this process spawning the stamp directly.
    Sampled between the SIGHUP samples, so both see the same machine."""
    tmp = tempfile.mkdtemp(prefix="pa-bench.")
    stamps = os.path.join(tmp, "stamps")
    env = dict(os.environ, STAMP_FILE=stamps, STAMP_EXEC="/bin/true")
    out = []
    try:
        for i in range(n):
            t0 = time.time_ns()
            pid = os.posix_spawn(STAMP, [STAMP], env)
            os.waitpid(pid, 0)
            with open(stamps) as f:
                t1 = int(f.read().split()[-1])
            out.append((t1 - t0) / 1e6)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main():
    base = 2000 + os.getpid() % 100000
    runs = int(os.environ.get("BENCH_RUNS", "15"))
    start_ms, hup_ms, bare_ms, rss, anon = [], [], [], [], []
    for r in range(runs):
        tmp = tempfile.mkdtemp(prefix="pa-bench.")
        try:
            a = Agent(tmp, base + r)
            t = a.wait_stamps(1)
            start_ms.append((t[0] - a.t_start) / 1e6)
            a.wait_agent_live(0)
            for e in range(1, 4):
                time.sleep(0.05)
                t0 = time.time_ns()
                a.proc.send_signal(signal.SIGHUP)
                t = a.wait_stamps(e + 1)
                hup_ms.append((t[e] - t0) / 1e6)
                a.wait_agent_live(e)
                bare_ms.extend(spawn_baseline())
            time.sleep(3.5)  # old epochs gone: one live epoch
            m = a.memory()
            rss.append(m["VmRSS"])
            anon.append(m["RssAnon"])
            a.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print("supervisor: config path on %s (Istio's istio-envoy emptyDir is medium: Memory)"
          % (CONFIG_DIR or "the temporary directory"))
    print("supervisor: agent start -> exec of epoch 0: median %.3f ms (goal <= 10 ms, n=%d)"
          % (statistics.median(start_ms), len(start_ms)))
    bare = statistics.median(bare_ms)
    hup = statistics.median(hup_ms)
    print("supervisor: SIGHUP -> exec of next epoch: median %.3f ms (n=%d); a bare spawn -> exec "
          "in the same run: %.3f ms; agent overhead %.3f ms (goal <= 1 ms), ratio %.2f"
          % (hup, len(hup_ms), bare, hup - bare, hup / bare))
    print("supervisor: agent memory with one live epoch: VmRSS median %.2f MiB (goal <= 16), "
          "RssAnon median %.2f MiB (goal <= 4)" % (statistics.median(rss), statistics.median(anon)))

    tmp = tempfile.mkdtemp(prefix="pa-bench.")
    try:
        a = Agent(tmp, base + runs + 1, load=True)
        a.wait_live(0)
        seconds = int(os.environ.get("BENCH_LOAD_SECONDS", "15"))
        quiet = run_load(a, seconds, 0)
        busy = run_load(a, seconds, 50)
        a.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, d in (("without restarts", quiet), ("with 50 hot restarts", busy)):
        print("supervisor: load %s: %d served, %d failed, p50 %d us, p99 %d us"
              % (name, d["ok"], d["failed"], d["p50_us"], d["p99_us"]))
    print("supervisor: p99 ratio restarts/no restarts: %.2f (goal <= 2); failed during restarts: %d (goal 0)"
          % (busy["p99_us"] / max(1, quiet["p99_us"]), busy["failed"]))


if __name__ == "__main__":
    main()
