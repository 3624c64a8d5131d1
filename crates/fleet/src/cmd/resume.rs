//! `fleet resume`.

use std::time::Duration;

use crate::cli::ResumeArgs;
use crate::config::Services;
use crate::error::Error;
use crate::ops::resume;

pub(crate) fn run(services: &Services, args: &ResumeArgs, json_mode: bool) -> Result<(), Error> {
    if let Some(host) = crate::ops::remote::owner(services, &args.task, &args.agent)? {
        // Its conversation and its checkout are on its host: that host continues it.
        let mut command = vec![
            "resume".to_owned(),
            "--task".to_owned(),
            args.task.to_string(),
            "--agent".to_owned(),
            args.agent.to_string(),
            "--prompt".to_owned(),
            args.prompt.clone(),
        ];
        if let Some(ms) = args.startup_grace_ms {
            command.extend(["--startup-grace-ms".to_owned(), ms.to_string()]);
        }
        let grace = args
            .startup_grace_ms
            .map_or(services.config.startup_grace, Duration::from_millis);
        let answer = crate::ops::remote::call(
            &services.config,
            &host,
            command,
            None,
            crate::ops::remote::CALL_BOUND + grace,
        )?;
        crate::output::emit(json_mode, &answer, || {
            format!("{}\n", answer["agent_id"].as_str().unwrap_or_default())
        });
        return Ok(());
    }
    let (mut options, copied) =
        resume::options(services, &args.task, &args.agent, args.prompt.clone())?;
    options.startup_grace = args.startup_grace_ms.map(Duration::from_millis);
    super::deploy::deploy_interruptibly(services, options, json_mode)?;
    if let Some(copied) = copied {
        copied.keep();
    }
    Ok(())
}
