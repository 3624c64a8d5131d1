//! A planned batch: the members a `--plan` file (or MCP `deploy_batch`) lists, each with its
//! own type, prompt and, optionally, command, checkout, model and workdir.

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::{AgentType, TaskId};
use serde::{Deserialize, Serialize};

use super::deploy::{DeployOptions, WorktreeOptions};
use crate::error::Error;

/// One member of a planned batch.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanMember {
    /// The agent's type (investigator, builder, ...).
    #[serde(rename = "type")]
    pub(crate) agent_type: String,
    /// The prompt (or `prompt_file`).
    #[serde(default)]
    pub(crate) prompt: Option<String>,
    /// A file holding the prompt, relative to the plan file.
    #[serde(default)]
    pub(crate) prompt_file: Option<String>,
    /// The agent command as argv (default: the batch's).
    #[serde(default)]
    pub(crate) command: Option<Vec<String>>,
    /// Run in its own git worktree on a new branch `fleet/<agent>`.
    #[serde(default)]
    pub(crate) worktree: bool,
    /// The repository to branch from (default: the one holding the current directory).
    #[serde(default)]
    pub(crate) repo: Option<String>,
    /// The ref to branch from (default: the repository's HEAD).
    #[serde(default)]
    pub(crate) base: Option<String>,
    /// Claude Code's model.
    #[serde(default)]
    pub(crate) model: Option<String>,
    /// The agent's working directory (without `worktree`).
    #[serde(default)]
    pub(crate) workdir: Option<String>,
}

/// A plan file: `{"members": [...]}` or the list of members alone.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PlanFile {
    Members(Vec<PlanMember>),
    Object { members: Vec<PlanMember> },
}

/// Reads the plan at `path` (JSON, at most `cap` bytes for the whole file); `-` is stdin.
pub(crate) fn read(path: &Utf8Path, cap: u64) -> Result<Vec<PlanMember>, Error> {
    let text = if path.as_str() == "-" {
        super::deploy::read_capped(std::io::stdin(), "the plan on stdin", cap)?
    } else {
        super::deploy::read_capped(
            fs_err::File::open(path)
                .map_err(|e| Error::Invalid(format!("cannot read plan: {e}")))?,
            &format!("plan {path}"),
            cap,
        )?
    };
    parse(&text, path)
}

/// The members of the plan `text`, read from `path` (its `prompt_file`s are relative to it).
pub(crate) fn parse(text: &str, path: &Utf8Path) -> Result<Vec<PlanMember>, Error> {
    // Parsed as members first for the precise message (a field it does not know, a missing
    // type); the untagged form only says that nothing matched.
    let members = match serde_json::from_str::<PlanFile>(text) {
        Ok(PlanFile::Members(m) | PlanFile::Object { members: m }) => m,
        Err(_) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Strict {
                #[allow(dead_code, reason = "parsed for its error message only")]
                members: Vec<PlanMember>,
            }
            let why = match serde_json::from_str::<Vec<PlanMember>>(text) {
                Err(e) if text.trim_start().starts_with('[') => e.to_string(),
                _ => match serde_json::from_str::<Strict>(text) {
                    Err(e) => e.to_string(),
                    Ok(_) => "it is not a list of members".to_owned(),
                },
            };
            return Err(Error::Invalid(format!("plan {path}: {why}")));
        }
    };
    let dir = path.parent().unwrap_or(Utf8Path::new("."));
    members
        .into_iter()
        .map(|mut m| {
            if let Some(file) = m.prompt_file.take() {
                m.prompt_file = Some(dir.join(file).into_string());
            }
            Ok(m)
        })
        .collect()
}

/// The plan `members` as another host reads it: each `prompt_file` read here and sent as its
/// `prompt` (a file on this machine means nothing there), at most `cap` bytes each.
pub(crate) fn inlined(members: Vec<PlanMember>, cap: u64) -> Result<String, Error> {
    let members = members
        .into_iter()
        .enumerate()
        .map(|(i, mut m)| {
            if let Some(path) = m.prompt_file.take() {
                if m.prompt.is_some() {
                    return Err(Error::Invalid(format!(
                        "member {}: give prompt or prompt_file, not both",
                        i + 1
                    )));
                }
                m.prompt = Some(super::deploy::read_capped(
                    fs_err::File::open(&path).map_err(|e| {
                        Error::Invalid(format!("member {}: cannot read prompt file: {e}", i + 1))
                    })?,
                    &format!("prompt file {path}"),
                    cap,
                )?);
            }
            Ok(m)
        })
        .collect::<Result<Vec<_>, Error>>()?;
    serde_json::to_string(&serde_json::json!({ "members": members }))
        .map_err(|e| Error::Environment(format!("cannot encode the plan: {e}")))
}

impl PlanMember {
    /// The member's deploy options over `base` (what the whole batch was given): its own type
    /// and prompt, and whatever else it names.
    pub(crate) fn options(
        self,
        task: &TaskId,
        base: &DeployOptions,
        cap: u64,
        index: usize,
    ) -> Result<DeployOptions, Error> {
        let which = || format!("member {}", index + 1);
        let agent_type = AgentType::parse(&self.agent_type)
            .map_err(|e| Error::Invalid(format!("{}: {e}", which())))?;
        let prompt = match (self.prompt, &self.prompt_file) {
            (Some(p), None) => p,
            (None, Some(path)) => super::deploy::read_capped(
                fs_err::File::open(path).map_err(|e| {
                    Error::Invalid(format!("{}: cannot read prompt file: {e}", which()))
                })?,
                &format!("prompt file {path}"),
                cap,
            )?,
            (Some(_), Some(_)) => {
                return Err(Error::Invalid(format!(
                    "{}: give prompt or prompt_file, not both",
                    which()
                )));
            }
            (None, None) => {
                return Err(Error::Invalid(format!(
                    "{}: give prompt or prompt_file",
                    which()
                )));
            }
        };
        if self.workdir.is_some() && self.worktree {
            return Err(Error::Invalid(format!(
                "{}: workdir and worktree exclude each other",
                which()
            )));
        }
        if !self.worktree && (self.repo.is_some() || self.base.is_some()) {
            return Err(Error::Invalid(format!(
                "{}: repo and base need worktree",
                which()
            )));
        }
        let mut options = base.clone();
        options.task = task.clone();
        options.agent_type = agent_type;
        options.prompt = prompt;
        if let Some(command) = self.command {
            options.command = Some(command);
        }
        if let Some(model) = self.model {
            options.model = Some(model);
        }
        if let Some(workdir) = self.workdir {
            options.workdir = Some(workdir.into());
        }
        if self.worktree {
            options.worktree = Some(WorktreeOptions {
                repo: self.repo.map(Utf8PathBuf::from),
                base: self.base,
                keep: false,
            });
        }
        Ok(options)
    }
}
