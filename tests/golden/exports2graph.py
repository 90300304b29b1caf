#!/usr/bin/python3
"""Plays the part of the exporter and a later Graph import for tests: reads `hs-sync --exports`
output and writes 'graph' connector-space fixture lines for every added object (id = a stable
fake Graph id, attributes as exported, group members as references to the members' ids).
Usage: exports2graph.py EXPORTS.txt > graph.jsonl"""

import hashlib
import json
import sys


def gid(anchor):
    h = hashlib.sha256(anchor.encode()).hexdigest()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def main():
    blocks, cur = [], None
    for line in open(sys.argv[1], encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.startswith(" "):
            op, typ, anchor = line.split(" ", 2)
            cur = {"op": op, "type": typ, "anchor": anchor, "attrs": {}, "members": []}
            blocks.append(cur)
            continue
        body = line.strip()
        if body.startswith("member add "):
            cur["members"].append(body.split(" ")[2])
            continue
        name, val = body.split(": ", 1)
        if name in ("dn", "targetId") or name.endswith("(old)"):
            continue
        cur["attrs"][name] = val.split("| ")
    for b in blocks:
        if b["op"] != "add":
            continue
        line = {"connector": "graph", "anchor": gid(b["anchor"]), "dn": gid(b["anchor"]),
                "class": b["type"], "attrs": b["attrs"]}
        if b["members"]:
            line["refs"] = {"member": [gid(m) for m in b["members"]]}
        print(json.dumps(line, sort_keys=True))


if __name__ == "__main__":
    main()
