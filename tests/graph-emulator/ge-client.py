#!/usr/bin/python3
# Test helper for the Graph emulator scenarios.
#   ge-client.py assertion --cert C --key K --client-id ID --aud URL [--alg RS256|PS256]
#                [--thumbprint s256|sha1|wrong] [--exp-in SECONDS] [--no-jti] [--iss ID]
#       prints a client-assertion JWT signed with `openssl dgst` (the key never leaves openssl)
#   ge-client.py eval EXPR      evaluates EXPR with d = the JSON document on stdin and prints
#                               the result (strings raw, everything else as JSON)

import base64
import hashlib
import json
import re
import subprocess
import sys
import time
import uuid


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def cert_der(path):
    pem = open(path, "rb").read()
    m = re.search(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", pem, re.S)
    return base64.b64decode(b"".join(m.group(1).split()))


def assertion(argv):
    import argparse
    p = argparse.ArgumentParser(prog="ge-client.py assertion")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--aud", required=True)
    p.add_argument("--alg", default="RS256", choices=("RS256", "PS256"))
    p.add_argument("--thumbprint", default="s256", choices=("s256", "sha1", "wrong"))
    p.add_argument("--exp-in", type=int, default=600)
    p.add_argument("--no-jti", action="store_true")
    p.add_argument("--iss")
    a = p.parse_args(argv)
    der = cert_der(a.cert)
    header = {"alg": a.alg, "typ": "JWT"}
    if a.thumbprint == "s256":
        header["x5t#S256"] = b64url(hashlib.sha256(der).digest())
    elif a.thumbprint == "sha1":
        header["x5t"] = b64url(hashlib.sha1(der).digest())
    else:
        header["x5t#S256"] = b64url(hashlib.sha256(b"not this certificate").digest())
    now = int(time.time())
    claims = {"aud": a.aud, "iss": a.iss or a.client_id, "sub": a.iss or a.client_id,
              "nbf": min(now, now + a.exp_in - 60), "iat": now, "exp": now + a.exp_in}
    if not a.no_jti:
        claims["jti"] = str(uuid.uuid4())
    signing = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode()))
    cmd = ["openssl", "dgst", "-sha256", "-sign", a.key]
    if a.alg == "PS256":
        cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
    sig = subprocess.run(cmd, input=signing.encode(), capture_output=True, check=True).stdout
    print(signing + "." + b64url(sig))


def evaluate(argv):
    d = json.load(sys.stdin)
    env = {"__builtins__": {}, "len": len, "sorted": sorted, "any": any, "all": all,
           "set": set, "str": str, "int": int, "list": list, "sum": sum, "min": min, "max": max,
           "d": d}
    v = eval(argv[0], env)
    print(v if isinstance(v, str) else json.dumps(v, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("assertion", "eval"):
        sys.stderr.write(__doc__ if __doc__ else "usage: ge-client.py assertion|eval ...\n")
        sys.exit(2)
    (assertion if sys.argv[1] == "assertion" else evaluate)(sys.argv[2:])
