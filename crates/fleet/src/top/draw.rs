//! Drawing `fleet top`: the tasks and their agents (state colours, cost, tokens), then the
//! selected agent's output tail, progress and findings; or its whole log; and a key line.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState};

use super::{App, Mode};
use crate::ops::status::AgentView;
use crate::output::{cost, last_done, tokens};

/// A colour, unless colours are off (`NO_COLOR`).
fn fg(app: &App, color: Color) -> Style {
    if app.color {
        Style::default().fg(color)
    } else {
        Style::default()
    }
}

fn state_style(app: &App, a: &AgentView) -> Style {
    let color = match (a.status.is_active(), a.activity.state.as_str()) {
        (false, _) if a.status.as_str() != "completed" => Color::Red,
        (_, "failed") => Color::Red,
        (_, "finished") => Color::Cyan,
        (_, "working") => Color::Green,
        _ => Color::Yellow,
    };
    fg(app, color)
}

/// The table: a line per task, a row per agent under it. Under 100 columns the token counts
/// give their room to the last activity.
fn table(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let wide = area.width >= 100;
    // A HOST column once any agent records its host (a shared registry).
    let hosts = app
        .snapshot
        .tasks
        .iter()
        .flat_map(|t| &t.agents)
        .any(|a| a.host.is_some());
    let cells = |mut v: Vec<String>, host: &str| {
        if !wide {
            v.remove(3);
        }
        if hosts {
            v.insert(1, host.to_owned());
        }
        v
    };
    let mut rows = Vec::new();
    let mut selected_row = None;
    let mut index = 0;
    for t in &app.snapshot.tasks {
        rows.push(
            Row::new(cells(
                vec![
                    t.task_id.to_string(),
                    t.status.clone(),
                    String::new(),
                    tokens(t.totals.input_tokens + t.totals.output_tokens),
                    cost(Some(t.totals.cost_usd)),
                    crate::output::safe(&t.description),
                ],
                "",
            ))
            .style(Style::default().add_modifier(Modifier::BOLD)),
        );
        for a in &t.agents {
            if index == app.selected {
                selected_row = Some(rows.len());
            }
            index += 1;
            let act = &a.activity;
            let last = last_done(a);
            rows.push(
                Row::new(cells(
                    vec![
                        format!(" {}", a.agent_id),
                        a.status.to_string(),
                        act.state.as_str().to_owned(),
                        tokens(act.input_tokens + act.output_tokens),
                        cost(act.cost_usd),
                        crate::output::safe(&last),
                    ],
                    a.host.as_ref().map_or("-", |h| h.as_str()),
                ))
                .style(state_style(app, a)),
            );
        }
    }
    let mut widths = vec![
        Constraint::Length(29),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Min(10),
    ];
    if !wide {
        widths.remove(3);
    }
    if hosts {
        widths.insert(1, Constraint::Length(10));
    }
    let header = Row::new(cells(
        [
            "AGENT",
            "STATUS",
            "STATE",
            "TOKENS",
            "COST",
            "LAST ACTIVITY",
        ]
        .map(String::from)
        .to_vec(),
        "HOST",
    ))
    .style(Style::default().add_modifier(Modifier::UNDERLINED));
    let title = match &app.snapshot.error {
        Some(e) => format!(" fleet top — {e} "),
        None => {
            let agents: usize = app.snapshot.tasks.iter().map(|t| t.agents.len()).sum();
            let active: usize = app.snapshot.tasks.iter().map(|t| t.active_count).sum();
            format!(
                " fleet top — {} task(s), {agents} agent(s), {active} active ",
                app.snapshot.tasks.len()
            )
        }
    };
    let widget = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(title))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol("›");
    let mut state = TableState::default().with_selected(selected_row);
    frame.render_stateful_widget(widget, area, &mut state);
}

/// The last lines of `lines` that fit in `area` (inside its border).
fn tail(lines: &[String], area: Rect) -> Vec<Line<'static>> {
    let fit = area.height.saturating_sub(2) as usize;
    let skip = lines.len().saturating_sub(fit);
    lines[skip..]
        .iter()
        .map(|l| Line::raw(crate::output::safe(l)))
        .collect()
}

fn detail(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let Some(d) = &app.snapshot.detail else {
        frame.render_widget(Block::bordered().title(" no agent selected "), area);
        return;
    };
    let who = d.agent.as_ref().map_or("", |a| a.as_str());
    let [out, reports] = Layout::vertical([Constraint::Min(3), Constraint::Length(6)]).areas(area);
    frame.render_widget(
        Paragraph::new(tail(&d.output, out))
            .block(Block::bordered().title(format!(" {who} output "))),
        out,
    );
    let mut lines: Vec<Line<'static>> = d
        .progress
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(|p| {
            Line::from(vec![
                Span::styled("progress ", fg(app, Color::Green)),
                Span::raw(crate::output::safe(p)),
            ])
        })
        .collect();
    lines.extend(d.findings.iter().rev().take(2).rev().map(|f| {
        Line::from(vec![
            Span::styled("finding  ", fg(app, Color::Magenta)),
            Span::raw(crate::output::safe(f)),
        ])
    }));
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" progress and findings ")),
        reports,
    );
}

/// The whole frame.
pub(crate) fn frame(frame: &mut Frame<'_>, app: &App) {
    let [main, keys] =
        Layout::vertical([Constraint::Min(5), Constraint::Length(1)]).areas(frame.area());
    match &app.mode {
        Mode::Log => {
            let lines = app
                .snapshot
                .detail
                .as_ref()
                .map(|d| tail(&d.output, main))
                .unwrap_or_default();
            frame.render_widget(
                Paragraph::new(lines).block(Block::bordered().title(" log — l or Esc: back ")),
                main,
            );
        }
        _ => {
            let [top, bottom] =
                Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(main);
            table(frame, app, top);
            detail(frame, app, bottom);
        }
    }
    let line = match (&app.mode, &app.message) {
        (Mode::ConfirmKill(_, agent), _) => {
            Line::styled(format!(" kill {agent}? y / n "), fg(app, Color::Red))
        }
        (_, Some(message)) => Line::raw(format!(" {message}")),
        _ => Line::raw(" ↑↓ select  ⏎ attach  k kill  l log  q quit"),
    };
    frame.render_widget(Paragraph::new(line), keys);
}

#[cfg(test)]
mod tests {
    use deploy_core::{AgentId, AgentStatus, AgentType, Limits, Parent, SessionName, TaskId};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::ops::status::{Sighting, TaskStatus};
    use crate::top::data::Snapshot;

    fn agent(i: usize) -> AgentView {
        let id = AgentId::parse(&format!("worker-{i:06}-000000")).unwrap();
        AgentView {
            session: SessionName::for_agent(&id).unwrap(),
            agent_id: id,
            agent_type: AgentType::parse("worker").unwrap(),
            status: AgentStatus::Running,
            liveness: Sighting::Alive,
            exit: None,
            parent: Parent::Orchestrator,
            depth: 1,
            started_at: String::new(),
            age_seconds: Some(1),
            activity: activity::Activity::default(),
            last_line: Some(format!("line of {i}")),
            last_text: None,
            format: ::activity::Format::Plain,
            worktree: None,
            batch_id: None,
            host: None,
        }
    }

    /// A task of `agents`, as a look shows it.
    fn task_of(agents: Vec<AgentView>) -> TaskStatus {
        let id = TaskId::parse("TASK-20261125-000000-00000000").unwrap();
        TaskStatus {
            task_id: id.clone(),
            description: "many".into(),
            status: "ACTIVE".into(),
            active_count: 200,
            total_spawned: 200,
            completed_count: 0,
            max_concurrent: 200,
            max_agents: 200,
            totals: Default::default(),
            agents,
            snapshot: deploy_core::TaskSnapshot {
                id,
                description: String::new(),
                status: String::new(),
                priority: String::new(),
                created_at: String::new(),
                workspace: String::new(),
                limits: Limits::default(),
                agents: Vec::new(),
                extra: Default::default(),
            },
        }
    }

    /// The screen `app` draws at `width`×`height`, as text.
    fn screen(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| frame(f, app)).unwrap();
        terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect()
    }

    /// An agent whose model API fails shows `retrying` and what failed, as status does.
    #[test]
    fn an_agent_retrying_its_model_api_says_so() {
        let mut a = agent(1);
        a.format = ::activity::Format::ClaudeCode;
        a.activity.state = ::activity::State::Retrying;
        a.activity.retry = Some(::activity::Retry {
            attempt: 3,
            max_retries: 10,
            error_status: Some(529),
            error: "overloaded".into(),
        });
        let app = App {
            snapshot: Snapshot {
                tasks: vec![task_of(vec![a])],
                ..Snapshot::default()
            },
            selected: 1,
            mode: super::super::Mode::Table,
            message: None,
            color: false,
        };
        let shown = screen(&app, 160, 24);
        assert!(shown.contains("retrying"), "{shown}");
        assert!(
            shown.contains("model API error 529 overloaded: retry 3/10"),
            "{shown}"
        );
    }

    /// 200 agents at 80×24: the selected one is on screen, whichever it is.
    #[test]
    fn the_selected_agent_of_two_hundred_is_on_an_80_by_24_screen() {
        let agents: Vec<AgentView> = (0..200).map(agent).collect();
        let task = task_of(agents);
        for selected in [0, 150, 199] {
            let app = App {
                snapshot: Snapshot {
                    tasks: vec![task.clone()],
                    ..Snapshot::default()
                },
                selected,
                mode: super::super::Mode::Table,
                message: None,
                color: false,
            };
            let screen = screen(&app, 80, 24);
            assert!(
                screen.contains(&format!("› worker-{selected:06}-000000")),
                "agent {selected} selected and shown"
            );
        }
    }

    /// Agents of two hosts on one registry: a HOST column shows each one's host; an agent
    /// recorded without one shows `-`.
    #[test]
    fn agents_of_two_hosts_show_their_host() {
        let on = |i: usize, host: Option<&str>| {
            let mut a = agent(i);
            a.host = host.map(|h| deploy_core::HostName::parse(h).unwrap());
            a
        };
        let app = App {
            snapshot: Snapshot {
                tasks: vec![task_of(vec![
                    on(1, Some("host-a")),
                    on(2, Some("gpu-b")),
                    on(3, None),
                ])],
                ..Snapshot::default()
            },
            selected: 0,
            mode: super::super::Mode::Table,
            message: None,
            color: false,
        };
        for width in [80, 160] {
            let shown = screen(&app, width, 24);
            let lines: Vec<String> = shown
                .chars()
                .collect::<Vec<_>>()
                .chunks(usize::from(width))
                .map(|l| l.iter().collect())
                .collect();
            let line_of = |needle: &str| {
                lines
                    .iter()
                    .find(|l| l.contains(needle))
                    .unwrap_or_else(|| panic!("{needle} at {width}: {shown}"))
                    .clone()
            };
            assert!(line_of("AGENT").contains("HOST"), "{shown}");
            assert!(line_of("worker-000001").contains("host-a"), "{shown}");
            assert!(line_of("worker-000002").contains("gpu-b"), "{shown}");
            assert!(line_of("worker-000003").contains(" - "), "{shown}");
        }
    }
}
