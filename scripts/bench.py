#!/usr/bin/env python3
"""Measuring half of scripts/bench (which installs, builds and then runs this). Needs
prometheus_client (its parser reads the exposition) and scripts/benchlib.py. For each size in
BENCH_BATCHES it starts one simulator, then each contender in turn against it (never two at
once); then one exporter with BENCH_MULTI workspaces. Prints Markdown tables of figures, ratios
and issue 12's targets. Measures only: nothing here passes or fails.

Contenders: our exporter with default flags, our exporter in naive mode
(--api.full-resync-interval 0: every poll a full listing; "n/a" if the flag is not accepted),
the Go peer and the Python peer.

How each figure is taken:
  API requests per poll   the simulator's request log (GET/DELETE /_sim/requests) around polls.
                          Ours: polls counted by anthropic_batches_exporter_poll_duration_seconds_count
                          (cross-checked against anthropic_batches_exporter_api_requests_total);
                          peers: a poll is a full read of P pages, P measured by their --once run.
  CPU per poll            user + system time of the whole process (all threads, exited ones too),
                          from its CPU-time clock (clock_getcpuclockid; ns, not /proc ticks), across polls
                          of a serving process, taken at idle points between polls; "first poll"
                          is process start through the end of the first poll (peers: --once, from
                          wait4's rusage).
  Wall per poll           ours: poll_duration_seconds _sum/_count; peers: the time --once prints.
  RSS                     VmRSS from /proc/PID/status after the first full read and after
                          BENCH_POLLS steady polls; peak RSS is VmHWM after 1 + BENCH_POLLS polls.
  /metrics                one plain and one gzip GET, then wrk at 1 and BENCH_WRK_CONNECTIONS
                          connections with Accept-Encoding: gzip, against a fresh instance whose
                          poll interval is 1h (so that no poll competes with the scrapes).
"""

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no scripts/__pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CLK_TCK, CPU_METHODS, by_workspace, cpu_seconds, die_with_parent, free_port,  # noqa: E402
                      http_request, loadavg, machine_summary, only_families, parse_exposition, scrape,
                      status_kib, summed_by_label, version)


def env_number(name, default, kind=float):
    text = os.environ.get(name, "")
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        sys.exit(f"bench: {name}: not a number: {text!r}")


def env_sizes(name, default):
    text = os.environ.get(name, "").replace("_", "")
    if not text:
        return default
    try:
        sizes = [int(x) for x in re.split(r"[,\s]+", text.strip()) if x]
    except ValueError:
        sys.exit(f"bench: {name}: not a list of numbers: {text!r}")
    if not sizes or min(sizes) < 1:
        sys.exit(f"bench: {name}: needs at least one size of 1 or more: {text!r}")
    return sizes


SIZES = env_sizes("BENCH_BATCHES", [100_000])
BATCHES = SIZES[0]  # the size being measured; main() sets it for each size in turn
ACTIVE = env_number("BENCH_ACTIVE", 20, int)
INTERVAL = env_number("BENCH_POLL_INTERVAL", 2.0)
POLLS = max(1, env_number("BENCH_POLLS", 10, int))
ONCE_RUNS = max(1, env_number("BENCH_ONCE_RUNS", 3, int))
WRK_SECONDS = max(1, env_number("BENCH_WRK_SECONDS", 10, int))
WRK_CONNECTIONS = max(2, env_number("BENCH_WRK_CONNECTIONS", 50, int))
WRK_TIMEOUT = max(1, env_number("BENCH_WRK_TIMEOUT", 10, int))
PHASE_TIMEOUT = env_number("BENCH_PHASE_TIMEOUT", 300.0)
CONTENDERS = [c for c in re.split(r"[,\s]+", os.environ.get("BENCH_CONTENDERS", "ours,ours_naive,go,python")) if c]
SETTLE = max(0.0, env_number("BENCH_SETTLE", 0.0))  # seconds between the first poll and the steady window
MULTI = os.environ.get("BENCH_MULTI", "200x5000")  # "WxB": W workspaces of B batches in one process; "" or 0 skips
MULTI_INTERVAL = env_number("BENCH_MULTI_INTERVAL", 15.0)
MULTI_INTERVALS = max(1, env_number("BENCH_MULTI_INTERVALS", 4, int))
PAGE_LIMIT = 1000  # what all three contenders ask for
API_KEY = "sk-ant-bench-%016x" % int.from_bytes(os.urandom(8), "big")

NOTES = []  # oddities seen during the run, printed under the table


def note(text):
    NOTES.append(text)
    print(f"bench: note: {text}", file=sys.stderr, flush=True)


def say(text):
    print(f"bench: {text}", file=sys.stderr, flush=True)


class Failure(Exception):
    pass


# --- Processes ---------------------------------------------------------------------------------

CHILDREN = []
ARGS = None


def child_env():
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["ANTHROPIC_API_KEY"] = API_KEY
    env["SIMULATOR_API_KEY"] = API_KEY
    env["GOMAXPROCS"] = env.get("GOMAXPROCS", "")  # left to Go's default (all CPUs) unless set
    if not env["GOMAXPROCS"]:
        del env["GOMAXPROCS"]
    return env


def start(name, argv, stdout=None):
    """Starts a process in its own session (so a Ctrl-C reaches only this helper, which then
    stops it in order); stderr (and stdout unless given) go to bench-results/logs/NAME.log."""
    log = open(os.path.join(ARGS.results, "logs", f"{name}.log"), "wb")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout if stdout is not None else log,
        stderr=log,
        env=child_env(),
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    proc.bench_name = name
    proc.bench_log = log.name
    log.close()
    CHILDREN.append(proc)
    with open(ARGS.pidfile, "a") as f:
        f.write(f"{proc.pid}\n")
    return proc


def stop(proc):
    if proc.returncode is None and proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    if proc in CHILDREN:
        CHILDREN.remove(proc)


def stop_all():
    for proc in list(CHILDREN):
        try:
            stop(proc)
        except Exception as error:  # keep stopping the others
            print(f"bench: stopping {proc.pid}: {error}", file=sys.stderr)


def log_tail(proc, lines=8):
    try:
        with open(proc.bench_log, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        return " | ".join(text.strip().splitlines()[-lines:])
    except OSError:
        return ""


def check_alive(proc):
    if proc.poll() is not None:
        raise Failure(f"{proc.bench_name} exited with status {proc.returncode}: {log_tail(proc)}")


def go_duration(seconds):
    return f"{int(seconds * 1000)}ms"


# --- HTTP (loopback only) --------------------------------------------------------------------


class Simulator:
    def __init__(self, path, batches, name="simulator"):
        self.proc = start(name, [path, "--batches", str(batches), "--active", str(ACTIVE),
                                        "--time", "manual", "--no-dynamics"], stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode().strip()
        match = re.match(r"listening on 127\.0\.0\.1:(\d+)$", line)
        if not match:
            check_alive(self.proc)
            raise Failure(f"simulator printed {line!r}, expected 'listening on 127.0.0.1:PORT'")
        self.port = int(match.group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def requests(self):
        status, _, body = http_request(self.port, "GET", "/_sim/requests")
        if status != 200:
            raise Failure(f"GET /_sim/requests answered {status}")
        data = json.loads(body)
        if data.get("dropped"):
            note(f"the simulator's request log dropped {data['dropped']} entries")
        return data["requests"]

    def clear(self):
        http_request(self.port, "DELETE", "/_sim/requests")

    def truth(self):
        return json.loads(http_request(self.port, "GET", "/_sim/truth")[2])


def describe_requests(entries):
    """Counts of (status, key matched) for a note when anything is not a plain 200."""
    odd = {}
    for e in entries:
        if e.get("status") != 200 or not e.get("key_matched"):
            key = f"status {e.get('status')}{'' if e.get('key_matched') else ', key mismatch'}{', fault ' + e['fault'] if e.get('fault') else ''}"
            odd[key] = odd.get(key, 0) + 1
    return odd


# --- Exposition parsing ------------------------------------------------------------------------

OURS_WANTED = (
    "anthropic_batches_exporter_poll_duration_seconds",
    "anthropic_batches_exporter_api_requests",
    "anthropic_batches_exporter_poll_errors",
    "anthropic_batches_exporter_poll_success",
    "anthropic_batches_exporter_last_success_timestamp_seconds",
)


def ours_samples(port, timeout=10):
    """The samples of our exporter's poll families (read with prometheus_client's parser), or
    None while it is not answering yet."""
    try:
        status, _, text = scrape(port, timeout=timeout)
    except OSError:
        return None
    if status != 200:
        return None
    return parse_exposition(only_families(text, OURS_WANTED))


def scrape_ours(port, workspace="default"):
    """The poll counters of one workspace of our exporter, or None while it is not answering yet."""
    samples = ours_samples(port)
    if samples is None:
        return None
    count = by_workspace(samples, "anthropic_batches_exporter_poll_duration_seconds_count")
    total = by_workspace(samples, "anthropic_batches_exporter_poll_duration_seconds_sum")
    success = by_workspace(samples, "anthropic_batches_exporter_poll_success")
    return {
        "count": count.get(workspace, 0.0),
        "sum": total.get(workspace, 0.0),
        "requests": summed_by_label(samples, "anthropic_batches_exporter_api_requests_total", "kind", workspace),
        "errors": sum(summed_by_label(samples, "anthropic_batches_exporter_poll_errors_total", "reason", workspace).values()),
        "success": success.get(workspace),
    }


# --- Waiting for polls ------------------------------------------------------------------------


def wait_ours(proc, port, polls, not_before=0.0):
    """Waits until our exporter's poll counter reaches `polls`. Sleeps `not_before` seconds first
    so that the waiting itself (a scrape every 0.1 s) adds little to the CPU being measured."""
    time.sleep(max(0.0, not_before))
    deadline = time.monotonic() + PHASE_TIMEOUT
    scrapes = 0
    while True:
        check_alive(proc)
        m = scrape_ours(port)
        scrapes += 1
        if m is not None and m["count"] >= polls:
            m["scrapes"] = scrapes
            return m
        if time.monotonic() > deadline:
            raise Failure(f"{proc.bench_name}: {polls} polls not done within {PHASE_TIMEOUT:.0f}s "
                          f"(counter {m['count'] if m else 'unreadable'}): {log_tail(proc)}")
        time.sleep(0.1)


def wait_full_reads(sim, proc, reads, pages, quiet=0.5):
    """Waits until the request log holds `reads` full listings of `pages` requests each and has
    been quiet for `quiet` seconds (the peer is then sleeping between polls)."""
    deadline = time.monotonic() + PHASE_TIMEOUT
    last, since = -1, time.monotonic()
    while True:
        check_alive(proc)
        entries = sim.requests()
        n = len(entries)
        now = time.monotonic()
        if n != last:
            last, since = n, now
        elif n >= reads * pages and n % pages == 0 and now - since >= quiet:
            return entries
        if now > deadline:
            raise Failure(f"{proc.bench_name}: {reads} full reads of {pages} pages not seen within "
                          f"{PHASE_TIMEOUT:.0f}s ({n} API requests logged, {describe_requests(entries)}): {log_tail(proc)}")
        time.sleep(0.1 if pages < 200 else 0.5)  # a large log is costly to fetch: look less often


# --- Scrape measurements ------------------------------------------------------------------------

WRK_LINE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def run_wrk(port, connections, threads, pid):
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{WRK_SECONDS}s", "--latency",
            f"--timeout", f"{WRK_TIMEOUT}s", "-H", "Accept-Encoding: gzip", f"http://127.0.0.1:{port}/metrics"]
    before = cpu_seconds(pid)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=WRK_SECONDS + WRK_TIMEOUT + 30).stdout
    cpu = cpu_seconds(pid) - before
    r = {"argv": " ".join(argv[:-1]) + " URL"}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in", out)
    r["requests"] = int(m.group(1)) if m else 0
    for pct, value, unit in WRK_LINE.findall(out):
        r[f"p{pct}_ms"] = float(value) * UNIT[unit]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["errors"] = sum(int(x) for x in m.groups()[:3]) if m else 0
    r["timeouts"] = int(m.group(4)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    r["cpu_ms_per_scrape"] = cpu * 1000 / r["requests"] if r["requests"] else None
    if r["requests"] == 0:
        r["rps"] = 0.0
    return r


def measure_scrapes(name, proc, port, into):
    status, headers, plain = http_request(port, "GET", "/metrics")
    if status != 200:
        raise Failure(f"{name}: GET /metrics answered {status}")
    status, headers, packed = http_request(port, "GET", "/metrics", {"Accept-Encoding": "gzip"})
    into["metrics_bytes"] = len(plain)
    into["metrics_gzip_bytes"] = len(packed)
    if headers.get("content-encoding") != "gzip":
        note(f"{name} did not gzip /metrics when asked (Content-Encoding: {headers.get('content-encoding')})")
    samples = parse_exposition(plain.decode("utf-8", "replace"))
    into["samples"] = len(samples)
    into["batches_seen"] = sum(v for n, _, v in samples if n == "anthropic_message_batches")
    say(f"{name}: /metrics {len(plain):,} bytes ({len(packed):,} gzip), {len(samples):,} samples; wrk...")
    into["wrk1"] = run_wrk(port, 1, 1, proc.pid)
    into["wrkN"] = run_wrk(port, WRK_CONNECTIONS, 2, proc.pid)
    into["hwm_after_wrk_kib"] = status_kib(proc.pid, "VmHWM")
    for key in ("wrk1", "wrkN"):
        w = into[key]
        if w["errors"] or w["timeouts"] or w["non2xx"]:
            note(f"{name}, wrk {w['argv']}: {w['errors']} socket errors, {w['timeouts']} timeouts, "
                 f"{w['non2xx']} non-2xx (latency percentiles exclude timed-out requests)")


# --- Contenders ---------------------------------------------------------------------------------


def ours_argv(port, sim, interval, extra):
    return [ARGS.exporter, "--web.listen-address", f"127.0.0.1:{port}", "--api-base-url", sim.url,
            "--poll-interval", interval, "--log.level", "warn", *extra]


def bursts(entries, gap_ms=250):
    """Request counts of the runs of requests in the log separated by more than `gap_ms`: one
    per poll, as a poll's pages follow each other closely and polls are seconds apart."""
    groups, last = [], None
    for at in sorted(e["received_ms"] for e in entries):
        if last is None or at - last > gap_ms:
            groups.append(0)
        groups[-1] += 1
        last = at
    return groups


def requests_of_polls(name, entries, polls):
    """Requests made by the first `polls` polls in the log. The log is read just after the poll
    counter moved, and by then the next poll may have started (our interval runs start to
    start): its requests, a later burst, are left out."""
    groups = bursts(entries)
    if len(groups) < polls:
        note(f"{name}: {polls} polls but only {len(groups)} bursts of requests in the log; counted all {len(entries)}")
        return len(entries), 0
    return sum(groups[:polls]), sum(groups[polls:])


def run_ours(name, sim, extra, scrape_phase, r):
    # First polls: BENCH_ONCE_RUNS fresh processes (median), the last of which goes on to the
    # steady-state phase: POLLS more polls at a short interval.
    firsts = []
    for i in range(ONCE_RUNS):
        port = free_port()
        sim.clear()
        proc = start(f"{name}-polls-{i + 1}", ours_argv(port, sim, go_duration(INTERVAL), extra))
        try:
            m1 = wait_ours(proc, port, 1)
            cpu1 = cpu_seconds(proc.pid)
            rss1 = status_kib(proc.pid, "VmRSS")
            entries = sim.requests()
            sim.clear()
            if m1["count"] != 1:
                note(f"{name}: poll counter was {m1['count']:.0f} when first read (expected 1)")
            requests, later = requests_of_polls(name, entries, 1)
            firsts.append({"cpu_s": cpu1, "wall_s": m1["sum"] / m1["count"], "requests": requests, "rss_kib": rss1,
                           "requests_counter": sum(m1["requests"].values()), "kinds": m1["requests"],
                           "later_requests_left_out": later})
            odd = describe_requests(entries)
            if odd or m1["errors"] or m1["success"] != 1:
                note(f"{name}: first poll: success={m1['success']}, poll errors {m1['errors']:.0f}, requests {odd or 'all 200'}")
        except BaseException:
            stop(proc)
            raise
        if i < ONCE_RUNS - 1:
            stop(proc)
    r["first_runs"] = firsts
    r["first_cpu_s"] = statistics.median(x["cpu_s"] for x in firsts)
    r["first_wall_s"] = statistics.median(x["wall_s"] for x in firsts)
    r["first_requests"] = statistics.median(x["requests"] for x in firsts)
    r["first_requests_counter"] = statistics.median(x["requests_counter"] for x in firsts)
    r["first_kinds"] = firsts[-1]["kinds"]
    r["rss_first_kib"] = statistics.median(x["rss_kib"] for x in firsts)
    try:
        time.sleep(SETTLE)  # e.g. to let the first read's memory be released before measuring
        mA = scrape_ours(port)
        cpuA = cpu_seconds(proc.pid)
        # The window's requests only: the log still holds any poll that followed the first
        # read at once (a first read longer than the interval), which the counter already had.
        sim.clear()
        mB = wait_ours(proc, port, mA["count"] + POLLS, not_before=POLLS * INTERVAL - 1.0)
        cpuB = cpu_seconds(proc.pid)
        entries = sim.requests()
        polls = mB["count"] - mA["count"]
        r["steady_polls"] = polls
        requests, later = requests_of_polls(name, entries, int(polls))
        r["steady_requests"] = requests / polls
        r["steady_later_requests_left_out"] = later
        counter_delta = {k: mB["requests"].get(k, 0) - mA["requests"].get(k, 0) for k in mB["requests"]}
        r["steady_kinds"] = {k: v / polls for k, v in counter_delta.items() if v}
        r["steady_requests_counter"] = sum(counter_delta.values()) / polls
        r["steady_cpu_s"] = (cpuB - cpuA) / polls
        r["steady_wall_s"] = (mB["sum"] - mA["sum"]) / polls
        r["steady_harness_scrapes"] = mB["scrapes"] + 1
        r["hwm_kib"] = status_kib(proc.pid, "VmHWM")
        r["rss_kib"] = status_kib(proc.pid, "VmRSS")
        if abs(r["steady_requests"] - r["steady_requests_counter"]) > 1e-9 or \
                r["first_requests"] != r["first_requests_counter"]:
            note(f"{name}: request log and api_requests_total disagree (first {r['first_requests']} vs "
                 f"{r['first_requests_counter']:.0f}, steady {r['steady_requests']:.2f} vs {r['steady_requests_counter']:.2f} per poll)")
        odd = describe_requests(entries)
        if odd or mB["errors"] > m1["errors"]:
            note(f"{name}: steady polls: poll errors {mB['errors'] - m1['errors']:.0f}, requests {odd or 'all 200'}")
        say(f"{name}: first poll {r['first_requests']} requests, {r['first_cpu_s']:.3f} CPU s, {r['first_wall_s']:.3f} s; "
            f"steady {r['steady_requests']:.2f} requests/poll {r['steady_kinds']}, {r['steady_cpu_s'] * 1000:.1f} CPU ms/poll, "
            f"HWM {r['hwm_kib'] / 1024:.1f} MiB")
    finally:
        stop(proc)
    if not scrape_phase:
        return
    port = free_port()
    proc = start(f"{name}-scrapes", ours_argv(port, sim, "1h", extra))
    try:
        wait_ours(proc, port, 1)
        measure_scrapes(name, proc, port, r)
    finally:
        stop(proc)


def parse_multi(text):
    match = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", text or "")
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        return None
    return int(match.group(1)), int(match.group(2))


def run_multi(workspaces, batches, common, r):
    """One exporter process polling `workspaces` workspaces of `batches` batches each. They all
    point at ONE simulator (one simulator per workspace would be too many processes) under
    different names in --config.file: each is polled, folded, counted and rendered on its own, as
    distinct workspaces would be; only the API side is shared, and its CPU is not counted."""
    sim = Simulator(ARGS.simulator, batches, name="simulator-multi")
    scratch = os.path.join(ARGS.results, "multi")
    os.makedirs(scratch, exist_ok=True)
    key_file = os.path.join(scratch, "key")
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as f:
        f.write(API_KEY + "\n")
    names = [f"ws-{i:03d}" for i in range(workspaces)]
    config = os.path.join(scratch, "exporter.yml")
    with open(config, "w") as f:
        f.write("workspaces:\n")
        for name in names:
            f.write(f"  - name: {name}\n    api_key_file: {key_file}\n")
    port = free_port()
    argv = [ARGS.exporter, "--config.file", config, "--api-base-url", sim.url, "--web.listen-address",
            f"127.0.0.1:{port}", "--poll-interval", go_duration(MULTI_INTERVAL), "--log.level", "warn", *common]
    r["argv"] = " ".join(argv).replace(scratch, "$SCRATCH").replace(sim.url, "$SIMULATOR")
    started = time.time()
    proc = start("ours-multi", argv)
    try:
        deadline = time.monotonic() + PHASE_TIMEOUT
        while True:
            check_alive(proc)
            samples = ours_samples(port, timeout=60)
            counts = by_workspace(samples or [], "anthropic_batches_exporter_poll_duration_seconds_count")
            done = [n for n in names if counts.get(n, 0) >= 1]
            if len(done) == len(names):
                break
            if time.monotonic() > deadline:
                raise Failure(f"multi: {len(done)} of {workspaces} workspaces finished a first poll within "
                              f"{PHASE_TIMEOUT:.0f} s: {log_tail(proc)}")
            time.sleep(0.5)
        r["full_cpu_s"] = cpu_seconds(proc.pid)
        successes = by_workspace(samples, "anthropic_batches_exporter_last_success_timestamp_seconds")
        r["full_wall_s"] = max(successes.get(n, started) for n in names) - started
        r["rss_first_kib"] = status_kib(proc.pid, "VmRSS")
        say(f"multi: every workspace polled once: {r['full_cpu_s']:.2f} CPU s from exec, "
            f"{r['full_wall_s']:.1f} s, RSS {r['rss_first_kib'] / 1024:.1f} MiB")

        time.sleep(MULTI_INTERVAL)  # one interval to settle: first-poll stragglers, the first renders
        before = ours_samples(port, timeout=60)
        cpuA, tA = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(MULTI_INTERVALS * MULTI_INTERVAL)
        cpuB, tB = cpu_seconds(proc.pid), time.monotonic()
        r["rss_kib"] = status_kib(proc.pid, "VmRSS")
        r["hwm_kib"] = status_kib(proc.pid, "VmHWM")
        after = ours_samples(port, timeout=60)
        now = time.time()
        c0 = by_workspace(before, "anthropic_batches_exporter_poll_duration_seconds_count")
        c1 = by_workspace(after, "anthropic_batches_exporter_poll_duration_seconds_count")
        polls = sum(c1.get(n, 0) - c0.get(n, 0) for n in names)
        intervals = (tB - tA) / MULTI_INTERVAL
        r["window_s"] = tB - tA
        r["polls"] = polls
        r["cpu_s_per_interval"] = (cpuB - cpuA) / intervals
        r["cpu_core_share"] = (cpuB - cpuA) / (tB - tA)
        r["cpu_ms_per_workspace_poll"] = (cpuB - cpuA) * 1000 / polls if polls else None
        kinds0 = summed_by_label(before, "anthropic_batches_exporter_api_requests_total", "kind")
        kinds1 = summed_by_label(after, "anthropic_batches_exporter_api_requests_total", "kind")
        r["requests_by_kind"] = {k: kinds1[k] - kinds0.get(k, 0) for k in kinds1 if kinds1[k] - kinds0.get(k, 0)}
        successes = by_workspace(after, "anthropic_batches_exporter_last_success_timestamp_seconds")
        ages = [now - successes[n] if n in successes else float("inf") for n in names]
        r["current"] = sum(1 for a in ages if a <= 2 * MULTI_INTERVAL)
        r["oldest_success_age_s"] = max(ages)
        errors = summed_by_label(after, "anthropic_batches_exporter_poll_errors_total", "workspace")
        r["poll_errors"] = sum(errors.values())
        status, headers, plain = http_request(port, "GET", "/metrics", timeout=60)
        status, headers, packed = http_request(port, "GET", "/metrics", {"Accept-Encoding": "gzip"}, timeout=60)
        r["metrics_bytes"], r["metrics_gzip_bytes"] = len(plain), len(packed)
        say(f"multi: {polls:.0f} polls in {tB - tA:.1f} s ({intervals:.1f} intervals): "
            f"{r['cpu_s_per_interval'] * 1000:.0f} CPU ms per interval, {r['cpu_ms_per_workspace_poll'] or 0:.2f} ms per "
            f"workspace poll; RSS {r['rss_kib'] / 1024:.1f} MiB; {r['current']}/{workspaces} current "
            f"(oldest success {r['oldest_success_age_s']:.1f} s ago); /metrics {len(plain):,} bytes")
        if r["current"] < workspaces:
            note(f"multi: only {r['current']} of {workspaces} workspaces had a success within 2 poll intervals "
                 f"(oldest {r['oldest_success_age_s']:.1f} s ago)")
        if r["poll_errors"]:
            note(f"multi: {r['poll_errors']:.0f} poll errors")
    finally:
        stop(proc)
        stop(sim.proc)
        try:
            os.remove(key_file)
        except OSError:
            pass


GO_TIME = re.compile(r"([\d.]+)(ns|us|µs|ms|s|m|h)")
GO_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_once(text):
    m = re.search(r"polled (\d+) batches in (\S+)", text)
    if not m:
        return None, None
    return int(m.group(1)), sum(float(v) * GO_UNIT[u] for v, u in GO_TIME.findall(m.group(2)))


def run_peer(name, sim, once_argv, serve_argv, r):
    # --once runs: start, one full poll, print the time, exit; rusage from wait4.
    runs = []
    for i in range(ONCE_RUNS):
        sim.clear()
        out_path = os.path.join(ARGS.results, "logs", f"{name}-once-{i + 1}.out")
        with open(out_path, "wb") as out:
            proc = start(f"{name}-once-{i + 1}", once_argv, stdout=out)
        deadline = time.monotonic() + PHASE_TIMEOUT
        while True:
            waited, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if waited == proc.pid:
                break
            if time.monotonic() > deadline:
                stop(proc)
                raise Failure(f"{name} --once did not finish in {PHASE_TIMEOUT:.0f} s")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        CHILDREN.remove(proc)
        with open(out_path, "rb") as f:
            printed = f.read().decode("utf-8", "replace")
        entries = sim.requests()
        count, wall = parse_once(printed)
        if proc.returncode != 0 or count is None:
            raise Failure(f"{name} --once exited {proc.returncode}, printed {printed.strip()!r}: {log_tail(proc)}; "
                          f"{len(entries)} API requests logged {describe_requests(entries) or ''}")
        if count != BATCHES:
            note(f"{name} --once polled {count} batches, the simulator holds {BATCHES}")
        runs.append({"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall, "maxrss_kib": usage.ru_maxrss,
                     "requests": len(entries)})
    r["once_runs"] = runs
    r["first_cpu_s"] = statistics.median(x["cpu_s"] for x in runs)
    r["first_wall_s"] = statistics.median(x["wall_s"] for x in runs)
    r["once_maxrss_kib"] = statistics.median(x["maxrss_kib"] for x in runs)
    pages = runs[0]["requests"]
    if any(x["requests"] != pages for x in runs):
        note(f"{name}: --once runs made different numbers of requests: {[x['requests'] for x in runs]}")
    r["first_requests"] = pages
    r["steady_requests"] = pages  # every poll of a peer is a full listing
    r["steady_kinds"] = {"full": pages}

    # Serving with a short interval: CPU per poll of a warm process, and peak RSS.
    port = free_port()
    sim.clear()
    proc = start(f"{name}-polls", serve_argv(port, INTERVAL))
    try:
        wait_full_reads(sim, proc, 1, pages)
        r["rss_first_kib"] = status_kib(proc.pid, "VmRSS")
        if SETTLE:
            time.sleep(SETTLE)
            wait_full_reads(sim, proc, 1, pages)  # back at an idle point between polls
        sim.clear()
        cpuA = cpu_seconds(proc.pid)
        entries = wait_full_reads(sim, proc, POLLS, pages)
        cpuB = cpu_seconds(proc.pid)
        polls = len(entries) / pages
        r["steady_polls"] = polls
        r["steady_cpu_s"] = (cpuB - cpuA) / polls
        r["hwm_kib"] = status_kib(proc.pid, "VmHWM")
        r["rss_kib"] = status_kib(proc.pid, "VmRSS")
        odd = describe_requests(entries)
        if odd:
            note(f"{name}: steady polls: requests {odd}")
        say(f"{name}: --once {pages} requests, {r['first_cpu_s']:.3f} CPU s, {r['first_wall_s']:.3f} s; "
            f"serving: {r['steady_cpu_s']:.3f} CPU s/poll over {polls:.0f} polls, HWM {r['hwm_kib'] / 1024:.1f} MiB")
    finally:
        stop(proc)

    port = free_port()
    sim.clear()
    proc = start(f"{name}-scrapes", serve_argv(port, 3600))
    try:
        wait_full_reads(sim, proc, 1, pages)
        measure_scrapes(name, proc, port, r)
    finally:
        stop(proc)


# --- Report ---------------------------------------------------------------------------------------


def num(v):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if v == 0:
        return "0"
    if float(v).is_integer() and abs(v) >= 1:
        return f"{int(v):,}"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.2g}" if a < 0.01 else f"{v:.3f}"


def get(r, path):
    v = r
    for part in path.split("."):
        if not isinstance(v, dict) or part not in v:
            return None
        v = v[part]
    return v


TODAY_SCRAPES_50 = 7241  # scrapes/s at 50 connections before issue 12 (README, 100,000 batches)


def build_report(all_results, multi, machine, command, elapsed, naive_status):
    scale_ms = lambda v: None if v is None else v * 1000
    mib = lambda v: None if v is None else v / 1024
    # (label, getter, better) — better: "lower" -> ratio peer/ours; "higher" -> ours/peer; None -> no ratio
    rows = [
        ("API requests, first poll (full listing)", lambda r: get(r, "first_requests"), "lower"),
        ("API requests per steady-state poll", lambda r: get(r, "steady_requests"), "lower"),
        ("CPU ms, process start through first full read ¹", lambda r: scale_ms(get(r, "first_cpu_s")), "lower"),
        ("Wall ms of the first full read ³", lambda r: scale_ms(get(r, "first_wall_s")), "lower"),
        ("CPU ms per steady-state poll (warm process) ²", lambda r: scale_ms(get(r, "steady_cpu_s")), "lower"),
        ("Wall ms per steady-state poll ³", lambda r: scale_ms(get(r, "steady_wall_s") if "steady_wall_s" in r else get(r, "first_wall_s")), "lower"),
        ("RSS (VmRSS) after the first full read, MiB ⁶", lambda r: mib(get(r, "rss_first_kib")), "lower"),
        ("RSS (VmRSS) after %d steady polls, MiB ⁶" % POLLS, lambda r: mib(get(r, "rss_kib")), "lower"),
        ("Peak RSS (VmHWM) after 1 + %d polls, MiB" % POLLS, lambda r: mib(get(r, "hwm_kib")), "lower"),
        ("/metrics size, bytes ⁴", lambda r: get(r, "metrics_bytes"), "lower"),
        ("/metrics size gzip, bytes ⁴", lambda r: get(r, "metrics_gzip_bytes"), "lower"),
        ("/metrics samples ⁴", lambda r: get(r, "samples"), None),
        ("Batches counted in anthropic_message_batches (sanity)", lambda r: get(r, "batches_seen"), None),
        ("Scrapes/s, 1 connection", lambda r: get(r, "wrk1.rps"), "higher"),
        ("Scrape latency p50 ms, 1 connection", lambda r: get(r, "wrk1.p50_ms"), "lower"),
        ("Scrape latency p99 ms, 1 connection", lambda r: get(r, "wrk1.p99_ms"), "lower"),
        ("Scrapes/s, %d connections" % WRK_CONNECTIONS, lambda r: get(r, "wrkN.rps"), "higher"),
        ("Scrape latency p50 ms, %d connections" % WRK_CONNECTIONS, lambda r: get(r, "wrkN.p50_ms"), "lower"),
        ("Scrape latency p99 ms, %d connections" % WRK_CONNECTIONS, lambda r: get(r, "wrkN.p99_ms"), "lower"),
        ("Scrape errors + timeouts, %d connections" % WRK_CONNECTIONS,
         lambda r: None if get(r, "wrkN") is None else r["wrkN"]["errors"] + r["wrkN"]["timeouts"] + r["wrkN"]["non2xx"], None),
        ("CPU ms per scrape (%d connections)" % WRK_CONNECTIONS, lambda r: get(r, "wrkN.cpu_ms_per_scrape"), "lower"),
        ("Peak RSS (VmHWM) after the wrk runs, MiB", lambda r: mib(get(r, "hwm_after_wrk_kib")), "lower"),
    ]
    columns = [("ours", "ours"), ("ours_naive", "ours, naive ⁵"), ("go", "Go peer"), ("python", "Python peer")]

    def ratio(ours, peer, better):
        if better is None or ours is None or peer is None or isinstance(ours, str) or isinstance(peer, str):
            return ""
        if better == "lower":
            return "=" if ours == peer == 0 else ("n/a" if ours == 0 else num(peer / ours) + "×")
        return "n/a" if peer == 0 else num(ours / peer) + "×"

    lines = []
    for size, results in all_results.items():
        if lines:
            lines.append("")
        lines.append(f"| Figure ({size:,} batches, {ACTIVE} active) | " + " | ".join(c[1] for c in columns)
                     + " | Go ÷ ours | Python ÷ ours | naive ÷ ours |")
        lines.append("|---|" + "---:|" * (len(columns) + 3))
        for label, getter, better in rows:
            values = {}
            for key, _ in columns:
                r = results.get(key)
                if isinstance(r, str):
                    values[key] = r
                elif r is None:
                    values[key] = "not run"
                else:
                    try:
                        values[key] = getter(r)
                    except Exception:
                        values[key] = None
            if key_is_scrape_row(label) and isinstance(results.get("ours_naive"), dict):
                values["ours_naive"] = "—"
            cells = [num(values[k]) for k, _ in columns]
            cells.append(ratio(values["ours"], values["go"], better))
            cells.append(ratio(values["ours"], values["python"], better))
            cells.append(ratio(values["ours"], values["ours_naive"], better))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")

    if multi:
        w, b = multi["shape"]
        lines += ["", f"| Figure: {w} workspaces × {b:,} batches in one process, poll interval {MULTI_INTERVAL:g} s ⁷ | ours |",
                  "|---|---:|"]
        mrows = [
            ("CPU s, process start until every workspace finished its first full read", get(multi, "full_cpu_s")),
            ("Wall s until every workspace finished its first full read", get(multi, "full_wall_s")),
            ("RSS (VmRSS) after every first full read, MiB", mib(get(multi, "rss_first_kib"))),
            (f"CPU ms per poll interval (mean over {MULTI_INTERVALS} intervals)", scale_ms(get(multi, "cpu_s_per_interval"))),
            ("Share of one core", get(multi, "cpu_core_share")),
            ("Workspace polls in the window", get(multi, "polls")),
            ("CPU ms per workspace poll", get(multi, "cpu_ms_per_workspace_poll")),
            ("RSS (VmRSS) at the end of the window, MiB", mib(get(multi, "rss_kib"))),
            ("Peak RSS (VmHWM), MiB", mib(get(multi, "hwm_kib"))),
            ("Workspaces current (last success within 2 poll intervals)",
             None if get(multi, "current") is None else f"{multi['current']} of {w}"),
            ("Oldest last success at the end, s ago", get(multi, "oldest_success_age_s")),
            ("/metrics size, bytes (gzip)", None if get(multi, "metrics_bytes") is None
             else f"{multi['metrics_bytes']:,} ({multi['metrics_gzip_bytes']:,})"),
        ]
        if isinstance(multi.get("failure"), str):
            mrows.append(("Failure", multi["failure"]))
        lines += [f"| {label} | {num(value)} |" for label, value in mrows]

    lines += targets(all_results)

    foot = [
        "",
        "Ratios: peer ÷ ours for costs and ours ÷ peer for scrapes/s, so > 1 means ours is better. "
        "\"not run\": left out by BENCH_CONTENDERS; a failure (e.g. a phase that did not finish within "
        f"BENCH_PHASE_TIMEOUT = {PHASE_TIMEOUT:.0f} s) is in the notes below.",
        "",
        f"¹ Median of {ONCE_RUNS} fresh processes each. Ours: the process's CPU-time clock (user + system) from exec until "
        f"the poll counter reads 1. Peers: their `--once` run (exec, one full poll, exit; rusage from wait4).",
        f"² On-CPU time (user + system, all threads, read from the process's CPU-time clock) across {POLLS} polls of a serving process (poll interval {INTERVAL:g} s"
        f"{f', the window starting {SETTLE:g} s after the first poll' if SETTLE else ', the window starting right after the first poll'}), read at idle points "
        f"between polls, divided by polls completed (ours: the poll counter; peers: full reads in the simulator's "
        f"request log). Peers always read every page.",
        f"³ Ours: anthropic_batches_exporter_poll_duration_seconds _sum/_count (first poll, median of {ONCE_RUNS} processes; steady-state polls). "
        "Peers: the time `--once` prints (every peer poll is a full listing).",
        "⁴ Not like for like: ours exposes more families and per-batch series for up to 1,000 batches "
        "(active plus recently ended); the peers expose aggregates plus per-batch series of active batches only.",
        f"⁵ Naive: `--api.full-resync-interval 0`, every poll a full listing. {naive_status} "
        "Scrape rows are not repeated for it (same binary, same serving path).",
        "⁶ VmRSS from /proc/PID/status. Ours: just after the poll counter first reads 1 (median of the fresh processes), "
        "and after the steady-state polls. Peers: in the serving process, after its first full read and after the steady polls.",
        f"⁷ Every workspace is a --config.file entry with its own name, all pointing at one simulator of {multi['shape'][1]:,} batches "
        "with the same key file: each is polled, folded, counted and rendered as a distinct workspace would be; only the API "
        "side is shared (its CPU is not counted). CPU from the process's CPU-time clock over the window; \"current\" "
        "compares each workspace's anthropic_batches_exporter_last_success_timestamp_seconds with the clock at the end."
        if multi else "⁷ (no multi-workspace run: BENCH_MULTI empty)",
        ARGS.budget_text + " Other flags at their defaults, except `--poll-interval` and `--log.level warn`.",
        f"wrk: `-t1 -c1` and `-t2 -c{WRK_CONNECTIONS}`, `-d{WRK_SECONDS}s --latency --timeout {WRK_TIMEOUT}s "
        f"-H 'Accept-Encoding: gzip'`, against a fresh instance with a 1 h poll interval, after its first poll.",
    ]
    for size, results in all_results.items():
        kinds = []
        for key, title in columns:
            r = results.get(key)
            if isinstance(r, dict) and r.get("steady_kinds") is not None:
                kinds.append(f"{title}: " + ", ".join(f"{k} {num(v)}" for k, v in sorted(r["steady_kinds"].items())))
        if kinds:
            foot.append(f"Steady-state requests per poll by kind at {size:,} batches: " + "; ".join(kinds) + ".")
        for key, title in columns:
            r = results.get(key)
            if isinstance(r, dict) and "steady_harness_scrapes" in r:
                foot.append(f"{title} at {size:,}: the harness scraped it {r['steady_harness_scrapes']} times during the "
                            f"steady-state window (to read the poll counter); that CPU is included.")
    if "ticks" in CPU_METHODS:
        foot.append(f"Some CPU figures fell back to /proc/PID/stat clock ticks (1/{CLK_TCK} s).")
    foot.append("")
    foot.append(f"Machine: {machine}")
    foot.append(f"Our exporter built from the {ARGS.source}.")
    foot.append(f"Command: `{command}`")
    foot.append(f"Run time: {elapsed:.0f} s (setup and builds included).")
    if NOTES:
        foot.append("")
        foot.append("Notes from this run:")
        foot.extend(f"- {n}" for n in NOTES)
    return "\n".join(lines + foot) + "\n"


def targets(all_results):
    """Issue 12's targets beside what this run measured (ours, default flags)."""
    ours = {size: r["ours"] for size, r in all_results.items() if isinstance(r.get("ours"), dict)}
    small, large = ours.get(100_000), ours.get(1_000_000)
    if not small and not large:
        return []
    mib = 1024 * 1024

    def verdict(ok):
        return "n/a" if ok is None else ("met" if ok else "**not met**")

    out = ["", "| Target (issue 12) | measured | verdict |", "|---|---:|---|"]
    cpu_s = get(small, "steady_cpu_s") if small else None
    cpu_l = get(large, "steady_cpu_s") if large else None
    if cpu_s is not None:
        out.append(f"| CPU per steady poll at 100,000 batches ≤ 10 ms | {num(cpu_s * 1000)} ms | {verdict(cpu_s <= 0.010)} |")
    if cpu_s is not None and cpu_l is not None:
        out.append(f"| CPU per steady poll at 1,000,000 ≤ 1.5 × the 100,000 figure | {num(cpu_l * 1000)} ms = "
                   f"{num(cpu_l / cpu_s)} × | {verdict(cpu_l <= 1.5 * cpu_s)} |")
    rss_s = get(small, "rss_kib") if small else None
    rss_l = get(large, "rss_kib") if large else None
    if rss_s is not None:
        out.append(f"| RSS holding 100,000 batches ≤ 40 MB (after {POLLS} steady polls) | {num(rss_s * 1024 / 1e6)} MB "
                   f"({num(rss_s / 1024)} MiB) | {verdict(rss_s * 1024 <= 40e6)} |")
    if rss_l is not None:
        out.append(f"| RSS holding 1,000,000 batches ≤ 100 MB (after {POLLS} steady polls) | {num(rss_l * 1024 / 1e6)} MB "
                   f"({num(rss_l / 1024)} MiB) | {verdict(rss_l * 1024 <= 100e6)} |")
    if rss_s is not None and rss_l is not None:
        per = (rss_l - rss_s) * 1024 / 900_000
        out.append(f"| Under 60 bytes per extra ended batch ((RSS at 1M − RSS at 100k) ÷ 900,000) | {num(per)} bytes | "
                   f"{verdict(per < 60)} |")
    rps = get(small, "wrkN.rps") if small else None
    if rps is not None:
        out.append(f"| Scrapes/s at 50 connections ≥ today's {TODAY_SCRAPES_50:,} (100,000 batches) | {num(rps)} | "
                   f"{verdict(rps >= TODAY_SCRAPES_50)} |")
    del mib
    return out


def key_is_scrape_row(label):
    return label.startswith(("/metrics", "Scrape", "CPU ms per scrape", "Peak RSS (VmHWM) after the wrk", "Batches counted"))


LOAD_AT_START = loadavg()


def machine_info():
    load = f"load average {LOAD_AT_START} at start, {loadavg()} at end (other work on this machine skews every figure)"
    return (f"{machine_summary()}; {load}; {version(['swift', '--version'])}; {version(['go', 'version'])}; "
            f"Python {platform.python_version()}; {version(['wrk', '--version'])}")


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    for name in ("exporter", "simulator", "go-peer", "py-peer", "results", "pidfile", "command", "source"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--started", type=float, default=time.time())
    ARGS = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))

    help_text = subprocess.run([ARGS.exporter, "--help"], capture_output=True, text=True).stdout
    naive_flag = "--api.full-resync-interval" in help_text
    # Our exporter's request budget (default 20 requests/minute) would spread a 100-page listing
    # over five minutes; the peers have none. Off by default here, so that polls measure work.
    budget = os.environ.get("BENCH_OURS_BUDGET", "0")
    common = []
    if "--api.max-requests-per-minute" in help_text and budget != "default":
        common = ["--api.max-requests-per-minute", budget]
    ARGS.budget_text = (f"Our exporter ran with `--api.max-requests-per-minute {budget}`"
                        + (" (no request budget; the peers have none)." if budget == "0" else ".")
                        if common else "Our exporter ran with its default request budget (if it has one).")

    global BATCHES
    all_results, multi, naive_status = {}, {}, ""
    try:
        for size in SIZES:
            BATCHES = size
            say(f"=== {size:,} batches")
            results = all_results[size] = {}
            sim = Simulator(ARGS.simulator, size)
            truth = sim.truth()
            say(f"simulator on 127.0.0.1:{sim.port}: {truth.get('batches')} batches, {truth.get('by_status')}")
            results["simulator"] = {"port": sim.port, "truth": {k: truth.get(k) for k in ("batches", "by_status", "archived")}}

            contenders = [
                ("ours", lambda r: run_ours("ours", sim, common, True, r)),
                ("ours_naive", lambda r: run_ours("ours-naive", sim, common + ["--api.full-resync-interval", "0"], False, r)),
                ("go", lambda r: run_peer(
                    "go", sim, [ARGS.go_peer, "--once", "--api-base-url", sim.url],
                    lambda port, interval: [ARGS.go_peer, "--api-base-url", sim.url, "--web.listen-address",
                                            f"127.0.0.1:{port}", "--poll-interval", go_duration(interval)], r)),
                ("python", lambda r: run_peer(
                    "python", sim, [sys.executable, ARGS.py_peer, "--once", "--api-base-url", sim.url],
                    lambda port, interval: [sys.executable, ARGS.py_peer, "--api-base-url", sim.url, "--port", str(port),
                                            "--interval", f"{interval:g}"], r)),
            ]
            for key, run in contenders:
                if key not in CONTENDERS:
                    continue
                if key == "ours_naive" and not naive_flag:
                    results[key] = "n/a"
                    naive_status = "Not measured: this build does not accept `--api.full-resync-interval` (not in --help)."
                    note("the exporter does not accept --api.full-resync-interval yet: naive column is n/a")
                    continue
                say(f"--- {key} ({size:,} batches)")
                r = {}
                try:
                    run(r)
                    results[key] = r
                except Failure as error:
                    note(f"{key} at {size:,} batches failed: {error}")
                    results[key] = r if r else "failed"
                    if isinstance(results[key], dict):
                        results[key]["failure"] = str(error)
            if naive_flag and isinstance(results.get("ours_naive"), dict) and not naive_status:
                naive_status = "Measured."
            if isinstance(results.get("ours"), dict) and results["ours"].get("steady_kinds", {}).keys() <= {"full"}:
                note(f"ours (default flags) made only full listings in steady state at {size:,} batches")
            stop(sim.proc)

        shape = parse_multi(MULTI)
        if shape is None and MULTI not in ("", "0"):
            note(f"BENCH_MULTI={MULTI!r} is not WORKSPACESxBATCHES: the multi-workspace run was skipped")
        if shape is not None and "ours" in CONTENDERS:
            say(f"=== {shape[0]} workspaces x {shape[1]:,} batches in one process")
            multi = {"shape": shape}
            try:
                run_multi(shape[0], shape[1], common, multi)
            except Failure as error:
                note(f"multi-workspace run failed: {error}")
                multi["failure"] = str(error)
    finally:
        stop_all()

    elapsed = time.time() - ARGS.started
    report = build_report(all_results, multi, machine_info(), ARGS.command, elapsed, naive_status)
    os.makedirs(ARGS.results, exist_ok=True)
    with open(os.path.join(ARGS.results, "latest.md"), "w") as f:
        f.write(report)
    with open(os.path.join(ARGS.results, "latest.json"), "w") as f:
        json.dump({"results": {str(k): v for k, v in all_results.items()}, "multi": multi, "notes": NOTES,
                   "command": ARGS.command, "elapsed_s": elapsed,
                   "config": {"batches": SIZES, "active": ACTIVE, "interval_s": INTERVAL, "polls": POLLS,
                              "once_runs": ONCE_RUNS, "wrk_seconds": WRK_SECONDS, "wrk_connections": WRK_CONNECTIONS,
                              "contenders": CONTENDERS, "multi": MULTI, "multi_interval_s": MULTI_INTERVAL,
                              "multi_intervals": MULTI_INTERVALS}}, f, indent=2, default=str)
    print(report, end="")

if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
    finally:
        stop_all()
