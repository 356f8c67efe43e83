/*
 * libFuzzer harness for ISTIO_BOOTSTRAP_OVERRIDE: any bytes, JSON or YAML,
 * merged over a rendered bootstrap either fail with a message (leaving the
 * document as it was) or merge; merging the result over itself again must
 * not break, and the document must serialize and parse back to itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static json_t *base;

static json_t *
render_base(void)
{
	struct config	 cf;
	char		 err[512];
	char		*argv[] = { "bootstrap", "--certDir=/nonexistent",
			    "--zipkinAddress=z:9411", NULL };
	json_t		*doc;

	setenv("POD_NAME", "p", 1);
	setenv("POD_NAMESPACE", "n", 1);
	setenv("INSTANCE_IP", "10.0.0.1", 1);
	unsetenv("ISTIO_BOOTSTRAP_OVERRIDE");
	if (config_parse(&cf, 3, argv, err, sizeof(err)) == -1 ||
	    (doc = bootstrap_render(&cf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_override: %s\n", err);
		abort();
	}
	config_free(&cf);
	return doc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	 err[1024] = "";
	json_t	*doc, *copy;
	char	*s;

	if (size > 65536)
		return 0;
	if (base == NULL) {
		log_set_level("none");
		base = render_base();
	}
	doc = json_deep_copy(base);
	if (bootstrap_override_text(doc, (const char *)data, size, "fuzz",
	    "192.0.2.1", err, sizeof(err)) == -1) {
		if (err[0] == '\0' || !json_equal(doc, base))
			abort();
	} else {
		copy = json_deep_copy(doc);
		bootstrap_merge(doc, copy);
		json_decref(copy);
		s = bootstrap_dump(doc);
		copy = json_loads(s, 0, NULL);
		if (copy == NULL || !json_equal(copy, doc))
			abort();
		json_decref(copy);
		free(s);
	}
	json_decref(doc);
	return 0;
}
