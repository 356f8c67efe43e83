/*
 * libFuzzer harness for the ISTIO_KUBE_APP_PROBERS parser: any input either
 * fails with a message, or gives definitions that hold together (a valid
 * probe path, a port, a positive timeout, an HTTP path starting with "/"
 * without white space, a header list as long as it says).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct probe_def	*defs;
	char			*s, err[512];
	size_t			 n, i, j;

	if (size > 65536)
		return 0;
	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	err[0] = '\0';
	if (probe_parse(s, &defs, &n, err, sizeof(err)) == -1) {
		if (err[0] == '\0' || defs != NULL || n != 0)
			abort();
	} else {
		for (i = 0; i < n; i++) {
			struct probe_def *pd = &defs[i];

			if (strncmp(pd->pd_path, "/app-", 5) != 0 ||
			    pd->pd_port < 1 || pd->pd_port > 65535 ||
			    pd->pd_timeout <= 0)
				abort();
			if (pd->pd_kind == PROBE_HTTP &&
			    (pd->pd_http_path == NULL ||
			    pd->pd_http_path[0] != '/' ||
			    strpbrk(pd->pd_http_path, " \t\r\n") != NULL))
				abort();
			for (j = 0; j < pd->pd_nheaders; j++) {
				const char *v = pd->pd_headers[j].ph_value;

				if (v != NULL && strpbrk(v, "\r\n") != NULL)
					abort();
			}
		}
		probe_defs_free(defs, n);
	}
	free(s);
	return 0;
}
