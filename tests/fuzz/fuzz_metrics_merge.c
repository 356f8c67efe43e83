/*
 * libFuzzer harness for the streaming merge of a metrics source: the input
 * is cut into chunks (sizes taken from its first bytes) and fed as the
 * proxy's page arrives; the source then ends well or badly. What was passed
 * on must be the page itself up to a line end: all of it (its last line
 * completed) on success, up to its last newline on failure. Never a piece
 * of a line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer	*pending, *in, *out;
	const uint8_t	*page, *nl;
	size_t		 plen, off = 0, cut, want, got, i = 0;
	int		 ok;
	unsigned char	*flat;

	if (size < 3 || size > 1 << 20)
		return 0;
	ok = data[0] & 1;
	page = data + 2;
	plen = size - 2;
	pending = evbuffer_new();
	in = evbuffer_new();
	out = evbuffer_new();
	while (off < plen) {
		cut = 1 + (size_t)((data[1] + i * 31) % 97);
		if (cut > plen - off)
			cut = plen - off;
		evbuffer_add(in, page + off, cut);
		metrics_stream_feed(pending, in, (i & 1) ? out : NULL);
		if (evbuffer_get_length(in) != 0)
			abort();
		off += cut;
		i++;
	}
	metrics_stream_end(pending, ok);
	metrics_stream_feed(pending, NULL, out);
	if (ok)
		evbuffer_add_buffer(out, pending);
	got = evbuffer_get_length(out);
	if (ok) {
		want = plen + (plen > 0 && page[plen - 1] != '\n');
		if (evbuffer_get_length(pending) != 0)
			abort();
	} else {
		nl = plen > 0 ? memrchr(page, '\n', plen) : NULL;
		want = nl != NULL ? (size_t)(nl - page) + 1 : 0;
	}
	if (got != want)
		abort();
	flat = evbuffer_pullup(out, -1);
	if (got > 0 && (memcmp(flat, page, got < plen ? got : plen) != 0 ||
	    flat[got - 1] != '\n'))
		abort();
	evbuffer_free(pending);
	evbuffer_free(in);
	evbuffer_free(out);
	return 0;
}
