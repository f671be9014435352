#!/usr/bin/env python3
"""trace_check.py - check a gorc Chrome trace-event JSON file with Python's own json parser.

  trace_check.py TRACE.json [--workers N --rounds R] [--window]

Checks, each printed as ok/FAIL:
  - the file is JSON with a traceEvents list, every event has ph, pid, tid (and ts except
    metadata), and slices have a non-negative dur;
  - per track, events are ordered by ts and slices ("X") nest or follow each other, never
    overlap partially;
  - every goroutine track is a life: the state slices (running / runnable / blocked: ...)
    tile the time from its first to its last event with no gap or overlap; "create" comes
    first and "end" last for every goroutine created inside the trace; a running slice ends
    in block, stop or end, and a blocked slice is always followed by a runnable one that
    starts where it ends (every block matched by an unblock);
  - the known program: N "worker" and N "echo" goroutines, each created and ended in the
    trace; each worker blocked at least R times on a channel, each echo R times; mutex,
    sleep waits and a blocking call are present; tasks, regions and logs are there;
  - flows: every "s" has one "f" with the same id; an "s" lies inside a slice of its track
    (the waker running, or a wake mark), an "f" is at the start of a running slice of a
    goroutine; the metadata reports no repaired events.
With --window (a flight-recorder snapshot) goroutines may start before the window: only the
known program's goroutines, all inside it, are held to the life rules. With --generic (a trace
of some other program, a server's download) the known-program checks are left out and
goroutines created in the trace that have not ended are held to the rules up to the end.
"""
import argparse
import collections
import json
import sys

fails = 0


def check(name, cond, detail=""):
    global fails
    if cond:
        print("ok   " + name)
    else:
        fails += 1
        print("FAIL " + name + (": " + detail if detail else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--window", action="store_true")
    ap.add_argument("--generic", action="store_true")
    a = ap.parse_args()

    with open(a.trace) as f:
        doc = json.load(f)
    evs = doc.get("traceEvents")
    check("JSON with a traceEvents list", isinstance(evs, list) and len(evs) > 0)
    if not isinstance(evs, list):
        return
    bad = [e for e in evs if "ph" not in e or "pid" not in e or "tid" not in e
           or (e["ph"] != "M" and "ts" not in e) or (e["ph"] == "X" and e.get("dur", -1) < 0)]
    check("every event has ph, pid, tid, ts, and slices a dur", not bad, str(bad[:3]))
    meta = doc.get("otherData", {})
    check("no repaired events (%s)" % meta.get("repairs"), meta.get("repairs") == 0)

    tracks = collections.defaultdict(list)
    names = {}
    for e in evs:
        if e["ph"] == "M":
            if e["name"] == "thread_name":
                names[(e["pid"], e["tid"])] = e["args"]["name"]
            continue
        tracks[(e["pid"], e["tid"])].append(e)

    # Ordered per track, slices properly nested.
    unordered, overlap = [], []
    for k, t in tracks.items():
        if any(t[i]["ts"] > t[i + 1]["ts"] for i in range(len(t) - 1)):
            unordered.append(k)
        stack = []
        for e in t:
            if e["ph"] != "X":
                continue
            s, end = e["ts"], e["ts"] + e["dur"]
            while stack and stack[-1] <= s + 1e-6:
                stack.pop()
            if stack and end > stack[-1] + 1e-3:
                overlap.append((k, e["name"], s))
            stack.append(end)
    check("timestamps ordered on every track (%d tracks)" % len(tracks), not unordered,
          str(unordered[:3]))
    check("slices nest or follow, never overlap", not overlap, str(overlap[:3]))

    # Goroutine lives.
    states = ("running", "runnable")
    gtracks = {k[1]: t for k, t in tracks.items() if k[0] == 2}
    gname = {tid: names.get((2, tid), "") for tid in gtracks}
    known = set() if a.generic else {tid for tid, n in gname.items() if n.split(" ")[-1] in ("worker", "echo")}
    broken = []
    block_counts = {}
    reasons = collections.Counter()
    for tid, t in gtracks.items():
        st = [e for e in t if e["ph"] == "X" and (e["name"] in states or e["name"].startswith("blocked: "))]
        inst = [e for e in t if e["ph"] == "i"]
        created = [e for e in inst if e["name"] == "create"]
        ended = [e for e in inst if e["name"] == "end"]
        strict = tid in known or (not a.window and created)
        if not strict:
            continue
        why = None
        alive = a.generic and created and not ended and st
        if alive:
            # Still alive at the end of the trace: its last slice lasts until the end.
            last = st[-1]
            check_last = last.get("args", {}).get("end") == "trace end"
            ended = [{"ts": last["ts"] + last["dur"]}] if check_last else []
        if not created or not ended:
            why = "created %d ended %d" % (len(created), len(ended))
        elif not st:
            why = "no state slices"
        else:
            if abs(st[0]["ts"] - created[0]["ts"]) > 1e-3 or st[0]["name"] != "runnable":
                why = "does not start runnable at its creation"
            last = st[-1]
            if why is None and not alive and (last["name"] != "running" or abs(last["ts"] + last["dur"] - ended[0]["ts"]) > 1e-3):
                why = "does not end running at its end"
            for x, y in zip(st, st[1:]):
                if why:
                    break
                if abs(x["ts"] + x["dur"] - y["ts"]) > 1e-3:
                    why = "gap or overlap at %s" % x["ts"]
                elif x["name"].startswith("blocked: ") and y["name"] != "runnable":
                    why = "blocked not followed by runnable at %s" % x["ts"]
                elif x["name"] == "runnable" and y["name"] != "running":
                    why = "runnable not followed by running at %s" % x["ts"]
                elif x["name"] == "running" and y["name"] == "running":
                    why = "two runs in a row at %s" % x["ts"]
            for x in (st[:-1] if alive else st):
                if x["name"].startswith("blocked: ") and x.get("args", {}).get("end") != "unblock":
                    why = why or "a block ends by %s" % x.get("args", {}).get("end")
        if why:
            broken.append((tid, gname[tid], why))
        blocks = [x for x in st if x["name"].startswith("blocked: ")]
        block_counts[tid] = len(blocks)
        for x in blocks:
            reasons[x["args"]["reason"]] += 1
    check("every goroutine's life is complete and consistent (%d checked)" % len(block_counts),
          not broken, str(broken[:3]))

    if a.generic:
        check_flows(tracks)
        return
    workers = [t for t, n in gname.items() if n.endswith(" worker")]
    echos = [t for t, n in gname.items() if n.endswith(" echo")]
    check("%d worker and %d echo goroutines (%d, %d)" % (a.workers, a.workers, len(workers), len(echos)),
          len(workers) == a.workers and len(echos) == a.workers)
    check("each worker and echo blocked at least %d times" % a.rounds,
          all(block_counts.get(t, 0) >= a.rounds for t in workers + echos),
          str({t: block_counts.get(t) for t in workers + echos}))
    for r in ("chan receive", "sync.Mutex.Lock", "sleep"):
        pass
    rs = set(reasons)
    check("wait reasons seen: %s" % sorted(rs),
          any("chan" in r for r in rs) and any("sleep" in r for r in rs) and any("Mutex" in r or "mutex" in r for r in rs))
    sysc = [e for t in gtracks.values() for e in t if e["ph"] == "X" and e["name"] == "blocking call"]
    check("blocking calls recorded (%d)" % len(sysc), len(sysc) >= a.workers)
    user = [e for k, t in tracks.items() if k[0] == 4 for e in t]
    regions = [e for e in user if e["ph"] == "X" and e["name"] == "pingpong"]
    tasks_b = [e for e in user if e["ph"] == "b" and e["name"] == "work"]
    tasks_e = [e for e in user if e["ph"] == "e"]
    logs = [e for t in gtracks.values() for e in t if e["ph"] == "i" and e["name"] == "log"]
    check("regions %d, tasks %d/%d, logs %d" % (len(regions), len(tasks_b), len(tasks_e), len(logs)),
          len(regions) == a.workers and len(tasks_b) == a.workers and len(tasks_e) >= a.workers
          and len(logs) == a.workers and all(l["args"]["message"] == "ok" for l in logs))
    procs = [k for k in tracks if k[0] == 1]
    check("P tracks with goroutine runs (%d)" % len(procs), len(procs) >= 1)

    check_flows(tracks)


def check_flows(tracks):
    starts = {e["id"]: e for t in tracks.values() for e in t if e["ph"] == "s"}
    fins = collections.defaultdict(list)
    for t in tracks.values():
        for e in t:
            if e["ph"] == "f":
                fins[e["id"]].append(e)
    check("flows: %d, each start has one finish" % len(starts),
          len(starts) > 0 and all(len(fins.get(i, [])) == 1 for i in starts) and set(fins) <= set(starts))
    badflow = []
    for i, s in starts.items():
        tr = tracks[(s["pid"], s["tid"])]
        inside = any(e["ph"] == "X" and e["ts"] - 1e-3 <= s["ts"] <= e["ts"] + e["dur"] + 1e-3 for e in tr)
        f = fins.get(i, [None])[0]
        at_start = f is not None and f["pid"] == 2 and any(
            e["ph"] == "X" and e["name"] == "running" and abs(e["ts"] - f["ts"]) < 1e-3
            for e in tracks[(2, f["tid"])])
        if not inside or not at_start or (f and f["ts"] < s["ts"]):
            badflow.append((i, inside, at_start))
    check("flows connect a waker's slice to the start of the wakee's run", not badflow, str(badflow[:3]))


if __name__ == "__main__":
    main()
    sys.exit(1 if fails else 0)
