#!/bin/sh
# A stand-in for a coding agent, for the quick start and the tests. Like Claude Code in print
# mode it reads its prompt on stdin and writes stream-json events — `system`/`init`, an
# `assistant` message each second, a final `result` — so fleet shows what it is doing; it works
# for FLEET_DEMO_SECONDS (default 60) and exits 0.
prompt=$(cat)
printf '{"type":"system","subtype":"init","agent":"%s","prompt_bytes":%s,"session_id":"demo-%s","model":"demo"}\n' \
  "$FLEET_AGENT_ID" "$(printf %s "$prompt" | wc -c)" "$FLEET_AGENT_ID"
i=0
while [ "$i" -lt "${FLEET_DEMO_SECONDS:-60}" ]; do
  printf '{"type":"assistant","message":{"id":"msg_%s","content":[{"type":"text","text":"working, second %s"}],"usage":{"input_tokens":0,"output_tokens":0}}}\n' "$i" "$i"
  sleep 1
  i=$((i + 1))
done
printf '{"type":"result","subtype":"success","is_error":false,"num_turns":%s,"result":"done"}\n' "$i"
