#!/bin/sh
# A stand-in for a coding agent, for the quick start and the tests. Like Claude Code in print
# mode (`--output-format stream-json --verbose`) it reads its prompt on stdin and writes
# Claude Code's event shapes — `system`/`init`, `assistant` messages (text, a Bash tool call),
# `user` tool results, a final `result` with usage and cost — so fleet shows what it is doing;
# it works for FLEET_DEMO_SECONDS (default 60) and exits 0.
prompt=$(cat)
session="demo-$FLEET_AGENT_ID"
printf '{"type":"system","subtype":"init","session_id":"%s","tools":["Bash"],"model":"demo","permissionMode":"default","apiKeySource":"none","prompt_bytes":%s}\n' \
  "$session" "$(printf %s "$prompt" | wc -c)"
i=0
while [ "$i" -lt "${FLEET_DEMO_SECONDS:-60}" ]; do
  printf '{"type":"assistant","message":{"id":"msg_demo_%s","type":"message","role":"assistant","model":"demo","content":[{"type":"text","text":"working, second %s"},{"type":"tool_use","id":"toolu_demo_%s","name":"Bash","input":{"command":"sleep 1","description":"wait a second"}}],"stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":5}},"session_id":"%s"}\n' "$i" "$i" "$i" "$session"
  sleep 1
  printf '{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_demo_%s","type":"tool_result","content":"","is_error":false}]},"session_id":"%s"}\n' "$i" "$session"
  i=$((i + 1))
done
printf '{"type":"result","subtype":"success","is_error":false,"num_turns":%s,"result":"done","session_id":"%s","total_cost_usd":0,"usage":{"input_tokens":%s,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":%s}}\n' \
  "$i" "$session" "$((i * 10))" "$((i * 5))"
