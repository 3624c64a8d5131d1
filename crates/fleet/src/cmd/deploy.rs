//! `fleet deploy`: one agent, transactionally, to Live.

use std::io::Read;
use std::time::Duration;

use crate::cli::DeployArgs;
use crate::config::Services;
use crate::error::Error;
use crate::ops::deploy::{self, DeployOptions};
use crate::output::emit;

pub(crate) fn run(services: &Services, args: DeployArgs, json_mode: bool) -> Result<(), Error> {
    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(path)) if path.as_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Error::Invalid(format!("cannot read the prompt from stdin: {e}")))?;
            s
        }
        (None, Some(path)) => fs_err::read_to_string(path)
            .map_err(|e| Error::Invalid(format!("cannot read prompt file: {e}")))?,
        // clap requires one of the two.
        (None, None) => return Err(Error::Invalid("give --prompt or --prompt-file".into())),
    };
    let mut options = DeployOptions::new(args.task, args.agent_type, prompt);
    options.parent = args.parent;
    options.workdir = args.workdir;
    options.command = (!args.command.is_empty()).then_some(args.command);
    options.startup_grace = args.startup_grace_ms.map(Duration::from_millis);
    options.env = args.env;
    options.allow_duplicate = args.allow_duplicate;
    let deployed = deploy::run(services, options)?;
    tracing::info!(agent = %deployed.agent_id, session = %deployed.session, "agent is live");
    emit(json_mode, &deployed, || format!("{}\n", deployed.agent_id));
    Ok(())
}
