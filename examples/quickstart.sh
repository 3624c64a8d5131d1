#!/bin/sh
# Deploys the example agent on a fresh machine (Rust and tmux only) and shows it live.
set -eu
cd "$(dirname "$0")/.."
echo "building fleet (cargo build; the first build takes a few minutes)..."
cargo build -q -p fleet
fleet="${CARGO_TARGET_DIR:-$PWD/target}/debug/fleet"
export FLEET_ROOT="${FLEET_ROOT:-$PWD/.agent-workspace}"
task=$("$fleet" task create --description "quick start")
agent=$("$fleet" deploy --task "$task" --type demo --prompt "Say hello" --startup-grace-ms 500 -- sh examples/agent.sh)
echo "deployed $agent into $task"
"$fleet" status --task "$task"
sleep 1
echo "--- its output so far:"
"$fleet" logs --task "$task" --agent "$agent" --lines 5
echo "---"
echo "watch it:  $fleet attach --agent $agent      (detach: Ctrl-b d)"
echo "stop it:   $fleet kill --task $task --agent $agent"
echo "a real agent (Claude Code, credentials needed): drop the '-- sh examples/agent.sh'"
