#!/bin/sh
# A stand-in for a coding agent, for the quick start and the tests. Like Claude Code in print
# mode it reads its prompt on stdin and reports JSON lines; it works for FLEET_DEMO_SECONDS
# (default 60) and exits 0.
prompt=$(cat)
printf '{"type":"system","agent":"%s","prompt_bytes":%s}\n' "$FLEET_AGENT_ID" "$(printf %s "$prompt" | wc -c)"
i=0
while [ "$i" -lt "${FLEET_DEMO_SECONDS:-60}" ]; do
  printf '{"type":"progress","second":%s}\n' "$i"
  sleep 1
  i=$((i + 1))
done
printf '{"type":"result","result":"done"}\n'
