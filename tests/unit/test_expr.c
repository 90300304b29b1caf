/* Unit tests for the expression language: literals, operators and their left-to-right order,
 * NULL and multi-valued semantics, program flow, parse errors with their columns, bounds, the
 * value API, and the out-of-box rule expressions of Entra Connect evaluated on sample objects.
 * Per-function tables are in test_expr_func.c. */
#include "test_expr_harness.h"

static const struct tcase literal_cases[] = {
    {"42", "n:42"},
    {"&HFF", "n:255"},
    {"&hff", "n:255"},
    {"&H21C07000", "n:566259712"},
    {"&HFFFFFFFFFFFFFFFF", "n:-1"},
    {"9223372036854775807", "n:9223372036854775807"},
    {"-42", "n:-42"},
    {"- -4", "n:4"},
    {"-(2 + 3)", "n:-5"},
    {"True", "b:True"},
    {"False", "b:False"},
    {"NULL", "null"},
    {"Len(CRLF)", "n:2"},
    {"IgnoreThisFlow", "IgnoreThisFlow"},
    {"AuthoritativeNull", "AuthoritativeNull"},
    {"\"Contoso\"", "s:Contoso"},
    {"\"\"", "s:"},
    {"\"say \"\"hi\"\"\"", "s:say \"hi\""},
    {"\"a\\\\b\"", "s:a\\b"},
    {"\"C:\\temp\"", "s:C:\\temp"},
    {"\"\\r\\n\"", "s:\\r\\n"},
    {"\"R\xc3\xa4ksm\xc3\xb6rg\xc3\xa5s\"", "s:R\xc3\xa4ksm\xc3\xb6rg\xc3\xa5s"},
    {"  \n\t 7 \r\n", "n:7"},
    {"UTF8", "s:UTF8"},
    {"vbTextCompare", "s:vbTextCompare"},
    {"[cn]", "s:John Doe"},
    {"[missing]", "null"},
    {"[ms-DS-ConsistencyGuid]", "null"},
    {"[uacNumber]", "n:514"},
    {"[isEnabled]", "b:True"},
    {"[manager]", "r:CN=Jane Boss,OU=Users,DC=contoso,DC=com"},
    {"[objectGUID]", "x:4AQlP4lP0xGaDAMF6CwzAQ=="},
    {"[created]", "d:2012-01-01 23:00:00"},
    {"[single]", "mv[s:only]"},
    {"%Domain.FQDN%", "s:contoso.com"},
    {"%Domain.Netbios%", "s:CONTOSO"},
    {"%Forest.LDAP%", "s:DC=contoso,DC=com"},
    {"%Connector.ID%", "s:5e2b0ba4-0a2b-4e1c-9d1f-1b8c2f3a4d5e"},
    {"%ADS_UF_ACCOUNTDISABLE%", "n:2"},
};

/* All non-logical operators have one priority and go left to right (R10). */
static const struct tcase operator_cases[] = {
    {"1 + 2 * 3", "n:9"},
    {"2 * (5 + 3)", "n:16"},
    {"2 * 5 + 3", "n:13"},
    {"3 - 2 * 5", "n:5"},
    {"10 - 2 - 3", "n:5"},
    {"-5 + 2", "n:-3"},
    {"1 - -2", "n:3"},
    {"1 -2", "n:-1"},
    {"1 + \"2\"", "n:3"},
    {"\"a\" + \"b\"", "s:ab"},
    {"\"a\" & \"b\" & 1", "s:ab1"},
    {"\"x\" & True", "s:xTrue"},
    {"1 & 2 + 3", "n:15"},
    {"[sAMAccountName]&\"@\"&%Domain.FQDN%", "s:jdoe@contoso.com"},
    {"1 < 2", "b:True"},
    {"2 <= 2", "b:True"},
    {"3 > 2", "b:True"},
    {"2 >= 3", "b:False"},
    {"1 <> 1", "b:False"},
    {"1 = 1", "b:True"},
    {"1 < 2 = True", "b:True"},
    {"1 + 2 = 3", "b:True"},
    {"\"a\" = \"A\"", "b:False"},
    {"\"a\" <> \"A\"", "b:True"},
    {"\"B\" < \"a\"", "b:True"},
    {"\"abc\" < \"abd\"", "b:True"},
    {"1 = \"1\"", "b:True"},
    {"\"10\" > 9", "b:True"},
    {"[userAccountControl] = 512", "b:True"},
    {"[flagTrue] = True", "b:True"},
    {"[isEnabled] = \"true\"", "b:True"},
    {"\"abc\" = 1", "b:False"},
    {"\"abc\" <> 1", "b:True"},
    {"[manager] = \"cn=jane boss,ou=users,dc=contoso,dc=com\"", "b:True"},
    {"[objectGUID] = [objectGUID]", "b:True"},
    {"[objectGUID] = [shortBin]", "b:False"},
    {"[objectGUID] = \"x\"", "b:False"},
    {"CDate(\"2012-01-01\") < Now()", "b:True"},
    {"[created] = \"2012-01-01 23:00\"", "b:True"},
    {"True && False", "b:False"},
    {"True || False", "b:True"},
    {"False || False || True", "b:True"},
    {"True || False && False", "b:False"},
    {"1 && \"true\"", "b:True"},
    {"1 = 1 && 2 = 2", "b:True"},
    {"1 = 2 || \"a\" & \"b\" = \"ab\"", "b:True"},
    {"(1 = 1) && (2 = 3)", "b:False"},
    {"9223372036854775807 + 1", "error:value:column 21: operator '+': numeric overflow"},
    {"-9223372036854775807 - 2", "error:value:column 22: operator '-': numeric overflow"},
    {"3037000500 * 3037000500", "error:value:column 12: operator '*': numeric overflow"},
    {"\"a\" + 1", "error:type:column 5: operator '+' needs numbers, got string \"a\""},
    {"\"abc\" < 1",
     "error:type:column 7: operator '<' cannot compare string \"abc\" with number 1"},
    {"[objectGUID] & \"x\"",
     "error:type:column 14: operator '&' cannot concatenate binary (16 bytes)"},
    {"-\"x\"", "error:type:column 1: unary '-' needs a number, got string \"x\""},
    {"-\"7\"", "n:-7"},
    {"\"yes\" && True", "error:type:column 7: the left side of a logical operator must be a "
                        "boolean, got string \"yes\""},
};

/* NULL: an absent attribute. Comparisons give booleans; & treats NULL as "" (VBA). */
static const struct tcase null_cases[] = {
    {"[missing] = NULL", "b:True"},    {"NULL = NULL", "b:True"},
    {"[missing] = 1", "b:False"},      {"[missing] <> 1", "b:True"},
    {"[missing] < 1", "b:False"},      {"[missing] >= 1", "b:False"},
    {"[missing] & \"x\"", "s:x"},      {"\"x\" & [missing]", "s:x"},
    {"[missing] & [missing]", "null"}, {"[missing] + 1", "null"},
    {"[missing] * 2", "null"},         {"-[missing]", "null"},
    {"[missing] && True", "b:False"},  {"[missing] || True", "b:True"},
    {"Trim([missing])", "null"},       {"IIF(NULL, 1, 2)", "n:2"},
    {"IIF([missing], 1, 2)", "n:2"},   {"Count([missing])", "n:0"},
};

/* R10: a function or operator applied to a multi-valued value works on every value. */
static const struct tcase multi_cases[] = {
    {"Trim([spaced])", "mv[s:a|s:b]"},
    {"LCase([proxyAddresses])",
     "mv[s:smtp:john.doe@contoso.com|s:smtp:jd@contoso.com|s:sip:jd@contoso.com]"},
    {"Word([proxyAddresses],1,\"@\") & \"@fabrikam.com\"",
     "mv[s:SMTP:john.doe@fabrikam.com|s:smtp:jd@fabrikam.com|s:SIP:jd@fabrikam.com]"},
    {"IIF(InStr([proxyAddresses],\"SIP:\")=1,NULL,[proxyAddresses])",
     "mv[s:SMTP:john.doe@contoso.com|s:smtp:jd@contoso.com]"},
    {"IIF(InStr([proxyAddresses],\"smtp:\", 1, vbTextCompare)=1,\"mail\",\"other\")",
     "mv[s:mail|s:mail|s:other]"},
    {"[nums] * 2", "mv[n:2|n:4|n:6]"},
    {"10 - [nums]", "mv[n:9|n:8|n:7]"},
    {"[nums] + [nums]", "mv[n:2|n:4|n:6]"},
    {"-[nums]", "mv[n:-1|n:-2|n:-3]"},
    {"[nums] > 1", "mv[b:False|b:True|b:True]"},
    {"[nums] = 2 || [nums] = 3", "mv[b:False|b:True|b:True]"},
    {"Left([otherPhone], 3)", "mv[s:555|s:555]"},
    {"Replace([otherPhone],\"-\",\"\")", "mv[s:5551234|s:5559876]"},
    {"Split([csv], \",\")", "mv[s:a|s:b|s:|s:c]"},
    {"Split([otherPhone], \"-\")", "mv[s:555|s:1234|s:555|s:9876]"},
    {"DNComponent([memberOf], 1)", "mv[s:Sales|s:All]"},
    {"CStr([nums])", "mv[s:1|s:2|s:3]"},
    {"Count([proxyAddresses])", "n:3"},
    {"Count([single])", "n:1"},
    {"Count([cn])", "n:1"},
    {"IsPresent([proxyAddresses])", "b:True"},
    {"Join([proxyAddresses], \",\")",
     "s:SMTP:john.doe@contoso.com,smtp:jd@contoso.com,SIP:jd@contoso.com"},
    {"ImportedValue(\"proxyAddresses\")", "mv[s:SMTP:john.doe@contoso.com]"},
    {"RemoveDuplicates(Trim(ImportedValue(\"proxyAddresses\")))",
     "mv[s:SMTP:john.doe@contoso.com]"},
    {"ImportedValue(\"mail\")", "null"},
    {"ValueCount(\"proxyAddresses\")", "n:3"},
    {"ValueCount(\"cn\")", "n:1"},
    {"ValueCount(\"member\")", "n:0"},
    {"[nums] + [otherPhone]",
     "error:value:column 8: operator '+' pairs multi-valued values of different sizes (3 and 2)"},
    {"Replace([nums], [otherPhone], \"\")",
     "error:value:column 1: Replace: multi-valued arguments have different sizes (3 and 2)"},
    {"IIF([nums] > 1, \"big\", [otherPhone])",
     "error:value:column 1: IIF: the condition has 3 values but a branch has 2"},
    {"Item([proxyAddresses], 2)", "s:smtp:jd@contoso.com"},
};

static const struct tcase flow_cases[] = {
    {"IIF(IsPresent([cn]), [cn], Error(\"cn missing\"))", "s:John Doe"},
    {"IIF(IsPresent([missing]), [missing], Error(\"missing is required\"))",
     "error:user:missing is required"},
    {"IIF(\"abc\", 1, 2)",
     "error:type:column 5: the condition of IIF must be a boolean, got string \"abc\""},
    {"IIF([nums] > 0, \"big\", Error(\"x\"))", "mv[s:big|s:big|s:big]"},
    {"IIF([nums] > 1, \"big\", Error(\"x\"))", "error:user:x"},
    {"IIF([nums] > 1, [nums], NULL)", "mv[n:2|n:3]"},
    {"IIF([nums] > 5, [nums], NULL)", "null"},
    {"IIF(True, IgnoreThisFlow, 1)", "IgnoreThisFlow"},
    {"IIF([cn] = \"x\", 1, AuthoritativeNull)", "AuthoritativeNull"},
    {"Switch([cn] = \"London\", \"English\", [cn] = \"John Doe\", \"Person\", True, "
     "Error(\"Unknown city\"))",
     "s:Person"},
    {"Switch([cn] = \"London\", \"English\", True, Error(\"Unknown city\"))",
     "error:user:Unknown city"},
    {"Switch(False, 1, False, 2)", "null"},
    {"Switch(True, NULL, True, 2)", "null"},
    {"Switch(False, Error(\"not chosen\"), True, 2)", "n:2"},
    {"Switch(True, 1, [notANumber] < 1, 2)",
     "error:type:column 30: operator '<' cannot compare string \"abc\" with number 1"},
    {"Switch(False, 1, True, IgnoreThisFlow)", "IgnoreThisFlow"},
    {"Switch(IsPresent([directManager]),[directManager], IsPresent([manager]),[manager])",
     "r:CN=Jane Boss,OU=Users,DC=contoso,DC=com"},
    {"Select($item,[otherPhone],Replace($item,\"-\",\"\"))", "mv[s:5551234|s:5559876]"},
    {"Select($x, [nums], IIF($x = 2, NULL, $x))", "mv[n:1|n:3]"},
    {"Select($a,[nums],Select($b,[nums],$a*$b))", "mv[n:1|n:2|n:3|n:2|n:4|n:6|n:3|n:6|n:9]"},
    {"Select($x, [missing], $x)", "null"},
    {"Select($x, [cn], UCase($x))", "mv[s:JOHN DOE]"},
    {"Select($x, [nums], IgnoreThisFlow)", "error:type:column 20: IgnoreThisFlow cannot be used in "
                                           "Select; it can only be the result of a flow"},
    {"Where($p,[proxyAddresses],Left($p,5)=\"smtp:\")", "mv[s:smtp:jd@contoso.com]"},
    {"Where($p,[proxyAddresses],False)", "null"},
    {"Where($p,[proxyAddresses],$p)", "error:type:column 27: the condition of Where must be a "
                                      "boolean, got string \"SMTP:john.doe@contoso.com\""},
    {"With($n, Count([proxyAddresses]), IIF($n > 2, \"many\", \"few\"))", "s:many"},
    {"With($u,Where($p,[proxyAddresses],Left($p,4)=\"SIP:\"),IIF(Count($u)>0,$u,NULL))",
     "mv[s:SIP:jd@contoso.com]"},
    {"With($v, 1, With($v, 2, $v))", "n:2"},
    {"With($v, 1, IgnoreThisFlow)", "IgnoreThisFlow"},
    {"Contains([mail], \"x\") > 0 && InStr(Item([proxyAddresses], "
     "Contains([proxyAddresses], \"nothere\")), \"@\") > 0",
     "b:False"},
    {"InStr(Item([proxyAddresses], 0), \"@\")",
     "error:value:column 7: Item: index 0 is out of range (3 values)"},
    {"Error(\"AccountName is not present\")", "error:user:AccountName is not present"},
    {"Error(\"col \" & 1)", "error:user:col 1"},
    {"Error(NULL)", "error:user:Error"},
    {"IgnoreThisFlow & \"x\"", "error:type:column 16: IgnoreThisFlow cannot be used with operator "
                               "'&'; it can only be the result of a flow"},
    {"Trim(AuthoritativeNull)", "error:type:column 6: AuthoritativeNull cannot be used as an "
                                "argument of Trim; it can only be the result of a flow"},
    {"[failing]", "error:lookup:column 1: Failed to read attribute 'failing': Input/output error"},
    {"Trim([badValue])", "error:lookup:column 6: attribute 'badValue' has an invalid value"},
    {"%Nope%", "error:lookup:column 1: parameter %Nope% is not defined"},
};

/* Parse errors: the message and the 1-based column (in characters). */
static const struct tcase parse_cases[] = {
    {"Lcase([cn])", "parse:column 1: unknown function 'Lcase' (did you mean 'LCase'?)"},
    {"Trim([cn]) & lcase([sn])",
     "parse:column 14: unknown function 'lcase' (did you mean 'LCase'?)"},
    {"Lft([cn], 1)", "parse:column 1: unknown function 'Lft' (did you mean 'Left'?)"},
    {"IsPresnt([cn])", "parse:column 1: unknown function 'IsPresnt' (did you mean 'IsPresent'?)"},
    {"Foo(1)", "parse:column 1: unknown function 'Foo'"},
    {"Coalesce([a], [b])", "parse:column 1: unknown function 'Coalesce'"},
    {"(1 + 2", "parse:column 7: expected ')'"},
    {"IIF(True, (1, 2)", "parse:column 13: expected ')'"},
    {"Left([cn], 1, 2)", "parse:column 1: function 'Left' takes 2 arguments, got 3"},
    {"Trim()", "parse:column 1: function 'Trim' takes 1 argument, got 0"},
    {"Now(1)", "parse:column 1: function 'Now' takes 0 arguments, got 1"},
    {"Mid([cn])", "parse:column 1: function 'Mid' takes 2 to 3 arguments, got 1"},
    {"1 & IIF(True, 1)", "parse:column 5: function 'IIF' takes 3 arguments, got 2"},
    {"Switch(True)",
     "parse:column 1: function 'Switch' takes condition, value pairs, got 1 argument"},
    {"Switch(True, 1, False)",
     "parse:column 1: function 'Switch' takes condition, value pairs, got 3 arguments"},
    {"CertThumbprint([userCertificate])",
     "parse:column 1: function 'CertThumbprint' is not supported yet"},
    {"IsCert([userCertificate])", "parse:column 1: function 'IsCert' is not supported yet"},
    {"1 & CertNotAfter($c)", "parse:column 5: function 'CertNotAfter' is not supported yet"},
    {"\"abc", "parse:column 1: unterminated string"},
    {"Trim(\"abc)", "parse:column 6: unterminated string"},
    {"[cn", "parse:column 4: expected ']'"},
    {"[display Name]", "parse:column 9: invalid character ' ' in attribute name"},
    {"[]", "parse:column 1: empty attribute name"},
    {"%Domain.FQDN", "parse:column 13: expected '%'"},
    {"%%", "parse:column 1: empty parameter name"},
    {"1.5", "parse:column 2: fractional numbers are not supported (numbers are integers)"},
    {"99999999999999999999",
     "parse:column 1: number too large (the maximum is 9223372036854775807)"},
    {"&H", "parse:column 3: expected hexadecimal digits after '&H'"},
    {"&H12345678901234567", "parse:column 1: hexadecimal number longer than 16 digits"},
    {"1 +", "parse:column 4: unexpected end of expression"},
    {"", "parse:column 1: empty expression"},
    {"   ", "parse:column 4: empty expression"},
    {"1 2", "parse:column 3: expected an operator, got '2'"},
    {"1 / 2", "parse:column 3: operator '/' is not supported"},
    {"1 == 2", "parse:column 4: expected a value, got '='"},
    {"Left([cn],)", "parse:column 11: expected a value, got ')'"},
    {"Left([cn] 1)", "parse:column 11: expected ',' or ')', got '1'"},
    {"Left([cn], 1", "parse:column 13: expected ',' or ')', got end of expression"},
    {"true", "parse:column 1: unknown name 'true' (did you mean 'True'?)"},
    {"null", "parse:column 1: unknown name 'null' (did you mean 'NULL'?)"},
    {"ignorethisflow",
     "parse:column 1: unknown name 'ignorethisflow' (did you mean 'IgnoreThisFlow'?)"},
    {"foo", "parse:column 1: unknown name 'foo' (attributes are written [foo])"},
    {"Now", "parse:column 4: expected '(' after function 'Now'"},
    {"$item",
     "parse:column 1: unknown variable '$item' (variables are declared by Select, Where and With)"},
    {"Select(item, [x], 1)", "parse:column 8: expected a $variable, got 'i'"},
    {"Select($i, $i, 1)",
     "parse:column 12: unknown variable '$i' (variables are declared by Select, Where and With)"},
    {"With($v, 1, 2) & $v",
     "parse:column 18: unknown variable '$v' (variables are declared by Select, Where and With)"},
    {"Select($, [x], 1)", "parse:column 8: expected a variable name after '$'"},
    {"ImportedValue([proxyAddresses])",
     "parse:column 1: function 'ImportedValue' takes an attribute name in quotes, e.g. "
     "ImportedValue(\"proxyAddresses\")"},
    {"ImportedValue(\"\")",
     "parse:column 1: function 'ImportedValue' takes an attribute name in quotes, e.g. "
     "ImportedValue(\"proxyAddresses\")"},
    {")", "parse:column 1: expected a value, got ')'"},
    {"1)", "parse:column 2: unexpected ')' (no matching '(')"},
    {"\"\xc3\xa9\" 2", "parse:column 5: expected an operator, got '2'"},
    {"\"a\xff\"", "parse:column 3: invalid UTF-8"},
    {"Trim(\"x\")  ]", "parse:column 12: expected an operator, got ']'"},
    {"&", "parse:column 1: expected a value, got '&'"},
    {"#", "parse:column 1: expected a value, got '#'"},
    {"1 +\n  Lcase([cn])", "parse:column 7: unknown function 'Lcase' (did you mean 'LCase'?)"},
};

/* ---- Entra Connect's out-of-box expressions (entra.md §1.4, §3.3; R11, R15) ------------------ */

#define UPN_DEFAULT                                                                                \
	"IIF(IsPresent([userPrincipalName]),[userPrincipalName], "                                 \
	"IIF(IsPresent([sAMAccountName]),([sAMAccountName]&\"@\"&%Domain.FQDN%),"                  \
	"Error(\"AccountName is not present\")))"
#define DISPLAY_NAME_DEFAULT    "IIF(IsNullOrEmpty([displayName]),[cn],[displayName])"
#define ACCOUNT_ENABLED_DEFAULT "IIF(BitAnd([userAccountControl],2)=0,True,False)"
#define SOURCE_ANCHOR_2016                                                                         \
	"IIF(IsPresent([msExchRecipientTypeDetails]),IIF([msExchRecipientTypeDetails]=2,NULL,"     \
	"IIF(IsString([objectGUID]),CStr([objectGUID]),ConvertToBase64([objectGUID]))),"           \
	"IIF(IsString([objectGUID]),CStr([objectGUID]),ConvertToBase64([objectGUID])))"
#define SOURCE_ANCHOR_CONSISTENCY                                                                  \
	"IIF(IsPresent([ms-DS-ConsistencyGuid]),ConvertToBase64([ms-DS-ConsistencyGuid]),"         \
	"ConvertToBase64([objectGUID]))"
/* "In from AD - User Join", cloudFiltered, verbatim from the 2016 sample (R15) */
#define USER_CLOUD_FILTERED                                                                        \
	"IIF(IsPresent([isCriticalSystemObject]) || IsPresent([sAMAccountName]) = False || "       \
	"[sAMAccountName] = \"SUPPORT_388945a0\" || Left([mailNickname], 14) = "                   \
	"\"SystemMailbox{\" "                                                                      \
	"|| Left([sAMAccountName], 4) = \"AAD_\" || (Left([mailNickname], 4) = \"CAS_\" && "       \
	"(InStr([mailNickname], \"}\") > 0)) || (Left([sAMAccountName], 4) = \"CAS_\" && "         \
	"(InStr([sAMAccountName], \"}\") > 0)) || Left([sAMAccountName], 5) = \"MSOL_\" || "       \
	"CBool(IIF(IsPresent([msExchRecipientTypeDetails]),"                                       \
	"BitAnd([msExchRecipientTypeDetails],&H21C07000) > 0,NULL)) || "                           \
	"CBool(InStr(DNComponent(CRef([dn]),1),\"\\\\0ACNF:\")>0), True, NULL)"
/* "In from AD - Contact Join", the mail-enabled test (R15) */
#define CONTACT_MAIL_ENABLED                                                                       \
	"IIF(( (IsPresent([proxyAddresses]) = True) && (Contains([proxyAddresses], \"SMTP:\") > "  \
	"0) "                                                                                      \
	"&& (InStr(Item([proxyAddresses], Contains([proxyAddresses], \"SMTP:\")), \"@\") > 0)) "   \
	"|| "                                                                                      \
	" (IsPresent([mail]) = True && (InStr([mail], \"@\") > 0)), True, False)"
#define SOURCE_ANCHOR_LOCK                                                                         \
	"IIF(IsPresent([cloudSourceAnchor]),IIF([cloudSourceAnchor] = [sourceAnchor],"             \
	"[sourceAnchor],Error(\"SourceAnchor attribute has changed.\")),[sourceAnchor])"
#define MEMBER_LIMIT                                                                               \
	"IIF(([memberCount]> 50000),Error(\"Maximum Group member count "                           \
	"exceeded\"),IgnoreThisFlow)"
#define PWD_LAST_SET                                                                               \
	"IIF(IsPresent([pwdLastSet]),CStr(FormatDateTime(DateFromNum([pwdLastSet]),"               \
	"\"yyyyMMddHHmmss.0Z\")),NULL)"

static const struct tattr user_no_upn[] = {
    {"cn", 's', {"Jane Smith"}},
    {"displayName", 's', {""}},
    {"sAMAccountName", 's', {"jsmith"}},
    {"userAccountControl", 's', {"514"}},
    {"objectGUID", 'x', {"e004253f894fd3119a0c0305e82c3301"}},
    {"ms-DS-ConsistencyGuid", 'x', {"00112233445566778899aabbccddeeff"}},
    {"msExchRecipientTypeDetails", 's', {"1"}},
    {"dn", 'r', {"CN=Jane Smith,OU=Users,DC=contoso,DC=com"}},
    {NULL, 0, {NULL}},
};

static const struct tattr user_nothing[] = {
    {"cn", 's', {"Orphan"}},
    {"userAccountControl", 'n', {"66048"}}, /* 0x10200: enabled, password never expires */
    {"objectGUID", 's', {"already-a-string"}},
    {"msExchRecipientTypeDetails", 'n', {"2"}}, /* linked mailbox */
    {"dn", 'r', {"CN=Orphan,DC=contoso,DC=com"}},
    {NULL, 0, {NULL}},
};

static const struct tattr user_support[] = {
    {"sAMAccountName", 's', {"SUPPORT_388945a0"}},
    {"dn", 'r', {"CN=SUPPORT_388945a0,CN=Users,DC=contoso,DC=com"}},
    {NULL, 0, {NULL}},
};

static const struct tattr user_critical[] = {
    {"sAMAccountName", 's', {"Administrator"}},
    {"isCriticalSystemObject", 's', {"TRUE"}},
    {"dn", 'r', {"CN=Administrator,CN=Users,DC=contoso,DC=com"}},
    {NULL, 0, {NULL}},
};

static const struct tattr user_sync_account[] = {
    {"sAMAccountName", 's', {"MSOL_0123456789ab"}},
    {"dn",
     'r',
     {"CN=On-Premises Directory Synchronization Service Account,CN=Users,DC=contoso,DC=com"}},
    {NULL, 0, {NULL}},
};

static const struct tattr user_cas[] = {
    {"sAMAccountName", 's', {"cas1"}},
    {"mailNickname", 's', {"CAS_{8a6f0d2e}"}},
    {"dn", 'r', {"CN=cas1,CN=Users,DC=contoso,DC=com"}},
    {NULL, 0, {NULL}},
};

static const struct tattr user_discovery[] = {
    {"sAMAccountName", 's', {"SM_1234"}},
    {"msExchRecipientTypeDetails", 's', {"536870912"}}, /* DiscoveryMailbox */
    {"dn", 'r', {"CN=DiscoverySearchMailbox,CN=Users,DC=contoso,DC=com"}},
    {NULL, 0, {NULL}},
};

static const struct tattr user_conflict[] = {
    {"sAMAccountName", 's', {"$DUPLICATE-1f4"}},
    {"dn", 'r', {"CN=John\\0ACNF:5e2b0ba4-0a2b-4e1c-9d1f-1b8c2f3a4d5e,OU=US,DC=contoso,DC=com"}},
    {NULL, 0, {NULL}},
};

static const struct tattr contact_smtp[] = {
    {"proxyAddresses", 'm', {"x500:/o=foo", "SMTP:ext@fabrikam.com"}},
    {NULL, 0, {NULL}},
};

static const struct tattr contact_mail_only[] = {
    {"proxyAddresses", 'm', {"smtp:secondary@fabrikam.com"}},
    {"mail", 's', {"someone@fabrikam.com"}},
    {NULL, 0, {NULL}},
};

static const struct tattr contact_nothing[] = {
    {"proxyAddresses", 'm', {"X400:c=US;a= ;p=Contoso"}},
    {"mail", 's', {"no-at-sign"}},
    {NULL, 0, {NULL}},
};

static const struct tattr anchor_same[] = {
    {"cloudSourceAnchor", 's', {"4AQlP4lP0xGaDAMF6CwzAQ=="}},
    {"sourceAnchor", 's', {"4AQlP4lP0xGaDAMF6CwzAQ=="}},
    {"memberCount", 'n', {"120"}},
    {"pwdLastSet", 's', {"130543784930000000"}},
    {NULL, 0, {NULL}},
};

static const struct tattr anchor_changed[] = {
    {"cloudSourceAnchor", 's', {"4AQlP4lP0xGaDAMF6CwzAQ=="}},
    {"sourceAnchor", 's', {"ABEiM0RVZneImaq7zN3u/w=="}},
    {"memberCount", 'n', {"250000"}},
    {NULL, 0, {NULL}},
};

static void test_default_rules(void)
{
	const struct tobject user = {default_object, NULL}, no_upn = {user_no_upn, NULL},
	                     nothing = {user_nothing, NULL}, support = {user_support, NULL},
	                     critical = {user_critical, NULL}, sync = {user_sync_account, NULL},
	                     cas = {user_cas, NULL}, discovery = {user_discovery, NULL},
	                     conflict = {user_conflict, NULL}, c1 = {contact_smtp, NULL},
	                     c2 = {contact_mail_only, NULL}, c3 = {contact_nothing, NULL},
	                     same = {anchor_same, NULL}, changed = {anchor_changed, NULL};

	/* userPrincipalName */
	CHECK_CASE(UPN_DEFAULT, "s:jdoe@contoso.com", &user);
	CHECK_CASE(UPN_DEFAULT, "s:jsmith@contoso.com", &no_upn);
	CHECK_CASE(UPN_DEFAULT, "error:user:AccountName is not present", &nothing);
	/* displayName falls back to cn when absent or empty */
	CHECK_CASE(DISPLAY_NAME_DEFAULT, "s:John Doe", &user);
	CHECK_CASE(DISPLAY_NAME_DEFAULT, "s:Jane Smith", &no_upn);
	CHECK_CASE(DISPLAY_NAME_DEFAULT, "s:Orphan", &nothing);
	/* accountEnabled from userAccountControl: 512 enabled, 514 disabled */
	CHECK_CASE(ACCOUNT_ENABLED_DEFAULT, "b:True", &user);
	CHECK_CASE(ACCOUNT_ENABLED_DEFAULT, "b:False", &no_upn);
	CHECK_CASE(ACCOUNT_ENABLED_DEFAULT, "b:True", &nothing);
	CHECK_CASE("IIF(BitAnd([uacNumber],2)=0,True,False)", "b:False", &user);
	/* sourceAnchor: base64 of the objectGUID bytes {3F2504E0-4F89-11D3-9A0C-0305E82C3301} */
	CHECK_CASE("ConvertToBase64([objectGUID])", "s:4AQlP4lP0xGaDAMF6CwzAQ==", &user);
	CHECK_CASE(SOURCE_ANCHOR_2016, "s:4AQlP4lP0xGaDAMF6CwzAQ==", &user);
	CHECK_CASE(SOURCE_ANCHOR_2016, "s:4AQlP4lP0xGaDAMF6CwzAQ==", &no_upn);
	CHECK_CASE(SOURCE_ANCHOR_2016, "null", &nothing); /* linked mailbox: no contribution */
	CHECK_CASE(SOURCE_ANCHOR_CONSISTENCY, "s:4AQlP4lP0xGaDAMF6CwzAQ==", &user);
	CHECK_CASE(SOURCE_ANCHOR_CONSISTENCY, "s:ABEiM0RVZneImaq7zN3u/w==", &no_upn);
	CHECK_CASE("StringFromGuid([objectGUID])", "s:{3F2504E0-4F89-11D3-9A0C-0305E82C3301}",
	           &user);
	/* cloudFiltered: True filters the object out, NULL lets other rules decide */
	CHECK_CASE(USER_CLOUD_FILTERED, "null", &user);
	CHECK_CASE(USER_CLOUD_FILTERED, "null", &no_upn);
	CHECK_CASE(USER_CLOUD_FILTERED, "b:True", &nothing); /* no sAMAccountName */
	CHECK_CASE(USER_CLOUD_FILTERED, "b:True", &support);
	CHECK_CASE(USER_CLOUD_FILTERED, "b:True", &critical);
	CHECK_CASE(USER_CLOUD_FILTERED, "b:True", &sync);
	CHECK_CASE(USER_CLOUD_FILTERED, "b:True", &cas);
	CHECK_CASE(USER_CLOUD_FILTERED, "b:True", &discovery);
	CHECK_CASE(USER_CLOUD_FILTERED, "b:True", &conflict);
	CHECK_CASE("IIF(Left(LCase([department]),3)=\"hrd\",True,NULL)", "b:True", &user);
	CHECK_CASE("IIF(Left(LCase([department]),3)=\"hrd\",True,NULL)", "null", &no_upn);
	/* contacts must be mail-enabled */
	CHECK_CASE(CONTACT_MAIL_ENABLED, "b:True", &c1);
	CHECK_CASE(CONTACT_MAIL_ENABLED, "b:True", &c2);
	CHECK_CASE(CONTACT_MAIL_ENABLED, "b:False", &c3);
	CHECK_CASE(CONTACT_MAIL_ENABLED, "b:True", &user);
	/* outbound sourceAnchor lock, member limit, pwdLastSet */
	CHECK_CASE(SOURCE_ANCHOR_LOCK, "s:4AQlP4lP0xGaDAMF6CwzAQ==", &same);
	CHECK_CASE(SOURCE_ANCHOR_LOCK, "error:user:SourceAnchor attribute has changed.", &changed);
	CHECK_CASE(SOURCE_ANCHOR_LOCK, "null", &user);
	CHECK_CASE(MEMBER_LIMIT, "IgnoreThisFlow", &same);
	CHECK_CASE(MEMBER_LIMIT, "error:user:Maximum Group member count exceeded", &changed);
	CHECK_CASE(PWD_LAST_SET, "s:20140905081453.0Z", &same);
	CHECK_CASE(PWD_LAST_SET, "null", &user);
	CHECK_CASE("\"CN={\" & ConvertToUTF8Hex([sourceAnchor]) & \"}\"",
	           "s:CN={3441516C50346C503078476144414D463643777A41513D3D}", &same);
	CHECK_CASE("CBool(BitAnd([groupType],-2147483648))", "null", &user);
	CHECK_CASE("IIF(IsNullOrEmpty([description]),NULL,Left(Trim(Item([description],1)),448))",
	           "null", &user);
	CHECK_CASE(
	    "IIF(IsNullOrEmpty([proxyAddresses]),NULL,Left(Trim(Item([proxyAddresses],1)),4))",
	    "s:SMTP", &user);
	CHECK_CASE("StringFromSid([objectSid])", "s:S-1-5-21-1004336348-1177238915-682003330-512",
	           &user);
}

/* ---- bounds: never crash, always a clear error ------------------------------------------------
 */

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1), *p = s;

	memcpy(p, head, hl), p += hl;
	for (size_t i = 0; i < n; i++)
		memcpy(p, unit, ul), p += ul;
	memcpy(p, tail, tl), p += tl;
	*p = '\0';
	return s;
}

static char *nest(const char *open, size_t n, const char *middle, const char *close)
{
	char *a = repeat("", open, n, middle), *b = repeat(a, close, n, "");

	free(a);
	return b;
}

static void check_prefix(const char *text, const char *prefix, int line)
{
	char buf[2048];
	const char *got = eval_render(text, &default_tobject, buf, sizeof(buf));

	if (strncmp(got, prefix, strlen(prefix)) == 0) {
		check_passed++;
	} else {
		check_failed++;
		fprintf(stderr, "%s:%d: want prefix %s\n    got %s\n", __FILE__, line, prefix, got);
	}
}

static void test_bounds(void)
{
	struct expr_error err = {0};
	struct expr *e = NULL;
	char *s;
	int r;

	/* 64 levels of parentheses are fine, 65 are not */
	s = nest("(", 64, "1", ")");
	CHECK_CASE(s, "n:1", &default_tobject);
	free(s);
	s = nest("(", 65, "1", ")");
	CHECK_CASE(s, "parse:column 65: expression nested deeper than 64 levels", &default_tobject);
	free(s);
	s = nest("Trim(", 64, "\"x\"", ")");
	CHECK_CASE(s, "s:x", &default_tobject);
	free(s);
	s = nest("Trim(", 1000, "\"x\"", ")");
	check_prefix(s, "parse:column 321: expression nested deeper than 64 levels", __LINE__);
	free(s);
	s = repeat("", "-", 100, "1");
	check_prefix(s, "parse:column 65: expression nested deeper than 64 levels", __LINE__);
	free(s);
	s = nest("IIF(True,", 30000, "1", ",2)");
	check_prefix(s, "parse:", __LINE__);
	free(s);
	s = nest("[", 20000, "x", "]");
	check_prefix(s, "parse:column 2: invalid character '[' in attribute name", __LINE__);
	free(s);

	/* operator runs are loops, not recursion: ten thousand terms */
	s = repeat("1", "+1", 9999, "");
	CHECK_CASE(s, "n:10000", &default_tobject);
	free(s);
	s = repeat("True", " && True", 5000, "");
	CHECK_CASE(s, "b:True", &default_tobject);
	free(s);
	s = repeat("\"\"", " & \"ab\"", 6000, " = \"\"");
	CHECK_CASE(s, "b:False", &default_tobject);
	free(s);

	/* text length */
	s = repeat("\"", "a", EXPR_TEXT_MAX - 2, "\"");
	r = expr_parse(s, &e, &err);
	CHECK_INT_EQ(r, 0);
	e = expr_free(e);
	free(s);
	s = repeat("\"", "a", EXPR_TEXT_MAX - 1, "\"");
	memset(&err, 0, sizeof(err));
	r = expr_parse(s, &e, &err);
	CHECK_INT_EQ(r, -E2BIG);
	CHECK(e == NULL);
	CHECK_INT_EQ(err.kind, EXPR_ERROR_LIMIT);
	CHECK_INT_EQ(err.column, 0);
	CHECK_STR_EQ(err.message, "expression longer than 65536 bytes");
	free(s);
	s = repeat("Trim(", "x", 200000, ")");
	r = expr_parse(s, &e, &err);
	CHECK_INT_EQ(r, -E2BIG);
	free(s);
	s = repeat("F(", "1,", 70, "1)");
	check_prefix(s, "parse:column 1: unknown function 'F'", __LINE__);
	free(s);
	s = repeat("Switch(", "True,1,", 40, "True,1)");
	check_prefix(s, "parse:column 232: more than 64 arguments", __LINE__);
	free(s);
	s = repeat("[", "a", EXPR_NAME_MAX + 1, "]");
	check_prefix(s, "parse:column 1: attribute name longer than 256 bytes", __LINE__);
	free(s);

	/* evaluation budgets */
	check_prefix("PadLeft(\"x\", 5000000, \"y\")",
	             "error:limit:column 1: PadLeft: length 5000000 is over 4194304", __LINE__);
	check_prefix("PadLeft(\"x\", 4194304, \"\xc3\xa9\")",
	             "error:limit:column 1: PadLeft: result longer than 4194304 bytes", __LINE__);
	check_prefix("Len(PadLeft(\"\", 4194304, \"x\"))", "n:4194304", __LINE__);
	check_prefix(
	    "Where($a, Split(PadLeft(\"\",2000,\",\"),\",\"), Len(PadLeft(\"\",200000,\"x\")) = 0)",
	    "error:limit:column 48: evaluation produced more than 268435456 bytes", __LINE__);
	check_prefix("Count(Select($a,Split(PadLeft(\"\",4000,\",\"),\",\"),"
	             "Select($b,Split(PadLeft(\"\",4000,\",\"),\",\"),NULL)))",
	             "error:limit:", __LINE__);
	check_prefix("Split(PadLeft(\"\",2000000,\",\"),\",\")",
	             "error:limit:column 1: Split: too many values", __LINE__);
}

/* ---- the C API ----------------------------------------------------------------------------------
 */

static int collect_attr(void *userdata, const char *name, bool imported)
{
	char *buf = userdata;
	size_t n = strlen(buf);

	snprintf(buf + n, 256 - n, "%s%s%s", n ? "," : "", imported ? "imported:" : "", name);
	return 0;
}

static int stop_attr(void *userdata, const char *name, bool imported)
{
	(void)userdata, (void)name, (void)imported;
	return -ECANCELED;
}

static void test_api(void)
{
	struct expr_value *v, *m, *c = NULL, *n;
	struct expr_error err = {0};
	struct expr_env env = test_env(&default_tobject);
	struct expr *e = NULL;
	char *s = NULL, buf[256] = "";
	bool supported;
	size_t count = 0, unsupported = 0;
	const char *prev = NULL, *name;
	int r;

	/* constructors, copy, compare, display */
	CHECK(expr_value_free(NULL) == NULL);
	CHECK(expr_free(NULL) == NULL);
	CHECK(expr_value_new_string(NULL) == NULL);
	m = expr_value_new_multi();
	CHECK_INT_EQ(expr_value_append(m, expr_value_new_string("b")), 0);
	CHECK_INT_EQ(expr_value_append(m, expr_value_new_null()), 0);
	CHECK_INT_EQ(expr_value_append(m, expr_value_new_number(7)), 0);
	n = expr_value_new_multi();
	expr_value_append(n, expr_value_new_boolean(true));
	expr_value_append(n, expr_value_new_datetime(129699324000000000LL));
	CHECK_INT_EQ(expr_value_append(m, n), 0); /* flattened */
	CHECK_INT_EQ(expr_value_append(m, expr_value_new_ignore_this_flow()), -EINVAL);
	CHECK_INT_EQ(expr_value_count(m), 4);
	CHECK_INT_EQ(expr_value_append(NULL, expr_value_new_number(1)), -EINVAL);
	CHECK_INT_EQ(expr_value_copy(m, &c), 0);
	CHECK(expr_value_equal(m, c));
	CHECK_INT_EQ(expr_value_to_string(c, &s), 0);
	CHECK_STR_EQ(s, "b; 7; True; 2012-01-01 23:00:00");
	free(s);
	CHECK(expr_value_item(c, 1)->number == 7);
	CHECK(expr_value_item(c, 4) == NULL);
	c = expr_value_free(c);
	m = expr_value_free(m);
	v = expr_value_new_binary("\x01\x02\x03", 3);
	CHECK_INT_EQ(expr_value_to_string(v, &s), 0);
	CHECK_STR_EQ(s, "AQID");
	free(s);
	m = expr_value_new_binary("\x01\x02", 2);
	CHECK(expr_value_compare(m, v) < 0);
	CHECK(expr_value_compare(v, m) > 0);
	CHECK(!expr_value_equal(v, m));
	m = expr_value_free(m);
	m = expr_value_new_string("x");
	CHECK(expr_value_compare(m, v) < 0); /* string sorts before binary: by type first */
	m = expr_value_free(m);
	v = expr_value_free(v);
	v = expr_value_new_authoritative_null();
	CHECK_INT_EQ(expr_value_count(v), 0);
	CHECK_INT_EQ(expr_value_to_string(v, &s), 0);
	CHECK_STR_EQ(s, "AuthoritativeNull");
	free(s);
	v = expr_value_free(v);
	v = expr_value_new_null();
	CHECK_INT_EQ(expr_value_to_string(v, &s), 0);
	CHECK_STR_EQ(s, "NULL");
	free(s);
	v = expr_value_free(v);
	CHECK_STR_EQ(expr_value_type_to_string(EXPR_VALUE_REFERENCE), "reference");
	CHECK(expr_value_type_to_string(EXPR_VALUE_TYPE_MAX) == NULL);
	CHECK_STR_EQ(expr_error_kind_to_string(EXPR_ERROR_USER), "user");
	CHECK(expr_error_kind_to_string(EXPR_ERROR_MAX) == NULL);

	/* errors carry kind, column and message; outputs are untouched on failure */
	r = expr_parse("Trim([cn]) & Lcase([sn])", &e, &err);
	CHECK_INT_EQ(r, -EINVAL);
	CHECK(e == NULL);
	CHECK_INT_EQ(err.kind, EXPR_ERROR_SYNTAX);
	CHECK_INT_EQ(err.column, 14);
	CHECK_INT_EQ(expr_parse(NULL, &e, &err), -EINVAL);
	CHECK_INT_EQ(expr_parse("1", NULL, NULL), -EINVAL);
	CHECK_INT_EQ(expr_parse("(", &e, NULL), -EINVAL); /* ret_err is optional */
	r = expr_parse("IIF(IsPresent([x]), [x], Error(\"x is required\"))", &e, &err);
	CHECK_INT_EQ(r, 0);
	v = NULL;
	r = expr_eval(e, &env, &v, &err);
	CHECK_INT_EQ(r, -EINVAL);
	CHECK(v == NULL);
	CHECK_INT_EQ(err.kind, EXPR_ERROR_USER);
	CHECK_INT_EQ(err.column, 26);
	CHECK_STR_EQ(err.message, "x is required");
	CHECK_INT_EQ(expr_eval(e, &env, NULL, &err), -EINVAL);
	CHECK_INT_EQ(expr_eval(NULL, &env, &v, &err), -EINVAL);
	e = expr_free(e);

	/* no env: attributes are absent, parameters undefined */
	r = expr_parse("IIF(IsNull([cn]), \"none\", [cn])", &e, &err);
	CHECK_INT_EQ(r, 0);
	CHECK_INT_EQ(expr_eval(e, NULL, &v, &err), 0);
	CHECK_STR_EQ(v->string.data, "none");
	v = expr_value_free(v);
	e = expr_free(e);
	r = expr_parse("%Domain.FQDN%", &e, &err);
	CHECK_INT_EQ(expr_eval(e, NULL, &v, &err), -EINVAL);
	CHECK_INT_EQ(err.kind, EXPR_ERROR_LOOKUP);
	e = expr_free(e);
	r = expr_parse("ImportedValue(\"proxyAddresses\")", &e, &err);
	CHECK_INT_EQ(expr_eval(e, NULL, &v, &err), 0);
	CHECK_INT_EQ(v->type, EXPR_VALUE_NULL);
	v = expr_value_free(v);
	e = expr_free(e);

	/* a callback failure's errno comes back */
	r = expr_parse("Trim([failing])", &e, &err);
	CHECK_INT_EQ(expr_eval(e, &env, &v, &err), -EIO);
	e = expr_free(e);

	/* the attributes an expression reads */
	r = expr_parse(
	    "IIF(IsPresent([a]), Select($x, [b-c], $x & [a]), "
	    "RemoveDuplicates(ImportedValue(\"proxyAddresses\"))) & ValueCount(\"member\")",
	    &e, &err);
	CHECK_INT_EQ(r, 0);
	CHECK_INT_EQ(expr_foreach_attribute(e, collect_attr, buf), 0);
	CHECK_STR_EQ(buf, "a,b-c,a,imported:proxyAddresses,member");
	CHECK_INT_EQ(expr_foreach_attribute(e, stop_attr, NULL), -ECANCELED);
	CHECK_INT_EQ(expr_foreach_attribute(NULL, stop_attr, NULL), -EINVAL);
	e = expr_free(e);

	/* the function list is sorted, complete, and the Cert* family is marked unsupported */
	for (size_t i = 0; (name = expr_function_name(i, &supported)); i++) {
		if (prev)
			CHECK(strcmp(prev, name) < 0);
		prev = name;
		count++;
		if (!supported) {
			unsupported++;
			CHECK(strncmp(name, "Cert", 4) == 0 || strcmp(name, "IsCert") == 0);
		}
	}
	CHECK_INT_EQ(unsupported, 22);
	CHECK_INT_EQ(count - unsupported, 65);
	CHECK(expr_function_name(count, NULL) == NULL);

	/* deterministic mode: equal inputs, equal outputs */
	{
		char b1[128], b2[128];
		eval_render("Guid() & \" \" & RandomNum(1, 1000000) & \" \" & Now()",
		            &default_tobject, b1, sizeof(b1));
		eval_render("Guid() & \" \" & RandomNum(1, 1000000) & \" \" & Now()",
		            &default_tobject, b2, sizeof(b2));
		CHECK_STR_EQ(b1, b2);
		CHECK(strstr(b1, "2024-05-17 12:34:56") != NULL);
	}
	/* real mode: Now() is now, Guid() differs between calls */
	{
		struct expr_env live = env;
		struct expr_value *g1, *g2, *now;
		live.flags = 0;
		expr_parse("Guid()", &e, &err);
		CHECK_INT_EQ(expr_eval(e, &live, &g1, &err), 0);
		CHECK_INT_EQ(expr_eval(e, &live, &g2, &err), 0);
		CHECK(strcmp(g1->string.data, g2->string.data) != 0);
		CHECK_INT_EQ(g1->string.len, 36);
		CHECK(g1->string.data[14] == '4');
		expr_value_free(g1);
		expr_value_free(g2);
		e = expr_free(e);
		expr_parse("Now()", &e, &err);
		CHECK_INT_EQ(expr_eval(e, &live, &now, &err), 0);
		CHECK(now->type == EXPR_VALUE_DATETIME && now->datetime > TEST_NOW);
		expr_value_free(now);
		e = expr_free(e);
	}
}

int main(void)
{
	RUN_CASES(literal_cases, &default_tobject);
	RUN_CASES(operator_cases, &default_tobject);
	RUN_CASES(null_cases, &default_tobject);
	RUN_CASES(multi_cases, &default_tobject);
	RUN_CASES(flow_cases, &default_tobject);
	RUN_CASES(parse_cases, &default_tobject);
	test_default_rules();
	test_bounds();
	test_api();
	return check_finish();
}
