//! What black-box tests read of the machine's processes, from `/proc` (Linux): which run, their
//! parents, command lines and environment — to prove a kill left nothing, or a tree is whole.
//! Read through the `procs` crate, the one fleet's kills use.

/// Whether `pid` runs: it exists and is not a zombie.
pub fn is_running(pid: u32) -> bool {
    procs::stat(pid).is_some_and(|p| !p.is_gone())
}

/// Every process that runs, zombies aside.
pub fn running() -> Vec<u32> {
    procs::all()
        .into_values()
        .filter(|p| !p.is_gone())
        .map(|p| p.pid)
        .collect()
}

/// `pid`'s parent.
pub fn parent(pid: u32) -> Option<u32> {
    procs::stat(pid).map(|p| p.ppid)
}

/// `pid`'s command line, its arguments separated by NUL bytes as the kernel keeps them (empty
/// when it cannot be read).
pub fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .into_owned()
}

/// The value of `name` in `pid`'s environment (`None` when it has none, or it cannot be read).
pub fn env_var(pid: u32, name: &str) -> Option<String> {
    procs::env_value(pid, name)
}

/// `root` and every process below it.
pub fn tree(root: u32) -> std::collections::BTreeSet<u32> {
    let all = procs::all();
    let mut tree = std::collections::BTreeSet::from([root]);
    loop {
        let more: Vec<u32> = all
            .values()
            .filter(|p| !p.is_gone() && tree.contains(&p.ppid) && !tree.contains(&p.pid))
            .map(|p| p.pid)
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
