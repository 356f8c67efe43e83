#!/usr/bin/env bash
# man/pilot-agent.8: "mandoc -T lint" says nothing, and the page agrees with
# the binary (tests/ship/manpage.py): every flag each command's --help lists
# is documented in that command's section and every documented flag is
# accepted, the defaults it gives are --help's, every .Fl is a real flag,
# and every command, environment variable, status path and signal is
# documented. The istio-iptables examples it gives are accepted.
. "$TOP/tests/lib.sh"
MAN=$TOP/man/pilot-agent.8
command -v mandoc >/dev/null || fail "no mandoc (apt-get install mandoc)"

note "mandoc -T lint"
(cd "$TOP" && mandoc -T lint man/pilot-agent.8) >"$T/lint" 2>&1 || fail "mandoc -T lint: $(cat "$T/lint")"
[ ! -s "$T/lint" ] || fail "mandoc -T lint: $(cat "$T/lint")"
for s in NAME SYNOPSIS DESCRIPTION ENVIRONMENT FILES "EXIT STATUS" EXAMPLES SIGNALS \
	"TRAFFIC INTERCEPTION" "STATUS AND METRICS"; do
	grep -q "^\.Sh $s\$" "$MAN" || fail "no section $s"
done
dups=$(grep -E '^\.S[hs] ' "$MAN" | sort | uniq -d)
[ -z "$dups" ] || fail "headings twice: $dups"
! ls "$TOP"/man/*.mdoc.part >/dev/null 2>&1 || note "unmerged: $(ls "$TOP"/man/*.mdoc.part)"

note "the page against the binary and the sources"
python3 "$TOP/tests/ship/manpage.py" "$AGENT" "$MAN" "$TOP" >"$T/check.out" 2>&1 ||
	fail "$(cat "$T/check.out")"
cat "$T/check.out" >&2

note "the page's istio-iptables examples"
# The literal lines that run istio-iptables, continuation lines joined.
awk '/^\.Bd -literal/{lit=1; next} /^\.Ed/{lit=0} lit' "$MAN" | sed 's/\\e$/\\/' |
	sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | grep -E '(^|[ /])istio-iptables ' >"$T/examples"
[ -s "$T/examples" ] || fail "no istio-iptables example found"
while IFS= read -r ex; do
	argv=()
	eval "argv=($ex)"
	env_=() i=0
	while [[ ${argv[$i]} == *=* ]]; do env_+=("${argv[$i]}"); i=$((i + 1)); done
	cmd=("${argv[@]:$i}")
	case ${cmd[0]} in
	pilot-agent) cmd=("$AGENT" "${cmd[@]:1}") ;;
	istio-iptables) cmd=("$AGENT" istio-iptables "${cmd[@]:1}") ;;
	*) fail "example: $ex" ;;
	esac
	env "${env_[@]}" "${cmd[@]}" --dry-run >"$T/ex.out" 2>&1 || fail "example '$ex': $(cat "$T/ex.out")"
done <"$T/examples"
echo PASS
