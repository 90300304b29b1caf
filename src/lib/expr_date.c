/* Dates for the expression module: FILETIME ticks <-> civil UTC dates without the C library's
 * time zone state, CDate's string parser, FormatDateTime's .NET-style format and DateAdd. */
#include "expr_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define UNIX_EPOCH_FILETIME 116444736000000000LL
#define SECONDS_PER_DAY     86400LL

static const char *const month_names[12] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December",
};
static const char *const day_names[7] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *ret_y, int *ret_m, int *ret_d)
{
	int64_t era, doe, yoe, y, doy, mp, d, m;

	z += 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	*ret_y = (int)(y + (m <= 2));
	*ret_m = (int)m;
	*ret_d = (int)d;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

int datetime_from_civil(const struct civil *c, int64_t *ret)
{
	int64_t days, secs;

	if (c->year < 1 || c->year > 9999 || c->month < 1 || c->month > 12 || c->day < 1 ||
	    c->day > days_in_month(c->year, c->month) || c->hour < 0 || c->hour > 23 ||
	    c->minute < 0 || c->minute > 59 || c->second < 0 || c->second > 59 || c->ticks < 0 ||
	    c->ticks >= FILETIME_PER_SECOND)
		return -EINVAL;
	days = days_from_civil(c->year, c->month, c->day);
	secs = days * SECONDS_PER_DAY + c->hour * 3600 + c->minute * 60 + c->second;
	*ret = secs * FILETIME_PER_SECOND + c->ticks + UNIX_EPOCH_FILETIME;
	return 0;
}

void datetime_to_civil(int64_t t, struct civil *ret)
{
	int64_t rel, secs, days, sod;

	if (t < DATETIME_MIN)
		t = DATETIME_MIN;
	if (t > DATETIME_MAX)
		t = DATETIME_MAX;
	rel = t - UNIX_EPOCH_FILETIME;
	secs = floor_div(rel, FILETIME_PER_SECOND);
	ret->ticks = (int)(rel - secs * FILETIME_PER_SECOND);
	days = floor_div(secs, SECONDS_PER_DAY);
	sod = secs - days * SECONDS_PER_DAY;
	civil_from_days(days, &ret->year, &ret->month, &ret->day);
	ret->hour = (int)(sod / 3600);
	ret->minute = (int)(sod / 60 % 60);
	ret->second = (int)(sod % 60);
}

static int weekday(int64_t t)
{
	int64_t days =
	    floor_div(floor_div(t - UNIX_EPOCH_FILETIME, FILETIME_PER_SECOND), SECONDS_PER_DAY);

	return (int)((days % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
}

/* ---- parsing ------------------------------------------------------------------------------------
 */

struct scan {
	const char *s;
	size_t len, i;
};

static bool at_digit(const struct scan *sc)
{
	return sc->i < sc->len && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9';
}

static int scan_uint(struct scan *sc, size_t max_digits, int *ret, size_t *ret_digits)
{
	size_t n = 0;
	int v = 0;

	while (at_digit(sc) && n < max_digits) {
		v = v * 10 + (sc->s[sc->i++] - '0');
		n++;
	}
	if (n == 0)
		return -EINVAL;
	*ret = v;
	if (ret_digits)
		*ret_digits = n;
	return 0;
}

static bool scan_char(struct scan *sc, char c)
{
	if (sc->i < sc->len && sc->s[sc->i] == c) {
		sc->i++;
		return true;
	}
	return false;
}

static void scan_spaces(struct scan *sc)
{
	while (sc->i < sc->len && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t'))
		sc->i++;
}

static bool scan_word(struct scan *sc, const char *w)
{
	size_t n = strlen(w);

	if (sc->len - sc->i >= n && strncasecmp(sc->s + sc->i, w, n) == 0) {
		sc->i += n;
		return true;
	}
	return false;
}

static int scan_fraction(struct scan *sc, int *ret_ticks)
{
	int ticks = 0, scale = 1000000;

	if (!at_digit(sc))
		return -EINVAL;
	while (at_digit(sc)) {
		ticks += (sc->s[sc->i++] - '0') * scale;
		scale /= 10;
	}
	*ret_ticks = ticks;
	return 0;
}

/* Z, UTC, GMT, +8, -8, +05:30, -0800. Returns the offset east of UTC in minutes. */
static int scan_zone(struct scan *sc, int *ret_minutes)
{
	int sign, h, m = 0;
	size_t nd;

	*ret_minutes = 0;
	if (scan_word(sc, "UTC") || scan_word(sc, "GMT") || scan_char(sc, 'Z'))
		return 0;
	if (sc->i >= sc->len || (sc->s[sc->i] != '+' && sc->s[sc->i] != '-'))
		return 0;
	sign = sc->s[sc->i++] == '-' ? -1 : 1;
	if (scan_uint(sc, 2, &h, &nd) < 0)
		return -EINVAL;
	if (scan_char(sc, ':') || (nd == 2 && at_digit(sc))) {
		if (scan_uint(sc, 2, &m, &nd) < 0 || nd != 2)
			return -EINVAL;
	}
	if (h > 14 || m > 59)
		return -EINVAL;
	*ret_minutes = sign * (h * 60 + m);
	return 0;
}

static int scan_time(struct scan *sc, struct civil *c)
{
	int h, m, s = 0;

	if (scan_uint(sc, 2, &h, NULL) < 0 || !scan_char(sc, ':') || scan_uint(sc, 2, &m, NULL) < 0)
		return -EINVAL;
	if (scan_char(sc, ':')) {
		if (scan_uint(sc, 2, &s, NULL) < 0)
			return -EINVAL;
		if (scan_char(sc, '.') && scan_fraction(sc, &c->ticks) < 0)
			return -EINVAL;
	}
	scan_spaces(sc);
	if (scan_word(sc, "AM") || scan_word(sc, "PM")) {
		bool pm = sc->s[sc->i - 2] == 'P' || sc->s[sc->i - 2] == 'p';
		if (h < 1 || h > 12)
			return -EINVAL;
		h = (h % 12) + (pm ? 12 : 0);
	}
	c->hour = h;
	c->minute = m;
	c->second = s;
	return 0;
}

/* Dates as directories and people write them: 2013-01-10, 2013/01/10, 12/25/2007 (US order),
 * optionally followed by [T| ]H:mm[:ss[.f]] [AM|PM] and a zone; and LDAP's generalized time
 * 20140905081453.0Z. Without a zone the time is UTC. */
int datetime_parse(const char *s, size_t len, int64_t *ret)
{
	struct scan sc = {.s = s, .len = len};
	struct civil c = {0};
	int a, b, y, zone = 0;
	size_t nd;
	int64_t t;

	scan_spaces(&sc);
	for (nd = 0; sc.i + nd < len && s[sc.i + nd] >= '0' && s[sc.i + nd] <= '9';)
		nd++;
	if (nd == 14 || nd == 8) {
		/* generalized time, or its date part alone */
		if (scan_uint(&sc, 4, &c.year, NULL) < 0 || scan_uint(&sc, 2, &c.month, NULL) < 0 ||
		    scan_uint(&sc, 2, &c.day, NULL) < 0)
			return -EINVAL;
		if (nd == 14 && (scan_uint(&sc, 2, &c.hour, NULL) < 0 ||
		                 scan_uint(&sc, 2, &c.minute, NULL) < 0 ||
		                 scan_uint(&sc, 2, &c.second, NULL) < 0))
			return -EINVAL;
		if ((scan_char(&sc, '.') || scan_char(&sc, ',')) &&
		    scan_fraction(&sc, &c.ticks) < 0)
			return -EINVAL;
	} else if (nd == 4 && scan_uint(&sc, 4, &a, NULL) == 0 &&
	           (scan_char(&sc, '-') || scan_char(&sc, '/'))) {
		c.year = a;
		if (scan_uint(&sc, 2, &c.month, NULL) < 0 ||
		    !(scan_char(&sc, '-') || scan_char(&sc, '/')) ||
		    scan_uint(&sc, 2, &c.day, NULL) < 0)
			return -EINVAL;
	} else if (nd >= 1 && nd <= 2 && scan_uint(&sc, 2, &a, NULL) == 0 && scan_char(&sc, '/')) {
		if (scan_uint(&sc, 2, &b, NULL) < 0 || !scan_char(&sc, '/') ||
		    scan_uint(&sc, 4, &y, &nd) < 0 || nd != 4)
			return -EINVAL;
		c.month = a;
		c.day = b;
		c.year = y;
	} else {
		return -EINVAL;
	}
	if (nd != 14) {
		if (!scan_char(&sc, 'T'))
			scan_spaces(&sc);
		if (at_digit(&sc) && scan_time(&sc, &c) < 0)
			return -EINVAL;
	}
	scan_spaces(&sc);
	if (scan_zone(&sc, &zone) < 0)
		return -EINVAL;
	scan_spaces(&sc);
	if (sc.i != len)
		return -EINVAL;
	if (datetime_from_civil(&c, &t) < 0)
		return -EINVAL;
	t -= (int64_t)zone * 60 * FILETIME_PER_SECOND;
	if (t < DATETIME_MIN || t > DATETIME_MAX)
		return -EINVAL;
	*ret = t;
	return 0;
}

/* ---- formatting ------------------------------------------------------------------------------ */

static void put_num(struct sbuf *b, long long v, int width)
{
	sbuf_printf(b, "%0*lld", width, v);
}

static const char *standard_format(char c)
{
	switch (c) {
	case 'd':
		return "MM/dd/yyyy";
	case 'D':
		return "dddd, dd MMMM yyyy";
	case 'f':
		return "dddd, dd MMMM yyyy HH:mm";
	case 'F':
		return "dddd, dd MMMM yyyy HH:mm:ss";
	case 'g':
		return "MM/dd/yyyy HH:mm";
	case 'G':
		return "MM/dd/yyyy HH:mm:ss";
	case 'm':
	case 'M':
		return "MMMM dd";
	case 'o':
	case 'O':
		return "yyyy-MM-dd'T'HH:mm:ss.fffffffK";
	case 'r':
	case 'R':
		return "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'";
	case 's':
		return "yyyy-MM-dd'T'HH:mm:ss";
	case 't':
		return "HH:mm";
	case 'T':
		return "HH:mm:ss";
	case 'u':
		return "yyyy-MM-dd HH:mm:ss'Z'";
	case 'U':
		return "dddd, dd MMMM yyyy HH:mm:ss";
	case 'y':
	case 'Y':
		return "yyyy MMMM";
	default:
		return NULL;
	}
}

/* .NET custom date and time format strings, invariant culture, UTC. */
static int format_custom(int64_t t, const char *f, size_t n, struct sbuf *b)
{
	struct civil c;
	size_t i = 0;

	datetime_to_civil(t, &c);
	while (i < n && !b->error) {
		char ch = f[i];
		size_t run = 1;

		if (ch == '\'' || ch == '"') {
			size_t j = i + 1;
			while (j < n && f[j] != ch) {
				if (f[j] == '\\' && j + 1 < n)
					j++;
				sbuf_append(b, f + j, 1);
				j++;
			}
			if (j >= n)
				return -EINVAL; /* unterminated quote */
			i = j + 1;
			continue;
		}
		if (ch == '\\') {
			if (i + 1 >= n)
				return -EINVAL;
			sbuf_append(b, f + i + 1, 1);
			i += 2;
			continue;
		}
		if (ch == '%') {
			i++;
			continue; /* "%d": a one-letter custom format */
		}
		while (i + run < n && f[i + run] == ch)
			run++;
		switch (ch) {
		case 'd':
			if (run <= 2)
				put_num(b, c.day, (int)run);
			else if (run == 3)
				sbuf_append(b, day_names[weekday(t)], 3);
			else
				sbuf_append_str(b, day_names[weekday(t)]);
			break;
		case 'M':
			if (run <= 2)
				put_num(b, c.month, (int)run);
			else if (run == 3)
				sbuf_append(b, month_names[c.month - 1], 3);
			else
				sbuf_append_str(b, month_names[c.month - 1]);
			break;
		case 'y':
			if (run <= 2)
				put_num(b, c.year % 100, (int)run);
			else
				put_num(b, c.year, run > 9 ? 9 : (int)run);
			break;
		case 'h':
			put_num(b, c.hour % 12 == 0 ? 12 : c.hour % 12, run >= 2 ? 2 : 1);
			break;
		case 'H':
			put_num(b, c.hour, run >= 2 ? 2 : 1);
			break;
		case 'm':
			put_num(b, c.minute, run >= 2 ? 2 : 1);
			break;
		case 's':
			put_num(b, c.second, run >= 2 ? 2 : 1);
			break;
		case 'f':
		case 'F': {
			char digits[8];
			size_t k;
			if (run > 7)
				return -EINVAL;
			snprintf(digits, sizeof(digits), "%07d", c.ticks);
			k = run;
			if (ch == 'F') {
				while (k > 0 && digits[k - 1] == '0')
					k--;
				if (k == 0 && b->len > 0 && b->data[b->len - 1] == '.')
					b->data[--b->len] = '\0';
			}
			sbuf_append(b, digits, k);
			break;
		}
		case 't':
			sbuf_append(b, c.hour < 12 ? "AM" : "PM", run >= 2 ? 2 : 1);
			break;
		case 'z':
			sbuf_append_str(b, run == 1 ? "+0" : run == 2 ? "+00" : "+00:00");
			break;
		case 'K':
			sbuf_append(b, "Z", 1);
			run = 1;
			break;
		case 'g':
			sbuf_append_str(b, "A.D.");
			break;
		default:
			sbuf_append(b, f + i, run);
			break;
		}
		i += run;
	}
	return b->error;
}

int datetime_format(int64_t t, const char *fmt, size_t fmt_len, struct expr_value **ret)
{
	struct sbuf b = {0};
	const char *std;
	int r;

	if (fmt_len == 0)
		fmt = "G", fmt_len = 1;
	if (fmt_len == 1) {
		std = standard_format(fmt[0]);
		if (!std)
			return -EINVAL;
		r = format_custom(t, std, strlen(std), &b);
	} else {
		r = format_custom(t, fmt, fmt_len, &b);
	}
	if (r < 0) {
		sbuf_done(&b);
		return r;
	}
	return sbuf_finish(&b, ret);
}

/* ---- DateAdd -------------------------------------------------------------------------------- */

static int add_months(int64_t t, int64_t months, int64_t *ret)
{
	struct civil c;
	int64_t total;

	datetime_to_civil(t, &c);
	if (months > 12 * 10000 || months < -12 * 10000)
		return -ERANGE;
	total = (int64_t)c.year * 12 + (c.month - 1) + months;
	c.year = (int)floor_div(total, 12);
	c.month = (int)(total - (int64_t)c.year * 12) + 1;
	if (c.year < 1 || c.year > 9999)
		return -ERANGE;
	if (c.day > days_in_month(c.year, c.month))
		c.day = days_in_month(c.year, c.month);
	return datetime_from_civil(&c, ret) < 0 ? -ERANGE : 0;
}

int datetime_add(int64_t t, const char *interval, int64_t n, int64_t *ret)
{
	static const struct {
		const char *name;
		int64_t seconds; /* 0: months */
		int64_t months;
	} units[] = {
	    {"yyyy", 0, 12},
	    {"q", 0, 3},
	    {"m", 0, 1},
	    {"y", SECONDS_PER_DAY, 0},
	    {"d", SECONDS_PER_DAY, 0},
	    {"w", SECONDS_PER_DAY, 0},
	    {"ww", 7 * SECONDS_PER_DAY, 0},
	    {"h", 3600, 0},
	    {"n", 60, 0},
	    {"s", 1, 0},
	};
	int64_t delta, out;

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(interval, units[i].name) != 0)
			continue;
		if (units[i].months) {
			if (__builtin_mul_overflow(n, units[i].months, &delta))
				return -ERANGE;
			return add_months(t, delta, ret);
		}
		if (__builtin_mul_overflow(n, units[i].seconds, &delta) ||
		    __builtin_mul_overflow(delta, FILETIME_PER_SECOND, &delta) ||
		    __builtin_add_overflow(t, delta, &out) || out < DATETIME_MIN ||
		    out > DATETIME_MAX)
			return -ERANGE;
		*ret = out;
		return 0;
	}
	return -EINVAL;
}
