/*
 * libFuzzer harness for the Go duration parser: any input either parses to a
 * value whose formatted text parses back to the same value, or fails with a
 * message quoting the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*s, err[512], text[64];
	int64_t	 v, again;

	if (size > 256)
		return 0;
	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	if (duration_parse(s, &v, err, sizeof(err)) == 0) {
		duration_format(v, text, sizeof(text));
		if (duration_parse(text, &again, err, sizeof(err)) != 0 ||
		    again != v)
			abort();
	} else if (strstr(err, "time: ") != err)
		abort();
	free(s);
	return 0;
}
