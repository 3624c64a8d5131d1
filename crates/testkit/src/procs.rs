//! What black-box tests read of the machine's processes, from `/proc` (Linux): which run, their
//! parents, command lines and environment — to prove a kill left nothing, or a tree is whole.

/// The `/proc/<pid>/stat` fields after the command name (which may hold spaces or parentheses).
fn stat_rest(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.rsplit_once(')')?.1.trim_start().to_owned())
}

/// Whether `pid` runs: it exists and is not a zombie.
pub fn is_running(pid: u32) -> bool {
    stat_rest(pid).is_some_and(|rest| !rest.starts_with('Z'))
}

/// Every process that runs, zombies aside.
pub fn running() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| is_running(*pid))
        .collect()
}

/// `pid`'s parent.
pub fn parent(pid: u32) -> Option<u32> {
    stat_rest(pid)?.split_whitespace().nth(1)?.parse().ok()
}

/// `pid`'s command line, its arguments separated by NUL bytes as the kernel keeps them (empty
/// when it cannot be read).
pub fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .into_owned()
}

/// The value of `name` in `pid`'s environment (`None` when it has none, or it cannot be read).
pub fn env_var(pid: u32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// `root` and every process below it.
pub fn tree(root: u32) -> std::collections::BTreeSet<u32> {
    let parents: Vec<(u32, u32)> = running()
        .into_iter()
        .filter_map(|pid| Some((pid, parent(pid)?)))
        .collect();
    let mut tree = std::collections::BTreeSet::from([root]);
    loop {
        let more: Vec<u32> = parents
            .iter()
            .filter(|(pid, ppid)| tree.contains(ppid) && !tree.contains(pid))
            .map(|(pid, _)| *pid)
            .collect();
        if more.is_empty() {
            return tree;
        }
        tree.extend(more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_in_its_parents_tree_with_its_environment() {
        let me = std::process::id();
        assert!(is_running(me));
        assert!(running().contains(&me));
        let parent = parent(me).unwrap_or(0);
        assert!(tree(parent).contains(&me));
        assert!(!cmdline(me).is_empty());
        // PATH is set in any cargo test run.
        assert_eq!(env_var(me, "PATH"), std::env::var("PATH").ok());
        assert!(!is_running(u32::MAX));
    }
}
