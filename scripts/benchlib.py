"""Helpers shared by scripts/bench.py and scripts/scaling-measure.py: process CPU and memory
from /proc, loopback HTTP, scrapes, and reading the exposition with prometheus_client's own
parser (not regular expressions). Measures only; nothing here passes or fails.

prometheus_client is the one dependency beyond the standard library (scripts/bench installs it;
`python3 -m pip install prometheus-client` otherwise)."""

import ctypes
import gzip
import http.client
import os
import platform
import socket
import subprocess
import time

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as error:  # pragma: no cover - reported, not hidden
    raise SystemExit("bench: prometheus_client is needed to read the exposition: "
                     "python3 -m pip install prometheus-client") from error

CLK_TCK = os.sysconf("SC_CLK_TCK")
_libc = ctypes.CDLL(None, use_errno=True)
CPU_METHODS = set()  # "ticks" once any reading fell back to /proc/PID/stat


# --- Process CPU and memory ----------------------------------------------------------------------


def cpu_ticks(pid):
    """utime + stime of the whole thread group from /proc/PID/stat, in seconds (tick resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_seconds(pid):
    """On-CPU time (user + system) of the whole process, exited threads included, in ns
    resolution: the process's CPU-time clock (clock_getcpuclockid), the same clock
    /proc/PID/stat rounds to ticks. Falls back to the ticks."""
    clock = ctypes.c_int()
    if _libc.clock_getcpuclockid(pid, ctypes.byref(clock)) == 0:
        try:
            return time.clock_gettime(clock.value)
        except OSError:
            pass
    CPU_METHODS.add("ticks")
    return cpu_ticks(pid)


def status_kib(pid, key):
    """A kB field of /proc/PID/status (VmRSS, VmHWM, ...), or None."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def die_with_parent():
    """preexec_fn: PR_SET_PDEATHSIG, so a child gets SIGTERM should its harness be killed outright."""
    _libc.prctl(1, 15)


# --- Loopback HTTP ---------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_request(port, method, path, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def scrape(port, gzip_encoding=True, timeout=60):
    """GET /metrics: (status, headers, decoded text). Raises OSError when nothing answers."""
    headers = {"Accept-Encoding": "gzip"} if gzip_encoding else {}
    status, response_headers, body = http_request(port, "GET", "/metrics", headers, timeout=timeout)
    if response_headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return status, response_headers, body.decode("utf-8", "replace")


# --- The exposition ----------------------------------------------------------------------------------


def only_families(text, prefixes):
    """The lines of `text` that belong to metrics whose names start with one of `prefixes`
    (their samples and their # HELP / # TYPE lines), so that a large exposition is parsed only
    where it is needed."""
    prefixes = tuple(prefixes)
    comments = tuple(f"# {kind} {p}" for kind in ("HELP", "TYPE") for p in prefixes)
    return "\n".join(line for line in text.splitlines()
                     if line.startswith(prefixes) or line.startswith(comments)) + "\n"


def parse_exposition(text):
    """Every sample of a text-format exposition as (sample name, labels dict, value), read with
    prometheus_client's parser."""
    samples = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.append((sample.name, dict(sample.labels), float(sample.value)))
    return samples


def by_workspace(samples, name):
    """{workspace label: value} of the samples called `name` (no label: "default")."""
    return {labels.get("workspace", "default"): value for n, labels, value in samples if n == name}


def summed_by_label(samples, name, label, workspace=None):
    """{label value: sum} of the samples called `name`, optionally of one workspace only."""
    totals = {}
    for n, labels, value in samples:
        if n != name or (workspace is not None and labels.get("workspace", "default") != workspace):
            continue
        key = labels.get(label, "?")
        totals[key] = totals.get(key, 0.0) + value
    return totals


# --- The machine ---------------------------------------------------------------------------------------


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:
        return "?"


def machine_summary():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GiB RAM"
    except OSError:
        pass
    return f"nproc {os.cpu_count()}, {model}, {mem}, Linux {platform.release()}"
