# OData pieces of the Graph emulator: the error type every handler raises, and the
# $filter / $select / $top parsing shared by lists and delta queries.

import re


class GraphError(Exception):
    """An OData error response: {"error": {"code", "message", "details"?, "innerError"}}."""

    def __init__(self, status, code, message, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or []


def bad_request(message, code="Request_BadRequest", details=None):
    return GraphError(400, code, message, details)


def not_found(oid):
    return GraphError(404, "Request_ResourceNotFound",
                      "Resource '%s' does not exist or one of its queried reference-property "
                      "objects are not present." % oid)


def invalid_value(prop, resource):
    return GraphError(400, "Request_BadRequest",
                      "Invalid value specified for property '%s' of resource '%s'." % (prop, resource),
                      [{"code": "InvalidValue", "target": prop}])


def no_property(prop, odata_type):
    return GraphError(400, "BadRequest",
                      "Could not find a property named '%s' on type '%s'." % (prop, odata_type))


# --- $filter --------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"""
    \s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<punct>[(),:/])
    | (?P<dt>\d{4}-\d\d-\d\dT[0-9:.]+Z)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<word>[A-Za-z_$][A-Za-z0-9_.@$]*)
    )""", re.X)

_COMPARE_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}
_ADVANCED_OPS = {"ne", "not", "endswith"}


class _Tok:
    __slots__ = ("kind", "val")

    def __init__(self, kind, val):
        self.kind = kind
        self.val = val


def _tokenize(text):
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise bad_request("Invalid filter clause: syntax error at position %d in '%s'."
                              % (pos, text), "BadRequest")
        pos = m.end()
        kind = m.lastgroup
        val = m.group(kind)
        if kind == "str":
            val = val[1:-1].replace("''", "'")
        elif kind == "num":
            val = float(val) if "." in val else int(val)
        out.append(_Tok(kind, val))
    return out


class FilterSchema:
    """What a $filter may reference: name -> property type, plus the resource name for errors."""

    def __init__(self, resource, odata_type, props, filterable, extensions=()):
        self.resource = resource
        self.odata_type = odata_type
        self.props = props              # name -> type string
        self.filterable = filterable    # names usable in $filter
        self.extensions = set(extensions)

    def check(self, name):
        if name in self.extensions:
            return "str"
        if name not in self.props:
            raise no_property(name, self.odata_type)
        if name not in self.filterable:
            raise GraphError(400, "Request_UnsupportedQuery",
                             "Unsupported or invalid query filter clause specified for property "
                             "'%s' of resource '%s'." % (name, self.resource))
        return self.props[name]


def _norm(v):
    return v.lower() if isinstance(v, str) else v


def _cmp(op, a, b):
    if op == "eq":
        return _norm(a) == _norm(b)
    if op == "ne":
        return _norm(a) != _norm(b)
    if a is None or b is None:
        return False
    a, b = _norm(a), _norm(b)
    try:
        if op == "gt":
            return a > b
        if op == "ge":
            return a >= b
        if op == "lt":
            return a < b
        return a <= b
    except TypeError:
        return False


class _Parser:
    def __init__(self, toks, schema):
        self.t = toks
        self.i = 0
        self.schema = schema
        self.advanced = []          # operators that need ConsistencyLevel + $count
        self.id_values = []         # for delta: ids in "id eq 'x' or ..."
        self.only_ids = True

    def peek(self, kind=None, val=None):
        if self.i >= len(self.t):
            return None
        tok = self.t[self.i]
        if kind and tok.kind != kind:
            return None
        if val is not None and (not isinstance(tok.val, str) or tok.val.lower() != val):
            return None
        return tok

    def take(self, kind=None, val=None):
        tok = self.peek(kind, val)
        if tok is None:
            got = self.t[self.i].val if self.i < len(self.t) else "end of expression"
            raise bad_request("Invalid filter clause: expected %s but found '%s'."
                              % (val or kind, got), "BadRequest")
        self.i += 1
        return tok

    def parse(self):
        fn = self.or_expr()
        if self.i != len(self.t):
            raise bad_request("Invalid filter clause: unexpected '%s'." % self.t[self.i].val,
                              "BadRequest")
        return fn

    def or_expr(self):
        fns = [self.and_expr()]
        while self.peek("word", "or"):
            self.i += 1
            fns.append(self.and_expr())
        if len(fns) == 1:
            return fns[0]
        return lambda o: any(f(o) for f in fns)

    def and_expr(self):
        fns = [self.unary()]
        while self.peek("word", "and"):
            self.i += 1
            self.only_ids = False
            fns.append(self.unary())
        if len(fns) == 1:
            return fns[0]
        return lambda o: all(f(o) for f in fns)

    def unary(self):
        if self.peek("word", "not"):
            self.i += 1
            self.advanced.append("not")
            self.only_ids = False
            f = self.unary()
            return lambda o: not f(o)
        return self.primary()

    def literal(self):
        tok = self.take()
        if tok.kind in ("str", "num", "dt"):
            return tok.val
        if tok.kind == "word":
            low = tok.val.lower()
            if low == "true":
                return True
            if low == "false":
                return False
            if low == "null":
                return None
        raise bad_request("Invalid filter clause: '%s' is not a literal." % tok.val, "BadRequest")

    def primary(self):
        if self.peek("punct", "("):
            self.i += 1
            f = self.or_expr()
            self.take("punct", ")")
            return f
        word = self.take("word").val
        low = word.lower()
        if low in ("startswith", "endswith") and self.peek("punct", "("):
            self.only_ids = False
            if low == "endswith":
                self.advanced.append("endsWith")
            self.i += 1
            prop = self.prop_path()
            self.take("punct", ",")
            lit = self.literal()
            self.take("punct", ")")
            if not isinstance(lit, str):
                raise bad_request("Invalid filter clause: %s needs a string." % word, "BadRequest")
            lit = lit.lower()
            get = self.getter(prop)
            if low == "startswith":
                return lambda o: _str_match(get(o), lambda s: s.startswith(lit))
            return lambda o: _str_match(get(o), lambda s: s.endswith(lit))
        self.i -= 1
        prop = self.prop_path()
        if self.peek("punct", "/"):
            return self.lambda_expr(prop)
        optok = self.take("word")
        op = optok.val.lower()
        get = self.getter(prop)
        if op == "in":
            self.take("punct", "(")
            vals = [self.literal()]
            while self.peek("punct", ","):
                self.i += 1
                vals.append(self.literal())
            self.take("punct", ")")
            normed = {_norm(v) for v in vals}
            if prop == ["id"]:
                self.id_values.extend(vals)
            else:
                self.only_ids = False
            return lambda o: _norm(get(o)) in normed
        if op not in _COMPARE_OPS:
            raise bad_request("Invalid filter clause: unknown operator '%s'." % optok.val,
                              "BadRequest")
        lit = self.literal()
        if op in _ADVANCED_OPS or lit is None:
            self.advanced.append(op if lit is not None else "eq null")
        if prop == ["id"] and op == "eq":
            self.id_values.append(lit)
        else:
            self.only_ids = False
        return lambda o: _cmp(op, get(o), lit)

    def lambda_expr(self, prop):
        # proxyAddresses/any(p:p eq 'SMTP:a@b') and startswith(p, '...')
        self.only_ids = False
        self.take("punct", "/")
        kind = self.take("word").val.lower()
        if kind not in ("any", "all"):
            raise bad_request("Invalid filter clause: expected any/all.", "BadRequest")
        self.take("punct", "(")
        var = self.take("word").val
        self.take("punct", ":")
        if self.peek("word", "startswith"):
            self.i += 1
            self.take("punct", "(")
            if self.take("word").val != var:
                raise bad_request("Invalid filter clause: unknown variable.", "BadRequest")
            self.take("punct", ",")
            lit = self.literal()
            self.take("punct", ")")
            test = lambda v: isinstance(v, str) and v.lower().startswith(str(lit).lower())
        else:
            if self.take("word").val != var:
                raise bad_request("Invalid filter clause: unknown variable.", "BadRequest")
            op = self.take("word").val.lower()
            if op not in _COMPARE_OPS:
                raise bad_request("Invalid filter clause: unknown operator '%s'." % op,
                                  "BadRequest")
            if op in _ADVANCED_OPS:
                self.advanced.append(op)
            lit = self.literal()
            test = lambda v: _cmp(op, v, lit)
        self.take("punct", ")")
        get = self.getter(prop)
        if kind == "any":
            return lambda o: any(test(v) for v in (get(o) or []))
        return lambda o: all(test(v) for v in (get(o) or []))

    def prop_path(self):
        parts = [self.take("word").val]
        # onPremisesExtensionAttributes/extensionAttribute1: a complex property path
        while (self.peek("punct", "/") and self.i + 1 < len(self.t)
               and self.t[self.i + 1].kind == "word"
               and self.t[self.i + 1].val.lower() not in ("any", "all")):
            self.i += 1
            parts.append(self.take("word").val)
        self.schema.check(parts[0])
        return parts

    @staticmethod
    def getter(parts):
        if len(parts) == 1:
            name = parts[0]
            return lambda o: o.get(name)

        def get(o):
            v = o.get(parts[0])
            for p in parts[1:]:
                v = v.get(p) if isinstance(v, dict) else None
            return v
        return get


def _str_match(v, test):
    if isinstance(v, str):
        return test(v.lower())
    return False


class CompiledFilter:
    __slots__ = ("pred", "advanced", "id_values", "only_ids", "index_eq")

    def __init__(self, pred, advanced, id_values, only_ids, index_eq):
        self.pred = pred
        self.advanced = advanced
        self.id_values = id_values
        self.only_ids = only_ids
        # (prop, [values]) when the filter is exactly "prop eq 'v'" or "prop in ('v', ...)"
        self.index_eq = index_eq


_SIMPLE_EQ = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+eq\s+'((?:[^']|'')*)'\s*$", re.I)
_SIMPLE_IN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+in\s+\(\s*('(?:[^']|'')*'"
                        r"(?:\s*,\s*'(?:[^']|'')*')*)\s*\)\s*$", re.I)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_cache = {}


def compile_filter(text, schema):
    key = (id(schema), tuple(sorted(schema.extensions)), text)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    p = _Parser(_tokenize(text), schema)
    pred = p.parse()
    m = _SIMPLE_EQ.match(text)
    if m:
        index_eq = (m.group(1), [m.group(2).replace("''", "'")])
    else:
        m = _SIMPLE_IN.match(text)
        index_eq = ((m.group(1), [v.replace("''", "'") for v in _QUOTED.findall(m.group(2))])
                    if m else None)
    cf = CompiledFilter(pred, p.advanced, p.id_values, p.only_ids and bool(p.id_values), index_eq)
    if len(_cache) > 512:
        _cache.clear()
    _cache[key] = cf
    return cf


# --- query options --------------------------------------------------------------------------

def parse_select(text, schema, allowed_extra=()):
    names = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if name in schema.props or name in schema.extensions or name in allowed_extra:
            names.append(name)
            continue
        raise GraphError(400, "BadRequest",
                         "Parsing OData Select and Expand failed: Could not find a property named "
                         "'%s' on type '%s'." % (name, schema.odata_type))
    return names


def parse_top(text, maximum=999):
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 1 or n > maximum:
        raise bad_request("Invalid page size specified: '%s'. Must be between 1 and %d inclusive."
                          % (text, maximum))
    return n
