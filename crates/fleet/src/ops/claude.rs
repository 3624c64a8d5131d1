//! Claude Code's own choices for a deployment — its model and its reasoning effort — added to
//! the agent command when that command is Claude Code, refused otherwise.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::error::Error;

/// Whether `argv` runs Claude Code: its program is `claude` (by name or by path).
pub(crate) fn is_claude(argv: &[String]) -> bool {
    argv.first()
        .and_then(|p| std::path::Path::new(p).file_name())
        .is_some_and(|name| name == "claude")
}

/// Adds `--model` and `--effort` to `argv`, which must run Claude Code and not set them
/// already. A model or effort level that could be read as an option, or an effort the
/// installed CLI does not take, is refused, naming it.
pub(crate) fn choose(
    argv: &mut Vec<String>,
    model: Option<&str>,
    effort: Option<&str>,
) -> Result<(), Error> {
    for (flag, value) in [("--model", model), ("--effort", effort)] {
        let Some(value) = value else { continue };
        if !is_claude(argv) {
            return Err(Error::Invalid(format!(
                "{flag} {value:?} is for Claude Code, but the agent command runs {:?}",
                argv.first().map_or("", String::as_str)
            )));
        }
        if value.is_empty() || value.starts_with('-') || value.chars().any(char::is_whitespace) {
            return Err(Error::Invalid(format!(
                "{flag} {value:?} is not a valid value: one word, not starting with '-'"
            )));
        }
        if argv
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        {
            return Err(Error::Invalid(format!(
                "the agent command already sets {flag}: give {value:?} there, or not at all"
            )));
        }
        if flag == "--effort" {
            check_effort(&argv[0], value)?;
        }
        argv.extend([flag.to_owned(), value.to_owned()]);
    }
    Ok(())
}

/// Refuses `level` unless the installed Claude Code takes `--effort` with it, as its `--help`
/// says (asked once per program per process).
fn check_effort(program: &str, level: &str) -> Result<(), Error> {
    let levels = effort_levels(program)?;
    match levels {
        None => Err(Error::Invalid(format!(
            "effort {level:?}: the installed Claude Code ({program}) has no --effort option; upgrade it, or deploy without effort"
        ))),
        Some(levels) if !levels.is_empty() && !levels.iter().any(|l| l == level) => {
            Err(Error::Invalid(format!(
                "effort {level:?} is not one the installed Claude Code takes: {}",
                levels.join(", ")
            )))
        }
        Some(_) => Ok(()),
    }
}

/// What `program --help` says of `--effort`: `None` if it has no such option, else the levels
/// it lists (empty if it lists none).
fn effort_levels(program: &str) -> Result<Option<Vec<String>>, Error> {
    type Cache = Mutex<HashMap<String, Option<Vec<String>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    if let Some(known) = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(program)
    {
        return Ok(known.clone());
    }
    let out = Command::new(program)
        .arg("--help")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| {
            Error::Invalid(format!(
                "cannot run {program} --help to check --effort: {e}"
            ))
        })?;
    let levels = parse_effort_help(&String::from_utf8_lossy(&out.stdout));
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(program.to_owned(), levels.clone());
    Ok(levels)
}

/// The `--effort` entry of Claude Code's help: `--effort <level>  Effort level … (low, medium,
/// high, xhigh, max)`, the list possibly on the next line.
fn parse_effort_help(help: &str) -> Option<Vec<String>> {
    let start = help.find("--effort ")?;
    let entry: String = help[start..].lines().take(3).collect::<Vec<_>>().join(" ");
    let levels = entry
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(list, _)| {
            list.split(',')
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty() && !l.contains(' '))
                .collect()
        })
        .unwrap_or_default();
    Some(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn the_model_is_added_to_claude_only() {
        let mut cmd = argv(&["/usr/local/bin/claude", "--print"]);
        choose(&mut cmd, Some("sonnet"), None).unwrap();
        assert_eq!(
            cmd,
            argv(&["/usr/local/bin/claude", "--print", "--model", "sonnet"])
        );

        let mut other = argv(&["codex", "exec"]);
        let err = choose(&mut other, Some("sonnet"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"codex\""), "{err}");
        assert_eq!(other, argv(&["codex", "exec"]));
    }

    #[test]
    fn a_model_that_reads_as_an_option_or_is_already_set_is_refused() {
        let mut cmd = argv(&["claude"]);
        assert!(choose(&mut cmd, Some("--dangerously-skip-permissions"), None).is_err());
        assert!(choose(&mut cmd, Some("a b"), None).is_err());
        let mut set = argv(&["claude", "--model=opus"]);
        let err = choose(&mut set, Some("sonnet"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already sets --model"), "{err}");
    }

    #[test]
    fn effort_levels_are_read_from_the_help_of_claude_code_2_1() {
        // As `claude --help` of Claude Code 2.1.197 prints it.
        let help = "  --effort <level>                      Effort level for the current session\n                                        (low, medium, high, xhigh, max)\n  --exclude-dynamic-system-prompt-sections\n";
        assert_eq!(
            parse_effort_help(help),
            Some(argv(&["low", "medium", "high", "xhigh", "max"]))
        );
        assert_eq!(parse_effort_help("  --model <model>  Model\n"), None);
    }
}
