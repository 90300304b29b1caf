/* hybridsync attribute sets: binary-safe, multi-valued directory attributes as every module
 * sees them. Names compare case-insensitively (ASCII, as LDAP attribute descriptions); values
 * are byte strings. Sets serialize to a compact, versioned, bounded blob and have a stable
 * SHA-256 digest used to detect changes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds. Adding beyond them fails with -E2BIG; a serialized blob beyond them is corrupt. */
#define ATTR_NAME_MAX       255u         /* bytes in an attribute name */
#define ATTR_VALUE_MAX      (16u << 20)  /* bytes in one value */
#define ATTR_VALUES_MAX     (1u << 20)   /* values of one attribute */
#define ATTR_ATTRS_MAX      4096u        /* attributes in one set or diff */
#define ATTR_SERIALIZED_MAX (256u << 20) /* bytes of one serialized set or diff */

#define ATTR_DIGEST_SIZE 32u /* SHA-256 */

/* A value: `len` bytes at `data`. Values held by a set or diff are always followed by a NUL
 * byte (not counted in len), so text values can be used as C strings. */
struct attr_value {
	const void *data;
	size_t len;
};

struct attr_set;
struct attr_diff;
struct attr_hash;

struct attr_set *attr_set_new(void);
struct attr_set *attr_set_free(struct attr_set *s);
int attr_set_copy(const struct attr_set *s, struct attr_set **ret);

/* Adds one value. Returns 1 when added, 0 when a byte-equal value was already there (a set
 * holds each value once), -EINVAL for a bad name, -E2BIG beyond the bounds, -ENOMEM.
 * Checking for the duplicate is linear: load large attributes with attr_set_replace(). */
int attr_set_add(struct attr_set *s, const char *name, const void *data, size_t len);
int attr_set_add_string(struct attr_set *s, const char *name, const char *value);

/* Replaces all values of `name` (n == 0 removes it). Duplicates in `values` are dropped,
 * the first occurrence kept, in O(n log n). */
int attr_set_replace(struct attr_set *s, const char *name, const struct attr_value *values,
                     size_t n);
/* Replaces `name` with the single text `value`; NULL removes it. */
int attr_set_set_string(struct attr_set *s, const char *name, const char *value);

/* Return 1 when something was removed, 0 when it was not there. */
int attr_set_remove(struct attr_set *s, const char *name);
int attr_set_remove_value(struct attr_set *s, const char *name, const void *data, size_t len);

bool attr_set_has(const struct attr_set *s, const char *name);
bool attr_set_has_value(const struct attr_set *s, const char *name, const void *data, size_t len);

/* The values of `name`, in insertion order; -ENOENT when absent. The array stays valid until
 * the set is next modified. */
int attr_set_get(const struct attr_set *s, const char *name, const struct attr_value **ret_values,
                 size_t *ret_n);
int attr_set_get_first(const struct attr_set *s, const char *name, struct attr_value *ret);
/* The first value as a C string; NULL when absent or when it contains a NUL byte. */
const char *attr_set_get_string(const struct attr_set *s, const char *name);

/* Iteration in canonical order (names sorted case-insensitively): i from 0 to count - 1. */
size_t attr_set_count(const struct attr_set *s);
int attr_set_at(const struct attr_set *s, size_t i, const char **ret_name,
                const struct attr_value **ret_values, size_t *ret_n);

/* Sorts every attribute's values canonically (attr_value_compare): for stable output. */
void attr_set_sort_values(struct attr_set *s);
/* Canonical value order: bytewise, a prefix before the longer value. */
int attr_value_compare(const struct attr_value *a, const struct attr_value *b);

/* Set semantics: same names (case-insensitively), same values in any order. NULL equals an
 * empty set. */
bool attr_set_equal(const struct attr_set *a, const struct attr_set *b);

/* Serialization (format v1, see docs/store-schema.md). Values keep their insertion order.
 * Deserializing rejects anything malformed or beyond the bounds with -EBADMSG. */
int attr_set_serialize(const struct attr_set *s, void **ret_buf, size_t *ret_len);
int attr_set_deserialize(const void *buf, size_t len, struct attr_set **ret);

/* SHA-256 over the canonical form (lower-cased names, sorted values): the same for equal
 * sets whatever the insertion order or the names' case. A NULL set digests as empty. */
int attr_set_digest(const struct attr_set *s, uint8_t ret[ATTR_DIGEST_SIZE]);

/* A builder for decoders that read many objects in a row (the LDAP import): it collects one
 * object's attributes into buffers it keeps from object to object, so a value costs a copy and
 * no allocation, then shows them as a read-only set: the set attr_set_add would have built
 * from the same successful calls (names merged case-insensitively with the spelling of the
 * first value added, later duplicate values dropped, insertion order kept), with the same
 * serialization and digest. Its one difference in bounds: ATTR_VALUES_MAX counts the values
 * added, duplicates included. */
struct attr_builder;

int attr_builder_new(struct attr_builder **ret);
struct attr_builder *attr_builder_free(struct attr_builder *b);
/* Forgets the object; the buffers stay for the next one. */
void attr_builder_reset(struct attr_builder *b);
/* The attribute `name` (len bytes, not NUL-terminated): its number for attr_builder_add, or
 * -EINVAL for a bad name, -E2BIG beyond 2 * ATTR_ATTRS_MAX names, -ENOMEM. */
int attr_builder_attr(struct attr_builder *b, const char *name, size_t len);
/* Adds a copy of one value to attribute `attr`: 0, or -E2BIG beyond ATTR_VALUE_MAX,
 * ATTR_VALUES_MAX (counted before duplicates are dropped) or ATTR_ATTRS_MAX attributes with
 * values, -EINVAL, -ENOMEM. data may point into the builder's own view. */
int attr_builder_add(struct attr_builder *b, int attr, const void *data, size_t len);
/* The set so far, valid until the builder is next changed. Attributes without a value are
 * left out. */
int attr_builder_view(struct attr_builder *b, const struct attr_set **ret);
/* The view's serialization (malloc'd, as attr_set_serialize) and digest (as
 * attr_set_digest). */
int attr_builder_encode(struct attr_builder *b, void **ret_buf, size_t *ret_len,
                        uint8_t ret_digest[ATTR_DIGEST_SIZE]);

/* Diffs: per attribute, the old and the new values (either list may be empty, not both). */
struct attr_change {
	const char *name;
	const struct attr_value *old_values;
	size_t n_old;
	const struct attr_value *new_values;
	size_t n_new;
};

struct attr_diff *attr_diff_new(void);
struct attr_diff *attr_diff_free(struct attr_diff *d);

/* The attributes whose value sets differ between `old` and `new` (either may be NULL, an empty
 * set). Value lists come in each set's order. */
int attr_set_diff(const struct attr_set *old, const struct attr_set *new, struct attr_diff **ret);

/* Adds or replaces the change of `name`. -EINVAL when both lists are empty. */
int attr_diff_put(struct attr_diff *d, const char *name, const struct attr_value *old_values,
                  size_t n_old, const struct attr_value *new_values, size_t n_new);
int attr_diff_remove(struct attr_diff *d, const char *name);
size_t attr_diff_count(const struct attr_diff *d);
/* Changes in canonical name order; the change points into the diff (valid until modified). */
int attr_diff_at(const struct attr_diff *d, size_t i, struct attr_change *ret);
int attr_diff_get(const struct attr_diff *d, const char *name, struct attr_change *ret);
bool attr_diff_equal(const struct attr_diff *a, const struct attr_diff *b);
int attr_diff_serialize(const struct attr_diff *d, void **ret_buf, size_t *ret_len);
int attr_diff_deserialize(const void *buf, size_t len, struct attr_diff **ret);
int attr_diff_digest(const struct attr_diff *d, uint8_t ret[ATTR_DIGEST_SIZE]);

/* Incremental SHA-256 over framed fields, for callers that digest their own canonical records
 * (the store's queue fingerprint). Each field is framed with its length, and NULL differs from
 * an empty field, so concatenations cannot collide. */
int attr_hash_new(struct attr_hash **ret);
struct attr_hash *attr_hash_free(struct attr_hash *h);
int attr_hash_add(struct attr_hash *h, const void *data, size_t len);
int attr_hash_add_string(struct attr_hash *h, const char *s);
int attr_hash_add_int(struct attr_hash *h, int64_t v);
/* Finishes the digest; the hash cannot be used afterwards except to free it. */
int attr_hash_final(struct attr_hash *h, uint8_t ret[ATTR_DIGEST_SIZE]);

/* Lower-case hex of a digest into `out` (2 * ATTR_DIGEST_SIZE + 1 bytes). */
void attr_digest_to_hex(const uint8_t digest[ATTR_DIGEST_SIZE], char out[2 * ATTR_DIGEST_SIZE + 1]);
