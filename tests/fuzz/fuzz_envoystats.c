/*
 * libFuzzer harness for the parser of the proxy's admin /stats text. The
 * lines it reports must lie in the input, in order, each a name without a
 * colon or newline and a value without a newline or surrounding blanks;
 * looking a reported name up must give that name's first line; and the
 * drain's sum must equal the one counted here from the reported lines by
 * the rule in agent.h, with no overflow (the sanitizers watch the rest).
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fuzz_walk {
	const char	*fw_text;
	size_t		 fw_len;
	const char	*fw_last;	/* end of the last line seen */
	long long	 fw_total;
	int		 fw_found;
	int		 fw_lines;
};

struct fuzz_find {
	const char	*ff_name;
	size_t		 ff_len;
	const char	*ff_value;
	size_t		 ff_value_len;
};

static int
fuzz_find_cb(const char *name, size_t nlen, const char *v, size_t vlen,
    void *arg)
{
	struct fuzz_find	*ff = arg;

	if (nlen != ff->ff_len || memcmp(name, ff->ff_name, nlen) != 0)
		return 0;
	ff->ff_value = v;
	ff->ff_value_len = vlen;
	return 1;
}

static int
fuzz_has(const char *s, size_t len, const char *what)
{
	return memmem(s, len, what, strlen(what)) != NULL;
}

static int
fuzz_line(const char *name, size_t nlen, const char *v, size_t vlen,
    void *arg)
{
	struct fuzz_walk	*fw = arg;
	long long		 n, got;
	char			*z;

	if (name < fw->fw_last || v + vlen > fw->fw_text + fw->fw_len ||
	    v < name + nlen + 1 || name[nlen] != ':')
		abort();
	if (memchr(name, ':', nlen) != NULL || memchr(name, '\n', nlen) !=
	    NULL || memchr(v, '\n', vlen) != NULL)
		abort();
	if (vlen > 0 && (v[0] == ' ' || v[0] == '\t' || v[vlen - 1] == ' ' ||
	    v[vlen - 1] == '\t' || v[vlen - 1] == '\r'))
		abort();
	fw->fw_last = v + vlen;

	/*
	 * Looking the name up in the text so far gives the value of its
	 * first line (this one or an earlier one), as a walk finds it.
	 */
	if (fw->fw_lines++ < 64) {
		struct fuzz_find ff;
		size_t upto = (size_t)(v + vlen - fw->fw_text);
		int rc;

		z = malloc(nlen + 1);
		memcpy(z, name, nlen);
		z[nlen] = '\0';
		if (strlen(z) == nlen) {
			ff.ff_name = z;
			ff.ff_len = nlen;
			if (envoystats_each(fw->fw_text, upto, fuzz_find_cb,
			    &ff) != 1)
				abort();
			rc = envoystats_get(fw->fw_text, upto, z, &got);
			if (rc != envoystats_int(ff.ff_value, ff.ff_value_len,
			    &n) || (rc == 0 && got != n))
				abort();
		}
		free(z);
	}

	/* The drain's rule, counted again. */
	if (nlen >= 9 && memcmp(name, "listener.", 9) == 0 &&
	    !(nlen >= 15 && memcmp(name, "listener.admin.", 15) == 0) &&
	    !fuzz_has(name, nlen, "worker_") &&
	    fuzz_has(name, nlen, ".downstream_cx_active") &&
	    !fuzz_has(name, nlen, "_15021.") &&
	    !fuzz_has(name, nlen, "_15090.") &&
	    envoystats_int(v, vlen, &n) == 0 && n >= 0) {
		fw->fw_found = 1;
		fw->fw_total = fw->fw_total > LLONG_MAX - n ? LLONG_MAX :
		    fw->fw_total + n;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_walk	 fw;
	const char		*text = (const char *)data;
	long long		 sum;

	if (size > 1 << 20)
		return 0;
	memset(&fw, 0, sizeof(fw));
	fw.fw_text = text;
	fw.fw_len = size;
	fw.fw_last = text;
	if (envoystats_each(text, size, fuzz_line, &fw) != 0)
		abort();
	sum = envoystats_active(text, size, 15021, 15090);
	if (sum != (fw.fw_found ? fw.fw_total : -1))
		abort();
	return 0;
}
