#!/usr/bin/env python3
"""Measures what one anthropic-batches-exporter process costs per workspace (deploy/SCALING.md).

Starts one batches-simulator holding --batches batches (--active of them in progress) and one
exporter whose --config.file lists --workspaces entries, all pointed at that simulator with
the same key (so every entry sees the same 10,000 or 100,000 batches: the same work as that
many separate workspaces of that size, as far as the exporter is concerned). Then:

  full phase    CPU from exec until every workspace has finished its first (full) poll
  steady phase  CPU and polls over --steady-seconds of incremental polls, counted both from
                the exporter's anthropic_batches_exporter_poll_duration_seconds_count and
                from its debug "Poll complete" log lines
  memory        VmHWM / VmRSS from /proc/PID/status at the end
  /metrics      size plain and gzip, and CPU per scrape

CPU is user + system time of the exporter process from its CPU-time clock (scripts/benchlib.py,
shared with scripts/bench.py; the same clock /proc/PID/stat rounds to ticks); the simulator's CPU
is not counted. The exposition is read with prometheus_client's parser. Prints one JSON object.

  swift build -c release --scratch-path .build-scaling      # from the repository root
  python3 scripts/scaling-measure.py --workspaces 10 --batches 10000 --active 20
"""

import argparse
import gzip
import json
import os
import shutil
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.dont_write_bytecode = True  # no scripts/__pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import by_workspace, cpu_seconds, only_families, parse_exposition, status_kib, summed_by_label  # noqa: E402


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def scrape(port, encoding=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if encoding:
        request.add_header("Accept-Encoding", encoding)
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read()


def poll_counts(text):
    """{workspace: polls completed} from anthropic_batches_exporter_poll_duration_seconds_count."""
    samples = parse_exposition(only_families(text, ["anthropic_batches_exporter_poll_duration_seconds"]))
    return {w: int(v) for w, v in by_workspace(samples, "anthropic_batches_exporter_poll_duration_seconds_count").items()}


def api_requests(text):
    """{kind: requests} summed over workspaces from anthropic_batches_exporter_api_requests_total."""
    samples = parse_exposition(only_families(text, ["anthropic_batches_exporter_api_requests"]))
    return {k: int(v) for k, v in summed_by_label(samples, "anthropic_batches_exporter_api_requests_total", "kind").items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exporter", default=".build-scaling/release/anthropic-batches-exporter")
    parser.add_argument("--simulator", default=".build-scaling/release/batches-simulator")
    parser.add_argument("--workspaces", type=int, default=1)
    parser.add_argument("--batches", type=int, default=10000)
    parser.add_argument("--active", type=int, default=20)
    parser.add_argument("--poll-interval", default="5s")
    parser.add_argument("--steady-seconds", type=float, default=60)
    parser.add_argument("--settle-seconds", type=float, default=10, help="wait after the full phase before measuring")
    parser.add_argument("--max-batches", type=int, default=None, help="batch_metrics.max_batches per workspace (default: the flag's 1000)")
    parser.add_argument("--ended-retention", default=None, help="batch_metrics.ended_retention per workspace (default: the flag's 24h)")
    parser.add_argument("--scrapes", type=int, default=5, help="scrapes timed at the end")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="scaling-")
    processes = []
    result = {"workspaces": args.workspaces, "batches_per_workspace": args.batches, "active": args.active,
              "poll_interval": args.poll_interval, "max_batches": args.max_batches if args.max_batches is not None else 1000,
              "ended_retention": args.ended_retention or "24h"}
    try:
        sim_out = os.path.join(scratch, "simulator.out")
        simulator = subprocess.Popen(
            [args.simulator, "--batches", str(args.batches), "--active", str(args.active)],
            stdout=open(sim_out, "w"), stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        processes.append(simulator)
        sim_port = wait_for(lambda: (re.search(r"listening on 127\.0\.0\.1:(\d+)", read(sim_out)) or [None, None])[1], 60,
                            "the simulator to listen")
        key = os.path.join(scratch, "key")
        with open(key, "w") as f:
            f.write(os.environ.get("SIMULATOR_API_KEY", "sk-ant-simulated") + "\n")
        names = [f"ws-{i:03d}" for i in range(args.workspaces)]
        with open(os.path.join(scratch, "exporter.yml"), "w") as f:
            f.write("workspaces:\n")
            for name in names:
                f.write(f"  - name: {name}\n    api_key_file: {key}\n")
                if args.max_batches is not None or args.ended_retention is not None:
                    f.write("    batch_metrics:\n")
                if args.max_batches is not None:
                    f.write(f"      max_batches: {args.max_batches}\n")
                if args.ended_retention is not None:
                    f.write(f"      ended_retention: {args.ended_retention}\n")

        exp_err = os.path.join(scratch, "exporter.err")
        command = [
            args.exporter, "--config.file", os.path.join(scratch, "exporter.yml"),
            "--api-base-url", f"http://127.0.0.1:{sim_port}",
            "--web.listen-address", "127.0.0.1:0",
            "--poll-interval", args.poll_interval,
            "--api.max-requests-per-minute", "0",
            "--log.level", "debug",
        ]
        result["command"] = " ".join(command).replace(scratch, "$SCRATCH")
        started = time.monotonic()
        exporter = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(exp_err, "w"), stdin=subprocess.DEVNULL)
        processes.append(exporter)
        pid = exporter.pid

        port = wait_for(lambda: (re.search(r"msg=Listening address=127\.0\.0\.1:(\d+)", read(exp_err)) or [None, None])[1],
                        60, "the exporter to listen")

        # Full phase: until every workspace has logged its first "Poll complete" (kind=full).
        def all_first_polls_done():
            done = set(re.findall(r'msg="Poll complete"[^\n]*kind=full[^\n]*workspace=(\S+)', read(exp_err)))
            return len(done) >= args.workspaces
        wait_for(all_first_polls_done, 1800, "every workspace's first full poll")
        full_cpu = cpu_seconds(pid)
        full_wall = time.monotonic() - started
        lines = read(exp_err)
        polls_then = lines.count('msg="Poll complete"')
        result["full_phase"] = {
            "cpu_seconds": round(full_cpu, 3),
            "wall_seconds": round(full_wall, 2),
            "polls_completed": polls_then,
            "full_polls": len(re.findall(r'msg="Poll complete"[^\n]*kind=full', lines)),
            "vmhwm_kib": status_kib(pid, "VmHWM"),
        }

        time.sleep(args.settle_seconds)
        first = scrape(port).decode()
        counts1 = poll_counts(first)
        requests1 = api_requests(first)
        cpu1, wall1 = cpu_seconds(pid), time.monotonic()
        logged1 = read(exp_err).count('msg="Poll complete"')
        time.sleep(args.steady_seconds)
        cpu2, wall2 = cpu_seconds(pid), time.monotonic()
        logged2 = read(exp_err).count('msg="Poll complete"')
        second = scrape(port).decode()
        counts2 = poll_counts(second)
        requests2 = api_requests(second)
        metric_polls = sum(counts2.get(n, 0) - counts1.get(n, 0) for n in names)
        # Every workspace current: its last success within two poll intervals of now.
        interval_s = float(re.fullmatch(r"(\d+(?:\.\d+)?)s", args.poll_interval).group(1)) \
            if re.fullmatch(r"\d+(?:\.\d+)?s", args.poll_interval) else None
        successes = by_workspace(parse_exposition(only_families(
            second, ["anthropic_batches_exporter_last_success_timestamp_seconds"])),
            "anthropic_batches_exporter_last_success_timestamp_seconds")
        ages = [time.time() - successes[n] if n in successes else float("inf") for n in names]
        result["steady_phase"] = {
            "wall_seconds": round(wall2 - wall1, 2),
            "cpu_seconds": round(cpu2 - cpu1, 3),
            "cpu_share_of_one_core": round((cpu2 - cpu1) / (wall2 - wall1), 4),
            "polls_by_metric": metric_polls,
            "polls_by_log": logged2 - logged1,
            "workspaces_seen_in_metric": len(counts2),
            "workspaces_current": None if interval_s is None else sum(1 for a in ages if a <= 2 * interval_s),
            "oldest_success_age_seconds": round(max(ages), 2),
            "api_requests_delta": {k: requests2.get(k, 0) - requests1.get(k, 0) for k in requests2},
            "cpu_ms_per_poll": round(1000 * (cpu2 - cpu1) / max(1, logged2 - logged1), 3),
        }

        # /metrics: size and cost per scrape (plain, then gzip).
        plain = scrape(port)
        zipped = scrape(port, "gzip")
        assert gzip.decompress(zipped).startswith(b"# HELP"), "the gzip answer does not decompress to an exposition"
        cpu_a = cpu_seconds(pid)
        polls_a = read(exp_err).count('msg="Poll complete"')
        t_a = time.monotonic()
        for _ in range(args.scrapes):
            scrape(port)
        cpu_b = cpu_seconds(pid)
        polls_b = read(exp_err).count('msg="Poll complete"')
        t_b = time.monotonic()
        for _ in range(args.scrapes):
            scrape(port, "gzip")
        cpu_c = cpu_seconds(pid)
        polls_c = read(exp_err).count('msg="Poll complete"')
        per_poll = (cpu2 - cpu1) / max(1, logged2 - logged1)
        result["metrics_endpoint"] = {
            "plain_bytes": len(plain),
            "gzip_bytes": len(zipped),
            "series": len(parse_exposition(plain.decode())),
            # Polls that completed during the scrapes are subtracted at the steady per-poll cost.
            "cpu_ms_per_plain_scrape": round(1000 * ((cpu_b - cpu_a) - (polls_b - polls_a) * per_poll) / args.scrapes, 2),
            "cpu_ms_per_gzip_scrape": round(1000 * ((cpu_c - cpu_b) - (polls_c - polls_b) * per_poll) / args.scrapes, 2),
            "wall_ms_per_plain_scrape": round(1000 * (t_b - t_a) / args.scrapes, 1),
        }
        result["memory"] = {"vmhwm_kib": status_kib(pid, "VmHWM"), "vmrss_kib": status_kib(pid, "VmRSS")}
        result["simulator_truth"] = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{sim_port}/_sim/truth", timeout=60).read()
        )["by_status"]
        errors = [l for l in read(exp_err).splitlines() if "level=warn" in l or "level=error" in l]
        result["warnings"] = sorted({re.sub(r"ts=\S+ ", "", l)[:200] for l in errors})[:5]
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
