/* The built-in rule set (hybridsync.rules(5), DEFAULT RULES): Entra Connect's out-of-box rules
 * for users, inetOrgPersons, groups and contacts, in and out, written in the rule-file format.
 * The template quotes JSON strings with ' and expression strings with `, so that it reads
 * without a forest of backslashes; both are turned into JSON before parsing. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_internal.h"

#define CLOUD_FILTERED_USER                                                                        \
	"IIF((UCase([isCriticalSystemObject]) = `TRUE`) || (IsPresent([sAMAccountName]) = False) " \
	"|| ([sAMAccountName] = `SUPPORT_388945a0`) || (Left([mailNickname],14) = "                \
	"`SystemMailbox{`) || (Left([sAMAccountName],4) = `AAD_`) || (Left([sAMAccountName],5) = " \
	"`MSOL_`) || ((Left([sAMAccountName],4) = `CAS_`) && (InStr([sAMAccountName],`}`) > 0)) "  \
	"|| (InStr(DNComponent(CRef([dn]),1),`\\\\\\\\0ACNF:`) > 0), True, NULL)"

#define CLOUD_FILTERED_OTHER                                                                       \
	"IIF((UCase([isCriticalSystemObject]) = `TRUE`) || (Left([sAMAccountName],4) = `AAD_`) "   \
	"|| "                                                                                      \
	"(Left([sAMAccountName],5) = `MSOL_`) || (InStr(DNComponent(CRef([dn]),1),"                \
	"`\\\\\\\\0ACNF:`) > 0), True, NULL)"

/* @CLASS@: user or inetOrgPerson; @NAME@: User or InetOrgPerson; @P0@..@P2@: precedences */
static const char user_template[] =
    "{'name':'In from AD - @NAME@ Join','direction':'inbound','connector':'ad',"
    "'sourceObjectType':'@CLASS@','targetObjectType':'person','linkType':'Provision',"
    "'precedence':@P0@,"
    "'scopingFilter':[[{'attribute':'adminDescription','operator':'NOTSTARTSWITH',"
    "'value':'User_'}]],"
    "'attributeFlows':["
    "{'target':'sourceAnchor','expression':'IIF(IsPresent([mS-DS-ConsistencyGuid]),"
    "ConvertToBase64([mS-DS-ConsistencyGuid]),ConvertToBase64([objectGUID]))'},"
    "{'target':'sourceObjectType','constant':'User'},"
    "{'target':'cloudFiltered','expression':'" CLOUD_FILTERED_USER "'}]},"
    "{'name':'In from AD - @NAME@ AccountEnabled','direction':'inbound','connector':'ad',"
    "'sourceObjectType':'@CLASS@','targetObjectType':'person','linkType':'Join',"
    "'precedence':@P1@,"
    "'attributeFlows':["
    "{'target':'accountEnabled','expression':'IIF(IsPresent([userAccountControl]),"
    "IIF(BitAnd([userAccountControl],2)=0,True,False),True)'}]},"
    "{'name':'In from AD - @NAME@ Common','direction':'inbound','connector':'ad',"
    "'sourceObjectType':'@CLASS@','targetObjectType':'person','linkType':'Join',"
    "'precedence':@P2@,"
    "'attributeFlows':["
    "{'target':'userPrincipalName','expression':'IIF(IsPresent([userPrincipalName]),"
    "[userPrincipalName],IIF(IsPresent([sAMAccountName]),([sAMAccountName]&`@`&%Domain.FQDN%),"
    "Error(`AccountName is not present`)))'},"
    "{'target':'displayName','expression':'IIF(IsNullOrEmpty([displayName]),[cn],"
    "[displayName])'},"
    "{'target':'mailNickname','expression':'IIF(IsPresent([mailNickname]),[mailNickname],"
    "IIF(IsPresent([sAMAccountName]),[sAMAccountName],Word([userPrincipalName],1,`@`)))'},"
    "{'target':'accountName','source':'sAMAccountName'},"
    "{'target':'cn','source':'cn'},"
    "{'target':'givenName','source':'givenName'},"
    "{'target':'sn','source':'sn'},"
    "{'target':'department','source':'department'},"
    "{'target':'title','source':'title'},"
    "{'target':'company','source':'company'},"
    "{'target':'employeeId','source':'employeeID'},"
    "{'target':'telephoneNumber','source':'telephoneNumber'},"
    "{'target':'mobile','source':'mobile'},"
    "{'target':'mail','source':'mail'},"
    "{'target':'proxyAddresses','source':'proxyAddresses'},"
    "{'target':'physicalDeliveryOfficeName','source':'physicalDeliveryOfficeName'},"
    "{'target':'streetAddress','source':'streetAddress'},"
    "{'target':'l','source':'l'},"
    "{'target':'st','source':'st'},"
    "{'target':'postalCode','source':'postalCode'},"
    "{'target':'co','source':'co'},"
    "{'target':'c','source':'c'},"
    "{'target':'objectSid','source':'objectSid'},"
    "{'target':'manager','source':'manager'}]},";

static const char rest_template[] =
    /* groups */
    "{'name':'In from AD - Group Join','direction':'inbound','connector':'ad',"
    "'sourceObjectType':'group','targetObjectType':'group','linkType':'Provision',"
    "'precedence':112,"
    "'scopingFilter':[[{'attribute':'adminDescription','operator':'NOTSTARTSWITH',"
    "'value':'Group_'}]],"
    "'attributeFlows':["
    "{'target':'sourceAnchor','expression':'ConvertToBase64([objectGUID])'},"
    "{'target':'sourceObjectType','constant':'Group'},"
    "{'target':'cloudFiltered','expression':'" CLOUD_FILTERED_OTHER "'}]},"
    "{'name':'In from AD - Group Common','direction':'inbound','connector':'ad',"
    "'sourceObjectType':'group','targetObjectType':'group','linkType':'Join',"
    "'precedence':114,"
    "'attributeFlows':["
    "{'target':'displayName','expression':'IIF(IsNullOrEmpty([displayName]),[cn],"
    "[displayName])'},"
    "{'target':'mailNickname','expression':'IIF(IsPresent([mailNickname]),[mailNickname],"
    "IIF(IsPresent([sAMAccountName]),[sAMAccountName],Replace([cn],` `,``)))'},"
    "{'target':'accountName','source':'sAMAccountName'},"
    "{'target':'cn','source':'cn'},"
    "{'target':'description','expression':'ItemOrNull([description],1)'},"
    "{'target':'mail','source':'mail'},"
    "{'target':'proxyAddresses','source':'proxyAddresses'},"
    "{'target':'groupType','source':'groupType'},"
    "{'target':'objectSid','source':'objectSid'},"
    "{'target':'member','source':'member'}]},"
    /* contacts: into the metaverse only (Graph contacts are read-only) */
    "{'name':'In from AD - Contact Join','direction':'inbound','connector':'ad',"
    "'sourceObjectType':'contact','targetObjectType':'person','linkType':'Provision',"
    "'precedence':115,"
    "'scopingFilter':[[{'attribute':'adminDescription','operator':'NOTSTARTSWITH',"
    "'value':'Contact_'}]],"
    "'attributeFlows':["
    "{'target':'sourceAnchor','expression':'ConvertToBase64([objectGUID])'},"
    "{'target':'sourceObjectType','constant':'Contact'},"
    "{'target':'cloudFiltered','expression':'" CLOUD_FILTERED_OTHER "'}]},"
    "{'name':'In from AD - Contact Common','direction':'inbound','connector':'ad',"
    "'sourceObjectType':'contact','targetObjectType':'person','linkType':'Join',"
    "'precedence':116,"
    "'attributeFlows':["
    "{'target':'displayName','expression':'IIF(IsNullOrEmpty([displayName]),[cn],"
    "[displayName])'},"
    "{'target':'cn','source':'cn'},"
    "{'target':'givenName','source':'givenName'},"
    "{'target':'sn','source':'sn'},"
    "{'target':'mail','source':'mail'},"
    "{'target':'proxyAddresses','source':'proxyAddresses'},"
    "{'target':'company','source':'company'},"
    "{'target':'department','source':'department'},"
    "{'target':'title','source':'title'}]},"
    /* from Graph: join what the tenant holds */
    "{'name':'In from AAD - User Join','direction':'inbound','connector':'graph',"
    "'sourceObjectType':'user','targetObjectType':'person','linkType':'Join',"
    "'precedence':119,"
    "'joinRules':[[{'source':'onPremisesImmutableId','target':'sourceAnchor',"
    "'caseSensitive':true}]@SOFTMATCH@],"
    "'attributeFlows':["
    "{'target':'cloudAnchor','source':'id'},"
    "{'target':'cloudSourceAnchor','expression':'ImportedValue(`onPremisesImmutableId`)'}]},"
    "{'name':'In from AAD - Group Join','direction':'inbound','connector':'graph',"
    "'sourceObjectType':'group','targetObjectType':'group','linkType':'Join',"
    "'precedence':121,"
    "'joinRules':[[{'source':@EXT@,'target':'sourceAnchor','caseSensitive':true}]],"
    "'attributeFlows':["
    "{'target':'cloudAnchor','source':'id'},"
    "{'target':'cloudSourceAnchor','expression':@EXTIMPORTED@}]},"
    /* to Graph */
    "{'name':'Out to AAD - User Join','direction':'outbound','connector':'graph',"
    "'sourceObjectType':'person','targetObjectType':'user','linkType':'Provision',"
    "'precedence':123,"
    "'scopingFilter':[[{'attribute':'sourceObjectType','operator':'EQUAL','value':'User'},"
    "{'attribute':'cloudFiltered','operator':'NOTEQUAL','value':'true'},"
    "{'attribute':'sourceAnchor','operator':'ISNOTNULL'},"
    "{'attribute':'accountEnabled','operator':'ISNOTNULL'}]],"
    "'attributeFlows':["
    "{'target':'onPremisesImmutableId','source':'sourceAnchor'},"
    "{'target':'accountEnabled','source':'accountEnabled'},"
    "{'target':'userPrincipalName',@UPN@},"
    "{'target':'displayName','source':'displayName'},"
    "{'target':'mailNickname','source':'mailNickname'}]},"
    "{'name':'Out to AAD - User Identity','direction':'outbound','connector':'graph',"
    "'sourceObjectType':'person','targetObjectType':'user','linkType':'Join',"
    "'precedence':124,"
    "'scopingFilter':[[{'attribute':'sourceObjectType','operator':'EQUAL','value':'User'},"
    "{'attribute':'cloudFiltered','operator':'NOTEQUAL','value':'true'}]],"
    "'attributeFlows':["
    "{'target':'givenName','source':'givenName'},"
    "{'target':'surname','source':'sn'},"
    "{'target':'department','source':'department'},"
    "{'target':'jobTitle','source':'title'},"
    "{'target':'companyName','source':'company'},"
    "{'target':'employeeId','source':'employeeId'},"
    "{'target':'mail','source':'mail'},"
    "{'target':'mobilePhone','source':'mobile'},"
    "{'target':'businessPhones','source':'telephoneNumber'},"
    "{'target':'officeLocation','source':'physicalDeliveryOfficeName'},"
    "{'target':'streetAddress','source':'streetAddress'},"
    "{'target':'city','source':'l'},"
    "{'target':'state','source':'st'},"
    "{'target':'postalCode','source':'postalCode'},"
    "{'target':'country','source':'co'},"
    "{'target':'usageLocation','source':'c'}]},"
    "{'name':'Out to AAD - Group Join','direction':'outbound','connector':'graph',"
    "'sourceObjectType':'group','targetObjectType':'group','linkType':'Provision',"
    "'precedence':139,"
    "'scopingFilter':[[{'attribute':'sourceObjectType','operator':'EQUAL','value':'Group'},"
    "{'attribute':'cloudFiltered','operator':'NOTEQUAL','value':'true'},"
    "{'attribute':'sourceAnchor','operator':'ISNOTNULL'}]],"
    "'attributeFlows':["
    "{'target':'displayName','source':'displayName'},"
    "{'target':'mailNickname','source':'mailNickname'},"
    "{'target':'mailEnabled','constant':'false'},"
    "{'target':'securityEnabled','constant':'true'},"
    "{'target':'description','source':'description'},"
    "{'target':@EXT@,'source':'sourceAnchor'},"
    "{'target':'member','source':'member'}]}";

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 4096;
		while (nc < b->len + n + 1)
			nc *= 2;
		char *np = realloc(b->p, nc);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void sb_add(struct sbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

/* A JSON string literal (with its quotes). */
static void sb_json_string(struct sbuf *b, const char *s)
{
	cJSON *j = cJSON_CreateString(s);
	char *t = j ? cJSON_PrintUnformatted(j) : NULL;

	if (!t)
		b->oom = true;
	else
		sb_add(b, t);
	cJSON_free(t);
	cJSON_Delete(j);
}

/* Expands the template: ' -> ", ` -> \", @KEY@ -> value (values are JSON already). */
static void expand(struct sbuf *b, const char *t, const char *const *keys,
                   const char *const *values)
{
	for (const char *p = t; *p; p++) {
		if (*p == '\'') {
			sb_add(b, "\"");
		} else if (*p == '`') {
			sb_add(b, "\\\"");
		} else if (*p == '@') {
			const char *end = strchr(p + 1, '@');
			bool done = false;
			for (size_t i = 0; end && keys[i]; i++)
				if ((size_t)(end - p - 1) == strlen(keys[i]) &&
				    strncmp(p + 1, keys[i], strlen(keys[i])) == 0) {
					sb_add(b, values[i]);
					p = end;
					done = true;
					break;
				}
			if (!done)
				sb_add(b, "@");
		} else {
			sb_addn(b, p, 1);
		}
	}
}

static const char *fallback_domain(const struct conf *c)
{
	for (size_t i = 0; i < c->graph.domains.n; i++) {
		const char *d = c->graph.domains.v[i];
		size_t l = strlen(d);
		if (l > 16 && strcmp(d + l - 16, ".onmicrosoft.com") == 0 &&
		    !(l > 21 && strcmp(d + l - 21, ".mail.onmicrosoft.com") == 0))
			return d;
	}
	return c->graph.domains.n ? c->graph.domains.v[0] : NULL;
}

/* The UPN flow to Graph: a UPN whose suffix is not a domain of the tenant gets the tenant's
 * initial (onmicrosoft.com) domain, as the service does for unverified suffixes. */
static void upn_flow(struct sbuf *b, const struct conf *c)
{
	struct sbuf e = {0};
	const char *fb = fallback_domain(c);

	if (!fb) {
		sb_add(b, "\"source\":\"userPrincipalName\"");
		return;
	}
	sb_add(&e, "IIF(IsNullOrEmpty([userPrincipalName]),NULL,IIF(");
	for (size_t i = 0; i < c->graph.domains.n; i++) {
		if (i)
			sb_add(&e, " || ");
		sb_add(&e, "(LCase(Word([userPrincipalName],2,\"@\")) = \"");
		sb_add(&e, c->graph.domains.v[i]);
		sb_add(&e, "\")");
	}
	sb_add(&e, ",[userPrincipalName],Word([userPrincipalName],1,\"@\") & \"@");
	sb_add(&e, fb);
	sb_add(&e, "\"))");
	if (e.oom) {
		b->oom = true;
		free(e.p);
		return;
	}
	sb_add(b, "\"expression\":");
	sb_json_string(b, e.p);
	free(e.p);
}

char *rules_default_json(const struct conf *c)
{
	struct sbuf b = {0}, upn = {0}, ext = {0}, exti = {0};
	const char *anchor_ext =
	    c->graph.anchor_extension ? c->graph.anchor_extension : "extension_hybridsyncAnchor";
	char imported[512];

	upn_flow(&upn, c);
	sb_json_string(&ext, anchor_ext);
	snprintf(imported, sizeof(imported), "ImportedValue(\"%s\")", anchor_ext);
	sb_json_string(&exti, imported);
	if (upn.oom || ext.oom || exti.oom)
		goto fail;
	sb_add(&b, "[");
	{
		const char *keys[] = {"CLASS", "NAME", "P0", "P1", "P2", NULL};
		const char *u[] = {"user", "User", "100", "102", "106"};
		const char *i[] = {"inetOrgPerson", "InetOrgPerson", "101", "103", "107"};
		expand(&b, user_template, keys, u);
		expand(&b, user_template, keys, i);
	}
	{
		const char *keys[] = {"EXT", "EXTIMPORTED", "UPN", "SOFTMATCH", NULL};
		const char *vals[] = {
		    ext.p, exti.p, upn.p,
		    c->graph.soft_match
		        ? ",[{\"source\":\"userPrincipalName\","
		          "\"target\":\"userPrincipalName\",\"caseSensitive\":false}]"
		        : ""};
		expand(&b, rest_template, keys, vals);
	}
	sb_add(&b, "]");
	if (b.oom)
		goto fail;
	free(upn.p);
	free(ext.p);
	free(exti.p);
	return b.p;
fail:
	free(b.p);
	free(upn.p);
	free(ext.p);
	free(exti.p);
	return NULL;
}
