/*
 * Reading the documents an operator writes: the mesh config and the
 * bootstrap override, each JSON or YAML. Both become jansson trees, so the
 * rest of the agent handles one kind of value. A document whose first
 * non-blank character is '{' or '[' is JSON (jansson's messages are the
 * clearer ones for JSON); anything else goes through libyaml.
 *
 * YAML scalars are typed as YAML 1.2's core schema does: null, booleans,
 * integers and floats when plain (unquoted), strings otherwise. Aliases are
 * expanded, with a bound on the number of values so that a small file
 * cannot expand into an enormous tree ("billion laughs"); nesting is bounded
 * as jansson bounds it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

#include "agent.h"

#define DOCUMENT_MAX_NODES	1000000
#define DOCUMENT_MAX_DEPTH	256

struct yconv {
	yaml_document_t	*yc_doc;
	size_t		 yc_nodes;
	const char	*yc_name;
	char		*yc_err;
	size_t		 yc_errlen;
};

static int
document_match(const char *s, const char *const *list)
{
	for (; *list != NULL; list++) {
		if (strcmp(s, *list) == 0)
			return 1;
	}
	return 0;
}

/* A plain scalar typed by YAML 1.2's core schema. */
static json_t *
document_plain(const char *s)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL",
	    NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	char		*end;
	long long	 ll;
	double		 d;
	int		 base = 10;
	const char	*digits = s;

	if (document_match(s, nulls))
		return json_null();
	if (document_match(s, trues))
		return json_true();
	if (document_match(s, falses))
		return json_false();
	if (strncmp(s, "0x", 2) == 0) {
		base = 16;
		digits = s + 2;
	} else if (strncmp(s, "0o", 2) == 0) {
		base = 8;
		digits = s + 2;
	}
	if (*digits != '\0' && strchr("+-0123456789", *digits) != NULL) {
		errno = 0;
		ll = strtoll(digits, &end, base);
		if (*end == '\0' && errno == 0 && (base == 10 ||
		    (*digits != '+' && *digits != '-')))
			return json_integer(ll);
	}
	/* Floats: digits with a point or an exponent; inf and nan stay text. */
	if (base == 10 && strpbrk(s, "0123456789") != NULL &&
	    strspn(s, "+-.0123456789eE") == strlen(s)) {
		errno = 0;
		d = strtod(s, &end);
		if (*end == '\0' && errno == 0 && isfinite(d))
			return json_real(d);
	}
	return json_string(s);
}

static json_t *
document_convert(struct yconv *yc, yaml_node_t *node, int depth)
{
	yaml_node_item_t	*item;
	yaml_node_pair_t	*pair;
	yaml_node_t		*k;
	json_t			*v, *child;

	if (node == NULL) {
		snprintf(yc->yc_err, yc->yc_errlen, "%s: broken YAML document",
		    yc->yc_name);
		return NULL;
	}
	if (depth > DOCUMENT_MAX_DEPTH || ++yc->yc_nodes > DOCUMENT_MAX_NODES) {
		snprintf(yc->yc_err, yc->yc_errlen, "%s: line %lu column %lu: "
		    "document too deep or too large", yc->yc_name,
		    (unsigned long)node->start_mark.line + 1,
		    (unsigned long)node->start_mark.column + 1);
		return NULL;
	}
	switch (node->type) {
	case YAML_SCALAR_NODE:
		/*
		 * libyaml's loader gives an untagged scalar the tag !!str,
		 * so a plain scalar is typed by its text whatever its tag: an
		 * explicit "!!str 15" is a number here; quote it instead.
		 */
		if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			return document_plain((char *)node->data.scalar.value);
		return json_stringn((char *)node->data.scalar.value,
		    node->data.scalar.length);
	case YAML_SEQUENCE_NODE:
		v = json_array();
		for (item = node->data.sequence.items.start;
		    item < node->data.sequence.items.top; item++) {
			child = document_convert(yc, yaml_document_get_node(
			    yc->yc_doc, *item), depth + 1);
			if (child == NULL) {
				json_decref(v);
				return NULL;
			}
			json_array_append_new(v, child);
		}
		return v;
	case YAML_MAPPING_NODE:
		v = json_object();
		for (pair = node->data.mapping.pairs.start;
		    pair < node->data.mapping.pairs.top; pair++) {
			k = yaml_document_get_node(yc->yc_doc, pair->key);
			if (k == NULL || k->type != YAML_SCALAR_NODE) {
				snprintf(yc->yc_err, yc->yc_errlen, "%s: line "
				    "%lu column %lu: a mapping key must be a "
				    "scalar", yc->yc_name,
				    (unsigned long)node->start_mark.line + 1,
				    (unsigned long)node->start_mark.column + 1);
				json_decref(v);
				return NULL;
			}
			if (json_object_get(v, (char *)k->data.scalar.value) !=
			    NULL) {
				snprintf(yc->yc_err, yc->yc_errlen, "%s: line "
				    "%lu column %lu: duplicate key \"%s\"",
				    yc->yc_name,
				    (unsigned long)k->start_mark.line + 1,
				    (unsigned long)k->start_mark.column + 1,
				    (char *)k->data.scalar.value);
				json_decref(v);
				return NULL;
			}
			child = document_convert(yc, yaml_document_get_node(
			    yc->yc_doc, pair->value), depth + 1);
			if (child == NULL) {
				json_decref(v);
				return NULL;
			}
			json_object_set_new(v, (char *)k->data.scalar.value,
			    child);
		}
		return v;
	default:
		break;
	}
	snprintf(yc->yc_err, yc->yc_errlen, "%s: broken YAML document",
	    yc->yc_name);
	return NULL;
}

static json_t *
document_parse_yaml(const char *text, size_t len, const char *name,
    char *err, size_t errlen)
{
	yaml_parser_t	 parser;
	yaml_document_t	 doc;
	yaml_node_t	*root;
	struct yconv	 yc;
	json_t		*v = NULL;

	if (!yaml_parser_initialize(&parser))
		fatalx("yaml_parser_initialize");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "%s: line %lu column %lu: %s%s%s", name,
		    (unsigned long)parser.problem_mark.line + 1,
		    (unsigned long)parser.problem_mark.column + 1,
		    parser.problem != NULL ? parser.problem : "invalid YAML",
		    parser.context != NULL ? " " : "",
		    parser.context != NULL ? parser.context : "");
		yaml_parser_delete(&parser);
		return NULL;
	}
	if ((root = yaml_document_get_root_node(&doc)) == NULL)
		v = json_null();	/* an empty document */
	else {
		memset(&yc, 0, sizeof(yc));
		yc.yc_doc = &doc;
		yc.yc_name = name;
		yc.yc_err = err;
		yc.yc_errlen = errlen;
		v = document_convert(&yc, root, 0);
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return v;
}

/*
 * Parses text as JSON or YAML. name labels the messages ("line L column C"
 * follows it). An empty document is JSON null.
 */
json_t *
document_parse(const char *text, size_t len, const char *name, char *err,
    size_t errlen)
{
	json_error_t	 jerr;
	json_t		*v;
	size_t		 i = 0;

	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		i = 3;		/* a UTF-8 byte order mark */
	while (i < len && strchr(" \t\r\n", text[i]) != NULL && text[i] != '\0')
		i++;
	if (i < len && (text[i] == '{' || text[i] == '[')) {
		v = json_loadb(text, len, JSON_REJECT_DUPLICATES |
		    JSON_ALLOW_NUL, &jerr);
		if (v == NULL)
			snprintf(err, errlen, "%s: line %d column %d: %s",
			    name, jerr.line, jerr.column, jerr.text);
		return v;
	}
	if (memchr(text, '\0', len) != NULL) {
		snprintf(err, errlen, "%s: contains a NUL byte", name);
		return NULL;
	}
	return document_parse_yaml(text, len, name, err, errlen);
}

json_t *
document_load(const char *path, char *err, size_t errlen)
{
	char	*text;
	size_t	 len;
	json_t	*v;

	if ((text = file_read(path, DOCUMENT_MAX_SIZE, &len, err, errlen)) ==
	    NULL)
		return NULL;
	v = document_parse(text, len, path, err, errlen);
	free(text);
	return v;
}
