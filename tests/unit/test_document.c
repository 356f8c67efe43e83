/*
 * Unit tests of agent/document.c: JSON and YAML documents as jansson
 * values, with their errors, duplicate keys, YAML's core schema and the
 * bound on aliases.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent.h"
#include "check.h"

static json_t *
parse(const char *s)
{
	char	 err[256];
	json_t	*v;

	v = document_parse(s, strlen(s), "test", err, sizeof(err));
	if (v == NULL)
		fprintf(stderr, "parse: %s\n", err);
	return v;
}

static int
same(json_t *a, const char *b)
{
	json_t	*vb = parse(b);
	int	 eq = a != NULL && vb != NULL && json_equal(a, vb);

	if (!eq) {
		char *s = a != NULL ? json_dumps(a, JSON_SORT_KEYS) : NULL;

		fprintf(stderr, "got %s, want %s\n", s ? s : "(null)", b);
		free(s);
	}
	json_decref(vb);
	return eq;
}

static void
test_yaml(void)
{
	char	 err[256];
	json_t	*v;
	const char *y =
	    "i: 12\n"
	    "neg: -3\n"
	    "hex: 0x1f\n"
	    "f: 1.5\n"
	    "e: 1e3\n"
	    "t: true\n"
	    "F: False\n"
	    "n: ~\n"
	    "n2: null\n"
	    "empty:\n"
	    "s: hello world\n"
	    "q: \"12\"\n"
	    "sq: 'true'\n"
	    "dur: 45s\n"
	    "ver: 1.2.3\n"
	    "yes: yes\n"
	    "inf: .inf\n"
	    "list: [a, 1, {k: v}]\n"
	    "block: |\n"
	    "  line1\n"
	    "  line2\n"
	    "anchor: &A {x: 1}\n"
	    "alias: *A\n";

	v = parse(y);
	CHECK(same(v, "{\"i\":12,\"neg\":-3,\"hex\":31,\"f\":1.5,\"e\":1000.0,"
	    "\"t\":true,\"F\":false,\"n\":null,\"n2\":null,\"empty\":null,"
	    "\"s\":\"hello world\",\"q\":\"12\",\"sq\":\"true\",\"dur\":\"45s\","
	    "\"ver\":\"1.2.3\",\"yes\":\"yes\",\"inf\":\".inf\","
	    "\"list\":[\"a\",1,{\"k\":\"v\"}],\"block\":\"line1\\nline2\\n\","
	    "\"anchor\":{\"x\":1},\"alias\":{\"x\":1}}"));
	json_decref(v);

	/* JSON is JSON, with jansson's positions. */
	v = document_parse("  {\"a\": [1, 2.5, \"x\"]}", 22, "j", err,
	    sizeof(err));
	CHECK(same(v, "{\"a\":[1,2.5,\"x\"]}"));
	json_decref(v);
	CHECK(document_parse("{\"a\": }", 7, "j", err, sizeof(err)) == NULL);
	CHECK(strncmp(err, "j: line 1 column 7", 18) == 0);
	CHECK(document_parse("{\"a\":1,\"a\":2}", 13, "j", err,
	    sizeof(err)) == NULL);

	/* YAML errors: position, duplicate keys, complex keys. */
	CHECK(document_parse("a: 1\nb: [\n", 10, "y", err, sizeof(err)) ==
	    NULL);
	CHECK(strncmp(err, "y: line 3 column 1", 18) == 0);
	CHECK(document_parse("a: 1\na: 2\n", 10, "y", err, sizeof(err)) ==
	    NULL);
	CHECK(strstr(err, "y: line 2 column 1: duplicate key \"a\"") != NULL);
	CHECK(document_parse("? [a]\n: 1\n", 10, "y", err, sizeof(err)) ==
	    NULL);
	CHECK(strstr(err, "scalar") != NULL);
	CHECK(document_parse("a: \"x\0y\"", 8, "y", err, sizeof(err)) == NULL);

	/* Aliases cannot blow a small document up. */
	{
		char	 big[4096] = "a: &a [x,x,x,x,x,x,x,x,x,x]\n";
		char	 c = 'a';
		int	 i;

		for (i = 0; i < 8; i++, c++) {
			size_t n = strlen(big);

			snprintf(big + n, sizeof(big) - n,
			    "%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n",
			    c + 1, c + 1, c, c, c, c, c, c, c, c, c, c);
		}
		CHECK(document_parse(big, strlen(big), "y", err,
		    sizeof(err)) == NULL);
		CHECK(strstr(err, "too deep or too large") != NULL);
	}

	/* An empty document is null. */
	v = document_parse("", 0, "y", err, sizeof(err));
	CHECK(json_is_null(v));
	json_decref(v);
}

int
main(void)
{
	test_yaml();
	return check_done("test_document");
}
