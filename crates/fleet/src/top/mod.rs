//! `fleet top`: a live dashboard of every task and agent (ratatui over crossterm). Snapshots
//! are taken on a thread of their own ([`data`]); the drawing thread only reads keys and draws,
//! so a slow tmux call never blocks a key. Keys: ↑/↓ select, Enter attach, `k` kill (asks), `l`
//! the whole log, `q` quit. `NO_COLOR` turns colours off.

mod data;
mod draw;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use deploy_core::{AgentId, TaskId};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};

use crate::config::Services;
use crate::error::Error;
use crate::ops::kill;
use data::Snapshot;
use deploy_core::end::Files;

/// What the keys do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The table and the selected agent's details.
    Table,
    /// The selected agent's whole log.
    Log,
    /// Asking whether to kill this agent.
    ConfirmKill(TaskId, AgentId),
}

/// The dashboard's state.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) snapshot: Snapshot,
    /// Index among all agents, in table order.
    pub(crate) selected: usize,
    pub(crate) mode: Mode,
    /// The outcome of the last action, shown in place of the key line.
    pub(crate) message: Option<String>,
    pub(crate) color: bool,
}

impl App {
    /// The selected agent, with its task.
    fn selection(&self) -> Option<(TaskId, AgentId)> {
        self.snapshot
            .tasks
            .iter()
            .flat_map(|t| {
                t.agents
                    .iter()
                    .map(move |a| (t.task_id.clone(), a.agent_id.clone()))
            })
            .nth(self.selected)
    }

    fn agent_count(&self) -> usize {
        self.snapshot.tasks.iter().map(|t| t.agents.len()).sum()
    }
}

/// What a key asks for beyond the dashboard's own state.
enum Action {
    Quit,
    Attach(AgentId),
    Kill(TaskId, AgentId),
}

fn on_key(app: &mut App, key: KeyCode) -> Option<Action> {
    match (&app.mode, key) {
        (Mode::ConfirmKill(task, agent), KeyCode::Char('y')) => {
            let action = Action::Kill(task.clone(), agent.clone());
            app.mode = Mode::Table;
            return Some(action);
        }
        (Mode::ConfirmKill(..), _) => {
            app.mode = Mode::Table;
            app.message = Some("kill cancelled".into());
        }
        (Mode::Log, KeyCode::Char('l') | KeyCode::Esc) => app.mode = Mode::Table,
        (_, KeyCode::Char('q')) => return Some(Action::Quit),
        (Mode::Table, KeyCode::Down) => {
            app.selected = (app.selected + 1).min(app.agent_count().saturating_sub(1));
        }
        (Mode::Table, KeyCode::Up) => app.selected = app.selected.saturating_sub(1),
        (Mode::Table, KeyCode::Char('l')) => app.mode = Mode::Log,
        (Mode::Table, KeyCode::Char('k')) => {
            if let Some((task, agent)) = app.selection() {
                app.mode = Mode::ConfirmKill(task, agent);
            }
        }
        (Mode::Table, KeyCode::Enter) => return app.selection().map(|(_, a)| Action::Attach(a)),
        _ => {}
    }
    None
}

/// Attaches this terminal to the agent's session until the user detaches (a child process, not
/// an exec: the dashboard comes back). `TMUX` is removed so that it works from inside tmux.
fn attach(services: &Services, agent: &AgentId) -> Result<String, Error> {
    let session = deploy_core::SessionName::for_agent(agent)?;
    ratatui::restore();
    let status = std::process::Command::new("tmux")
        .args(["-L", &services.config.socket, "attach-session", "-t"])
        .arg(format!("={session}"))
        .env_remove("TMUX")
        .status();
    Ok(match status {
        Ok(s) if s.success() => format!("detached from {agent}"),
        Ok(s) => format!("attach to {agent} failed ({s})"),
        Err(e) => format!("cannot run tmux attach-session: {e}"),
    })
}

/// Runs the dashboard until `q`.
pub(crate) fn run(services: Services) -> Result<(), Error> {
    let services = Arc::new(services);
    let selected: data::Selected = Arc::default();
    let (tx, rx) = mpsc::channel();
    {
        let (services, selected) = (Arc::clone(&services), Arc::clone(&selected));
        std::thread::spawn(move || data::gather(services, selected, tx));
    }
    let (kill_tx, kill_rx) = mpsc::channel::<String>();
    let mut app = App {
        snapshot: Snapshot::default(),
        selected: 0,
        mode: Mode::Table,
        message: None,
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let mut terminal = ratatui::init();
    let outcome = loop {
        if let Some(s) = data::newest(&rx) {
            app.snapshot = s;
            app.selected = app.selected.min(app.agent_count().saturating_sub(1));
        }
        if let Some(done) = kill_rx.try_iter().last() {
            app.message = Some(done);
        }
        *selected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = app.selection();
        if let Err(e) = terminal.draw(|f| draw::frame(f, &app)) {
            break Err(Error::Io(e));
        }
        let key = match event::poll(Duration::from_millis(100)) {
            Ok(true) => match event::read() {
                Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => Some(k.code),
                Ok(_) => None,
                Err(e) => break Err(Error::Io(e)),
            },
            Ok(false) => None,
            Err(e) => break Err(Error::Io(e)),
        };
        match key.and_then(|k| on_key(&mut app, k)) {
            Some(Action::Quit) => break Ok(()),
            Some(Action::Attach(agent)) => {
                app.message = Some(attach(&services, &agent)?);
                terminal = ratatui::init();
            }
            Some(Action::Kill(task, agent)) => {
                app.message = Some(format!("killing {agent}…"));
                let (services, done) = (Arc::clone(&services), kill_tx.clone());
                std::thread::spawn(move || {
                    let reason = "killed from fleet top";
                    let said = match kill::run(&services, &task, &agent, reason, Files::Keep) {
                        Ok(k) => format!(
                            "{agent} {} ({} process(es) ended)",
                            k.status,
                            k.killed.len()
                        ),
                        Err(e) => format!("kill {agent}: {}", e.line()),
                    };
                    let _ = done.send(said);
                });
            }
            None => {}
        }
    };
    ratatui::restore();
    outcome
}
