#!/usr/bin/env bash
# Golden tests of "pilot-agent bootstrap": each variant of
# tests/golden/bootstrap/variants.sh renders exactly its file in
# tests/golden/bootstrap/. UPDATE_GOLDEN=1 rewrites the files instead.
. "$TOP/tests/lib.sh"
. "$TOP/tests/golden/bootstrap/variants.sh"
variant_inputs
golden=$TOP/tests/golden/bootstrap
for v in $VARIANTS; do
	render_variant "$v" "$T/$v.json" 2>"$T/$v.err" ||
		fail "$v: exit $?: $(cat "$T/$v.err")"
	# Paths of this run's temporary directory are not part of the output.
	sed -i "s|$T|@T@|g" "$T/$v.json"
	if [ -n "${UPDATE_GOLDEN:-}" ]; then
		cp "$T/$v.json" "$golden/$v.json"
		note "$v: golden file updated"
	elif ! diff -u "$golden/$v.json" "$T/$v.json" >&2; then
		fail "$v: differs from $golden/$v.json"
	fi
	# Rendering is a function of its inputs: a second run is identical.
	render_variant "$v" "$T/$v.again" 2>/dev/null
	sed -i "s|$T|@T@|g" "$T/$v.again"
	cmp -s "$T/$v.json" "$T/$v.again" || fail "$v: not deterministic"
	note "$v: ok"
done
echo PASS
