/*
 * The resources file of the test control plane: per type URL, a list of
 * resources, each a name and its payload (the encoded resource message, the
 * value of its Any), base64. A resource given with "size" and no payload
 * gets a generated one: field 1 (the name field of Cluster, Listener,
 * RouteConfiguration and ClusterLoadAssignment) holds its name, and an
 * unknown field 1000 pads it to "size" bytes.
 *
 *   {"resources": {"type.googleapis.com/envoy.config.cluster.v3.Cluster": [
 *        {"name": "c1"},
 *        {"name": "big", "size": 1048576},
 *        {"name": "real", "payload": "CgRyZWFs..."}]},
 *    "knobs": {"close_after": 0, "refuse": false, "delay_ms": 0,
 *              "repeat": 1, "echo": false, "hostile_type_flood": false}}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent.h"
#include "xds-server.h"

static uint64_t
resource_fnv(uint64_t h, const uint8_t *p, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static int
resource_b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Standard or URL-safe base64, padding optional. */
static uint8_t *
resource_b64(const char *s, size_t *len)
{
	uint8_t		*out;
	size_t		 n = 0;
	uint32_t	 acc = 0;
	int		 bits = 0, v;

	out = xmalloc(strlen(s) * 3 / 4 + 3);
	for (; *s != '\0' && *s != '='; s++) {
		if (*s == '\n' || *s == '\r' || *s == ' ')
			continue;
		if ((v = resource_b64val((unsigned char)*s)) == -1) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	*len = n;
	return out;
}

static size_t
resource_varint(uint8_t *p, uint64_t v)
{
	size_t	 n = 0;

	do {
		p[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			p[n] |= 0x80;
		n++;
	} while (v != 0);
	return n;
}

/* Field 1 = name, then field 1000 padding up to size bytes. */
static uint8_t *
resource_generate(const char *name, size_t size, size_t *len)
{
	size_t	 nl = strlen(name), n = 0, pad;
	uint8_t	*p;

	p = xmalloc(nl + size + 32);
	p[n++] = (1 << 3) | 2;
	n += resource_varint(p + n, nl);
	memcpy(p + n, name, nl);
	n += nl;
	if (size > n + 8) {
		pad = size - n - 8;
		n += resource_varint(p + n, (1000 << 3) | 2);
		n += resource_varint(p + n, pad);
		memset(p + n, 'x', pad);
		n += pad;
	}
	*len = n;
	return p;
}

static void
resource_knobs(json_t *j, struct xs_knobs *k)
{
	json_t	*v;

	if (!json_is_object(j))
		return;
	if ((v = json_object_get(j, "close_after")) != NULL)
		k->xk_close_after = (int)json_integer_value(v);
	if ((v = json_object_get(j, "refuse")) != NULL)
		k->xk_refuse = json_is_true(v);
	if ((v = json_object_get(j, "delay_ms")) != NULL)
		k->xk_delay_ms = (int)json_integer_value(v);
	if ((v = json_object_get(j, "repeat")) != NULL)
		k->xk_repeat = (int)json_integer_value(v);
	if ((v = json_object_get(j, "echo")) != NULL)
		k->xk_echo = json_is_true(v);
	if ((v = json_object_get(j, "hostile_type_flood")) != NULL)
		k->xk_type_flood = json_is_true(v);
	if (k->xk_repeat < 1)
		k->xk_repeat = 1;
}

int
resource_load(const char *path, const struct xs_knobs *dflt,
    struct xs_config *xc, char *err, size_t errlen)
{
	json_error_t	 je;
	json_t		*root, *types, *list, *r;
	const char	*url;
	size_t		 i;
	struct xs_type	*xt;

	memset(xc, 0, sizeof(*xc));
	xc->xc_knobs = *dflt;
	if ((root = json_load_file(path, 0, &je)) == NULL) {
		snprintf(err, errlen, "%s:%d: %s", path, je.line, je.text);
		return -1;
	}
	resource_knobs(json_object_get(root, "knobs"), &xc->xc_knobs);
	types = json_object_get(root, "resources");
	xc->xc_types = xcalloc(json_object_size(types) + 1,
	    sizeof(*xc->xc_types));
	json_object_foreach(types, url, list) {
		xt = &xc->xc_types[xc->xc_ntypes++];
		xt->xt_url = xstrdup(url);
		xt->xt_res = xcalloc(json_array_size(list) + 1,
		    sizeof(*xt->xt_res));
		xt->xt_digest = 14695981039346656037ULL;
		json_array_foreach(list, i, r) {
			struct xs_resource *xr = &xt->xt_res[xt->xt_nres];
			const char	*name, *payload;
			uint64_t	 h;

			name = json_string_value(json_object_get(r, "name"));
			payload = json_string_value(json_object_get(r,
			    "payload"));
			if (name == NULL) {
				snprintf(err, errlen, "%s: a resource of %s has "
				    "no name", path, url);
				goto fail;
			}
			xr->xr_name = xstrdup(name);
			if (payload != NULL) {
				xr->xr_payload = resource_b64(payload,
				    &xr->xr_len);
				if (xr->xr_payload == NULL) {
					snprintf(err, errlen, "%s: payload of "
					    "%s is not base64", path, name);
					free(xr->xr_name);
					goto fail;
				}
			} else
				xr->xr_payload = resource_generate(name,
				    (size_t)json_integer_value(
				    json_object_get(r, "size")), &xr->xr_len);
			xt->xt_nres++;
			h = resource_fnv(14695981039346656037ULL,
			    xr->xr_payload, xr->xr_len);
			snprintf(xr->xr_version, sizeof(xr->xr_version),
			    "%016llx", (unsigned long long)h);
			xt->xt_digest = resource_fnv(xt->xt_digest,
			    (const uint8_t *)name, strlen(name) + 1);
			xt->xt_digest = resource_fnv(xt->xt_digest,
			    (const uint8_t *)&h, sizeof(h));
		}
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	resource_free(xc);
	return -1;
}

void
resource_free(struct xs_config *xc)
{
	size_t	 i, j;

	for (i = 0; i < xc->xc_ntypes; i++) {
		for (j = 0; j < xc->xc_types[i].xt_nres; j++) {
			free(xc->xc_types[i].xt_res[j].xr_name);
			free(xc->xc_types[i].xt_res[j].xr_payload);
		}
		free(xc->xc_types[i].xt_res);
		free(xc->xc_types[i].xt_url);
	}
	free(xc->xc_types);
	memset(xc, 0, sizeof(*xc));
}

struct xs_type *
resource_type(struct xs_config *xc, const char *url)
{
	size_t	 i;

	for (i = 0; i < xc->xc_ntypes; i++)
		if (strcmp(xc->xc_types[i].xt_url, url) == 0)
			return &xc->xc_types[i];
	return NULL;
}

/* Whether a type's resources differ between two loads. */
int
resource_changed(const struct xs_config *a, const struct xs_config *b,
    const char *url)
{
	struct xs_type	*ta, *tb;

	ta = resource_type((struct xs_config *)a, url);
	tb = resource_type((struct xs_config *)b, url);
	if (ta == NULL || tb == NULL)
		return ta != tb;
	return ta->xt_digest != tb->xt_digest || ta->xt_nres != tb->xt_nres;
}
