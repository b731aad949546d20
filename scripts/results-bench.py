#!/usr/bin/env python3
"""Results benchmark (issue "What the results say"): how fast results files are parsed, and what
streaming a large one costs the exporter. Started by scripts/results-bench, which builds first.

1. `results-bench throughput`: the JSON Lines scanner alone on one core, in MB/s.
2. The real exporter (release build) downloads one results file of RESULTS_BENCH_REQUESTS lines of
   RESULTS_BENCH_TEXT_BYTES text each (default 100,000 x 10 KiB, over 1 GB) from the simulator
   over loopback through libcurl; its VmRSS is sampled every 20 ms from before the batch ends
   until the batch is counted. Prints the file size, RSS before / peak / growth, the wall time
   and the exporter's CPU time for the download.
Measures only; nothing here passes or fails."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

bin_dir = sys.argv[1]
requests = int(os.environ.get("RESULTS_BENCH_REQUESTS", "100000"))
text_bytes = int(os.environ.get("RESULTS_BENCH_TEXT_BYTES", "10240"))
key = "sk-ant-results-bench"
children = []


def start(argv, env, marker):
    process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, preexec_fn=benchlib.die_with_parent)
    children.append(process)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stdout.readline()
        if marker in line:
            # Drain the rest in the background so the child never blocks on a full pipe.
            subprocess.Popen(["cat"], stdin=process.stdout, stdout=subprocess.DEVNULL)
            return process, line
    raise SystemExit(f"results-bench: {argv[0]} did not start")


def control(port, method, path):
    status, _, body = benchlib.http_request(port, method, path, timeout=120)
    if not 200 <= status < 300:
        raise SystemExit(f"results-bench: {method} {path} answered {status}: {body[:200]!r}")
    return body


def samples(port):
    _, _, text = benchlib.scrape(port)
    return benchlib.parse_exposition(benchlib.only_families(text, [
        "anthropic_batches_exporter_results", "anthropic_message_batches_result_requests", "anthropic_message_batches{",
        "anthropic_message_batches ",
    ]))


def outcome(port, name):
    return benchlib.summed_by_label(samples(port), "anthropic_batches_exporter_results_batches_total", "outcome").get(name, 0)


try:
    print(f"machine: {benchlib.machine_summary()}; load average {benchlib.loadavg()} at the start")
    out = subprocess.run([os.path.join(bin_dir, "results-bench"), "throughput", "256"], capture_output=True, text=True, check=True)
    print("scanner alone, one core:", out.stdout.strip().replace("\n", "; "))

    simulator, line = start([os.path.join(bin_dir, "batches-simulator"), "--batches", "0", "--active", "0", "--time", "manual",
                             "--no-dynamics"], {"SIMULATOR_API_KEY": key}, "listening on ")
    sim_port = int(line.strip().rsplit(":", 1)[1])
    exporter, line = start([os.path.join(bin_dir, "anthropic-batches-exporter"), "--web.listen-address", "127.0.0.1:0",
                            "--api-base-url", f"http://127.0.0.1:{sim_port}", "--poll-interval", "1s",
                            "--api.max-requests-per-minute", "0", "--results.enabled", "--results.max-bytes", str(8 << 30)],
                           {"ANTHROPIC_API_KEY": key}, "msg=Listening")
    port = int(line.split("address=")[1].split()[0].rsplit(":", 1)[1])

    control(sim_port, "POST", "/_sim/advance?seconds=600")
    created = control(sim_port, "POST", f"/_sim/batches?count=1&requests={requests}")
    import json
    batch = json.loads(created)["ids"][0]
    control(sim_port, "POST", f"/_sim/batches/{batch}/results?text_bytes={text_bytes}")
    while benchlib.by_workspace(samples(port), "anthropic_message_batches").get("default") is None:
        time.sleep(0.2)
    while benchlib.summed_by_label(samples(port), "anthropic_message_batches", "processing_status").get("in_progress", 0) < 1:
        time.sleep(0.2)
    time.sleep(3)  # a few steady polls, so the baseline is the exporter at rest
    rss_before = benchlib.status_kib(exporter.pid, "VmRSS")
    cpu_before = benchlib.cpu_seconds(exporter.pid)
    control(sim_port, "POST", "/_sim/advance?seconds=60")
    control(sim_port, "POST", f"/_sim/batches/{batch}/end?succeeded={requests}")
    started = time.time()
    peak = rss_before
    last_check = 0.0
    while True:
        peak = max(peak, benchlib.status_kib(exporter.pid, "VmRSS"))
        time.sleep(0.02)
        if time.time() - last_check > 0.5:
            last_check = time.time()
            if outcome(port, "complete") >= 1 or outcome(port, "failed") >= 1:
                break
        if time.time() - started > 1800:
            raise SystemExit("results-bench: the file was not counted within 30 minutes")
    wall = time.time() - started
    cpu = benchlib.cpu_seconds(exporter.pid) - cpu_before
    rss_after = benchlib.status_kib(exporter.pid, "VmRSS")
    current = samples(port)
    read = benchlib.by_workspace(current, "anthropic_batches_exporter_results_bytes_total").get("default", 0)
    lines = sum(benchlib.summed_by_label(current, "anthropic_message_batches_result_requests_total", "result").values())
    print(f"exporter streaming one results file: {lines:,.0f} lines counted (expected {requests:,}), "
          f"outcome complete={outcome(port, 'complete'):.0f} failed={outcome(port, 'failed'):.0f}")
    print("| Figure | value |\n|---|---:|")
    print(f"| results file size | {read / 1e9:.2f} GB ({read:,.0f} bytes) |")
    print(f"| exporter RSS before the download | {rss_before / 1024:.1f} MiB |")
    print(f"| exporter peak RSS during it | {peak / 1024:.1f} MiB |")
    print(f"| **RSS growth while streaming** | **{(peak - rss_before) / 1024:.1f} MiB** |")
    print(f"| RSS after | {rss_after / 1024:.1f} MiB |")
    print(f"| wall time, end of batch to counted | {wall:.1f} s ({read / 1e6 / wall:.0f} MB/s end to end, one poll interval included) |")
    print(f"| exporter CPU for it | {cpu:.2f} s ({read / 1e6 / cpu:.0f} MB per CPU second) |")
    print(f"load average at the end: {benchlib.loadavg()}")
finally:
    for child in children:
        child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
