//! `fleet status`: per task a header line with its counters and totals, then a table of its
//! agents — what each is doing from its own events.

use crate::cli::StatusArgs;
use crate::config::Services;
use crate::error::Error;
use crate::ops::status::{self, AgentView, Only};
use crate::output::{cost, emit, last_done, safe, tokens};

pub(crate) fn run(services: &Services, args: &StatusArgs, json_mode: bool) -> Result<(), Error> {
    let only = match (&args.agent, &args.batch) {
        (Some(agent), _) => Only::Agent(agent),
        (None, Some(batch)) => Only::Batch(batch),
        (None, None) => Only::Every,
    };
    let tasks = status::run(services, args.task.as_ref(), only)?;
    emit(json_mode, &tasks, || {
        let mut out = String::new();
        for t in &tasks {
            out.push_str(&format!(
                "{}  {}  {} active / {} total (max {} / {})  {}  {} tokens  {}\n",
                t.task_id,
                safe(&t.status),
                t.active_count,
                t.total_spawned,
                t.max_concurrent,
                t.max_agents,
                cost(Some(t.totals.cost_usd)),
                tokens(t.totals.input_tokens + t.totals.output_tokens),
                safe(&t.description)
            ));
            if t.agents.is_empty() {
                continue;
            }
            // A HOST column once any agent records its host (a shared registry).
            let hosts = t.agents.iter().any(|a| a.host.is_some());
            let host = |h: &str| {
                if hosts {
                    format!("{h:<12} ")
                } else {
                    String::new()
                }
            };
            out.push_str(&format!(
                "  {:<32} {}{:<12} {:<10} {:<8} {:>6} {:>5} {:>7} {:>7}  {}\n",
                "AGENT",
                host("HOST"),
                "TYPE",
                "STATUS",
                "STATE",
                "AGE",
                "TURNS",
                "TOKENS",
                "COST",
                "LAST ACTIVITY"
            ));
            for a in &t.agents {
                let on = a.host.as_ref().map_or("-", |h| h.as_str());
                out.push_str(&format!("  {}\n", row(a, &host(on))));
            }
        }
        out
    });
    Ok(())
}

/// `3m`, `2h`, `5d` since it started.
fn age(seconds: Option<i64>) -> String {
    match seconds {
        None => "?".to_owned(),
        Some(s) if s < 60 => format!("{}s", s.max(0)),
        Some(s) if s < 3600 => format!("{}m", s / 60),
        Some(s) if s < 86_400 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86_400),
    }
}

/// The last thing it did: its result once it said it was done, its last tool while it works,
/// else its last line; and how its process ended, if it did.
fn last_activity(a: &AgentView) -> String {
    let what = activity::truncate(&last_done(a), 60);
    match a.exit {
        Some(exit) => format!("[{exit}] {}", safe(&what)),
        None if a.liveness.as_str() != "alive" => {
            let seen = match &a.host {
                Some(host) if a.liveness.as_str() == "elsewhere" => format!("on host {host}"),
                _ => a.liveness.as_str().to_owned(),
            };
            format!("[{seen}] {}", safe(&what))
        }
        None => safe(&what),
    }
}

fn row(a: &AgentView, host: &str) -> String {
    let act = &a.activity;
    format!(
        "{:<32} {host}{:<12} {:<10} {:<8} {:>6} {:>5} {:>7} {:>7}  {}",
        a.agent_id.as_str(),
        a.agent_type.as_str(),
        safe(a.status.as_str()),
        act.state.as_str(),
        age(a.age_seconds),
        act.turns,
        tokens(act.input_tokens + act.output_tokens),
        cost(act.cost_usd),
        last_activity(a),
    )
}
