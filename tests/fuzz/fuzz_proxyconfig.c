/*
 * libFuzzer harness for the JSON inputs of the bootstrap: the first byte
 * picks where the rest goes (PROXY_CONFIG, an ISTIO_METAJSON_ variable, a
 * mesh config file, an ISTIO_META_ variable or a flag's value), then the
 * configuration is parsed and the bootstrap rendered. Any input either fails with a message or gives a
 * document that serializes and parses back to itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bootstrap.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int memfd = -1;

static void
check_roundtrip(const json_t *doc)
{
	char	*s = bootstrap_dump(doc);
	json_t	*back = json_loads(s, 0, NULL);

	if (back == NULL || !json_equal(back, doc))
		abort();
	json_decref(back);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	 cf;
	char		*text, err[1024], path[64];
	char		*argv[8];
	int		 argc = 0, mode;
	json_t		*doc;

	if (size < 1 || size > 65536)
		return 0;
	/* Unknown fields are warned about: not at every input. */
	log_set_level("none");
	mode = data[0] % 5;
	text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';

	unsetenv("PROXY_CONFIG");
	unsetenv("ISTIO_METAJSON_FUZZ");
	unsetenv("ISTIO_META_FUZZ");
	setenv("POD_NAME", "p", 1);
	setenv("POD_NAMESPACE", "n", 1);
	setenv("INSTANCE_IP", "10.0.0.1", 1);
	argv[argc++] = "bootstrap";
	argv[argc++] = "--certDir=/nonexistent";
	if (mode == 0)
		setenv("PROXY_CONFIG", text, 1);
	else if (mode == 1)
		setenv("ISTIO_METAJSON_FUZZ", text, 1);
	else if (mode == 3)
		setenv("ISTIO_META_FUZZ", text, 1);
	else if (mode == 4) {
		argv[argc++] = "--serviceCluster";
		argv[argc++] = text;
	} else {
		/* The mesh config, bytes and all, through a memory file. */
		if (memfd == -1 && (memfd = memfd_create("mesh", 0)) == -1)
			abort();
		if (ftruncate(memfd, 0) == -1 ||
		    pwrite(memfd, data + 1, size - 1, 0) != (ssize_t)(size - 1))
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
		argv[argc++] = "--meshConfig";
		argv[argc++] = path;
	}
	argv[argc] = NULL;
	if (config_parse(&cf, argc, argv, err, sizeof(err)) == 0) {
		doc = bootstrap_render(&cf, err, sizeof(err));
		if (doc != NULL) {
			check_roundtrip(doc);
			json_decref(doc);
		} else if (err[0] == '\0')
			abort();
	} else if (err[0] == '\0')
		abort();
	config_free(&cf);
	free(text);
	return 0;
}
