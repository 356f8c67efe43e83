/*
 * libFuzzer harness for ISTIO_PROMETHEUS_ANNOTATIONS and the content type
 * negotiation: the annotations either fail with a message or give a port
 * and a path starting with "/" (or nothing to scrape); any text given as
 * the application's content type negotiates to one of the three types.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct metrics_app	 app;
	const char		*type;
	char			*s, err[512];

	if (size > 65536)
		return 0;
	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	err[0] = '\0';
	if (metrics_parse_annotations(s, &app, err, sizeof(err)) == -1) {
		if (err[0] == '\0' || app.ma_path != NULL)
			abort();
	} else if (app.ma_port != 0) {
		if (app.ma_port > 65535 || app.ma_path == NULL ||
		    app.ma_path[0] != '/' ||
		    strpbrk(app.ma_path, " \t\r\n") != NULL)
			abort();
	} else if (app.ma_path != NULL)
		abort();
	free(app.ma_path);
	type = metrics_negotiate(s);
	if (strcmp(type, "text/plain; version=0.0.4; charset=utf-8") != 0 &&
	    strcmp(type, "application/openmetrics-text; version=1.0.0; "
	    "charset=utf-8") != 0 &&
	    strcmp(type, "application/openmetrics-text; version=0.0.1; "
	    "charset=utf-8") != 0)
		abort();
	free(s);
	return 0;
}
