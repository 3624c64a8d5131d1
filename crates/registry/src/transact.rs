//! How the registry files change: every mutation under the task's lock, then the index's (the
//! one lock order). `transact` parses both files, applies, recounts and replaces both whole;
//! `change` — a few agents' status and fields — splices the text instead (`splice`), and falls
//! back to `transact` for a file it cannot read so. Before a new version is renamed into place,
//! the locks are checked to still be the files at their paths; the task file is restored when
//! the index's write fails.

use super::*;

impl JsonRegistry {
    /// Applies `changes` (status and fields of a few agents) under the task's lock — and the
    /// index's, only if a status in it changes — on the files' text (`splice`): the changed
    /// entries and the counters are written again, every other byte copied. A file the text
    /// path cannot read as expected goes the whole-file way ([`transact`](Self::transact)),
    /// which reports what is wrong with it.
    pub(crate) fn change(&self, task: &TaskId, changes: &[splice::Change]) -> Result<(), Error> {
        const ATTEMPTS: usize = 100;
        for attempt in 1..=ATTEMPTS {
            let done = match self.change_once(task, changes)? {
                Some(done) => done,
                None => self.transact_once(task, &mut |t, g| {
                    for change in changes {
                        apply_change(t, g, task, change)?;
                    }
                    Ok(((), true))
                })?,
            };
            if done.is_some() {
                return Ok(());
            }
            tracing::warn!(%task, attempt, "a registry lock file was replaced while held; starting over");
        }
        Err(deploy_core::Error::Registry(
            format!("task {task}: its lock files kept being replaced ({ATTEMPTS} attempts)").into(),
        )
        .into())
    }

    /// One attempt of [`change`](Self::change) on the text: `None` when the files must go the
    /// whole-file way; `Some(None)` when a lock turned out stale (start over).
    #[allow(clippy::option_option)] // three outcomes, each named above
    fn change_once(
        &self,
        task: &TaskId,
        changes: &[splice::Change],
    ) -> Result<Option<Option<()>>, Error> {
        let (task_path, task_lock, old_task_bytes) = self.lock_task(task)?;
        let spliced = match splice::task(&old_task_bytes, changes) {
            None => return Ok(None),
            Some(Err(agent)) => {
                return Err(deploy_core::Error::UnknownAgent {
                    task: task.clone(),
                    agent,
                }
                .into());
            }
            Some(Ok(s)) => s,
        };
        let in_index: Vec<&splice::Change> = changes
            .iter()
            .filter(|c| spliced.status_changed.contains(&c.agent))
            .collect();
        let global = if in_index.is_empty() {
            None
        } else {
            let (lock, path) = self.lock_global()?;
            let Ok(old) = fs_err::read(&path) else {
                return Ok(None);
            };
            let Some(new) = splice::index(&old, &in_index) else {
                return Ok(None);
            };
            Some((lock, path, new))
        };
        let task_new = atomic::stage(&task_path, &spliced.bytes)?;
        let global_new = match &global {
            Some((_, path, bytes)) => Some(atomic::stage(path, bytes)?),
            None => None,
        };
        let global_moved = match &global {
            Some((lock, ..)) => !lock.is_at_path()?,
            None => false,
        };
        if !task_lock.is_at_path()? || global_moved {
            return Ok(Some(None));
        }
        commit_both(&task_path, &old_task_bytes, task_new, global_new)?;
        Ok(Some(Some(())))
    }

    /// Takes `task`'s lock and reads its registry: the path, the lock, the bytes.
    pub(crate) fn lock_task(&self, task: &TaskId) -> Result<(Utf8PathBuf, Flock, Vec<u8>), Error> {
        let unknown = || Error::from(deploy_core::Error::UnknownTask(task.clone()));
        let path = self.layout.task_registry(task);
        if !path.exists() {
            return Err(unknown());
        }
        let lock = self.lock(&path)?;
        match fs_err::read(&path) {
            Ok(bytes) => Ok((path, lock, bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(unknown()),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `f` on the task registry and the global index with both locks held (task first),
    /// then writes whichever `f` says changed, recomputing counters. If the global write fails
    /// after the task write, the task file is restored.
    ///
    /// Just before the new versions are renamed into place, both locks are checked to still be
    /// the files at their paths: a lock file deleted while held guards nothing, and another
    /// writer may have taken the new one. Then the transaction starts over (`f` runs again).
    pub(crate) fn transact<R>(
        &self,
        task: &TaskId,
        mut f: impl FnMut(&mut TaskFile, &mut GlobalFile) -> Result<(R, bool), Error>,
    ) -> Result<R, Error> {
        const ATTEMPTS: usize = 100;
        for attempt in 1..=ATTEMPTS {
            match self.transact_once(task, &mut f)? {
                Some(out) => return Ok(out),
                None => {
                    tracing::warn!(%task, attempt, "a registry lock file was replaced while held; starting over")
                }
            }
        }
        Err(deploy_core::Error::Registry(
            format!("task {task}: its lock files kept being replaced ({ATTEMPTS} attempts)").into(),
        )
        .into())
    }

    /// One attempt of [`transact`](Self::transact); `None` when a lock turned out stale.
    pub(crate) fn transact_once<R>(
        &self,
        task: &TaskId,
        f: &mut impl FnMut(&mut TaskFile, &mut GlobalFile) -> Result<(R, bool), Error>,
    ) -> Result<Option<R>, Error> {
        let (task_path, task_lock, old_task_bytes) = self.lock_task(task)?;
        let mut task_file: TaskFile = parse(&old_task_bytes, &task_path)?;
        let (global_lock, global_path, mut global, old_global_bytes) = self.open_global()?;
        let (out, changed) = f(&mut task_file, &mut global)?;
        if !changed {
            return Ok(Some(out));
        }
        task_file.recount();
        global.recount();
        let task_new = atomic::stage(&task_path, &to_json(&task_file, &task_path)?)?;
        // An index the change left as it was is not written again.
        let global_bytes = to_json(&global, &global_path)?;
        let global_new = match old_global_bytes {
            Some(old) if old == global_bytes => None,
            _ => Some(atomic::stage(&global_path, &global_bytes)?),
        };
        if !task_lock.is_at_path()? || !global_lock.is_at_path()? {
            return Ok(None); // the staged files are removed as they drop
        }
        commit_both(&task_path, &old_task_bytes, task_new, global_new)?;
        Ok(Some(out))
    }
}

/// Applies `change` to the parsed files: the agent's status and fields in the task registry,
/// and — only when its status changes — its status and index fields in the global index (an
/// index unchanged is not rewritten). The same change as `splice` makes on the text.
pub(crate) fn apply_change(
    t: &mut TaskFile,
    g: &mut GlobalFile,
    task: &TaskId,
    change: &splice::Change,
) -> Result<(), Error> {
    let agent = &change.agent;
    let entry = t
        .agent_mut(agent)
        .ok_or_else(|| deploy_core::Error::UnknownAgent {
            task: task.clone(),
            agent: agent.clone(),
        })?;
    let changed = change.status.as_ref().filter(|s| **s != entry.status);
    if let Some(s) = &change.status {
        entry.status = s.clone();
    }
    entry.extra.extend(&change.task_fields);
    if let Some(s) = changed
        && let Some(Value::Object(ge)) = g.agents.get_mut(agent.as_str())
    {
        ge.insert("status".into(), json!(s.as_str()));
        ge.extend(change.index_fields.clone());
    }
    Ok(())
}

/// Renames a task registry's new version into place, then the index's if there is one; should
/// the index's fail, the task registry is restored to `old_task_bytes`.
pub(crate) fn commit_both(
    task_path: &Utf8Path,
    old_task_bytes: &[u8],
    task_new: atomic::Staged,
    global_new: Option<atomic::Staged>,
) -> Result<(), Error> {
    task_new.commit()?;
    deploy_core::failpoint("registry::after_task_write");
    if let Some(Err(e)) = global_new.map(atomic::Staged::commit) {
        if let Err(restore) = write_atomic(task_path, old_task_bytes) {
            tracing::error!(path = %task_path, error = %restore,
                "cannot restore the task registry after a failed index write; `fleet reconcile` rebuilds the index");
        }
        return Err(e);
    }
    deploy_core::failpoint("registry::after_global_write");
    Ok(())
}
