#!/usr/bin/python3
# Load generator for the Graph emulator: N client processes, each on one keep-alive
# connection (http.client), for a fixed time; prints requests/s and latency percentiles.
#   graph-emulator-rps.py --base URL --token TOKEN --mode get|post|batch [--procs N]
#                         [--seconds S] [--cafile CA] [--domain D]

import argparse
import http.client
import json
import multiprocessing
import ssl
import sys
import time
import urllib.parse
import uuid


def worker(args, wid, out):
    u = urllib.parse.urlsplit(args.base)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=args.cafile)
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    hdrs = {"Authorization": "Bearer " + args.token, "Content-Type": "application/json"}
    n = errors = 0
    lat = []
    seq = 0
    deadline = time.monotonic() + args.seconds
    tag = uuid.uuid4().hex[:8]
    while True:
        t0 = time.monotonic()
        if t0 >= deadline:
            break
        if args.mode == "get":
            conn.request("GET", "/v1.0/users?$top=10&$select=id,userPrincipalName", headers=hdrs)
        elif args.mode == "post":
            seq += 1
            nick = "b%s%d%d" % (tag, wid, seq)
            body = {"accountEnabled": True, "displayName": nick, "mailNickname": nick,
                    "userPrincipalName": "%s@%s" % (nick, args.domain),
                    "passwordProfile": {"password": "Bench!pw%d" % seq}}
            conn.request("POST", "/v1.0/users", body=json.dumps(body), headers=hdrs)
        else:
            reqs = []
            for i in range(20):
                seq += 1
                nick = "b%s%d%d" % (tag, wid, seq)
                reqs.append({"id": str(i + 1), "method": "POST", "url": "/users",
                             "headers": {"Content-Type": "application/json"},
                             "body": {"accountEnabled": True, "displayName": nick,
                                      "mailNickname": nick,
                                      "userPrincipalName": "%s@%s" % (nick, args.domain),
                                      "passwordProfile": {"password": "Bench!pw%d" % seq}}})
            conn.request("POST", "/v1.0/$batch", body=json.dumps({"requests": reqs}),
                         headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        lat.append(time.monotonic() - t0)
        n += 1
        if r.status >= 300 or (args.mode == "batch" and b'"status":201' not in data):
            errors += 1
    conn.close()
    out.put((n, errors, lat))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--mode", choices=("get", "post", "batch"), default="get")
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--cafile")
    p.add_argument("--domain", default="example.test")
    args = p.parse_args()
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(args, i, q)) for i in range(args.procs)]
    t0 = time.monotonic()
    for pr in procs:
        pr.start()
    results = [q.get() for _ in procs]
    for pr in procs:
        pr.join()
    elapsed = time.monotonic() - t0
    total = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    lat = sorted(x for r in results for x in r[2])
    pct = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000 if lat else 0.0
    per = 20 if args.mode == "batch" else 1
    print("%-6s %-5s procs=%d requests=%d errors=%d seconds=%.2f req/s=%.0f%s p50=%.2fms p99=%.2fms"
          % (urllib.parse.urlsplit(args.base).scheme, args.mode, args.procs, total, errors,
             elapsed, total / elapsed,
             " (graph ops/s=%.0f)" % (total * per / elapsed) if per > 1 else "",
             pct(0.5), pct(0.99)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
