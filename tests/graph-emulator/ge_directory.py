# The emulated directory: users, groups, organizational contacts, memberships, deleted items,
# directory extensions, and the change log that delta queries read.

import bisect
import re
import time
import uuid

from ge_odata import GraphError, bad_request, invalid_value, not_found, FilterSchema

# name: (type, access, default, filterable)
#   type: str bool int dt strs obj objs; access: w writable, r read-only, c create-only
U = {
    "id": ("str", "r", True, True),
    "accountEnabled": ("bool", "w", False, True),
    "ageGroup": ("str", "w", False, True),
    "businessPhones": ("strs", "w", True, False),
    "city": ("str", "w", False, True),
    "companyName": ("str", "w", False, True),
    "consentProvidedForMinor": ("str", "w", False, True),
    "country": ("str", "w", False, True),
    "createdDateTime": ("dt", "r", False, True),
    "creationType": ("str", "r", False, True),
    "deletedDateTime": ("dt", "r", False, False),
    "department": ("str", "w", False, True),
    "displayName": ("str", "w", True, True),
    "employeeHireDate": ("dt", "w", False, True),
    "employeeId": ("str", "w", False, True),
    "employeeOrgData": ("obj", "w", False, False),
    "employeeType": ("str", "w", False, True),
    "externalUserState": ("str", "r", False, True),
    "faxNumber": ("str", "w", False, True),
    "givenName": ("str", "w", True, True),
    "identities": ("objs", "w", False, False),
    "imAddresses": ("strs", "r", False, True),
    "jobTitle": ("str", "w", True, True),
    "lastPasswordChangeDateTime": ("dt", "r", False, False),
    "mail": ("str", "w", True, True),
    "mailNickname": ("str", "w", False, True),
    "mobilePhone": ("str", "w", True, True),
    "officeLocation": ("str", "w", True, True),
    "onPremisesDistinguishedName": ("str", "r", False, False),
    "onPremisesDomainName": ("str", "r", False, False),
    "onPremisesExtensionAttributes": ("obj", "w", False, True),
    "onPremisesImmutableId": ("str", "w", False, True),
    "onPremisesLastSyncDateTime": ("dt", "r", False, True),
    "onPremisesProvisioningErrors": ("objs", "r", False, False),
    "onPremisesSamAccountName": ("str", "r", False, True),
    "onPremisesSecurityIdentifier": ("str", "r", False, True),
    "onPremisesSyncEnabled": ("bool", "r", False, True),
    "onPremisesUserPrincipalName": ("str", "r", False, False),
    "otherMails": ("strs", "w", False, True),
    "passwordPolicies": ("str", "w", False, False),
    "passwordProfile": ("obj", "w", False, False),
    "postalCode": ("str", "w", False, True),
    "preferredDataLocation": ("str", "w", False, False),
    "preferredLanguage": ("str", "w", True, True),
    "proxyAddresses": ("strs", "r", False, True),
    "securityIdentifier": ("str", "r", False, True),
    "showInAddressList": ("bool", "w", False, True),
    "signInSessionsValidFromDateTime": ("dt", "r", False, False),
    "state": ("str", "w", False, True),
    "streetAddress": ("str", "w", False, False),
    "surname": ("str", "w", True, True),
    "usageLocation": ("str", "w", False, True),
    "userPrincipalName": ("str", "w", True, True),
    "userType": ("str", "w", False, True),
}

G = {
    "id": ("str", "r", True, True),
    "classification": ("str", "w", True, True),
    "createdDateTime": ("dt", "r", True, True),
    "creationOptions": ("strs", "c", True, False),
    "deletedDateTime": ("dt", "r", True, False),
    "description": ("str", "w", True, True),
    "displayName": ("str", "w", True, True),
    "expirationDateTime": ("dt", "r", True, True),
    "groupTypes": ("strs", "c", True, True),
    "isAssignableToRole": ("bool", "c", True, True),
    "mail": ("str", "r", True, True),
    "mailEnabled": ("bool", "w", True, True),
    "mailNickname": ("str", "w", True, True),
    "membershipRule": ("str", "w", True, True),
    "membershipRuleProcessingState": ("str", "w", True, True),
    "onPremisesDomainName": ("str", "r", True, False),
    "onPremisesLastSyncDateTime": ("dt", "r", True, True),
    "onPremisesNetBiosName": ("str", "r", True, False),
    "onPremisesProvisioningErrors": ("objs", "r", True, False),
    "onPremisesSamAccountName": ("str", "r", True, True),
    "onPremisesSecurityIdentifier": ("str", "r", True, True),
    "onPremisesSyncEnabled": ("bool", "r", True, True),
    "preferredDataLocation": ("str", "w", True, True),
    "preferredLanguage": ("str", "w", True, True),
    "proxyAddresses": ("strs", "r", True, True),
    "renewedDateTime": ("dt", "r", True, True),
    "resourceBehaviorOptions": ("strs", "c", True, False),
    "resourceProvisioningOptions": ("strs", "r", True, False),
    "securityEnabled": ("bool", "w", True, True),
    "securityIdentifier": ("str", "r", True, True),
    "theme": ("str", "w", True, False),
    "visibility": ("str", "w", True, False),
}

C = {
    "id": ("str", "r", True, True),
    "addresses": ("objs", "r", True, False),
    "companyName": ("str", "r", True, True),
    "department": ("str", "r", True, True),
    "displayName": ("str", "r", True, True),
    "givenName": ("str", "r", True, True),
    "jobTitle": ("str", "r", True, True),
    "mail": ("str", "r", True, True),
    "mailNickname": ("str", "r", True, True),
    "onPremisesLastSyncDateTime": ("dt", "r", True, True),
    "onPremisesProvisioningErrors": ("objs", "r", True, False),
    "onPremisesSyncEnabled": ("bool", "r", True, True),
    "phones": ("objs", "r", True, False),
    "proxyAddresses": ("strs", "r", True, True),
    "surname": ("str", "r", True, True),
}

UPN_RE = re.compile(r"^[A-Za-z0-9'._!#^~-]+@[A-Za-z0-9.-]+$")
EXT_RE = re.compile(r"^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]+$")
NICK_BAD_USER = set('@()\\[]";:<>, ')
NICK_BAD_GROUP = NICK_BAD_USER | {"."}
MAX_LINKS = 20
# Maximum lengths the user resource documents for its string properties.
USER_MAXLEN = {"displayName": 256, "givenName": 64, "surname": 64, "jobTitle": 128,
               "department": 64, "companyName": 64, "employeeId": 16, "city": 128,
               "country": 128, "state": 128, "postalCode": 40, "streetAddress": 1024,
               "officeLocation": 128, "mobilePhone": 64, "faxNumber": 64, "mailNickname": 64,
               "employeeType": 64, "preferredLanguage": 64}


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_id():
    return str(uuid.uuid4())


def password_ok(pw):
    if not isinstance(pw, str) or not 8 <= len(pw) <= 256:
        return False
    classes = (any(c.islower() for c in pw) + any(c.isupper() for c in pw)
               + any(c.isdigit() for c in pw) + any(not c.isalnum() for c in pw))
    return classes >= 3


class Meta:
    __slots__ = ("ord", "created_pos", "last_pos", "prop_pos", "members", "member_log", "owners")

    def __init__(self, ordn, pos):
        self.ord = ordn
        self.created_pos = pos
        self.last_pos = pos
        self.prop_pos = {}
        self.members = None
        self.member_log = None
        self.owners = None


class Collection:
    """One entity set (users, groups, contacts) with its change log."""

    def __init__(self, kind, segment, resource, props):
        self.kind = kind                         # user | group | orgContact
        self.segment = segment                   # users | groups | contacts
        self.odata_type = "#microsoft.graph." + kind
        self.resource = resource                 # User | Group | OrgContact (error messages)
        self.props = props
        self.defaults = [n for n, d in props.items() if d[2]]
        self.schema = FilterSchema(resource, "microsoft.graph." + kind,
                                   {n: d[0] for n, d in props.items()},
                                   {n for n, d in props.items() if d[3]})
        self.reset()

    def reset(self):
        self.objs = {}
        self.meta = {}
        self.order_ids = []
        self.order_ords = []
        self.next_ord = 0
        self.log = []                            # position -> object id
        self.tombstones = {}                     # id -> [pos, reason]

    def touch(self, oid, props):
        pos = len(self.log)
        self.log.append(oid)
        m = self.meta[oid]
        m.last_pos = pos
        for p in props:
            m.prop_pos[p] = pos
        return pos

    def insert(self, oid, obj):
        pos = len(self.log)
        self.log.append(oid)
        m = Meta(self.next_ord, pos)
        self.next_ord += 1
        self.objs[oid] = obj
        self.meta[oid] = m
        self.order_ids.append(oid)
        self.order_ords.append(m.ord)
        self.tombstones.pop(oid, None)
        return m

    def remove(self, oid, reason):
        pos = len(self.log)
        self.log.append(oid)
        del self.objs[oid]
        m = self.meta.pop(oid)
        self.tombstones[oid] = [pos, reason]
        if len(self.order_ids) > 64 and len(self.order_ids) > 2 * len(self.objs):
            live = sorted((self.meta[i].ord, i) for i in set(self.order_ids) if i in self.meta)
            self.order_ords = [o for o, _ in live]
            self.order_ids = [i for _, i in live]
        return m

    def iter_from(self, after_ord):
        """Live objects in creation order, starting after the given ord."""
        start = bisect.bisect_right(self.order_ords, after_ord)
        ids, ords, meta = self.order_ids, self.order_ords, self.meta
        for k in range(start, len(ids)):
            oid = ids[k]
            m = meta.get(oid)
            if m is not None and m.ord == ords[k]:
                yield m.ord, oid, self.objs[oid]


class Directory:
    def __init__(self, tenant, client_id, domains, soft_delete_security_groups=False):
        self.tenant = tenant
        self.client_id = client_id
        self.domains = list(domains)
        self.soft_delete_security_groups = soft_delete_security_groups
        self.users = Collection("user", "users", "User", U)
        self.groups = Collection("group", "groups", "Group", G)
        self.contacts = Collection("orgContact", "contacts", "OrgContact", C)
        self.colls = {"user": self.users, "group": self.groups, "orgContact": self.contacts}
        self.app_object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "app:" + client_id))
        self.extensions = {}        # name -> definition
        self.reset()

    def reset(self):
        for c in self.colls.values():
            c.reset()
        self.by_upn = {}
        self.by_imm = {}
        self.member_of = {}         # member id -> set of group ids
        self.deleted = {}           # id -> record (kind, obj, deletedDateTime, groups)
        self.generation = 0

    # -- lookups --

    def find(self, oid):
        for c in (self.users, self.groups, self.contacts):
            o = c.objs.get(oid)
            if o is not None:
                return c, o
        return None, None

    def get_user(self, key):
        o = self.users.objs.get(key)
        if o is None and "@" in key:
            oid = self.by_upn.get(key.lower())
            o = self.users.objs.get(oid) if oid else None
        if o is None:
            raise not_found(key)
        return o

    def get(self, coll, oid):
        if coll is self.users:
            return self.get_user(oid)
        o = coll.objs.get(oid)
        if o is None:
            raise not_found(oid)
        return o

    def ext_names(self, kind):
        target = {"user": "User", "group": "Group"}.get(kind)
        return {n for n, d in self.extensions.items() if target in d["targetObjects"]}

    def schema(self, coll):
        s = coll.schema
        s.extensions = self.ext_names(coll.kind)
        return s

    # -- extension registration --

    def register_extension(self, name, data_type="String", targets=("User", "Group"),
                           multi=False):
        if not EXT_RE.match(name):
            if not re.match(r"^[A-Za-z0-9_]+$", name):
                raise bad_request("Invalid value specified for property 'name' of resource "
                                  "'ExtensionProperty'.")
            name = "extension_%s_%s" % (self.client_id.replace("-", ""), name)
        if name in self.extensions:
            raise GraphError(400, "Request_BadRequest",
                             "Another object with the same value for property name already exists.",
                             [{"code": "ObjectConflict", "target": "name"}])
        d = {"id": new_id(), "name": name, "dataType": data_type,
             "targetObjects": list(targets), "isMultiValued": bool(multi),
             "appDisplayName": "hybridsync", "isSyncedFromOnPremises": False,
             "deletedDateTime": None}
        self.extensions[name] = d
        return d

    # -- value checking --

    def _check_value(self, coll, name, value):
        res = coll.resource
        ext = self.extensions.get(name)
        if ext is not None:
            if value is None:
                return
            vals = value if ext["isMultiValued"] else [value]
            if ext["isMultiValued"] and not isinstance(value, list):
                raise invalid_value(name, res)
            for v in vals:
                t = ext["dataType"]
                ok = ((t in ("String", "Binary", "DateTime") and isinstance(v, str)
                       and (t != "String" or len(v) <= 256))
                      or (t in ("Integer", "LargeInteger") and isinstance(v, int)
                          and not isinstance(v, bool))
                      or (t == "Boolean" and isinstance(v, bool)))
                if not ok:
                    raise invalid_value(name, res)
            return
        typ = coll.props[name][0]
        if value is None:
            if name in ("accountEnabled", "displayName", "userPrincipalName", "mailNickname",
                        "mailEnabled", "securityEnabled", "passwordProfile"):
                raise invalid_value(name, res)
            return
        ok = {"str": lambda v: isinstance(v, str), "dt": lambda v: isinstance(v, str),
              "bool": lambda v: isinstance(v, bool),
              "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "strs": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
              "obj": lambda v: isinstance(v, dict),
              "objs": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
              }[typ](value)
        if not ok:
            raise invalid_value(name, res)
        if name == "displayName" and (not value.strip() or len(value) > 256):
            raise invalid_value(name, res)
        if coll is self.users and typ == "str" and len(value) > USER_MAXLEN.get(name, 1024):
            raise invalid_value(name, res)
        if name == "usageLocation" and not re.fullmatch(r"[A-Za-z]{2}", value):
            raise invalid_value(name, res)
        if name == "mailNickname":
            bad = NICK_BAD_USER if coll is self.users else NICK_BAD_GROUP
            if (not value or len(value) > 64 or any(ord(ch) > 127 or ch in bad for ch in value)):
                raise invalid_value(name, res)
        if name == "onPremisesImmutableId" and ("$" in value or "_" in value or not value):
            raise invalid_value(name, res)
        if name == "userPrincipalName":
            local = value.split("@", 1)[0]
            if (not UPN_RE.match(value) or local.startswith(".") or local.endswith(".")
                    or ".." in local or len(local) > 64):
                raise invalid_value(name, res)
            dom = value.rsplit("@", 1)[1].lower()
            if dom not in (d.lower() for d in self.domains):
                raise GraphError(400, "Request_BadRequest",
                                 "The domain portion of the userPrincipalName property is invalid. "
                                 "You must use one of the verified domain names in your "
                                 "organization.",
                                 [{"code": "InvalidValue", "target": "userPrincipalName"}])
        if name == "passwordProfile":
            pw = value.get("password")
            if pw is not None and not password_ok(pw):
                raise bad_request("The specified password does not comply with password complexity "
                                  "requirements. Please provide a different password.")

    def _check_body(self, coll, body, creating, seed):
        """Split a write body into plain properties and @odata.bind links, validating both."""
        if not isinstance(body, dict):
            raise bad_request("Empty Payload. JSON content expected.", "BadRequest")
        props, binds = {}, {}
        exts = self.ext_names(coll.kind)
        for name, value in body.items():
            if name == "@odata.type":
                if value.lstrip("#").lower() != coll.odata_type.lstrip("#").lower():
                    raise bad_request("A type named '%s' could not be resolved by the model."
                                      % value, "BadRequest")
                continue
            if name.endswith("@odata.bind"):
                nav = name[:-len("@odata.bind")]
                if coll is not self.groups or nav not in ("members", "owners"):
                    raise bad_request("The property '%s' does not exist on type '%s'. Make sure to "
                                      "only use property names that are defined by the type."
                                      % (nav, coll.odata_type[1:]), "BadRequest")
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise bad_request("Invalid value for %s." % name, "BadRequest")
                binds[nav] = value
                continue
            if name not in coll.props and name not in exts:
                raise bad_request("The property '%s' does not exist on type '%s'. Make sure "
                                      "to only use property names that are defined by the type "
                                      "or mark the type as open type."
                                      % (name, coll.odata_type[1:]), "BadRequest")
            if name in coll.props and not seed:
                access = coll.props[name][1]
                if access == "r" or (access == "c" and not creating):
                    raise bad_request("Property '%s' is read-only and cannot be set." % name)
            if not seed or value is not None:
                self._check_value(coll, name, value)
            props[name] = value
        return props, binds

    def _resolve_refs(self, refs):
        """directoryObjects URLs (or bare ids) -> [(id, kind)]; 404 for missing objects."""
        out = []
        for ref in refs:
            oid = ref.rstrip("/").rsplit("/", 1)[-1]
            if "(" in oid:                        # .../directoryObjects('id')
                oid = oid.split("(", 1)[1].strip("')\"")
            coll, obj = self.find(oid)
            if obj is None:
                raise not_found(oid)
            out.append((oid, coll.kind))
        return out

    def _unique(self, coll, props, oid=None):
        if coll is not self.users:
            return
        upn = props.get("userPrincipalName")
        if upn is not None:
            other = self.by_upn.get(upn.lower())
            if other is not None and other != oid:
                raise conflict("userPrincipalName")
        imm = props.get("onPremisesImmutableId")
        if imm is not None:
            other = self.by_imm.get(imm.lower())
            if other is not None and other != oid:
                raise conflict("onPremisesImmutableId")

    def _index(self, oid, old, new):
        for key, idx in (("userPrincipalName", self.by_upn), ("onPremisesImmutableId", self.by_imm)):
            if key not in new:
                continue
            ov = old.get(key)
            if ov is not None and idx.get(ov.lower()) == oid:
                del idx[ov.lower()]
            nv = new[key]
            if nv is not None:
                idx[nv.lower()] = oid

    # -- create / update / delete --

    def create_user(self, body, seed=False):
        props, _ = self._check_body(self.users, body, True, seed)
        if not seed:
            for req in ("accountEnabled", "displayName", "mailNickname", "passwordProfile",
                        "userPrincipalName"):
                if props.get(req) in (None, ""):
                    raise bad_request("Property %s value is required but is empty or missing."
                                      % req)
            if not props["passwordProfile"].get("password"):
                raise bad_request("Property passwordProfile.password value is required but is "
                                  "empty or missing.")
        elif "userPrincipalName" not in props:
            raise bad_request("seed: a user needs userPrincipalName")
        oid = body.get("id") if seed and body.get("id") else new_id()
        if oid in self.users.objs or oid in self.deleted:
            raise bad_request("seed: duplicate id %s" % oid)
        self._unique(self.users, props)
        obj = {"id": oid}
        pp = props.pop("passwordProfile", None)
        for k, v in props.items():
            if v is not None:
                obj[k] = v
        obj.setdefault("createdDateTime", now_iso())
        obj.setdefault("userType", "Member")
        if pp is not None:                  # keep the policy flags, never the password
            obj["_forceChangePasswordNextSignIn"] = bool(pp.get("forceChangePasswordNextSignIn",
                                                                True))
        self.users.insert(oid, obj)
        self._index(oid, {}, obj)
        return obj

    def create_group(self, body, seed=False):
        props, binds = self._check_body(self.groups, body, True, seed)
        if not seed:
            for req in ("displayName", "mailEnabled", "mailNickname", "securityEnabled"):
                if props.get(req) in (None, ""):
                    raise bad_request("Property %s value is required but is empty or missing."
                                      % req)
        unified = any(t.lower() == "unified" for t in props.get("groupTypes") or [])
        if not seed:
            if props["mailEnabled"] and not unified:
                raise bad_request("Cannot Create a mail-enabled security groups and or "
                                  "distribution list.")
            if not props["mailEnabled"] and not props["securityEnabled"] and not unified:
                raise bad_request("The service does not currently support writes of mail-enabled "
                                  "groups. Please ensure that the mail-enablement property is "
                                  "unset and the security-enablement property is set.")
            if unified and not props["mailEnabled"]:
                raise invalid_value("mailEnabled", "Group")
        links = sum(len(v) for v in binds.values())
        if links > MAX_LINKS:
            raise bad_request("A resource cannot contain more than %d link changes." % MAX_LINKS)
        members = self._resolve_refs(binds.get("members", []))
        owners = self._resolve_refs(binds.get("owners", []))
        oid = body.get("id") if seed and body.get("id") else new_id()
        if oid in self.groups.objs or oid in self.deleted:
            raise bad_request("seed: duplicate id %s" % oid)
        if unified and not seed:
            mail = "%s@%s" % (props["mailNickname"], self.domains[0])
            for g in self.groups.objs.values():
                if (g.get("mail") or "").lower() == mail.lower():
                    raise conflict("proxyAddresses")
        obj = {"id": oid}
        for k, v in props.items():
            if v is not None:
                obj[k] = v
        obj.setdefault("createdDateTime", now_iso())
        obj.setdefault("groupTypes", [])
        if unified and not seed:
            obj["mail"] = mail
            obj["proxyAddresses"] = ["SMTP:" + mail]
            obj.setdefault("visibility", "Public")
            obj["renewedDateTime"] = obj["createdDateTime"]
        if obj.get("securityEnabled") and not obj.get("securityIdentifier"):
            obj["securityIdentifier"] = "S-1-12-1-%d-%d-%d-%d" % tuple(
                int.from_bytes(uuid.UUID(oid).bytes[i:i + 4], "little") for i in (0, 4, 8, 12))
        m = self.groups.insert(oid, obj)
        m.members = {}
        m.member_log = []
        m.owners = {}
        for mid, kind in owners:
            m.owners[mid] = kind
        for mid, kind in members:
            self._link(oid, mid, kind, touch=False)
        return obj

    def create_contact(self, body):
        oid = body.get("id") or new_id()
        obj = {"id": oid}
        for k, v in body.items():
            if k not in C and k != "id":
                raise bad_request("seed: unknown orgContact property %s" % k)
            obj[k] = v
        self.contacts.insert(oid, obj)
        return obj

    def update(self, coll, oid, body, seed=False):
        obj = self.get(coll, oid)
        oid = obj["id"]
        if coll is self.contacts and not seed:
            raise GraphError(405, "Request_BadRequest",
                             "Specified HTTP method is not allowed for the request target.")
        props, binds = self._check_body(coll, body, False, seed)
        if coll is self.groups and not seed:
            mail_enabled = props.get("mailEnabled", obj.get("mailEnabled"))
            unified = any(t.lower() == "unified" for t in obj.get("groupTypes") or [])
            if mail_enabled and not unified:
                raise bad_request("Cannot Update a mail-enabled security groups and or "
                                  "distribution list.")
        if sum(len(v) for v in binds.values()) > MAX_LINKS:
            raise bad_request("A resource cannot contain more than %d link changes." % MAX_LINKS)
        members = self._resolve_refs(binds.get("members", []))
        owners = self._resolve_refs(binds.get("owners", []))
        meta = coll.meta[oid]
        for mid, _ in members:
            if mid in meta.members:
                raise bad_request("One or more added object references already exist for the "
                                  "following modified properties: 'members'.")
        for mid, _ in owners:
            if mid in meta.owners:
                raise bad_request("One or more added object references already exist for the "
                                  "following modified properties: 'owners'.")
        if len({m for m, _ in members}) != len(members):
            raise bad_request("One or more added object references already exist for the "
                              "following modified properties: 'members'.")
        self._unique(coll, props, oid)
        pp = props.pop("passwordProfile", None)
        changed = []
        for k, v in props.items():
            if k == "onPremisesExtensionAttributes" and isinstance(v, dict):
                cur = dict(obj.get(k) or {})
                cur.update(v)
                v = cur
            if obj.get(k) != v:
                changed.append(k)
        self._index(oid, obj, {k: props[k] for k in changed if k in props})
        for k in changed:
            v = props[k]
            if k == "onPremisesExtensionAttributes":
                cur = dict(obj.get(k) or {})
                cur.update(v)
                v = cur
            if v is None:
                obj.pop(k, None)
            else:
                obj[k] = v
        if pp is not None:
            obj["_forceChangePasswordNextSignIn"] = bool(pp.get("forceChangePasswordNextSignIn",
                                                                True))
            obj["lastPasswordChangeDateTime"] = now_iso()
            changed.append("passwordProfile")
        if changed:
            coll.touch(oid, changed)
        for mid, kind in owners:
            meta.owners[mid] = kind
        for mid, kind in members:
            self._link(oid, mid, kind)
        return obj

    def _link(self, gid, mid, kind, touch=True):
        meta = self.groups.meta[gid]
        meta.members[mid] = kind
        self.member_of.setdefault(mid, set()).add(gid)
        pos = self.groups.touch(gid, ()) if touch else meta.created_pos
        meta.member_log.append((pos, mid, kind, True))

    def _unlink(self, gid, mid):
        meta = self.groups.meta[gid]
        kind = meta.members.pop(mid)
        s = self.member_of.get(mid)
        if s is not None:
            s.discard(gid)
            if not s:
                del self.member_of[mid]
        pos = self.groups.touch(gid, ())
        meta.member_log.append((pos, mid, kind, False))

    def add_member(self, gid, ref):
        self.get(self.groups, gid)
        (mid, kind), = self._resolve_refs([ref])
        if mid in self.groups.meta[gid].members:
            raise bad_request("One or more added object references already exist for the "
                              "following modified properties: 'members'.")
        if mid == gid:
            raise bad_request("A group cannot be a member of itself.")
        self._link(gid, mid, kind)

    def remove_member(self, gid, mid):
        self.get(self.groups, gid)
        if mid not in self.groups.meta[gid].members:
            raise GraphError(404, "Request_ResourceNotFound",
                             "One or more removed object references do not exist for the "
                             "following modified properties: 'members'.")
        self._unlink(gid, mid)

    def add_owner(self, gid, ref):
        self.get(self.groups, gid)
        (mid, kind), = self._resolve_refs([ref])
        owners = self.groups.meta[gid].owners
        if mid in owners:
            raise bad_request("One or more added object references already exist for the "
                              "following modified properties: 'owners'.")
        owners[mid] = kind

    def remove_owner(self, gid, mid):
        self.get(self.groups, gid)
        owners = self.groups.meta[gid].owners
        if mid not in owners:
            raise GraphError(404, "Request_ResourceNotFound",
                             "One or more removed object references do not exist for the "
                             "following modified properties: 'owners'.")
        del owners[mid]

    def delete(self, coll, oid):
        """Delete a user or group: soft (to deletedItems) or permanent, as Graph does."""
        obj = self.get(coll, oid)
        oid = obj["id"]
        if coll is self.contacts:
            raise GraphError(405, "Request_BadRequest",
                             "Specified HTTP method is not allowed for the request target.")
        soft = True
        if coll is self.groups:
            unified = any(t.lower() == "unified" for t in obj.get("groupTypes") or [])
            soft = unified or self.soft_delete_security_groups
        groups = sorted(self.member_of.get(oid, ()))
        for gid in groups:
            self._unlink(gid, oid)
        meta = coll.meta[oid]
        members = dict(meta.members or {})
        owners = dict(meta.owners or {})
        for mid in list(members):
            self._unlink(oid, mid)
        self._index(oid, obj, {"userPrincipalName": None, "onPremisesImmutableId": None})
        for g in self.groups.meta.values():     # the object stops owning groups
            if g.owners and oid in g.owners:
                del g.owners[oid]
        coll.remove(oid, "changed" if soft else "deleted")
        if soft:
            obj["deletedDateTime"] = now_iso()
            self.deleted[oid] = {"kind": coll.kind, "obj": obj, "groups": groups,
                                 "members": members, "owners": owners}
        return soft

    def restore(self, oid):
        rec = self.deleted.get(oid)
        if rec is None:
            raise not_found(oid)
        coll = self.colls[rec["kind"]]
        obj = rec["obj"]
        self._unique(coll, obj, oid)
        del self.deleted[oid]
        obj.pop("deletedDateTime", None)
        m = coll.insert(oid, obj)
        self._index(oid, {}, obj)
        if coll is self.groups:
            m.members, m.member_log, m.owners = {}, [], dict(rec["owners"])
            for mid, kind in rec["members"].items():
                if self.find(mid)[1] is not None:
                    self._link(oid, mid, kind, touch=False)
        for gid in rec["groups"]:
            if gid in self.groups.objs and oid not in self.groups.meta[gid].members:
                self._link(gid, oid, rec["kind"])
        return coll, obj

    def purge(self, oid):
        rec = self.deleted.pop(oid, None)
        if rec is None:
            raise not_found(oid)
        coll = self.colls[rec["kind"]]
        pos = len(coll.log)
        coll.log.append(oid)
        coll.tombstones[oid] = [pos, "deleted"]

    # -- representations --

    def rep(self, coll, obj, select=None):
        if select is None:
            names = coll.defaults
        else:
            names = select
        out = {}
        for n in names:
            if n == "passwordProfile":
                out[n] = None
            elif n in coll.props:
                v = obj.get(n)
                if v is None and coll.props[n][0] in ("strs", "objs"):
                    v = []
                out[n] = v
            elif n in obj:                      # extension properties: only when set
                out[n] = obj[n]
        out["id"] = obj["id"]
        return out

    def typed_rep(self, oid, kind, select=None):
        coll = self.colls[kind]
        obj = coll.objs.get(oid)
        out = {"@odata.type": coll.odata_type}
        if obj is None:
            out["id"] = oid
            return out
        if select is not None:
            select = [s for s in select if s in coll.props or s in self.extensions]
        out.update(self.rep(coll, obj, select))
        return out

    def dump(self):
        """Everything, for GET /_emulator/state."""
        def clean(o):
            return {k: v for k, v in o.items() if not k.startswith("_")}

        users = []
        for _, oid, o in self.users.iter_from(-1):
            u = clean(o)
            u["memberOf"] = sorted(self.member_of.get(oid, ()))
            users.append(u)
        groups = []
        for _, oid, o in self.groups.iter_from(-1):
            g = clean(o)
            meta = self.groups.meta[oid]
            g["members"] = list(meta.members)
            g["owners"] = list(meta.owners)
            g["memberOf"] = sorted(self.member_of.get(oid, ()))
            groups.append(g)
        contacts = [clean(o) for _, _, o in self.contacts.iter_from(-1)]
        deleted = []
        for oid, rec in self.deleted.items():
            d = {"@odata.type": "#microsoft.graph." + rec["kind"]}
            d.update(clean(rec["obj"]))
            d["formerGroups"] = rec["groups"]
            deleted.append(d)
        return {"tenant": self.tenant, "clientId": self.client_id, "domains": self.domains,
                "users": users, "groups": groups, "contacts": contacts,
                "deletedItems": deleted, "extensions": list(self.extensions.values()),
                "counts": {"users": len(users), "groups": len(groups),
                           "contacts": len(contacts), "deletedItems": len(deleted)}}


def conflict(prop):
    return GraphError(400, "Request_BadRequest",
                      "Another object with the same value for property %s already exists." % prop,
                      [{"code": "ObjectConflict", "target": prop}])
