/* Private to the attr module (attr*.c): the representation of sets and diffs and the helpers
 * the set, diff and codec files share. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hybridsync/attr.h"

/* Serialization magic: "HS" + kind + format version. */
#define ATTR_SET_MAGIC  "HSA\x01"
#define ATTR_DIFF_MAGIC "HSD\x01"
#define ATTR_MAGIC_LEN  4u

/* Stack space for sorting small value lists without allocating. */
#define ATTR_SMALL_SORT 16u

/* Values, each a malloc'd copy followed by a NUL byte. */
struct attr_vlist {
	struct attr_value *v;
	size_t n, cap;
};

struct attr_entry {
	char *name;
	struct attr_vlist vals;
};

/* Entries sorted by name, case-insensitively; no entry without values. */
struct attr_set {
	struct attr_entry *a;
	size_t n, cap;
};

struct attr_diff_entry {
	char *name;
	struct attr_vlist old, new;
};

struct attr_diff {
	struct attr_diff_entry *c;
	size_t n, cap;
};

static inline int attr_fold(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

int attr_name_cmp(const char *a, const char *b);
bool attr_name_valid(const char *name);
bool attr_name_valid_bytes(const uint8_t *p, size_t len);

void attr_vlist_free(struct attr_vlist *vl);
int attr_vlist_push(struct attr_vlist *vl, const void *data, size_t len);
int attr_vlist_from_values(struct attr_vlist *out, const struct attr_value *values, size_t n);
bool attr_values_equal(const struct attr_value *a, size_t na, const struct attr_value *b,
                       size_t nb);
int attr_values_have_duplicates(const struct attr_value *v, size_t n);
/* Marks in dup[i] every value equal to an earlier one (the first occurrence is kept);
 * iv is n entries of scratch. O(n log n). */
struct attr_idx_value {
	const struct attr_value *v;
	size_t idx;
};
void attr_values_mark_duplicates(const struct attr_value *values, size_t n,
                                 struct attr_idx_value *iv, bool *dup);
const struct attr_value **attr_sorted_view(const struct attr_value *values, size_t n,
                                           const struct attr_value **small);
void attr_sorted_view_free(const struct attr_value **ptrs, const struct attr_value **small);

/* A hash made by attr_hash_new, ready for another digest (also after attr_hash_final). */
int attr_hash_reset(struct attr_hash *h);
/* attr_set_digest into a hash that is new or reset. */
int attr_set_digest_with(struct attr_hash *h, const struct attr_set *s,
                         uint8_t ret[ATTR_DIGEST_SIZE]);

int attr_set_insert_at(struct attr_set *s, size_t pos, const char *name, size_t name_len);
int attr_diff_insert_at(struct attr_diff *d, size_t pos, const char *name, struct attr_vlist *old,
                        struct attr_vlist *new);
