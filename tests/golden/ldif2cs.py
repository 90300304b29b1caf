#!/usr/bin/python3
"""Turns an LDIF of tests/fixtures/gen-directory.py into connector-space fixture lines for
`hs-sync --load-cs`: what the AD connector stores (anchor = objectGUID bytes, object class
user/inetOrgPerson/group/contact, binary values as "b64:...", member and manager as references).
Usage: ldif2cs.py FILE.ldif > cs.jsonl"""

import base64
import json
import sys

BINARY = {"objectguid", "objectsid", "ms-ds-consistencyguid"}
REFS = {"member", "manager"}


def entries(text):
    cur = []
    lines = []
    for raw in text.split("\n"):
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]
            continue
        lines.append(raw)
    for line in lines + [""]:
        if not line:
            if cur:
                yield cur
            cur = []
            continue
        if line.startswith("#"):
            continue
        if "::" in line.split(":", 1)[0] + ":" + line.split(":", 1)[1][:1]:
            name, val = line.split("::", 1)
            cur.append((name, base64.b64decode(val.strip()), True))
        else:
            name, val = line.split(":", 1)
            cur.append((name, val[1:] if val.startswith(" ") else val, False))


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    for e in entries(text):
        attrs, refs, dn, classes = {}, {}, None, set()
        for name, val, b64 in e:
            low = name.lower()
            if low == "dn":
                dn = val.decode("utf-8") if b64 else val
                continue
            if low == "objectclass":
                classes.add((val.decode() if b64 else val).lower())
                continue
            if b64:
                if low in BINARY:
                    v = "b64:" + base64.b64encode(val).decode()
                else:
                    try:
                        v = val.decode("utf-8")
                    except UnicodeDecodeError:
                        v = "b64:" + base64.b64encode(val).decode()
            else:
                v = val
            if low in REFS:
                refs.setdefault(low, []).append(v)
            else:
                attrs.setdefault(name, []).append(v)
        if classes & {"user", "adshadowuser"}:
            cls = "user"
        elif classes & {"contact", "adshadowcontact"}:
            cls = "contact"
        elif classes & {"group", "groupofnames", "adshadowgroup"}:
            cls = "group"
        elif "inetorgperson" in classes:
            cls = "inetOrgPerson"
        else:
            continue
        guid = attrs.pop("objectGUID", None)
        if not guid:
            continue
        line = {"connector": "ad", "anchor": guid[0], "dn": dn, "class": cls, "attrs": attrs}
        line["attrs"]["objectGUID"] = guid[0]
        if refs:
            line["refs"] = refs
        print(json.dumps(line, ensure_ascii=False, sort_keys=True))


if __name__ == "__main__":
    main()
