# The emulated Microsoft identity platform: the OAuth2 client-credentials token endpoint
# (client secret or a certificate-signed JWT assertion, verified in pure Python) and the
# access tokens that every /v1.0 request must carry.

import base64
import hashlib
import hmac
import json
import os
import re
import time
import urllib.parse
import uuid

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRAPH_SCOPES = ("https://graph.microsoft.com/.default", GRAPH_APP_ID + "/.default")


def b64url_decode(s):
    if isinstance(s, str):
        s = s.encode("ascii")
    return base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4))


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


# --- DER / X.509 (just enough to take the RSA public key out of a certificate) ---------------

def _der_read(buf, pos):
    """One TLV at pos: (tag, value_start, value_end)."""
    tag = buf[pos]
    ln = buf[pos + 1]
    pos += 2
    if ln & 0x80:
        n = ln & 0x7F
        if n == 0 or n > 4:
            raise ValueError("unsupported DER length")
        ln = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    if pos + ln > len(buf):
        raise ValueError("truncated DER")
    return tag, pos, pos + ln


def _der_children(buf, start, end):
    out = []
    pos = start
    while pos < end:
        tag, vs, ve = _der_read(buf, pos)
        out.append((tag, vs, ve))
        pos = ve
    return out


RSA_OID = bytes.fromhex("2a864886f70d010101")


def rsa_key_from_cert_der(der):
    """(n, e) of the RSA subjectPublicKeyInfo of an X.509 certificate."""
    tag, vs, ve = _der_read(der, 0)
    if tag != 0x30:
        raise ValueError("certificate is not a SEQUENCE")
    tbs_tag, tvs, tve = _der_children(der, vs, ve)[0]
    fields = _der_children(der, tvs, tve)
    idx = 1 if fields[0][0] == 0xA0 else 0   # optional [0] version
    spki = fields[idx + 5]                   # serial, sigAlg, issuer, validity, subject, SPKI
    alg, bits = _der_children(der, spki[1], spki[2])[:2]
    oid = _der_children(der, alg[1], alg[2])[0]
    if der[oid[1]:oid[2]] != RSA_OID:
        raise ValueError("certificate key is not RSA")
    if bits[0] != 0x03:
        raise ValueError("SPKI key is not a BIT STRING")
    key = der[bits[1] + 1:bits[2]]           # skip the unused-bits byte
    _, kvs, kve = _der_read(key, 0)
    n_t, e_t = _der_children(key, kvs, kve)[:2]
    n = int.from_bytes(key[n_t[1]:n_t[2]], "big")
    e = int.from_bytes(key[e_t[1]:e_t[2]], "big")
    return n, e


_PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)


class Certificate:
    def __init__(self, der, path):
        self.der = der
        self.path = path
        self.n, self.e = rsa_key_from_cert_der(der)
        self.x5t = b64url(hashlib.sha1(der).digest())
        self.x5t_s256 = b64url(hashlib.sha256(der).digest())


def load_certificates(path):
    with open(path, "rb") as f:
        data = f.read()
    blocks = _PEM_RE.findall(data)
    if not blocks:
        return [Certificate(data, path)]     # maybe DER
    return [Certificate(base64.b64decode(b"".join(b.split())), path) for b in blocks]


# --- RSA signature verification (PKCS#1 v1.5 and PSS, RFC 8017) ------------------------------

_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def verify_pkcs1v15(n, e, msg, sig, hname):
    k = (n.bit_length() + 7) // 8
    if len(sig) != k:
        return False
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    t = _DIGEST_INFO[hname] + hashlib.new(hname, msg).digest()
    if k < len(t) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, expected)


def _mgf1(seed, length, hname):
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.new(hname, seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def verify_pss(n, e, msg, sig, hname):
    k = (n.bit_length() + 7) // 8
    if len(sig) != k:
        return False
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    mod_bits = n.bit_length()
    em_bits = mod_bits - 1
    em_len = (em_bits + 7) // 8
    em = pow(s, e, n).to_bytes(k, "big")[-em_len:] if em_len < k else pow(s, e, n).to_bytes(k, "big")
    hlen = hashlib.new(hname).digest_size
    mhash = hashlib.new(hname, msg).digest()
    if em_len < hlen + 2 or em[-1] != 0xBC:
        return False
    masked_db = em[:em_len - hlen - 1]
    h = em[em_len - hlen - 1:-1]
    zero_bits = 8 * em_len - em_bits
    if masked_db[0] >> (8 - zero_bits) if zero_bits else 0:
        return False
    db = bytes(a ^ b for a, b in zip(masked_db, _mgf1(h, em_len - hlen - 1, hname)))
    db = bytes([db[0] & (0xFF >> zero_bits)]) + db[1:]
    i = 0
    while i < len(db) and db[i] == 0:
        i += 1
    if i >= len(db) or db[i] != 0x01:
        return False
    salt = db[i + 1:]
    h2 = hashlib.new(hname, b"\x00" * 8 + mhash + salt).digest()
    return hmac.compare_digest(h, h2)


_ALGS = {
    "RS256": (verify_pkcs1v15, "sha256"), "RS384": (verify_pkcs1v15, "sha384"),
    "RS512": (verify_pkcs1v15, "sha512"), "PS256": (verify_pss, "sha256"),
    "PS384": (verify_pss, "sha384"), "PS512": (verify_pss, "sha512"),
}


# --- the token endpoint ----------------------------------------------------------------------

class AuthError(Exception):
    def __init__(self, status, error, code, description):
        super().__init__(description)
        self.status = status
        self.error = error
        self.code = code
        self.description = description


def _missing(name):
    return AuthError(400, "invalid_request", 900144,
                     "The request body must contain the following parameter: '%s'." % name)


class Auth:
    def __init__(self, tenant, client_id, client_secret, certs, token_lifetime, domains,
                 assertion_skew=300):
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.certs = certs
        self.token_lifetime = token_lifetime
        self.domains = [d.lower() for d in domains]
        self.assertion_skew = assertion_skew
        self.key = os.urandom(32)
        self.tokens = {}        # access token -> expiry (epoch seconds)

    def tenant_known(self, t):
        t = t.lower()
        return t == self.tenant.lower() or t in self.domains

    def error_body(self, err, rid):
        now = time.gmtime()
        ts = time.strftime("%Y-%m-%d %H:%M:%SZ", now)
        corr = str(uuid.uuid4())
        desc = "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
            err.code, err.description, rid, corr, ts)
        return {"error": err.error, "error_description": desc, "error_codes": [err.code],
                "timestamp": ts, "trace_id": rid, "correlation_id": corr,
                "error_uri": "https://login.microsoftonline.com/error?code=%d" % err.code}

    def token(self, tenant, body, endpoint_urls):
        """Returns the token response dict or raises AuthError."""
        if not self.tenant_known(tenant):
            raise AuthError(400, "invalid_request", 90002,
                            "Tenant '%s' not found. Check to make sure you have the correct tenant "
                            "ID and are signing into the correct cloud. Check with your "
                            "subscription administrator, this may happen if there are no active "
                            "subscriptions for the tenant." % tenant)
        try:
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise AuthError(400, "invalid_request", 900144, "The request body is not valid.")
        grant = form.get("grant_type")
        if not grant:
            raise _missing("grant_type")
        if grant != "client_credentials":
            raise AuthError(400, "unsupported_grant_type", 70003,
                            "The app requested an unsupported grant type '%s'." % grant)
        cid = form.get("client_id")
        if not cid:
            raise _missing("client_id")
        if cid.lower() != self.client_id.lower():
            raise AuthError(400, "unauthorized_client", 700016,
                            "Application with identifier '%s' was not found in the directory "
                            "'%s'. This can happen if the application has not been installed by "
                            "the administrator of the tenant or consented to by any user in the "
                            "tenant. You may have sent your authentication request to the wrong "
                            "tenant." % (cid, tenant))
        scope = form.get("scope")
        if not scope:
            raise _missing("scope")
        scopes = scope.split()
        if not scopes or any(s.lower() not in GRAPH_SCOPES for s in scopes):
            bad = next((s for s in scopes if s.lower() not in GRAPH_SCOPES), scope)
            if bad.lower().startswith(("https://graph.microsoft.com", GRAPH_APP_ID)):
                raise AuthError(400, "invalid_scope", 1002012,
                                "The provided value for scope %s is not valid. Client credential "
                                "flows must have a scope value with /.default suffixed to the "
                                "resource identifier (application ID URI)." % bad)
            raise AuthError(400, "invalid_resource", 500011,
                            "The resource principal named %s was not found in the tenant named "
                            "%s. This can happen if the application has not been installed by the "
                            "administrator of the tenant or consented to by any user in the "
                            "tenant. You might have sent your authentication request to the wrong "
                            "tenant." % (bad.rsplit("/.default", 1)[0], tenant))
        assertion = form.get("client_assertion")
        secret = form.get("client_secret")
        if assertion is not None or form.get("client_assertion_type") is not None:
            self._check_assertion(form, cid, endpoint_urls)
        elif secret is not None:
            if not self.client_secret or not hmac.compare_digest(
                    secret.encode("utf-8"), self.client_secret.encode("utf-8")):
                raise AuthError(401, "invalid_client", 7000215,
                                "Invalid client secret provided. Ensure the secret being sent in "
                                "the request is the client secret value, not the client secret "
                                "ID, for a secret added to app '%s'." % self.client_id)
        else:
            raise AuthError(401, "invalid_client", 7000218,
                            "The request body must contain the following parameter: "
                            "'client_assertion' or 'client_secret'.")
        return self.issue()

    def issue(self):
        now = int(time.time())
        exp = now + self.token_lifetime
        header = b64url(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
        payload = b64url(json.dumps({
            "aud": "https://graph.microsoft.com", "iss": "https://sts.windows.net/%s/" % self.tenant,
            "iat": now, "nbf": now, "exp": exp, "appid": self.client_id, "tid": self.tenant,
            "roles": ["User.ReadWrite.All", "Group.ReadWrite.All", "GroupMember.ReadWrite.All",
                      "Directory.ReadWrite.All"],
            "uti": uuid.uuid4().hex}, separators=(",", ":")).encode())
        signing = header + "." + payload
        sig = b64url(hmac.new(self.key, signing.encode(), hashlib.sha256).digest())
        tok = signing + "." + sig
        self.tokens[tok] = exp
        if len(self.tokens) > 10000:
            self.tokens = {t: e for t, e in self.tokens.items() if e > now}
        return {"token_type": "Bearer", "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime, "access_token": tok}

    def expire_all(self):
        past = int(time.time()) - 1
        for t in self.tokens:
            self.tokens[t] = past
        return len(self.tokens)

    def check_bearer(self, header, at=None):
        """None when the Authorization header carries a token valid at time AT (default now),
        else the error message."""
        if not header:
            return "Access token is empty."
        scheme, _, tok = header.partition(" ")
        tok = tok.strip()
        if scheme.lower() != "bearer" or not tok:
            return "Access token is empty."
        exp = self.tokens.get(tok)
        if exp is None:
            if tok.count(".") != 2:
                return "CompactToken parsing failed with error code: 80049217"
            return "Access token validation failure. Invalid audience."
        if exp <= (time.time() if at is None else at):
            return "Lifetime validation failed, the token is expired."
        return None

    # -- the certificate assertion (private_key_jwt) --

    def _check_assertion(self, form, cid, endpoint_urls):
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise AuthError(400, "invalid_request", 90100,
                            "client_assertion_type parameter is empty or not valid.")
        jwt = form.get("client_assertion") or ""
        if not jwt:
            raise _missing("client_assertion")
        parts = jwt.split(".")
        try:
            if len(parts) != 3:
                raise ValueError
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError, json.JSONDecodeError, base64.binascii.Error):
            raise AuthError(401, "invalid_client", 50027,
                            "JWT token is invalid or malformed.")
        alg = header.get("alg")
        if alg not in _ALGS:
            raise AuthError(401, "invalid_client", 5002738,
                            "Invalid JWT token. '%s' is not a supported signature algorithm. "
                            "Supported signing algorithms are: 'RS256, RS384, RS512, PS256, "
                            "PS384, PS512'" % alg)
        thumb256 = header.get("x5t#S256")
        thumb1 = header.get("x5t")
        cert = None
        for c in self.certs:
            if (thumb256 and thumb256 == c.x5t_s256) or (thumb1 and thumb1 == c.x5t):
                cert = c
                break
        if cert is None:
            raise AuthError(401, "invalid_client", 700027,
                            "Client assertion failed signature validation. [Reason - The key was "
                            "not found., Thumbprint of key used by client: '%s', Please visit the "
                            "Azure Portal, Graph Explorer or directly use MS Graph to see "
                            "configured keys for app Id '%s'.]" % (thumb256 or thumb1 or "",
                                                                    self.client_id))
        verify, hname = _ALGS[alg]
        signed = (parts[0] + "." + parts[1]).encode("ascii")
        if not verify(cert.n, cert.e, signed, sig, hname):
            raise AuthError(401, "invalid_client", 700027,
                            "Client assertion contains an invalid signature. [Reason - The "
                            "provided signature value did not match the expected signature "
                            "value., Thumbprint of key used by client: '%s']" % (thumb256 or thumb1))
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not any(isinstance(a, str) and a in endpoint_urls for a in auds):
            raise AuthError(401, "invalid_client", 700023,
                            "Client assertion audience claim does not match Realm issuer. Review "
                            "the documentation at https://aka.ms/certCreds .")
        iss, sub = claims.get("iss"), claims.get("sub")
        if iss != sub:
            raise AuthError(401, "invalid_client", 50048,
                            "Subject mismatches Issuer claim in the client assertion.")
        if not isinstance(iss, str) or iss.lower() != cid.lower():
            raise AuthError(401, "invalid_client", 700021,
                            "Client assertion application identifier doesn't match 'client_id' "
                            "parameter. Review the documentation at https://aka.ms/certCreds .")
        if not claims.get("jti"):
            raise AuthError(401, "invalid_client", 50027,
                            "JWT token is invalid or malformed. The 'jti' claim is missing.")
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if (not isinstance(exp, (int, float)) or exp + self.assertion_skew <= now
                or (isinstance(nbf, (int, float)) and nbf - self.assertion_skew > now)):
            fmt = lambda t: (time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(t))
                             if isinstance(t, (int, float)) else "unknown")
            raise AuthError(401, "invalid_client", 700024,
                            "Client assertion is not within its valid time range. Current time: "
                            "%s, assertion valid from %s, expiry time of assertion %s. Review the "
                            "documentation at https://aka.ms/certCreds ."
                            % (fmt(now), fmt(nbf), fmt(exp)))
