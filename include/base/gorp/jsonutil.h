/* Reading JSON input files (datasets, tokenizer.json, Hugging Face config.json and index.json):
 * the bytes are checked before and after cJSON parses them, because cJSON accepts what other
 * readers of the same file would see differently: malformed UTF-8, a NUL byte or a \u0000 escape
 * (where cJSON's NUL-terminated strings silently end), and a key repeated in one object (cJSON
 * finds the first, Python's json the last). All of these are refused, naming the file and where.
 * Not for: writing JSON, or the safetensors header's own framing (safetensors.c). */
#ifndef GORP_JSONUTIL_H
#define GORP_JSONUTIL_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses text[0..len) (text[len] must be '\0') read from path into *root (free with
 * cJSON_Delete); GORP_EINPUT with byte offset, line and column for a NUL byte, invalid UTF-8,
 * malformed JSON or a \u0000 escape (and the 0-based item when the top level is a list), and
 * the location of a duplicate key. */
int json_parse(const char *path, const char *text, size_t len, cJSON **root);

/* fs_read_regular(path, what, max_bytes) and json_parse. */
int json_read_file(const char *path, const char *what, size_t max_bytes, cJSON **root);

/* GORP_EINPUT naming path, the key and where ($.a.b[3]) when an object anywhere under root has
 * a key twice. */
int json_check_unique_keys(const char *path, const cJSON *root);

#endif
